"""Optional parts: which extra brings which module, and the one guarded import.

The core install (``pip install veo-notebook``) fetches, stores, frames, analyses,
reports, views and exports. The rest comes with extras named for what they enable
(pyproject.toml declares them, :data:`MODULE_EXTRA` maps each module to its extra)::

    archive    PyAV + fsspec: archive_videos, probing files, the simulator's MP4 files
    s3         s3fs (+ archive): s3:// archive destinations
    callbacks  Starlette + uvicorn: the callback receiver (veo-notebook callbacks)
    duckdb     DuckDB
    spark      PySpark
    all        every one of them

A feature whose extra is missing raises :class:`~veo_notebook.errors.MissingExtraError`,
one line naming the command that installs it. Every optional import goes through
:func:`require`, so the message and the mapping are defined here only.

>>> install_command("archive")
"pip install 'veo-notebook[archive]'"
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = [
    "EXTRAS",
    "MODULE_EXTRA",
    "URL_BACKENDS",
    "available",
    "install_command",
    "require",
    "require_url",
]

DIST = "veo-notebook"
#: Top-level module -> (the extra that installs it, the name people know it by).
MODULE_EXTRA: dict[str, tuple[str, str]] = {
    "av": ("archive", "PyAV"),
    "fsspec": ("archive", "fsspec"),
    "s3fs": ("s3", "s3fs"),
    "starlette": ("callbacks", "Starlette"),
    "uvicorn": ("callbacks", "uvicorn"),
    "duckdb": ("duckdb", "DuckDB"),
    "pyspark": ("spark", "PySpark"),
}
#: Extra -> the modules it brings (derived from :data:`MODULE_EXTRA`).
EXTRAS: dict[str, tuple[str, ...]] = {}
for _module, (_extra, _) in MODULE_EXTRA.items():
    EXTRAS[_extra] = (*EXTRAS.get(_extra, ()), _module)


#: fsspec protocols whose backend an extra brings (protocol -> module of MODULE_EXTRA).
URL_BACKENDS = {"s3": "s3fs", "s3a": "s3fs"}


def install_command(extra: str) -> str:
    """The shell command that installs ``extra`` (quoted for every shell)."""
    return f"pip install '{DIST}[{extra}]'"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (an optional dependency) for ``feature``, or say how to install it.

    Parameters
    ----------
    module : a key of :data:`MODULE_EXTRA` (``"av"``, ``"starlette"``, ...).
    feature : what needs it, in words ("archiving videos"), the start of the message.

    Raises
    ------
    MissingExtraError
        ``"archiving videos needs PyAV, which is not installed: pip install
        'veo-notebook[archive]'"``.
    """
    extra, name = MODULE_EXTRA[module]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs {name}, which is not installed: {install_command(extra)}",
            extra=extra,
        ) from exc


def require_url(url: str, feature: str) -> ModuleType:
    """fsspec, and the backend of ``url``'s protocol where an extra brings it (s3fs for
    ``s3://``), for ``feature``; the same one-line error as :func:`require`."""
    fsspec = require("fsspec", feature)
    backend = URL_BACKENDS.get(url.split("://", 1)[0].lower())
    if backend is not None:
        require(backend, feature)
    return fsspec


def available(extra: str) -> bool:
    """True when every module of ``extra`` imports."""
    try:
        for module in EXTRAS[extra]:
            importlib.import_module(module)
    except ImportError:
        return False
    return True
