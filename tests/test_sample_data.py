"""The sample in ``data/``: current schema, realistic, and a deterministic script.

If the schema changes, this fails until the sample is regenerated
(``.venv/bin/python data/make_sample.py``, then re-execute the notebooks), so the
notebooks and the README's "try it without a server" never show a stale frame.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

import veo_notebook as veo

DATA = Path(__file__).resolve().parents[1] / "data"


def _make_sample():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_sample", DATA / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_has_the_current_schema() -> None:
    committed = veo.read_parquet(DATA / "sample_tasks.parquet")
    assert committed.columns.tolist() == veo.schema.column_names(), (
        "regenerate: python data/make_sample.py"
    )
    expected = veo.schema.empty_frame().dtypes
    assert {c: str(t) for c, t in committed.dtypes.items()} == {
        c: str(t) for c, t in expected.items()
    }


def test_the_script_is_deterministic() -> None:
    module = _make_sample()
    a, b = module.sample_frame(n_tasks=300), module.sample_frame(n_tasks=300)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 300 and a["task_id"].is_unique


def test_sample_ids_match_the_parquet() -> None:
    ids = veo.read_task_ids(DATA / "sample_ids.txt")
    df = veo.read_parquet(DATA / "sample_tasks.parquet")
    assert ids == df["task_id"].tolist()
    assert len(ids) == 3000


def test_sample_is_realistic() -> None:
    df = veo.read_parquet(DATA / "sample_tasks.parquet")
    statuses = set(df["status"].dropna())
    assert {"success", "failed", "generation_failed", "generating"} <= statuses
    assert set(df["task_type"].dropna()) == {"generate", "extend", "1080p", "4k"}
    assert df["fetch_error"].str.startswith("422 ").sum() > 0  # older than 14 days
    assert df["create_time"].max() - df["create_time"].min() > pd.Timedelta(days=10)
