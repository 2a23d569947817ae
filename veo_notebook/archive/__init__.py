"""The archive stage: the videos themselves, saved before kie.ai deletes them (14 days).

:func:`archive_videos` downloads the final video of every succeeded task into a folder
or any fsspec URL, laid out as::

    <dest>/<yyyy-mm-dd>/<task_id>.mp4      the UTC day the task completed

It is the one place HTTP to media hosts happens (never with the API key). Each file is
hashed (SHA-256) while it streams, checked against the length the host promised, probed
with PyAV, and only then put at its final name; with a store, each row is recorded in its
``archive`` table, so a second run downloads only what is missing.
:func:`delivery_check` compares each file with what its task asked for.

>>> import veo_notebook as veo
>>> with veo.simulator.Simulator(n_tasks=30) as sim:  # doctest: +SKIP
...     client = veo.Client(sim.api_key, base_url=sim.base_url)
...     df = veo.fetch_records(sim.task_ids("success"), client=client, progress=False)
...     archive = veo.archive_videos(df, "videos", progress=False)
...     problems = veo.delivery_check(df, archive)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ARCHIVE_DTYPES",
    "ARCHIVE_FIELDS",
    "ARCHIVE_KINDS",
    "DEFAULT_DURATION_S",
    "DELIVERY_ISSUES",
    "MAX_WORKERS",
    "UNREADABLE",
    "ArchiveTable",
    "archive_videos",
    "delivery_check",
]

#: Most parallel downloads :func:`archive_videos` (and ``archive --workers``) takes: a
#: media host throttles past a few dozen connections, and each holds a socket and a file.
MAX_WORKERS = 64

# the rest loads on first use (``veo-notebook --help`` reads MAX_WORKERS without pandas)
_EXPORTS = {
    "ARCHIVE_DTYPES": "_run",
    "UNREADABLE": "_run",
    "archive_videos": "_run",
    "DEFAULT_DURATION_S": "_delivery",
    "DELIVERY_ISSUES": "_delivery",
    "delivery_check": "_delivery",
    "ARCHIVE_FIELDS": "_table",
    "ARCHIVE_KINDS": "_table",
    "ArchiveTable": "_table",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from ._delivery import DEFAULT_DURATION_S, DELIVERY_ISSUES, delivery_check
    from ._run import ARCHIVE_DTYPES, UNREADABLE, archive_videos
    from ._table import ARCHIVE_FIELDS, ARCHIVE_KINDS, ArchiveTable
