"""The typed frame out to Parquet (one file or a hive-partitioned dataset) and CSV, and back.

Files carry two metadata keys, ``veo_notebook.schema_version`` and ``veo_notebook.version``.
Reading a file written by a newer schema version raises :class:`SchemaVersionError`.

A **dataset** (``partition_by=...``) is a hive layout, one file a partition, e.g.
``out/create_date=2026-03-19/part-0.parquet`` (rows without a value in
``create_date=none``); ``create_date`` (the UTC day of ``create_time``) is derived on the
fly and dropped again on read. Each write *replaces the partitions present in the frame
and leaves every other partition untouched*: append a new day by writing that day's
frame, and writing a day again replaces it rather than duplicating its rows. Each file
appears whole (a local temporary name renamed; an object store's upload completes or
does not). pandas, Dask, Spark, DuckDB
(``SELECT * FROM read_parquet('out/**/*.parquet', hive_partitioning=true)``), Polars and
pyarrow read every file and dataset as it is (:mod:`veo_notebook.frame._parquet`).
The destination is a path or any fsspec URL (``s3://bucket/prefix``, with
``storage_options`` for the backend). :func:`export_store` writes a store's dataset by
creation day block by block (its memory is bounded by a block, not the history).

Files from other tools: a Parquet file without our metadata is accepted if it has a
``task_id`` column; the schema is then enforced (missing columns NA, types cast). One
without ``task_id`` is an :class:`InputError`.

>>> import tempfile, pathlib, pandas as pd
>>> from veo_notebook.schema import enforce
>>> df = enforce(pd.DataFrame({"task_id": ["a"], "root_task_id": ["a"], "status": ["success"]}))
>>> p = to_parquet(df, pathlib.Path(tempfile.mkdtemp()) / "t.parquet")
>>> read_parquet(p).equals(df)
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from .. import schema
from ..errors import InputError, SchemaVersionError
from ..frame import _parquet, _roots, _stream
from ..store import Store
from ._out import PART_FILE, Out, atomic_path

__all__ = [
    "DERIVED_PARTITIONS",
    "atomic_path",
    "export_store",
    "read_parquet",
    "to_csv",
    "to_parquet",
]

log = logging.getLogger(__name__)

_KEY_SCHEMA = _parquet.KEY_SCHEMA
_KEY_VERSION = _parquet.KEY_VERSION
_KEY_DERIVED = b"veo_notebook.derived_partition"
#: partition columns made from the frame on write (and dropped on read)
DERIVED_PARTITIONS = ("create_date",)


def to_parquet(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    partition_by: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Path | str:
    """Write the frame as one zstd Parquet file, or as a hive dataset partitioned by a column.

    Parameters
    ----------
    df : DataFrame
        The typed frame (:func:`veo_notebook.to_frame`); the schema is enforced first.
    path : path or URL
        A file (``partition_by=None``) or a dataset folder; a local path or an fsspec URL
        (``s3://bucket/tasks``).
    partition_by : str, optional
        A column of the frame, or ``"create_date"`` (UTC day of ``create_time``). Existing
        partitions that the frame does not touch are left as they are.
    storage_options : dict, optional
        Passed to fsspec for a URL (credentials, ``client_kwargs``, ...).

    Returns
    -------
    Path or str
        ``path`` as a Path; a URL as given.

    >>> import tempfile, pathlib
    >>> from veo_notebook.schema import empty_frame
    >>> to_parquet(empty_frame(), pathlib.Path(tempfile.mkdtemp()) / "x.parquet").suffix
    '.parquet'
    """
    out = Out(path, storage_options)
    df = schema.enforce(df)
    if partition_by is None:
        out.write("", _parquet.to_table(df))
        return out.result
    if partition_by in df.columns:
        values = _parquet.partition_values(df[partition_by])
        df = df.drop(columns=[partition_by])
        meta = None
    elif partition_by in DERIVED_PARTITIONS:
        values = _parquet.day_of(df["create_time"])
        meta = {_KEY_DERIVED: partition_by.encode()}
    else:
        raise InputError(
            f"cannot partition by {partition_by!r}: not a column "
            f"(columns and {DERIVED_PARTITIONS} are allowed)"
        )
    codes, names = pd.factorize(values.to_numpy(dtype=object))
    table = _parquet.to_table(df, meta)
    order = np.argsort(codes, kind="stable")
    for run in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        if len(run):
            name = f"{partition_by}={names[codes[run[0]]]}"
            out.write(f"{name}/{PART_FILE}", table.take(pa.array(run)))
    log.info("wrote %d rows to dataset %s (partitioned by %s)", len(df), out.url, partition_by)
    return out.result


def export_store(
    store: Store | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    partition_by: str | None = "create_date",
    storage_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> int:
    """Write a store's frame as a hive dataset by UTC creation day, or as one Parquet file,
    at a path or fsspec URL, never holding the whole frame.

    The store's own dataset (:func:`veo_notebook.frame.dataset.sync`) is brought up to date
    block by block, then streamed out a row group at a time with each task's
    ``root_task_id`` filled in (the dataset's own files leave it to the reader): memory is
    bounded by a row group and the parent links, not by the history. Days present at
    ``out`` that the store lacks are left as they are. One file (``partition_by=None``)
    holds the rows day by day (creation day, then the order they were stored); a name
    ending in ``.csv`` makes it CSV, as :func:`to_csv` writes it (formulas escaped).

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    InputError
        ``partition_by`` other than ``"create_date"`` or None (use :func:`to_parquet`).

    >>> import tempfile, pathlib
    >>> from veo_notebook import Store
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with Store(d / "s.sqlite") as st:
    ...     st.put("t1", '{"code":200,"data":{"successFlag":1}}', fetched_at=0.0)
    ...     export_store(st, d / "out"), export_store(st, d / "t.parquet", partition_by=None)
    (1, 1)
    """
    from ..frame import dataset
    from ..frame._dataset_state import locked

    if partition_by not in (None, dataset.PARTITION, *schema.column_names()):
        raise InputError(
            f"cannot partition by {partition_by!r}: not a column "
            f"(columns and {DERIVED_PARTITIONS} are allowed)"
        )
    root = dataset.sync(store, progress=progress)
    dest = Out(out, storage_options)
    with locked(root):  # no sync rewrites a day meanwhile
        days = _stream.day_files(root)
        schema_ = _stream.file_schema([f for _, f in days])
        roots = _stream.Roots.of([f for _, f in days])
        every = (b for _, f in days for b in _stream.batches(f, schema_, roots))
        if partition_by is None and os.fspath(out).lower().endswith(".csv"):
            rows = _stream_csv(dest, every, escape_formulas=True)
        elif partition_by is None:
            rows = dest.stream("", schema_, every)
        elif partition_by == dataset.PARTITION:  # the store's own partitions, file by file
            meta = {**(schema_.metadata or {}), _KEY_DERIVED: partition_by.encode()}
            schema_ = schema_.with_metadata(meta)
            rows = sum(
                dest.stream(
                    f"{partition_by}={day}/{PART_FILE}", schema_, _stream.batches(f, schema_, roots)
                )
                for day, f in days
            )
        else:
            rows = _split(dest, schema_, partition_by, every)
    log.info("wrote %d rows from %s to %s", rows, root, dest.url)
    return rows


#: partitions a streamed export writes at once (one open file each)
MAX_PARTITIONS = 512


def _open(stage: Path, i: int, kept: pa.Schema, column: str) -> pq.ParquetWriter:
    """The staged file of the ``i``-th partition."""
    if i >= MAX_PARTITIONS:
        raise InputError(
            f"cannot partition by {column!r}: more than {MAX_PARTITIONS} values "
            "(a partition column has few values, like model or status)"
        )
    options: Any = _parquet.write_options(kept)
    return pq.ParquetWriter(stage / f"{i}.parquet", kept, **options)


def _split(dest: Out, schema_: pa.Schema, column: str, batches: Iterator[pa.RecordBatch]) -> int:
    """Write ``batches`` as a hive dataset by ``column``: each batch's rows appended to their
    partition's file (all open at once, in a staging folder), each file published whole."""
    kept = _parquet.without(schema_, column)
    writers: dict[str, pq.ParquetWriter] = {}
    rows = 0
    with dest.staging() as stage:
        try:
            for b in batches:
                names = _stream.partition_names(b.column(column)).to_numpy(dtype=object)
                table = pa.Table.from_batches([b]).drop_columns([column])
                codes, uniq = pd.factorize(names)
                order = np.argsort(codes, kind="stable")
                for run in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)[: len(uniq)]:
                    name = str(uniq[codes[run[0]]])
                    if name not in writers:
                        writers[name] = _open(stage, len(writers), kept, column)
                    writers[name].write_table(table.take(pa.array(run)), _parquet.ROW_GROUP_ROWS)
                rows += b.num_rows
        finally:
            for w in writers.values():
                w.close()
        for i, name in enumerate(writers):
            dest.move(f"{column}={name}/{PART_FILE}", stage / f"{i}.parquet")
    return rows


def _read_table(
    path: str | os.PathLike[str], storage_options: dict[str, Any] | None
) -> tuple[pa.Table, list[str], bool]:
    """(the table, its hive partition columns, whether it is a dataset) of a file or a
    dataset folder at a path or fsspec URL; every backend error an :class:`InputError`."""
    text = os.fspath(path)
    fs: Any = None
    if "://" in text and not text.startswith("file://"):
        from ..extras import require_url

        fsspec = require_url(text, f"reading {text!r}")
        try:
            fs, where = fsspec.core.url_to_fs(text, **(storage_options or {}))
            folder, found = fs.isdir(where), fs.exists(where)
        except Exception as exc:  # the one boundary to the fsspec backends
            raise InputError(f"cannot read {text!r}: {exc}") from exc
    elif storage_options:
        raise InputError("storage_options apply to URLs such as s3://..., not to a path")
    else:
        where = Path(text.removeprefix("file://"))
        folder, found = where.is_dir(), where.exists()
    if not found:
        raise InputError(f"no such Parquet file or dataset: {text}")
    try:
        if not folder:
            return pq.read_table(where, filesystem=fs), [], False
        dataset = pds.dataset(where, filesystem=fs, format="parquet", partitioning="hive")
        partitions = dataset.partitioning.schema.names if dataset.partitioning else []
        return dataset.to_table(), partitions, True
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{text} is not a readable Parquet file or dataset: {exc}") from exc


def read_parquet(
    path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Read a frame written by :func:`to_parquet` (a file or a dataset folder), at a path or
    an fsspec URL (``s3://bucket/tasks``, with ``storage_options`` for the backend;
    without them, its usual environment: ``AWS_*`` for S3).

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
    table, partitions, folder = _read_table(path, storage_options)
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
    if folder:
        df = df.sort_values(["create_time", "task_id"], kind="stable", na_position="last")
        df = df.reset_index(drop=True)
    if df[_roots.ROOT_COLUMN].isna().all():  # a file from before the column, or a dataset
        _roots.assign(df)  # beside a store (its files leave it to the reader: see _roots)
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
    with atomic_path(path) as tmp:
        _csv_cells(df, escape_formulas).to_csv(tmp, index=False, date_format=_CSV_TIME)
    return path


def _csv_cells(df: pd.DataFrame, escape_formulas: bool) -> pd.DataFrame:
    """The frame's cells as :func:`to_csv` writes them (lists as JSON, formulas escaped)."""
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
    return out


def _stream_csv(dest: Out, batches: Iterator[pa.RecordBatch], escape_formulas: bool) -> int:
    """Write ``batches`` as one CSV file, a batch at a time (the header once)."""
    rows = 0

    def put(tmp: Path) -> None:
        nonlocal rows
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            for b in batches:
                chunk = _parquet.to_frame(pa.Table.from_batches([b]))
                cells = _csv_cells(chunk, escape_formulas)
                cells.to_csv(fh, header=rows == 0, index=False, date_format=_CSV_TIME)
                rows += b.num_rows
            if not rows:
                schema.empty_frame().to_csv(fh, index=False)

    dest.publish("", put)
    return rows


_CSV_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
_FORMULA_START = r"[=+\-@\t\r]"
_ID_COLUMNS = frozenset({"task_id", "parent_task_id", "root_task_id"})
