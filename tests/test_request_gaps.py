"""The request gaps a store's dataset keeps beside each day file, and the runs read from them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _frames import make_frame, synthetic_frame
from test_engine import assert_same, tied_runs

from veo_notebook import analysis
from veo_notebook.analysis.duplicates import worst_duplicates
from veo_notebook.engine import _duckdb, _sql_runs
from veo_notebook.frame import _parquet, _request_gaps, dataset
from veo_notebook.store import Store

MIDNIGHT = pd.Timestamp("2026-03-02 00:00:00", tz="UTC")


def _laid_out(df: pd.DataFrame, root: Path) -> Path:
    """``df`` as a store's dataset lays it out: one file a day, its gaps beside it."""
    days = _parquet.day_of(df["create_time"]).to_numpy(dtype=str)
    for day in sorted(set(days)):
        table = _parquet.to_table(df[days == day].reset_index(drop=True))
        part_id = uuid.uuid4().hex
        dataset._write_file(root, day, table, part_id)
        _request_gaps.write_gaps(dataset.day_dir(root, day) / dataset.FILE_NAME, table, part_id)
    return root


def _runs_over_midnight() -> pd.DataFrame:
    """The tied runs three times (one crossing midnight), a pair 11 minutes apart either
    side of it (no other row of its request that day), and realistic rows over 3 days."""
    copies = []
    for i, start in enumerate(
        (MIDNIGHT - pd.Timedelta(minutes=20), MIDNIGHT + pd.Timedelta(hours=11))
    ):
        one = tied_runs()
        one["task_id"] = (one["task_id"].astype(str) + str(i)).astype(one["task_id"].dtype)
        shift = start - one["create_time"].min()
        one["create_time"] += shift
        one["complete_time"] += shift
        copies.append(one)
    bird = make_frame(
        task_id=["p", "q"],
        create_s=[0, 660],
        complete_s=[100, 760],
        status=["success", "success"],
        prompt="a bird at midnight",
        model="veo3_fast",
        task_type="generate",
        resolution="720p",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
    )
    shift = MIDNIGHT - pd.Timedelta(minutes=5) - bird["create_time"].min()
    bird["create_time"] += shift
    bird["complete_time"] += shift
    many = synthetic_frame(3000, seed=7, days=3)
    for col in ("create_time", "complete_time", "fetched_at"):  # a dataset keeps µs
        many[col] = many[col].dt.floor("us")
    df = pd.concat([*copies, bird, many], ignore_index=True)
    return df.astype({c: many[c].dtype for c in many.columns if c in df.columns})


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the runs were read from the gaps."""
    calls: list[int] = []
    real = _sql_runs._from_gaps

    def spy(*a: Any) -> str:
        calls.append(1)
        return real(*a)

    monkeypatch.setattr(_sql_runs, "_from_gaps", spy)
    return calls


def _tables(source: Any, window: str) -> dict[str, pd.DataFrame]:
    out = {}
    for prices, billed in ((None, False), ({"veo3_fast": 7}, True)):
        out[f"cost {billed}"] = analysis.cost_summary(
            source, by="resolution", window=window, prices=prices, bill_failed=billed
        )
        out[f"worst {billed}"] = worst_duplicates(
            source, 20, window=window, prices=prices, bill_failed=billed
        )
    return out


@pytest.mark.parametrize("window", ["15min", "3h", "30h"])
def test_runs_read_from_the_gaps_are_the_same_as_pandas(
    tmp_path: Path, used: list[int], window: str
) -> None:
    """Runs within a day, across a midnight (found only from the rows near it: fails
    without them), with ties: the tables pandas gives, read from the gaps without
    ordering every row; a window longer than a day orders every row, the same tables."""
    df = _runs_over_midnight()
    root = _laid_out(df, tmp_path / "d")
    assert _request_gaps.find(str(root)) is not None
    expected = _tables(df, window)
    got = _tables(_duckdb.DuckDBEngine(path=str(root)), window)
    assert bool(used) == (window != "30h")  # the gaps were read; not for a window > 3h
    assert_same(expected, got)
    if window == "15min":  # the pair across midnight is one run: q is its extra
        dups = analysis.duplicates.duplicate_submissions(df, window)
        assert "q" in set(dups["task_id"].astype(str))


def test_a_day_whose_gaps_are_not_its_own_orders_every_row(tmp_path: Path, used: list[int]) -> None:
    """A day file rewritten without its gaps (another part id): the gaps are not used,
    and the tables are still pandas'."""
    df = _runs_over_midnight()
    root = _laid_out(df, tmp_path / "d")
    day = _parquet.day_of(pd.Series([MIDNIGHT])).iloc[0]
    file = dataset.day_dir(root, day) / dataset.FILE_NAME
    table = pq.read_table(file)
    dataset._write_file(root, day, table.replace_schema_metadata({}), uuid.uuid4().hex)
    assert _request_gaps.find(str(root)) is None
    got = _tables(_duckdb.DuckDBEngine(path=str(root)), "15min")
    assert not used
    assert_same(_tables(df, "15min"), got)


