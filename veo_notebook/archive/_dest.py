"""Where archived videos go: a local folder or any fsspec URL (private).

Every file is first completed in a local ``.part`` file, then put at its final name in
one step: a local rename (:func:`os.replace`, atomic on one filesystem), or one upload
(an S3 object exists only once its upload completed). A final name never holds a
partial file. Local ``.part`` files sit beside their final name (hidden); for a remote
destination they sit in a staging folder under the system temp dir, so an interrupted
run resumes them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ArchiveError, InputError, VeoError
from ._download import _HASH_CHUNK, sha256_of

__all__ = ["Destination"]

_STAGING = "veo-notebook-archive"
_F = TypeVar("_F", bound=Callable[..., Any])


def _storage(verb: str) -> Callable[[_F], _F]:
    """Turn any failure of the storage (a local OSError, a bucket's error) into an
    :class:`ArchiveError` naming the destination and the file."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def inner(self: Destination, *args: Any) -> Any:
            try:
                return method(self, *args)
            except VeoError:
                raise
            except Exception as exc:  # the one boundary to fsspec backends (s3fs, gcsfs, ...)
                name = next((a for a in args if isinstance(a, str)), "")
                raise ArchiveError(
                    f"archive destination {self.url!r}: cannot {verb} {name}: {exc}"
                ) from exc

        return inner  # type: ignore[return-value]

    return wrap


class Destination:
    """A folder or fsspec URL that files are published into, by relative name."""

    def __init__(self, dest: str | os.PathLike[str], storage_options: dict[str, Any] | None):
        text = os.fspath(dest)
        if not text:
            raise InputError("the archive destination is empty; give a folder or a URL")
        self.url = text
        self._remote_root = ""
        if "://" not in text or text.startswith("file://"):
            if storage_options:
                raise InputError("storage_options apply to URLs such as s3://…, not to a folder")
            self.fs = None
            self.root = Path(text.removeprefix("file://")).expanduser()
            if self.root.exists() and not self.root.is_dir():
                raise InputError(f"archive destination {text!r} is a file, not a folder")
            self.staging = self.root
        else:
            from ..extras import require_url

            fsspec = require_url(text, f"archive destination {text!r}")
            try:
                self.fs, root = fsspec.core.url_to_fs(text, **(storage_options or {}))
            except (ImportError, ValueError) as exc:
                raise InputError(f"cannot use archive destination {text!r}: {exc}") from exc
            self._remote_root = root.rstrip("/")
            digest = hashlib.sha1(text.encode()).hexdigest()[:16]
            self.staging = Path(tempfile.gettempdir()) / _STAGING / digest
            self.root = self.staging  # the local side of a remote destination

    def uri(self, name: str) -> str:
        """The final place of ``name``: a local path, or the URL (``s3://bucket/…``)."""
        if self.fs is None:
            return str(self.root / name)
        proto = self.url.split("://", 1)[0]
        return f"{proto}://{self._remote_root}/{name}"

    def _remote(self, name: str) -> str:
        return f"{self._remote_root}/{name}"

    def part(self, name: str) -> Path:
        """The local file ``name`` is completed in before it is published."""
        final = self.staging / name
        return final.with_name(f".{final.name}.part")

    @_storage("look for")
    def exists(self, name: str) -> bool:
        """Whether a (complete) file is published at ``name``."""
        if self.fs is None:
            return (self.root / name).is_file()
        return bool(self.fs.exists(self._remote(name)))

    @_storage("write")
    def publish(self, part: Path, name: str) -> None:
        """Put the complete ``part`` at ``name`` in one step, then drop the part."""
        if self.fs is None:
            final = self.root / name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            return
        self.fs.put_file(str(part), self._remote(name))  # object stores need no folders
        with contextlib.suppress(OSError):
            part.unlink()

    @_storage("read")
    def sha256(self, name: str) -> tuple[int, str] | None:
        """(size, SHA-256) of the published file ``name``, or None when it is not there."""
        if self.fs is None:
            path = self.root / name
            if not path.is_file():
                return None
            return path.stat().st_size, sha256_of(path)
        remote = self._remote(name)
        if not self.fs.exists(remote):
            return None
        h, size = hashlib.sha256(), 0
        with self.fs.open(remote, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
                size += len(chunk)
        return size, h.hexdigest()

    def local_copy(self, name: str) -> Path | None:
        """A local path to read the published ``name`` from (local folders only)."""
        return self.root / name if self.fs is None else None
