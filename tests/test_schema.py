"""The column table: consistent, enforced, and printed verbatim on the docs' columns page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from veo_notebook import schema

COLUMNS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "columns.md"


def test_docs_column_table_is_the_schema() -> None:
    text = COLUMNS_PAGE.read_text(encoding="utf-8")
    m = re.search(r"<!-- schema:start -->\n(.*?)\n?<!-- schema:end -->", text, re.S)
    assert m, "docs/columns.md lacks the <!-- schema:start --> ... <!-- schema:end --> block"
    assert m.group(1).strip() == schema.markdown_table().strip()


def test_columns_are_unique_and_described() -> None:
    names = schema.column_names()
    assert len(names) == len(set(names))
    assert all(c.meaning and c.type_name for c in schema.COLUMNS)
    for required in (
        "task_id",
        "status",
        "create_time",
        "latency_s",
        "task_type",
        "fetch_error",
        "extra",
    ):
        assert required in names


def test_empty_frame_has_every_dtype() -> None:
    df = schema.empty_frame()
    assert list(df.columns) == schema.column_names()
    assert df.dtypes.to_dict() == schema.dtypes()


def test_enforce_adds_casts_orders_and_keeps_extra_columns() -> None:
    raw = pd.DataFrame(
        {"mine": [1], "success_flag": [1.0], "task_id": ["a"], "status": ["success"]}
    )
    df = schema.enforce(raw)
    assert list(df.columns) == [*schema.column_names(), "mine"]
    assert df.dtypes.drop("mine").to_dict() == schema.dtypes()
    assert df.loc[0, "success_flag"] == 1 and df.loc[0, "status"] == "success"
    assert df["error_code"].isna().all()
    assert schema.enforce(df).equals(df)  # idempotent


def test_categories_are_the_enums() -> None:
    dt = schema.dtypes()
    assert list(dt["status"].categories) == [s.value for s in schema.Status]
    assert list(dt["task_type"].categories) == [t.value for t in schema.TaskType]


# --- the task-state rules: one table, every stage agrees ---------------------------------
_ERRORS = {
    None: schema.FetchErrorKind.NONE,
    "422 Temporarily supports records within 14 days.": schema.FetchErrorKind.EXPIRED,
    "422 record is null.": schema.FetchErrorKind.NOT_FOUND,
    "422 record result data is blank.": schema.FetchErrorKind.NOT_FOUND,
    "timeout after 10s": schema.FetchErrorKind.TRANSIENT,
    "transient: connection reset": schema.FetchErrorKind.TRANSIENT,
    "503 Service Unavailable": schema.FetchErrorKind.TRANSIENT,
    "429 Too Many Requests": schema.FetchErrorKind.TRANSIENT,
    "500 Internal Error, Please try again later.": schema.FetchErrorKind.TRANSIENT,
    "200 no data in the answer": schema.FetchErrorKind.TRANSIENT,
    "not in store": schema.FetchErrorKind.TRANSIENT,
    "400 Bad Request": schema.FetchErrorKind.PERMANENT,
    "414 Request-URI Too Long": schema.FetchErrorKind.PERMANENT,
    "451 Failed to fetch the image.": schema.FetchErrorKind.PERMANENT,
}
# (status, fetch_error kind) -> pending; a row with a fetch error has no status
_PENDING = {
    ("generating", schema.FetchErrorKind.NONE): True,
    ("success", schema.FetchErrorKind.NONE): False,
    ("failed", schema.FetchErrorKind.NONE): False,
    ("generation_failed", schema.FetchErrorKind.NONE): False,
    ("unknown", schema.FetchErrorKind.NONE): False,
    (None, schema.FetchErrorKind.NONE): True,  # nothing usable came back
    (None, schema.FetchErrorKind.EXPIRED): False,
    (None, schema.FetchErrorKind.NOT_FOUND): False,
    (None, schema.FetchErrorKind.TRANSIENT): True,
    (None, schema.FetchErrorKind.PERMANENT): False,
}


def _cases() -> list[tuple[str | None, str | None, bool]]:
    out = []
    for error, kind in _ERRORS.items():
        statuses = [*schema.STATUS_CATEGORIES, None] if error is None else [None]
        out += [(st, error, _PENDING[(st, kind)]) for st in statuses]
    return out


def test_fetch_error_kinds() -> None:
    assert {e: schema.fetch_error_kind(e) for e in _ERRORS} == _ERRORS
    assert set(_ERRORS.values()) == set(schema.FetchErrorKind)  # every kind is pinned


@pytest.mark.parametrize(("status", "error", "pending"), _cases())
def test_is_pending_for_every_status_and_error_kind(status, error, pending) -> None:
    assert schema.is_pending(status, error) is pending


def test_the_store_the_client_and_the_viewer_use_the_same_rule(tmp_path: Path) -> None:
    from veo_notebook.client import Outcome
    from veo_notebook.store import Store

    cases = _cases()
    flags = {s.value: f for f, s in schema.STATUS_BY_FLAG.items()} | {"unknown": 7}
    ids, rows = [], []
    for n, (status, error, _) in enumerate(cases):
        env = None if status is None else {"code": 200, "data": {"successFlag": flags[status]}}
        raw = None if env is None else json.dumps(env)
        ids.append(f"t{n}")
        rows.append((f"t{n}", raw, 1.0, error))
        outcome = Outcome(f"t{n}", raw, env, error, False)
        assert outcome.pending is schema.is_pending(status, error), (status, error)
    with Store(tmp_path / "s.sqlite") as st:
        st.put_many(rows)
        settled = st.terminal_ids(ids)
    assert {i for i, c in zip(ids, cases, strict=True) if not c[2]} == settled
    frame = pd.DataFrame({"status": [c[0] for c in cases], "fetch_error": [c[1] for c in cases]})
    frame = schema.enforce(frame)
    assert schema.pending_mask(frame["status"], frame["fetch_error"]).tolist() == [
        c[2] for c in cases
    ]