def _env(day: int, prompt: str, minute: int = 0) -> str:
    data = {"successFlag": 1, "createTime": f"2025-06-{day:02d}T23:{minute:02d}:00Z"}
    data["paramJson"] = json.dumps({"prompt": prompt, "model": "veo3_fast"})
    return json.dumps({"code": 200, "msg": "success", "data": data})


def test_a_sync_keeps_each_days_gaps_its_own(tmp_path: Path) -> None:
    """A store's dataset has every day's gaps, and a sync that rewrites a day rewrites
    its gaps: they are then those of the day's rows as written; every reader still
    reads the rows alone."""
    with Store(tmp_path / "g.sqlite") as st:
        st.put_many(
            [(f"d{d}-{i}", _env(d, f"p{i % 2}", i), 0.0, None) for d in (1, 2) for i in range(4)]
        )
        st.put("unread", None, fetched_at=0.0, fetch_error="503 Service Unavailable")
        root = dataset.sync(st)
        assert _request_gaps.find(str(root)) is not None
        st.put("d2-9", _env(2, "p0", 30), fetched_at=1.0)
        dataset.sync(st)
        found = _request_gaps.find(str(root))
        assert found is not None and len(found.data) == 3  # two days and the unread row
        for data, gaps in zip(found.data, found.gaps, strict=True):
            want = _request_gaps.gaps_table(pq.read_table(data))
            assert pq.read_table(gaps).select(want.column_names).equals(want)
        day2 = pq.read_table(found.gaps[1]).to_pydict()
        minutes = [None, None, 2, 2, 28]  # p0 at 23:00, 23:02, 23:30; p1 at 23:01, 23:03
        assert day2["veo_gb"] == [m and m * 60_000_000 for m in minutes]
        assert pd.read_parquet(root).shape[0] == len(st)


def _broken(root: Path, how: str) -> None:
    """One way a dataset's gaps stop being its own."""
    day = _parquet.day_of(pd.Series([MIDNIGHT])).iloc[0]
    file = dataset.day_dir(root, day) / dataset.FILE_NAME
    gaps = _request_gaps.gaps_path(file)
    table = pq.read_table(gaps)
    meta = dict(table.schema.metadata or {})
    if how == "other columns":  # a day keyed by other request columns
        meta[_request_gaps.NAMES_META] = json.dumps(["prompt"]).encode()
    elif how == "other hash":  # a day hashed another way (the probe's key differs)
        meta[_request_gaps.PROBE_META] = b"1"
    elif how == "fewer rows":
        meta[_request_gaps.ROWS_META] = b"1"
    elif how == "two files a day":
        pq.write_table(pq.read_table(file), file.with_name("part-1.parquet"))
        return
    elif how == "missing":
        gaps.unlink()
        return
    pq.write_table(table.replace_schema_metadata(meta), gaps)


@pytest.mark.parametrize(
    "how", ["other columns", "other hash", "fewer rows", "two files a day", "missing"]
)
def test_gaps_that_cannot_be_trusted_are_not_looked_at(tmp_path: Path, how: str) -> None:
    root = _laid_out(_runs_over_midnight(), tmp_path / "d")
    assert _request_gaps.find(str(root)) is not None
    _broken(root, how)
    assert _request_gaps.find(str(root)) is None
