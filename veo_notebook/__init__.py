"""veo-notebook: what happened to your kie.ai Veo 3.1 video tasks, in one typed DataFrame.

>>> import veo_notebook as veo
>>> with veo.simulator.serve() as url:  # the API, on loopback
...     client = veo.Client(veo.simulator.DEFAULT_API_KEY, base_url=url)
...     df = veo.fetch_records(["veo_task_1"], client=client, progress=False)

Public names are loaded lazily (``import veo_notebook`` stays cheap; pandas and
matplotlib load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__ as __version__

# The one list of public names: name -> the module that defines it (loaded on first use).
_EXPORTS: dict[str, str] = {
    # errors
    "VeoError": "errors",
    "ConfigError": "errors",
    "EndpointError": "errors",
    "InputError": "errors",
    "MissingExtraError": "errors",
    "ApiError": "errors",
    "ArchiveError": "errors",
    "AuthError": "errors",
    "TransientError": "errors",
    "StoreError": "errors",
    "StoreNotFoundError": "errors",
    "SchemaVersionError": "errors",
    # data path
    "Client": "client",
    "fetch_records": "fetch",
    "watch": "fetch",
    "read_task_ids": "fetch",
    "Store": "store",
    # typed frame and export
    "to_frame": "frame",
    "to_parquet": "export",
    "read_parquet": "export",
    # analysis and report
    "latency_summary": "analysis",
    "km_latency": "analysis",
    "failure_rates": "analysis",
    "classify_errors": "analysis",
    "failure_breakdown": "analysis",
    "stuck_tasks": "analysis",
    "families": "analysis",
    "family_of": "analysis",
    "cost_summary": "analysis",
    "duplicate_submissions": "analysis",
    "expiring": "analysis",
    "with_credits": "pricing",
    "report": "reporting",
    "check": "checks",
    # callbacks
    "read_callbacks": "callbacks",
    "callback_audit": "callbacks",
    # viewer
    "StatusViewer": "viewer",
    # archive
    "archive_videos": "archive",
    "delivery_check": "archive",
}
_SUBMODULES = ("simulator", "plots", "schema", "pricing", "callbacks")

#: The public names, derived: written once above (tests/test_public_api.py checks each
#: is in its module's own ``__all__``).
__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
