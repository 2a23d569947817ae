"""The viewer over a dataset (``viewer._duckdb_model.DatasetModel``): the same counts,
options, pages, order and search hits as the in-memory model on the same data, a history
never brought back whole, and live refresh through the store (simulator, real SQLite)."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from veo_notebook.client import Client
from veo_notebook.errors import InputError
from veo_notebook.export import read_parquet, to_parquet
from veo_notebook.fetch import fetch_records
from veo_notebook.store import Store
from veo_notebook.viewer import StatusViewer
from veo_notebook.viewer._duckdb_model import DatasetModel
from veo_notebook.viewer._live import READ_ONLY
from veo_notebook.viewer._model import FACETS, SORT_KEYS, TableModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from viewer import synthetic

N = 5_000
COLUMNS = ["task_id", "status", "model", "create_time", "latency_s", "error_message"]
NEEDLES = [
    "cat number 12", "ENGLISH", "veo_0a", "internal error", "zz-no-such-text", "a",
    "100%", "1_0", "\\",
]  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[TableModel, DatasetModel]:
    """The same 5k tasks twice: a hive dataset read whole into the in-memory model, and
    the dataset queried in place. A few rows have no status or no creation time."""
    df = synthetic(N, seed=7)
    df.loc[df.index[:40], "status"] = None
    df.loc[df.index[40:60], "create_time"] = pd.NaT
    df.loc[df.index[60:70], "fetch_error"] = "503 Service Unavailable"
    df.loc[df.index[70:75], "prompt"] = "a 100% literal \\ prompt"  # LIKE's wildcards
    path = to_parquet(df, tmp_path_factory.mktemp("ds") / "history", partition_by="create_date")
    return TableModel(read_parquet(path)), DatasetModel.from_path(path)


def _same_page(mem: TableModel, db: DatasetModel, page: int, size: int, by: str, desc: bool):
    a = mem.rows(page, size, by, desc, COLUMNS).reset_index(drop=True)
    b = db.rows(page, size, by, desc, COLUMNS)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    return a


def test_counts_options_and_status_counts_match(pair):
    mem, db = pair
    assert db.n == mem.n == N and db.count() == N
    for f in FACETS:  # a derived facet (not a column of the dataset) offers nothing
        want = mem.options(f.column) if f.column in db.columns else []
        assert db.options(f.column) == want, f.column
    assert db.status_counts() == mem.status_counts()
    assert db.pending_count() == mem.pending_count() > 0
    assert db.pending_ids() == mem.pending_ids()


@pytest.mark.parametrize("by", list(SORT_KEYS))
@pytest.mark.parametrize("desc", [True, False])
def test_pages_and_order_match_unfiltered(pair, by, desc):
    mem, db = pair
    for f in FACETS:
        mem.set_facet(f.column, None)
        db.set_facet(f.column, None)
    for m in (mem, db):
        m.set_created_range(None, None)
        m.set_text(None)
    last = (N - 1) // 50
    for page in (0, 1, 7, last):
        _same_page(mem, db, page, 50, by, desc)


def test_filters_and_search_match(pair):
    mem, db = pair
    steps = [
        ("status", ["failed", "generating"]),
        ("model", ["veo3"]),
        ("task_type", ["extend", "1080p"]),
        ("created", (pd.Timestamp("2026-03-03"), pd.Timestamp("2026-03-10 12:00"))),
        ("generation_type", ["TEXT_2_VIDEO"]),
    ]
    for name, value in steps:
        for m in (mem, db):
            if name == "created":
                m.set_created_range(*value)
            else:
                m.set_facet(name, value)
        assert db.count() == mem.count() > 0, name
        for by in SORT_KEYS:
            _same_page(mem, db, 0, 25, by, True)
            _same_page(mem, db, 1, 25, by, False)
    for m in (mem, db):
        for f in FACETS:
            m.set_facet(f.column, None)
        m.set_created_range(None, None)
    counts = {}
    for needle in NEEDLES:
        mem.set_text(needle)
        db.set_text(needle)
        assert db.count() == mem.count(), needle
        counts[needle] = db.count()
        if needle == "ENGLISH":  # an export of a search reads the source's own files
            want = mem.view_frame("latency", False)["task_id"]
            assert db.view_frame("latency", False)["task_id"].equals(want)
        hits = mem.rows(0, max(1, mem.count()), "created", True, ["task_id"])
        assert db.rows(0, max(1, db.count()), "created", True, ["task_id"]).equals(
            hits.reset_index(drop=True)
        )
    assert counts["a"] > N // 2 and counts["zz-no-such-text"] == 0  # none to most
    assert counts["100%"] == counts["\\"] == 5 and counts["1_0"] == 0  # no wildcards
    # a search under filters, then a filter widened and narrowed while it is on
    for m in (mem, db):
        m.set_facet("model", ["veo3"])
        m.set_facet("status", ["failed"])
        m.set_text("a")
    for status in (["failed", "success"], None, ["generating"]):
        for m in (mem, db):
            m.set_facet("status", status)
        assert db.count() == mem.count() > 0, status
        _same_page(mem, db, 0, 25, "created", True)
    for m in (mem, db):
        m.set_text(None)
        m.set_facet("model", None)
        m.set_facet("status", None)


def test_one_task_and_a_missing_one(pair):
    mem, db = pair
    tid = mem.df["task_id"].iloc[123]
    row = db.task(tid)
    assert row is not None and len(row) == 1
    pd.testing.assert_frame_equal(
        row[COLUMNS], mem.task(tid)[COLUMNS].reset_index(drop=True), check_dtype=False
    )
    assert db.task("no-such-task") is None


def test_the_history_is_never_brought_back_whole(tmp_path, monkeypatch):
    df = synthetic(N, seed=3)
    path = to_parquet(df, tmp_path / "h.parquet")
    pulled: list[str] = []
    for cls in (duckdb.DuckDBPyRelation, duckdb.DuckDBPyConnection):  # pandas pulls: none
        for name in ("df", "fetchdf", "fetch_df", "to_df", "pl"):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, lambda *a, n=name, **k: pulled.append(n))
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pulled.append("pd.read_parquet"))
    v = StatusViewer(path, page_size=25)
    db = v._model
    assert isinstance(db, DatasetModel)
    v.status_filter.value = ("failed",)
    v.search.value = "english"
    v.next_button.click()
    v.sort_by.value = "latency"
    v.select(df["task_id"].iloc[5])
    v.status_filter.value = ()
    v.search.value = ""
    # options (a few distinct values), status counts, a handful of pages, one task
    assert db.rows_fetched < 400, db.rows_fetched
    assert pulled == []
    assert "<td" in v.table.value and df["task_id"].iloc[5] in v.detail.value
    for text in (v.table.value, v.header.value, v.detail.value, repr(v)):
        assert "NaN" not in text and "&lt;NA&gt;" not in text and "None" not in text


def test_a_relation_is_a_source(pair):
    mem, _ = pair
    con = duckdb.connect()
    rel = con.from_arrow(schema_table(mem.df))
    v = StatusViewer(rel, page_size=10)
    assert v.read_only and repr(v).startswith(f"StatusViewer(tasks={N:,}".replace(",", ""))
    v.status_filter.value = ("success",)
    assert v._model.count() == int((mem.df["status"] == "success").sum())
    with pytest.raises(InputError, match="does not hold the whole history"):
        _ = v.frame


def schema_table(df: pd.DataFrame):
    from veo_notebook.frame import _parquet

    return _parquet.to_table(df)


def test_read_only_viewer_says_so(tmp_path):
    path = to_parquet(synthetic(200, seed=1), tmp_path / "h.parquet")
    v = StatusViewer(path)
    assert v.read_only and v.refresh_button.tooltip == READ_ONLY
    assert v.refresh() == 0 and "read-only" in v.message.value
    v.start()
    assert not v.running and "read-only" in v.message.value


def test_bad_sources_say_one_line(tmp_path):
    with pytest.raises(InputError, match="no such Parquet file"):
        StatusViewer(tmp_path / "nothing.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        StatusViewer(tmp_path / "junk.parquet")
    with pytest.raises(InputError, match="engine"):
        StatusViewer(tmp_path / "junk.parquet", engine="spark")


def test_store_viewer_refreshes_through_the_store_and_resyncs(fresh_sim, tmp_path):
    sim = fresh_sim(clock_speed=0, n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:5]
    terminal = sim.task_ids("terminal")[:30]
    c = Client(sim.api_key, base_url=sim.base_url)
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        fetch_records(terminal + pending, client=c, store=store, progress=False)
    v = StatusViewer(path, client=c, engine="duckdb")
    assert isinstance(v._model, DatasetModel) and not v.read_only
    assert set(v.pending_ids()) == set(pending)
    v.status_filter.value = ("generating",)
    sim.advance(max(sim.task(t).complete_ts for t in pending) - sim.now())
    sim.reset_stats()
    assert v.refresh() == len(pending)
    assert set(sim.stats()["by_task"]) == set(pending)  # only the pending were polled
    assert v.pending_ids() == [] and v._model.count() == 0  # the filter was kept
    assert v._model.n == len(terminal) + len(pending)
    assert v.refresh() == 0 and "nothing to refresh" in v.message.value
    assert np.all(read_parquet(Path(str(path) + ".frame"))["status"] != "generating")


def test_the_detail_pane_shows_the_same_task_and_family(tmp_path):
    df = read_parquet("data/sample_tasks.parquet")
    counts = df["root_task_id"].value_counts()
    tid = df.loc[df["root_task_id"] == counts.index[0], "task_id"].iloc[-1]
    path = to_parquet(df, tmp_path / "sample", partition_by="create_date")
    mem, db = StatusViewer(df), StatusViewer(path)
    mem.select(tid)
    db.select(tid)
    assert "Family" in db.detail.value and tid in db.detail.value
    assert db.detail.value == mem.detail.value
