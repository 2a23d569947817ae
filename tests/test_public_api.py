"""The public surface is small and deliberate: one table of names, each resolves."""

from __future__ import annotations

import veo_notebook


def test_all_is_derived_from_the_one_table_of_public_names():
    # the public names are written once, in _EXPORTS (name -> module) and _SUBMODULES;
    # __all__ is derived, and each name is one its module exports on purpose
    import importlib

    assert veo_notebook.__all__ == sorted(veo_notebook.__all__)
    for name, module in veo_notebook._EXPORTS.items():
        mod = importlib.import_module(f"veo_notebook.{module}")
        assert name in getattr(mod, "__all__", ()), (name, module)


def test_every_public_name_resolves():
    for name in veo_notebook.__all__:
        assert getattr(veo_notebook, name) is not None, name


def test_errors_form_one_tree():
    for name in [
        "ArchiveError",
        "ConfigError",
        "InputError",
        "ApiError",
        "AuthError",
        "TransientError",
        "StoreError",
        "StoreNotFoundError",
        "EndpointError",
        "SchemaVersionError",
        "MissingExtraError",
    ]:
        assert issubclass(getattr(veo_notebook, name), veo_notebook.VeoError)
    assert issubclass(veo_notebook.AuthError, veo_notebook.ApiError)
    assert issubclass(veo_notebook.InputError, ValueError)
    assert issubclass(veo_notebook.EndpointError, (veo_notebook.ConfigError, veo_notebook.ApiError))
    assert issubclass(veo_notebook.StoreNotFoundError, veo_notebook.InputError)
    assert issubclass(veo_notebook.MissingExtraError, (veo_notebook.ConfigError, ImportError))


def test_lazy_table_matches_all():
    lazy = set(veo_notebook._EXPORTS) | set(veo_notebook._SUBMODULES) | {"__version__"}
    assert lazy == set(veo_notebook.__all__)


# every module path the README, the notebooks and docs/design.md name, as it was before
# the stages became subpackages
DOCUMENTED_PATHS = {
    "veo_notebook.frame": ["to_frame", "from_raw", "from_store", "DEFAULT_NAIVE_TZ"],
    "veo_notebook.analysis": [
        "latency_summary",
        "km_latency",
        "km_curve",
        "stuck_tasks",
        "failure_rates",
        "classify_errors",
        "failure_breakdown",
        "FailureBreakdown",
        "ErrorRule",
        "ERROR_RULES",
        "CATEGORY_MEANINGS",
        "DEFAULT_PERCENTILES",
    ],
    "veo_notebook.viewer": ["StatusViewer"],
    "veo_notebook.client": ["Client", "Outcome", "ENV_KEY", "RECORD_PATH"],
    "veo_notebook.fetch": ["fetch_records", "watch", "read_task_ids", "poll_interval"],
    "veo_notebook.store": ["Store", "StoreRow", "STORE_VERSION"],
    "veo_notebook.schema": ["COLUMNS", "Status", "is_pending", "TERMINAL_FLAGS"],
    "veo_notebook.export": ["to_parquet", "read_parquet", "to_csv"],
    "veo_notebook.simulator": ["Simulator", "serve", "serve_forever", "DEFAULT_API_KEY"],
    "veo_notebook.plots": ["latency_ecdf", "status_counts"],
    "veo_notebook.reporting": ["report", "SECTIONS", "Context", "Section", "Text"],
    "veo_notebook.errors": ["VeoError"],
    "veo_notebook.callbacks": [
        "make_app",
        "serve",
        "run",
        "read_callbacks",
        "callback_audit",
        "task_ids",
        "sign",
        "WebhookKey",
    ],
    "veo_notebook.simulator.callbacks": ["CALLBACK_FAULTS", "create_task", "check_url"],
}


def test_every_documented_module_path_still_imports():
    import importlib

    for module, names in DOCUMENTED_PATHS.items():
        mod = importlib.import_module(module)
        missing = [n for n in names if not hasattr(mod, n)]
        assert not missing, (module, missing)
        if hasattr(mod, "__all__"):
            assert all(hasattr(mod, n) for n in mod.__all__), module


def test_veo_report_stays_callable_after_its_module_is_imported(tmp_path):
    # importing veo_notebook.report rebinds the package's "report" to the module
    import importlib

    import pandas as pd

    import veo_notebook as veo
    from veo_notebook import schema

    importlib.import_module("veo_notebook.report")
    importlib.import_module("veo_notebook.reporting")
    df = schema.enforce(pd.DataFrame({"task_id": ["a"], "status": ["success"]}))
    out = veo.report(df, tmp_path / "r.md", figures=False)
    assert out.exists() and "Veo task report" in out.read_text(encoding="utf-8")


def test_the_old_report_module_path_still_works_with_a_deprecation_warning():
    import pytest

    from veo_notebook import reporting

    with pytest.warns(DeprecationWarning, match="veo_notebook.reporting"):
        from veo_notebook.report import SECTIONS
    assert SECTIONS is reporting.SECTIONS
    with pytest.warns(DeprecationWarning, match="veo_notebook.reporting"):
        from veo_notebook.report import report
    assert report is reporting.report
