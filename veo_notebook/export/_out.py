"""Where a frame file or dataset is written: a path or an fsspec URL, whole files only.

A local file is written under a temporary name beside its place and renamed (:func:`atomic_path`);
a file for a URL is written to a local temporary file and uploaded in one piece, so a reader
never sees half a file. A partition of a dataset holds one file (:data:`PART_FILE`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, VeoError
from ..frame import _parquet

__all__ = ["PART_FILE", "Out", "atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed to ``path`` only on success.

    No partial file is ever seen under the final name: a crash, a full disk or an error
    leaves the old file (or none) there, and the temporary file is removed.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(p) as tmp:
    ...     _ = tmp.write_text("done")
    >>> p.read_text()
    'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: the one file of each partition of a dataset we write
PART_FILE = "part-0.parquet"


class Out:
    """A local path (temporary name, then rename) or an fsspec URL (a local temporary file,
    then one upload). Errors of the backend are translated here, at one boundary."""

    def __init__(self, path: str | os.PathLike[str], storage_options: dict[str, Any] | None):
        self.url = os.fspath(path)
        self.fs: Any = None
        if "://" in self.url and not self.url.startswith("file://"):
            from ..extras import require_url

            fsspec = require_url(self.url, f"writing to {self.url!r}")
            try:
                self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
            except (ImportError, ValueError) as exc:
                raise InputError(f"cannot write to {self.url!r}: {exc}") from exc
            self.root = self.root.rstrip("/")
        elif storage_options:
            raise InputError("storage_options apply to URLs such as s3://..., not to a path")
        self.local = Path(self.url.removeprefix("file://"))

    @property
    def result(self) -> Path | str:
        return self.local if self.fs is None else self.url

    def write(self, rel: str, table: pa.Table) -> None:
        """Write ``table`` at ``rel`` under the destination ("" for the destination itself)."""

        def put(tmp: Path) -> None:
            options = _parquet.write_options(table.schema)
            pq.write_table(table, tmp, row_group_size=_parquet.ROW_GROUP_ROWS, **options)

        self.publish(rel, put)

    def stream(self, rel: str, schema_: pa.Schema, batches: Iterator[pa.RecordBatch]) -> int:
        """Write ``batches`` at ``rel`` as they come, a row group each (no more than a batch
        is held: a day's last, shorter row group is not merged with the next day's first);
        returns the rows."""
        rows = 0

        def put(tmp: Path) -> None:
            nonlocal rows
            options: Any = _parquet.write_options(schema_)
            with pq.ParquetWriter(tmp, schema_, **options) as w:
                for b in batches:
                    w.write_batch(b, row_group_size=_parquet.ROW_GROUP_ROWS)
                    rows += b.num_rows

        self.publish(rel, put)
        return rows

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A local folder for files written side by side before :meth:`move` publishes each
        (beside a local destination: the same filesystem, so a move is a rename)."""
        near = self.local.parent if self.fs is None else None
        if near is not None:
            near.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.local.name}.stage-" if near is not None else "veo-export-"
        with tempfile.TemporaryDirectory(prefix=prefix, dir=near) as d:
            yield Path(d)

    def move(self, rel: str, src: Path) -> None:
        """Publish the finished file ``src`` (from :meth:`staging`) at ``rel``."""
        self.publish(rel, lambda tmp: shutil.move(src, tmp))

    def publish(self, rel: str, make: Any) -> None:
        """Run ``make(tmp)`` to write a file at a temporary local path, then put it at
        ``rel`` whole (rename, or one upload)."""
        try:
            if self.fs is None:
                target = self.local / rel if rel else self.local
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:
                    make(tmp)
                self._clear_others(target)
                return
            with tempfile.TemporaryDirectory(prefix="veo-export-") as d:
                tmp = Path(d) / "part.parquet"
                make(tmp)
                self.fs.put_file(str(tmp), f"{self.root}/{rel}" if rel else self.root)
        except VeoError:
            raise
        except Exception as exc:  # the one boundary to the filesystem and fsspec backends
            raise InputError(f"cannot write {rel or 'the file'} to {self.url!r}: {exc}") from exc

    @staticmethod
    def _clear_others(target: Path) -> None:
        """A partition holds one file: drop the others (written by an older version)."""
        if target.parent.name.count("=") != 1:
            return
        for other in target.parent.glob("*.parquet"):
            if other != target:
                other.unlink(missing_ok=True)
