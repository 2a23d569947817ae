"""Task families: each task's root, found by pointer jumping on integer codes (private).

A task's parent is its ``parent_task_id`` (paramJson ``taskId`` of an extend, 1080p or 4K
task). Its **root** is the first id up that chain that has no parent in the frame:

* a task with no parent is its own root;
* a parent that is not a task of the frame (older than the history, or never fetched) is
  the root of its children: a 1080p and a 4K upgrade of the same missing video stay one
  family, named after the missing id;
* a task naming itself as its parent (bad data) is its own root, flagged;
* a cycle (A's parent is B, B's parent is A) is broken at its member with the lowest
  task id, which becomes the root; every task in or under the cycle is flagged.

Every id (the frame's, then the missing parents') gets an integer code; ``parent`` is an
array of codes, and ``parent = parent[parent]`` repeated reaches every root in
``ceil(log2(depth))`` whole-array steps, so no Python runs per row and a bad chain is
never followed forever (at most ``log2(n) + 2`` steps, then the cycles are broken).

A root depends on every row above it, so it is derived where a whole frame is made
(``to_frame``, ``from_raw``, ``from_store``, ``read_parquet``), not per block: the files
of the frame dataset beside a store (written day by day) leave ``root_task_id`` empty,
and ``read_parquet`` fills it in when it reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ROOT_COLUMN", "Links", "assign", "links"]

#: The frame column this module derives.
ROOT_COLUMN = "root_task_id"
_STR = pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class Links:
    """The parent links of a frame, as integer codes.

    Nodes are the frame's distinct task ids (codes ``0 … held - 1``, first-seen order)
    then the parents the frame does not hold (``held …``).
    """

    ids: pa.Array  # the id of each node
    held: int  # nodes below this code are tasks of the frame
    row_node: np.ndarray  # each row's node (-1: a row without a task id)
    parent: np.ndarray  # each node's parent node as used (itself for a root)
    root: np.ndarray  # each node's root node
    depth: np.ndarray  # each node's distance from its root
    self_ref: np.ndarray  # the node named itself as its parent
    cycle: np.ndarray  # the node was in, or under, a cycle (broken at its lowest id)

    def row_root(self) -> np.ndarray:
        """Each row's root node (-1 for a row without a task id)."""
        out = np.full(len(self.row_node), -1, dtype=np.int64)
        ok = self.row_node >= 0
        out[ok] = self.root[self.row_node[ok]]
        return out


def _arrow(s: pd.Series) -> pa.Array:
    arr = pa.array(s.array) if not isinstance(s.array, np.ndarray) else pa.array(s, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string()) if arr.type != pa.string() else arr


def _encode(tid: pa.Array, par: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(the distinct ids, each task id's code, each parent's code; -1 for null).

    Codes follow first appearance, task ids before parents: the frame's ids take the
    codes ``0 … held - 1``, the parents it lacks the codes after them. One hash pass
    over both columns (Arrow's dictionary encoding, which shares one dictionary across
    the two chunks).
    """
    enc = pa.chunked_array([tid, par], pa.string()).dictionary_encode()
    if not enc.num_chunks:  # no rows at all
        empty = np.zeros(0, dtype=np.int64)
        return pa.array([], pa.string()), empty, empty
    parts = [np.asarray(pc.fill_null(c.indices, -1), dtype=np.int64) for c in enc.chunks]
    codes = np.concatenate(parts)  # one memo across the chunks: the last one's dictionary
    return enc.chunks[-1].dictionary, codes[: len(tid)], codes[len(tid) :]


def _jump(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pointer after jumping, depth): whole-array steps, at most ``log2(n) + 2`` of them."""
    p = parent.copy()
    d = (p != np.arange(len(p))).astype(np.int32)
    for _ in range(math.ceil(math.log2(max(len(p), 2))) + 2):
        pp = p[p]
        if np.array_equal(pp, p):
            break
        d += d[p]
        p = pp
    return p, d


def _break_cycles(ids: pa.Array, parent: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The nodes in or under a cycle; each cycle's lowest id made a root (``parent`` edited).

    After the jumps, a node under a root points at a node whose own parent is itself; a
    node in or under a cycle points at a node of the cycle, whose parent is not itself.
    """
    caught = parent[p] != p
    if not caught.any():
        return caught
    ring = np.unique(p[caught])  # every member of every cycle (the jumps rotate a ring)
    names = np.asarray(ids.take(pa.array(ring)).to_pylist(), dtype=object)
    rank = np.empty(len(parent), dtype=np.int64)
    rank[ring] = np.argsort(np.argsort(names, kind="stable"), kind="stable")
    low = rank[ring].copy()  # the lowest rank of each member's ring, by doubling
    q = parent[ring]
    pos = np.searchsorted(ring, q)
    for _ in range(math.ceil(math.log2(max(len(ring), 2))) + 1):
        low = np.minimum(low, low[pos])
        pos = pos[pos]
    heads = ring[rank[ring] == low]
    parent[heads] = heads
    return caught


def links(task_id: pd.Series, parent_task_id: pd.Series) -> Links:
    """The parent links and roots of a frame's rows (see the module docstring).

    >>> ln = links(pd.Series(["a", "b", "c"]), pd.Series([None, "a", "b"]))
    >>> ln.ids.take(pa.array(ln.root)).to_pylist(), ln.depth.tolist()
    (['a', 'a', 'a'], [0, 1, 2])
    """
    ids, row_node, pnode = _encode(_arrow(task_id), _arrow(parent_task_id))
    held = int(row_node.max()) + 1 if len(row_node) else 0
    n = len(ids)
    parent = np.arange(n, dtype=np.int64)
    linked = (row_node >= 0) & (pnode >= 0)
    parent[row_node[linked]] = pnode[linked]
    self_ref = np.zeros(n, dtype=bool)
    self_ref[row_node[linked & (row_node == pnode)]] = True
    p, depth = _jump(parent)
    cycle = _break_cycles(ids, parent, p)
    if cycle.any():
        p, depth = _jump(parent)
    return Links(ids, held, row_node, parent, p, depth, self_ref, cycle)


def root_ids(task_id: pd.Series, parent_task_id: pd.Series) -> pd.Series:
    """The ``root_task_id`` column for these rows (NA for a row without a task id)."""
    if not parent_task_id.notna().any():  # no task names a parent: each is its own root
        return task_id.astype(_STR).rename(ROOT_COLUMN)
    ln = links(task_id, parent_task_id)
    root = ln.row_root()
    col = ln.ids.take(pa.array(root, mask=root < 0))
    return pd.Series(pd.arrays.ArrowStringArray(col), index=task_id.index, name=ROOT_COLUMN)


def assign(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``root_task_id`` column derived from the whole frame (in place)."""
    if "task_id" in df.columns and "parent_task_id" in df.columns and len(df):
        df[ROOT_COLUMN] = root_ids(df["task_id"], df["parent_task_id"]).astype(_STR)
    return df
