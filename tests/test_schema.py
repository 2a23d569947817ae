"""The column table: consistent, enforced, and printed verbatim in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from veo_notebook import schema

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_column_table_is_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- schema:start -->\n(.*?)\n?<!-- schema:end -->", text, re.S)
    assert m, "README lacks the <!-- schema:start --> ... <!-- schema:end --> block"
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
