"""A frame dataset read back a row group at a time, ``root_task_id`` filled (private).

What :func:`veo_notebook.export_store` hands on: the day files of a store's dataset
(:mod:`veo_notebook.frame.dataset`) leave ``root_task_id`` empty (a root depends on
rows of other days), so a file handed on would carry no families. The roots are found
first from the only rows that can change one, those naming a parent: their
``(task_id, parent_task_id)`` pairs are read a row group at a time and resolved by the
one rule (:func:`veo_notebook.frame._roots.links`; a parent outside those rows is a
root), and handed out in the order they were read, as the rows stream past again (no
lookup). Every other task is its own root. Memory is bounded by a row group plus the
pairs of the tasks that have a parent (about half a kilobyte each while their roots are
found), never by the whole history.

>>> import pyarrow as pa
>>> r = Roots(pa.array(["a", "a"]))  # the roots of b and c, the tasks with a parent
>>> r.column(pa.array(["a", "b", "c"]), pa.array([None, "a", "b"])).to_pylist()
['a', 'a', 'a']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import schema
from . import _parquet, _roots
from ._dataset_state import FILE_NAME, PART_ID, PARTITION

__all__ = ["Roots", "batches", "day_files", "file_schema", "partition_names"]

_PARENT = "parent_task_id"
#: rows read (and written on) at a time
BATCH_ROWS = _parquet.ROW_GROUP_ROWS
#: schema metadata of a dataset's own bookkeeping, not handed on
_PRIVATE = (PART_ID,)


def day_files(root: Path) -> list[tuple[str, Path]]:
    """``(day, file)`` of each day of the dataset at ``root``, days in order (``none`` last)."""
    files = sorted(root.glob(f"{PARTITION}=*/{FILE_NAME}"))
    return [(f.parent.name.split("=", 1)[1], f) for f in files]


def file_schema(files: Sequence[Path]) -> pa.Schema:
    """The schema every file handed on is written with: the first day's, metadata and all,
    without the dataset's own keys."""
    first = pq.read_schema(files[0])
    meta = {k: v for k, v in (first.metadata or {}).items() if k not in _PRIVATE}
    return first.with_metadata(meta)


class Roots:
    """The root of each task that names a parent, in the order the files hold them;
    :meth:`column` gives the roots of the next rows read, in that same order."""

    def __init__(self, roots: pa.Array) -> None:
        self.roots = roots.cast(pa.string())
        self.at = 0  # the roots handed out so far

    @classmethod
    def of(cls, files: Sequence[Path]) -> Roots:
        """The roots of the tasks in ``files`` that name a parent (see the module docstring)."""
        kids: list[pa.Array] = []
        parents: list[pa.Array] = []
        for f in files:
            with pq.ParquetFile(f) as pf:
                for b in pf.iter_batches(BATCH_ROWS, columns=["task_id", _PARENT]):
                    has = pc.is_valid(b.column(1))
                    kids.append(b.column(0).filter(has).cast(pa.string()))
                    parents.append(b.column(1).filter(has).cast(pa.string()))
        if not sum(len(k) for k in kids):
            return cls(pa.array([], pa.string()))
        ln = _roots.links(
            pd.Series(pd.arrays.ArrowStringArray(pa.concat_arrays(kids))),
            pd.Series(pd.arrays.ArrowStringArray(pa.concat_arrays(parents))),
        )
        root = ln.row_root()
        return cls(ln.ids.take(pa.array(root, mask=root < 0)))

    def column(self, task_id: pa.Array, parent: pa.Array) -> pa.Array:
        """The roots of the next rows: each task's own id, but the found root of those with
        a parent (read in the order :meth:`of` read them)."""
        ids = task_id.cast(pa.string())
        has = pc.is_valid(parent)
        n = pc.sum(has).as_py() or 0
        if not n:
            return ids
        mine = self.roots.slice(self.at, n)
        if len(mine) != n:
            raise ValueError("more rows with a parent than when the roots were found")
        self.at += n
        return pc.replace_with_mask(ids, has, mine)


def batches(path: Path, schema: pa.Schema, roots: Roots) -> Iterator[pa.RecordBatch]:
    """The rows of one day file, a row group at a time, in ``schema`` with roots filled."""
    with pq.ParquetFile(path) as pf:
        for b in pf.iter_batches(BATCH_ROWS):
            cols = list(b.columns)
            where = b.schema.get_field_index(_roots.ROOT_COLUMN)
            if where >= 0:
                cols[where] = roots.column(b.column("task_id"), b.column(_PARENT))
            table = pa.Table.from_arrays(cols, names=b.schema.names)
            yield from table.select(schema.names).cast(schema).to_batches()


def partition_names(column: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Each value's partition name, as :func:`veo_notebook.to_parquet` names it (text;
    :data:`~veo_notebook.frame._parquet.NO_VALUE` where missing)."""
    values = column.to_pandas(types_mapper=schema.pandas_type)
    return _parquet.partition_values(pd.Series(values))
