"""The typed frame out to Parquet (one file or a hive-partitioned dataset) and CSV, and back.

Files carry two metadata keys, ``veo_notebook.schema_version`` and ``veo_notebook.version``.
Reading a file written by a newer schema version raises :class:`SchemaVersionError`.

A **dataset** (``partition_by=...``) is a hive layout, e.g. ``out/create_date=2026-03-19/
part-<uuid>-0.parquet``; ``create_date`` (the UTC day of ``create_time``) is derived on
the fly and dropped again on read. Each write *replaces the partitions present in the
frame and leaves every other partition untouched* (``existing_data_behavior=
"delete_matching"``): append a new day by writing that day's frame, and writing a day
again replaces it rather than duplicating its rows. DuckDB
(``SELECT * FROM read_parquet('out/**/*.parquet', hive_partitioning=true)``),
``pyarrow.dataset``, Spark and Dask read the same layout unchanged.

Files from other tools: a Parquet file without our metadata is accepted if it has a
``task_id`` column; the schema is then enforced (missing columns NA, types cast). One
without ``task_id`` is an :class:`InputError`.

>>> import tempfile, pathlib, pandas as pd
>>> from veo_notebook.schema import enforce
>>> df = enforce(pd.DataFrame({"task_id": ["a"], "status": ["success"]}))
>>> p = to_parquet(df, pathlib.Path(tempfile.mkdtemp()) / "t.parquet")
>>> read_parquet(p).equals(df)
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from . import schema
from .errors import InputError, SchemaVersionError
from .frame import _parquet

__all__ = ["DERIVED_PARTITIONS", "atomic_path", "read_parquet", "to_csv", "to_parquet"]

log = logging.getLogger(__name__)

_KEY_SCHEMA = _parquet.KEY_SCHEMA
_KEY_VERSION = _parquet.KEY_VERSION
_KEY_DERIVED = b"veo_notebook.derived_partition"
#: partition columns made from the frame on write (and dropped on read)
DERIVED_PARTITIONS = ("create_date",)
_COMPRESSION = "zstd"


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


def to_parquet(
    df: pd.DataFrame, path: str | os.PathLike[str], *, partition_by: str | None = None
) -> Path:
    """Write the frame as one zstd Parquet file, or as a hive dataset partitioned by a column.

    Parameters
    ----------
    df : DataFrame
        The typed frame (:func:`veo_notebook.to_frame`); the schema is enforced first.
    path : path
        A file (``partition_by=None``) or a dataset folder.
    partition_by : str, optional
        A column of the frame, or ``"create_date"`` (UTC day of ``create_time``). Existing
        partitions that the frame does not touch are left as they are.

    Returns
    -------
    Path
        ``path``.

    >>> import tempfile, pathlib
    >>> from veo_notebook.schema import empty_frame
    >>> to_parquet(empty_frame(), pathlib.Path(tempfile.mkdtemp()) / "x.parquet").suffix
    '.parquet'
    """
    path = Path(path)
    df = schema.enforce(df)
    derived = None
    if partition_by is not None and partition_by not in df.columns:
        if partition_by != "create_date":
            raise InputError(
                f"cannot partition by {partition_by!r}: not a column "
                f"(columns and {DERIVED_PARTITIONS} are allowed)"
            )
        derived = partition_by
        df = df.assign(create_date=_parquet.day_of(df["create_time"]))
    elif partition_by is not None:
        df = df.assign(**{partition_by: _parquet.partition_values(df[partition_by])})
    table = _parquet.to_table(df, {_KEY_DERIVED: derived.encode()} if derived else None)
    if partition_by is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression=_COMPRESSION)
        return path
    fmt = pds.ParquetFileFormat()
    pds.write_dataset(
        table,
        path,
        format=fmt,
        file_options=fmt.make_write_options(compression=_COMPRESSION),
        partitioning=[partition_by],
        partitioning_flavor="hive",
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
        existing_data_behavior="delete_matching",
    )
    log.info("wrote %d rows to dataset %s (partitioned by %s)", len(df), path, partition_by)
    return path


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a frame written by :func:`to_parquet` (a file or a dataset folder).

    A dataset comes back sorted by ``create_time`` then ``task_id`` (its files hold rows
    partition by partition); a file comes back in the order written.

    Raises
    ------
    SchemaVersionError
        The file was written by a newer schema version.
    InputError
        Not a Parquet file / dataset, or a foreign file without a ``task_id`` column.

    >>> import tempfile, pathlib
    >>> from veo_notebook.schema import empty_frame
    >>> p = to_parquet(empty_frame(), pathlib.Path(tempfile.mkdtemp()) / "x.parquet")
    >>> read_parquet(p).shape[1] == len(empty_frame().columns)
    True
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such Parquet file or dataset: {path}")
    try:
        partitions: list[str] = []
        if path.is_dir():
            dataset = pds.dataset(path, format="parquet", partitioning="hive")
            partitions = dataset.partitioning.schema.names if dataset.partitioning else []
            table = dataset.to_table()
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file or dataset: {exc}") from exc
    meta = table.schema.metadata or {}
    if _KEY_SCHEMA in meta:
        try:
            version = int(meta[_KEY_SCHEMA])
        except ValueError:
            raise InputError(
                f"{path}: unreadable frame schema version {meta[_KEY_SCHEMA][:40]!r}"
            ) from None
        if version > schema.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} was written with frame schema version {version} (toolkit "
                f"{meta.get(_KEY_VERSION, b'?').decode(errors='replace')}); this toolkit "
                f"reads up to version {schema.SCHEMA_VERSION}: upgrade veo-notebook"
            )
    elif "task_id" not in table.column_names:
        raise InputError(
            f"{path} is not a veo-notebook frame: no veo_notebook metadata and no task_id "
            f"column (columns: {', '.join(table.column_names[:10])})"
        )
    else:
        log.info("%s has no veo_notebook metadata; enforcing the frame schema", path)
    for name in DERIVED_PARTITIONS:
        if name in table.column_names and name not in schema.column_names():
            table = table.drop_columns([name])
    for name in partitions:  # a partition named for a missing value: NA again
        i = table.schema.get_field_index(name)
        if i >= 0:
            col = table.column(i).cast(pa.string())
            none = pc.equal(col, _parquet.NO_VALUE)
            table = table.set_column(i, name, pc.if_else(none, pa.scalar(None, pa.string()), col))
    try:
        df = _parquet.to_frame(table)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: columns do not fit the frame schema: {exc}") from exc
    if path.is_dir():
        df = df.sort_values(["create_time", "task_id"], kind="stable", na_position="last")
        df = df.reset_index(drop=True)
    return df


def to_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> Path:
    """Write the frame as CSV (UTF-8; list columns as JSON arrays; times ISO 8601 UTC).

    Prompts and error messages are arbitrary text, and a spreadsheet runs a cell that
    starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a formula
    (CSV injection). With ``escape_formulas`` (the default) such text cells get a
    leading ``'``, as OWASP advises (task ids are left exact, so the file still feeds
    ``read_task_ids``); pass ``False`` for a byte-faithful file (Parquet always is).

    >>> import tempfile, pathlib
    >>> from veo_notebook.schema import enforce
    >>> df = enforce(pd.DataFrame({"task_id": ["a"], "prompt": ["=HYPERLINK(1)"]}))
    >>> p = to_csv(df, pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> "'=HYPERLINK(1)" in p.read_text()
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy(deep=False)
    for name in out.columns:
        s = out[name]
        if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
            values = pa.array(s).to_pylist()  # None for NA, a list otherwise
            out[name] = [None if v is None else orjson.dumps(v).decode() for v in values]
        elif escape_formulas and isinstance(s.dtype, pd.StringDtype) and name not in _ID_COLUMNS:
            risky = s.str.match(_FORMULA_START).fillna(False).to_numpy(dtype=bool)
            if risky.any():
                out[name] = s.mask(risky, "'" + s)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return path


_FORMULA_START = r"[=+\-@\t\r]"
_ID_COLUMNS = frozenset({"task_id", "parent_task_id"})
