"""The public surface is small and deliberate: __all__ is asserted, and every name resolves."""

from __future__ import annotations

import veo_notebook

EXPECTED = {
    "ApiError",
    "AuthError",
    "Client",
    "ConfigError",
    "InputError",
    "SchemaVersionError",
    "StatusViewer",
    "Store",
    "StoreError",
    "TransientError",
    "VeoError",
    "__version__",
    "classify_errors",
    "failure_breakdown",
    "failure_rates",
    "fetch_records",
    "km_latency",
    "latency_summary",
    "plots",
    "read_parquet",
    "read_task_ids",
    "report",
    "schema",
    "simulator",
    "stuck_tasks",
    "to_frame",
    "to_parquet",
    "watch",
}


def test_all_is_exactly_the_public_surface():
    assert set(veo_notebook.__all__) == EXPECTED
    assert veo_notebook.__all__ == sorted(veo_notebook.__all__)


def test_every_public_name_resolves():
    for name in veo_notebook.__all__:
        assert getattr(veo_notebook, name) is not None, name


def test_errors_form_one_tree():
    for name in [
        "ConfigError",
        "InputError",
        "ApiError",
        "AuthError",
        "TransientError",
        "StoreError",
        "SchemaVersionError",
    ]:
        assert issubclass(getattr(veo_notebook, name), veo_notebook.VeoError)
    assert issubclass(veo_notebook.AuthError, veo_notebook.ApiError)
    assert issubclass(veo_notebook.InputError, ValueError)


def test_lazy_table_matches_all():
    lazy = set(veo_notebook._EXPORTS) | set(veo_notebook._SUBMODULES) | {"__version__"}
    assert lazy == set(veo_notebook.__all__)
