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
from typing import TYPE_CHECKING, Any

from ._version import __version__

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "VeoError": "errors",
    "ConfigError": "errors",
    "EndpointError": "errors",
    "InputError": "errors",
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
    "cost_summary": "analysis",
    "duplicate_submissions": "analysis",
    "expiring": "analysis",
    "with_credits": "pricing",
    "report": "reporting",
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

__all__ = [
    "ApiError",
    "ArchiveError",
    "AuthError",
    "Client",
    "ConfigError",
    "EndpointError",
    "InputError",
    "SchemaVersionError",
    "StatusViewer",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "TransientError",
    "VeoError",
    "__version__",
    "archive_videos",
    "callback_audit",
    "callbacks",
    "classify_errors",
    "cost_summary",
    "delivery_check",
    "duplicate_submissions",
    "expiring",
    "failure_breakdown",
    "failure_rates",
    "fetch_records",
    "km_latency",
    "latency_summary",
    "plots",
    "pricing",
    "read_callbacks",
    "read_parquet",
    "read_task_ids",
    "report",
    "schema",
    "simulator",
    "stuck_tasks",
    "to_frame",
    "to_parquet",
    "watch",
    "with_credits",
]


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


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import callbacks, plots, pricing, schema, simulator
    from .analysis import (
        classify_errors,
        cost_summary,
        duplicate_submissions,
        expiring,
        failure_breakdown,
        failure_rates,
        km_latency,
        latency_summary,
        stuck_tasks,
    )
    from .archive import archive_videos, delivery_check
    from .callbacks import callback_audit, read_callbacks
    from .client import Client
    from .errors import (
        ApiError,
        ArchiveError,
        AuthError,
        ConfigError,
        EndpointError,
        InputError,
        SchemaVersionError,
        StoreError,
        StoreNotFoundError,
        TransientError,
        VeoError,
    )
    from .export import read_parquet, to_parquet
    from .fetch import fetch_records, read_task_ids, watch
    from .frame import to_frame
    from .pricing import with_credits
    from .reporting import report
    from .store import Store
    from .viewer import StatusViewer
