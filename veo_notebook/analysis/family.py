"""Task families: each video's whole story — generate, extends, 1080p and 4K upgrades.

On kie.ai one video is often several tasks: a generate, an extend of it (or of an
extend), a 1080p and a 4K upgrade, each a task pointing at its parent. A **family** is
every task under one root (``root_task_id``, rule in :mod:`veo_notebook.frame._roots`:
a parent the history lacks is the root of its children, and is named; a self-reference
or a cycle is flagged and cut, never followed forever).

* **final deliverable** — the best *succeeded* member, in the order :data:`FORMS`:
  ``4k`` > ``1080p`` > ``extended`` (a succeeded extend: its stitched video) > ``base``
  (the generate itself). Between members of the same form the deeper one wins (a 4K of
  the extended video over a 4K of the base clip), then the later completion, then the
  higher task id. ``none`` when no member succeeded.
* **credits** — every member's, reported where the API said so, else estimated
  (:func:`veo_notebook.pricing.with_credits`; failed members 0 unless billed); the split
  and the members no price applies to are columns of their own.
* **time to final** — the root's creation to the final member's completion, queueing
  included; NaN when the root is not in the history (its creation is not known).
* **replaced** — a failed member is replaced when a later member of the same family and
  the same task type succeeded (a 4K upgrade retried after a failure).

>>> fam = families(df)                                           # doctest: +SKIP
>>> fam["final_form"].value_counts()                             # doctest: +SKIP
>>> family_of(df, "4c9a31a5bb61db65d10f1210d78cc08a")            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..frame import _roots
from ..pricing import PricesLike, with_credits
from ..schema import FAILED_STATUSES, STATUS_CATEGORIES, TASK_TYPE_CATEGORIES, Status, TaskType
from ..store import Store

__all__ = ["FACET_LABELS", "FORMS", "NO_VIDEO", "families", "family_facet", "family_of"]

#: The final forms, best first: THE order a family's final deliverable is chosen by.
FORMS = ("4k", "1080p", "extended", "base")
#: The final form of a family in which no member succeeded.
NO_VIDEO = "none"
FORM_CATEGORIES = (*FORMS, NO_VIDEO)
#: How the viewer's family facet reads each final form.
FACET_LABELS = {
    "4k": "has 4K",
    "1080p": "has 1080p",
    "extended": "extended",
    "base": "base only",
    NO_VIDEO: "no video",
}
#: The form a succeeded member of each task type delivers (an unknown type: the base).
_FORM_OF_TYPE = {
    TaskType.K4.value: "4k",
    TaskType.P1080.value: "1080p",
    TaskType.EXTEND.value: "extended",
    TaskType.GENERATE.value: "base",
    TaskType.UNKNOWN.value: "base",
}
#: Columns a family computation reads (the memory it needs follows these, not the frame).
READ_COLUMNS = (
    "task_id", "parent_task_id", "status", "task_type", "create_time", "complete_time",
    "model", "resolution", "video_url", "duration", "credits_consumed", "fetch_error",
)  # fmt: skip
_NO_FORM = len(FORMS)
_DEPTH_SLOTS = 64  # depth is folded into a sort key below this
_NAT = np.iinfo(np.int64).min
_SUCCESS = STATUS_CATEGORIES.index(Status.SUCCESS.value)
_FAILED = [STATUS_CATEGORIES.index(s) for s in sorted(FAILED_STATUSES)]
_GENERATING = STATUS_CATEGORIES.index(Status.GENERATING.value)
_N_TYPES = len(TASK_TYPE_CATEGORIES)


def _frame_of(source: Any) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        missing = [c for c in ("task_id", "parent_task_id") if c not in source.columns]
        if missing:
            raise InputError(f"families: the frame has no {missing[0]} column; give a task frame")
        return source
    if isinstance(source, Store):
        from ..frame import from_store

        return from_store(source)
    raise InputError(
        f"families: a {type(source).__name__} is not a history; give a task frame or a Store"
    )


def _codes(s: pd.Series, categories: list[str]) -> np.ndarray:
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == categories:
        return s.cat.codes.to_numpy().astype(np.int16)
    return pd.Categorical(s, categories=categories).codes.astype(np.int16)


def _ns(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype="datetime64[ns]").view(np.int64)


@dataclass
class _Members:
    """One row per member task (the frame's rows with an id, the last row of each id)."""

    links: _roots.Links
    rows: np.ndarray  # frame positions
    node: np.ndarray  # each member's node
    fam: np.ndarray  # each member's family code
    roots: np.ndarray  # each family's root node
    ttype: np.ndarray  # task type code
    status: np.ndarray  # status code (-1 unread)
    created: np.ndarray  # ns, NaT as int64 min
    completed: np.ndarray
    depth: np.ndarray
    form: np.ndarray  # form code of a succeeded member, else len(FORMS)


def _members(df: pd.DataFrame) -> _Members:
    ln = _roots.links(df["task_id"], df["parent_task_id"])
    rows = np.flatnonzero(ln.row_node >= 0)
    if len(rows) > ln.held:  # an id on several rows: its last row is the member
        last = np.full(ln.held, -1, dtype=np.int64)
        last[ln.row_node[rows]] = rows
        rows = np.sort(last)
    node = ln.row_node[rows]
    root = ln.root[node]
    fam_of_node = np.full(len(ln.ids), -1, dtype=np.int64)
    roots = np.flatnonzero(np.bincount(root, minlength=len(ln.ids)))
    fam_of_node[roots] = np.arange(len(roots))
    ttype = _codes(df["task_type"], TASK_TYPE_CATEGORIES)[rows]
    status = _codes(df["status"], STATUS_CATEGORIES)[rows]
    form_of_code = np.array([FORMS.index(_FORM_OF_TYPE[t]) for t in TASK_TYPE_CATEGORIES])
    base = FORMS.index(_FORM_OF_TYPE[TaskType.UNKNOWN.value])  # a type not known: the base
    typed = np.where(ttype >= 0, form_of_code[np.maximum(ttype, 0)], base)
    form = np.where(status == _SUCCESS, typed, _NO_FORM)
    return _Members(
        ln, rows, node, fam_of_node[root], roots, ttype, status,
        _ns(df["create_time"])[rows], _ns(df["complete_time"])[rows], ln.depth[node], form,
    )  # fmt: skip


def _finals(m: _Members) -> np.ndarray:
    """Each family's final member (a member index), -1 where none succeeded.

    Three whole-array passes, no sort: the best (form, depth) key of each family, then
    among its holders the latest completion, then the last record of the frame.
    """
    out = np.full(len(m.roots), -1, dtype=np.int64)
    ok = np.flatnonzero(m.form < _NO_FORM)
    if not len(ok):
        return out
    depth = np.minimum(m.depth[ok], _DEPTH_SLOTS - 1)
    key = m.form[ok].astype(np.int64) * _DEPTH_SLOTS + (_DEPTH_SLOTS - 1 - depth)
    fam = m.fam[ok]
    best = np.full(len(m.roots), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, fam, key)
    ok, fam = ok[key == best[fam]], fam[key == best[fam]]
    done = m.completed[ok]
    latest = np.full(len(m.roots), _NAT, dtype=np.int64)
    np.maximum.at(latest, fam, done)
    ok, fam = ok[done == latest[fam]], fam[done == latest[fam]]
    np.maximum.at(out, fam, ok)
    return out


def _is_failed(status: np.ndarray) -> np.ndarray:
    out = status == _FAILED[0]
    for code in _FAILED[1:]:
        out |= status == code
    return out


def _replaced(m: _Members) -> np.ndarray:
    """Per member: failed, and a later member of its family and task type succeeded."""
    failed = _is_failed(m.status)
    out = np.zeros(len(m.rows), dtype=bool)
    if not failed.any():
        return out
    key = m.fam.astype(np.int64) * _N_TYPES + m.ttype
    success = np.flatnonzero(m.status == _SUCCESS)
    latest = np.full(len(m.roots) * _N_TYPES, _NAT, dtype=np.int64)
    np.maximum.at(latest, key[success], m.created[success])
    f = np.flatnonzero(failed & (m.ttype >= 0))
    out[f] = (latest[key[f]] > m.created[f]) & (m.created[f] != _NAT)
    return out


def _per_family(m: _Members, values: np.ndarray | None = None, mask: Any = None) -> np.ndarray:
    fam = m.fam if mask is None else m.fam[mask]
    w = values if values is None or mask is None else values[mask]
    return np.bincount(fam, weights=w, minlength=len(m.roots))


def _take(s: pd.Series, pos: np.ndarray) -> pd.Series:
    """``s`` at positions ``pos`` (-1 → NA), as a fresh 0..n index."""
    out = s.iloc[np.maximum(pos, 0)].reset_index(drop=True)
    return out.mask(pd.Series(pos < 0)) if (pos < 0).any() else out


def families(source: Any, *, prices: PricesLike = None, bill_failed: bool = False) -> pd.DataFrame:
    """One row per family (per root task): its members, final deliverable, cost and time.

    Columns: ``root_task_id``, ``root_status`` (the root's status; ``unread`` when its
    record could not be read, e.g. older than kie.ai's 14 days; ``missing`` when the
    history does not hold it), ``missing_parent`` (the root's id when missing: fetch it
    with ``fetch_records(..., with_parents=True)``), ``model`` (the root's), ``n_tasks``,
    ``n_generate``, ``n_extend``, ``n_1080p``, ``n_4k``, ``depth`` (deepest member),
    ``generating``, ``final_form`` (:data:`FORMS` or ``none``), ``final_task_id``,
    ``final_url``, ``final_resolution``, ``final_status``, ``credits`` (total),
    ``reported_credits``, ``estimated_credits``, ``unpriced`` (members without a price),
    ``created`` (the root's creation), ``final_complete_time``, ``time_to_final_s``,
    ``failed``, ``failed_replaced``, ``failed_unreplaced``, ``cycle``,
    ``self_reference``. Rows in order of creation (unknown last), then first seen.

    ``source`` is a task frame or a :class:`~veo_notebook.Store`; ``prices`` and
    ``bill_failed`` are :func:`~veo_notebook.pricing.with_credits`'.

    >>> fam = families(df)                                       # doctest: +SKIP
    >>> fam.groupby("final_form", observed=True)["time_to_final_s"].median()  # doctest: +SKIP
    """
    df = _frame_of(source)
    cols = [c for c in READ_COLUMNS if c in df.columns]
    m = _members(df[cols])
    final = _finals(m)
    by_type = np.bincount(
        m.fam * _N_TYPES + np.maximum(m.ttype, 0), minlength=len(m.roots) * _N_TYPES
    ).reshape(len(m.roots), _N_TYPES)
    depth = np.zeros(len(m.roots), dtype=np.int64)
    np.maximum.at(depth, m.fam, m.depth)
    out = _identity(df, m)
    out["n_tasks"] = _per_family(m).astype(np.int64)
    for t in (TaskType.GENERATE, TaskType.EXTEND, TaskType.P1080, TaskType.K4):
        out[f"n_{t.value}"] = by_type[:, TASK_TYPE_CATEGORIES.index(t.value)]
    out["depth"] = depth
    out["generating"] = _per_family(m, mask=m.status == _GENERATING).astype(np.int64)
    _final_columns(df, m, final, out)
    _credit_columns(df, m, out, prices, bill_failed)
    _time_columns(m, final, out)
    failed = _is_failed(m.status)
    replaced = _replaced(m)
    out["failed"] = _per_family(m, mask=failed).astype(np.int64)
    out["failed_replaced"] = _per_family(m, mask=replaced).astype(np.int64)
    out["failed_unreplaced"] = out["failed"] - out["failed_replaced"]
    out["cycle"] = m.links.cycle[m.roots] | _any(m, m.links.cycle[m.node])
    out["self_reference"] = _any(m, m.links.self_ref[m.node])
    order = np.lexsort((m.roots, _ns(out["created"])))  # then first seen: no string sort
    created = _ns(out["created"])[order]
    order = np.r_[order[created != _NAT], order[created == _NAT]]
    return out.take(order).reset_index(drop=True)


def _any(m: _Members, flag: np.ndarray) -> np.ndarray:
    return _per_family(m, mask=flag) > 0


def _identity(df: pd.DataFrame, m: _Members) -> pd.DataFrame:
    """root_task_id, root_status, missing_parent, model."""
    ln = m.links
    ids = pd.Series(pd.arrays.ArrowStringArray(ln.ids.take(m.roots)))
    held = m.roots < ln.held
    root_row = np.full(len(ln.ids), -1, dtype=np.int64)
    root_row[m.node] = m.rows
    at = np.where(held, root_row[m.roots], -1)
    status = _take(df["status"].astype("string"), at)
    unread = held & status.isna().to_numpy()
    status = status.fillna("missing").mask(pd.Series(unread), "unread")
    return pd.DataFrame(
        {
            "root_task_id": ids.astype(_roots._STR),
            "root_status": status.astype(_roots._STR),
            "missing_parent": ids.mask(pd.Series(held)).astype(_roots._STR),
            "model": _take(df["model"], at).astype(_roots._STR),
        }
    )


def _final_columns(df: pd.DataFrame, m: _Members, final: np.ndarray, out: pd.DataFrame) -> None:
    has = final >= 0
    form = np.where(has, m.form[np.maximum(final, 0)], _NO_FORM)
    out["final_form"] = pd.Categorical.from_codes(form, categories=list(FORM_CATEGORIES))
    at = np.where(has, m.rows[np.maximum(final, 0)], -1)
    for col, name in (
        ("task_id", "final_task_id"),
        ("video_url", "final_url"),
        ("resolution", "final_resolution"),
    ):
        out[name] = _take(df[col], at).astype(_roots._STR)
    out["final_status"] = _take(df["status"], at)


#: The columns a task's credits depend on (:func:`veo_notebook.pricing.with_credits`).
_PRICE_COLUMNS = ("model", "task_type", "resolution", "duration", "status", "credits_consumed")


def _member_credits(
    df: pd.DataFrame, rows: np.ndarray, prices: PricesLike, bill_failed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(credits, reported?) of each member: priced once per distinct combination of the
    columns a price depends on (a handful), not once per task."""
    cols = [c for c in _PRICE_COLUMNS if c in df.columns]
    every = len(rows) == len(df)  # rows are sorted and distinct: all of them, in order
    combo = np.zeros(len(rows), dtype=np.int64)
    size = 1
    for c in cols:
        codes, uniques = pd.factorize(df[c] if every else df[c].iloc[rows])
        combo = combo * (len(uniques) + 1) + (np.asarray(codes) + 1)
        combo, seen = pd.factorize(combo)
        size = len(seen)
    firsts = np.zeros(size, dtype=np.int64)
    firsts[combo[::-1]] = np.arange(len(combo) - 1, -1, -1)  # each combination's first
    priced = with_credits(df[cols].iloc[rows[firsts]], prices, bill_failed)
    credits = priced["credits"].to_numpy(dtype=float, na_value=np.nan)[combo]
    src = (priced["credits_source"] == "reported").to_numpy(dtype=bool, na_value=False)
    return credits, src[combo]


def _credit_columns(
    df: pd.DataFrame, m: _Members, out: pd.DataFrame, prices: PricesLike, bill_failed: bool
) -> None:
    credits, reported = _member_credits(df, m.rows, prices, bill_failed)
    known = ~np.isnan(credits)
    value = np.where(known, credits, 0.0)
    out["credits"] = _per_family(m, value)
    out["reported_credits"] = _per_family(m, np.where(reported, value, 0.0))
    out["estimated_credits"] = out["credits"] - out["reported_credits"]
    out["unpriced"] = _per_family(m, mask=~known).astype(np.int64)


def _time_columns(m: _Members, final: np.ndarray, out: pd.DataFrame) -> None:
    held = m.roots < m.links.held
    member_of_node = np.full(len(m.links.ids), -1, dtype=np.int64)
    member_of_node[m.node] = np.arange(len(m.node))
    root_member = np.where(held, member_of_node[m.roots], -1)
    created = np.where(root_member >= 0, m.created[np.maximum(root_member, 0)], _NAT)
    done = np.where(final >= 0, m.completed[np.maximum(final, 0)], _NAT)
    out["created"] = _utc(created)
    out["final_complete_time"] = _utc(done)
    ok = (created != _NAT) & (done != _NAT)
    out["time_to_final_s"] = np.where(ok, (done - created) / 1e9, np.nan)


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")


def family_facet(df: pd.DataFrame) -> pd.Series:
    """Each row's family by its final form, as the viewer's facet reads it
    (:data:`FACET_LABELS`: has 4K / has 1080p / extended / base only / no video)."""
    labels = [FACET_LABELS[f] for f in FORM_CATEGORIES]
    codes = np.full(len(df), -1, dtype=np.int8)
    if len(df):
        m = _members(df[[c for c in READ_COLUMNS if c in df.columns]])
        final = _finals(m)
        form = np.where(final >= 0, m.form[np.maximum(final, 0)], _NO_FORM)
        at = m.links.row_node >= 0
        fam_of_node = np.full(len(m.links.ids), -1, dtype=np.int64)
        fam_of_node[m.roots] = np.arange(len(m.roots))
        codes[at] = form[fam_of_node[m.links.root[m.links.row_node[at]]]]
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels), index=df.index)


#: ``family_of``'s ``note`` for a root the history does not hold.
MISSING_NOTE = "not in this history: fetch_records(..., with_parents=True) fetches it"


def family_of(
    source: Any, task_id: str, *, prices: PricesLike = None, bill_failed: bool = False
) -> pd.DataFrame:
    """The family of one task as a small tree frame, root first, each child under its parent.

    Columns: ``tree`` (the task type, indented by depth), ``task_id``,
    ``parent_task_id``, ``depth``, ``task_type``, ``status`` (``unread`` / ``missing``
    where there is no record), ``create_time``, ``complete_time``, ``latency_s``,
    ``resolution``, ``video_url``, ``credits``, ``credits_source``, ``final`` (the final
    deliverable, see :func:`families`), ``replaced`` (a failed member a later one of the
    same type made good) and ``note`` (missing, self-reference, cycle).

    Raises
    ------
    InputError
        When ``task_id`` is neither a task of the history nor a parent one names.

    >>> family_of(df, df["task_id"].iloc[0])[["tree", "status", "final"]]  # doctest: +SKIP
    """
    df = _frame_of(source)
    m = _members(df[[c for c in READ_COLUMNS if c in df.columns]])
    ln = m.links
    hit = ln.ids.index(str(task_id)).as_py()
    if hit < 0:
        raise InputError(
            f"family_of: {task_id!r} is not in this history (neither a task nor a parent "
            "one names); fetch it first"
        )
    root = int(ln.root[hit])
    fam = np.flatnonzero(m.roots == root)[0]
    members = np.flatnonzero(m.fam == fam)
    final = _finals(m)[fam]
    replaced = _replaced(m)
    member_of = {int(m.node[i]): int(i) for i in members}
    children: dict[int, list[int]] = {}
    for v in member_of:
        if int(ln.parent[v]) != v:
            children.setdefault(int(ln.parent[v]), []).append(v)
    created = {v: m.created[i] for v, i in member_of.items()}
    order: list[int] = []
    stack = [root]
    while stack:  # depth-first, each parent's children by creation
        v = stack.pop()
        order.append(v)
        stack.extend(sorted(children.get(v, []), key=lambda c: (created[c], c), reverse=True))
    cols = [c for c in READ_COLUMNS if c in df.columns]
    priced = with_credits(df[[*cols, "latency_s"]].iloc[m.rows[members]], prices, bill_failed)
    priced = priced.set_axis(members)
    return _tree_rows(df, m, order, member_of, priced, final, replaced)


def _notes(self_ref: bool, cycle: bool, cut: bool) -> list[str]:
    out = ["names itself as its parent"] if self_ref else []
    if cycle:
        out.append("in a cycle of parents (cut here)" if cut else "in or under a cycle of parents")
    return out


def _tree_rows(
    df: pd.DataFrame,
    m: _Members,
    order: list[int],
    member_of: dict[int, int],
    priced: pd.DataFrame,
    final: int,
    replaced: np.ndarray,
) -> pd.DataFrame:
    ln = m.links
    out: list[dict[str, Any]] = []
    for v in order:
        i = member_of.get(v)
        depth = int(ln.depth[v])
        if i is None:  # the root, not in the history
            out.append({"tree": "(missing)", "task_id": ln.ids[v].as_py(), "depth": depth,
                        "status": "missing", "final": False, "replaced": False,
                        "note": MISSING_NOTE})  # fmt: skip
            continue
        row = priced.loc[i]
        status = row["status"] if isinstance(row["status"], str) else "unread"
        notes = _notes(bool(ln.self_ref[v]), bool(ln.cycle[v]), bool(ln.parent[v] == v))
        ttype = row["task_type"] if isinstance(row["task_type"], str) else "unread"
        out.append({
            "tree": "    " * depth + ("└─ " if depth else "") + ttype,
            "task_id": row["task_id"], "parent_task_id": row["parent_task_id"],
            "depth": depth, "task_type": row["task_type"], "status": status,
            "create_time": row["create_time"], "complete_time": row["complete_time"],
            "latency_s": row["latency_s"], "resolution": row["resolution"],
            "video_url": row["video_url"], "credits": row["credits"],
            "credits_source": row["credits_source"], "final": i == final,
            "replaced": bool(replaced[i]), "note": "; ".join(notes) or None,
        })  # fmt: skip
    frame = pd.DataFrame(out)
    for col in ("task_id", "parent_task_id", "resolution", "video_url", "note", "status"):
        if col in frame.columns:
            frame[col] = frame[col].astype(_roots._STR)
    return frame
