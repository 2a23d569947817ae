"""The report over an engine: the same tables as the in-memory report, cell by cell, on
DuckDB and Spark; figures drawn from aggregates; nothing pulled whole into pandas."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_engine import NOW, history

from veo_notebook import export, reporting
from veo_notebook.engine import _duckdb, resolve
from veo_notebook.engine import _plan as p
from veo_notebook.engine._pandas import PandasEngine
from veo_notebook.reporting import over_engine, over_engine_money
from veo_notebook.reporting.blocks import Facts, Fig, Section, Table, Text

N = 20_000
#: What only the in-memory report shows: the families need every row (over an engine the
#: section is a sentence and the upgrade failures).
IN_MEMORY_ONLY = {"Families"}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The engine tests' history, some requests naming no model (priced as the default)."""
    df = history(N, seed=11)
    named = [["model", "aspect_ratio"] if i % 7 == 0 else None for i in range(N)]
    df["defaults_applied"] = pd.Series(named, dtype=df["defaults_applied"].dtype)
    return df


@pytest.fixture(scope="module")
def dataset(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report_engine") / "history"
    return export.to_parquet(frame, path, partition_by="create_date")


def shown(sections: list[Section]) -> dict[str, list[object]]:
    """What a reader sees, per section: the texts, facts and tables (as text cells)."""
    out: dict[str, list[object]] = {}
    for s in sections:
        items: list[object] = []
        for b in s.blocks:
            if isinstance(b, Table):  # a listing's row places are not shown ("index")
                assert "index" not in b.frame.columns, s.heading
                items.append(b.frame.astype(str))
            elif isinstance(b, Text | Facts):
                items.append(b)
        out[s.heading] = items
    return out


def assert_same_report(a: list[Section], b: list[Section]) -> None:
    got, want = shown(b), shown(a)
    assert list(got) == list(want)
    for heading in want:
        if heading in IN_MEMORY_ONLY:
            continue
        assert len(got[heading]) == len(want[heading]), heading
        for x, y in zip(want[heading], got[heading], strict=True):
            if isinstance(x, pd.DataFrame):
                pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True))
            else:
                assert x == y, heading


@pytest.fixture(scope="module")
def in_memory(frame: pd.DataFrame) -> list[Section]:
    return reporting.build(frame, now=NOW, figures=False)[0]


def test_report_over_duckdb_shows_the_in_memory_numbers(dataset: Path, in_memory) -> None:
    sections, n = reporting.build(dataset, engine="duckdb", now=NOW, figures=False)
    assert n == N
    assert_same_report(in_memory, sections)
    assert "requests named no model" in shown(sections)["Money"][0].text  # type: ignore[union-attr]
    families = shown(sections)["Families"]
    assert families[0] == Text(over_engine_money.NO_FAMILIES)
    assert isinstance(families[1], pd.DataFrame) and len(families[1]) == 3


def test_a_relation_and_a_frame_forced_to_duckdb_give_the_same(frame, dataset, in_memory) -> None:
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{dataset}/**/*.parquet', hive_partitioning=true)")
    assert_same_report(in_memory, reporting.build(rel, now=NOW, figures=False)[0])
    forced = reporting.build(frame.head(3000), engine="duckdb", now=NOW, figures=False)[0]
    assert_same_report(reporting.build(frame.head(3000), now=NOW, figures=False)[0], forced)


def test_a_small_dataset_is_reported_in_memory(dataset: Path, in_memory) -> None:
    """Below PANDAS_MAX_ROWS a path is read whole: the in-memory report, families too."""
    sections = reporting.build(dataset, now=NOW, figures=False)[0]
    assert shown(sections)["Families"][0] == shown(in_memory)["Families"][0]


def test_report_over_spark_shows_the_same_numbers(spark, dataset: Path, frame) -> None:
    """Spark runs each aggregate as a job (~0.5 s on local[1]), so here: the sections built
    on the engine's own report aggregates (status counts, ordered rows) and those
    aggregates (subset, time span, histogram); every analysis table the other sections
    show is compared on Spark in tests/test_engine.py."""
    tasks = spark.read.parquet(str(dataset)).cache()
    made = {"pandas": PandasEngine(frame), "spark": resolve(tasks)}
    got = {}
    for name, eng in made.items():
        ctx = over_engine.SourceContext(eng, NOW, "1D", figures=False)
        sections = [over_engine.overview(ctx), over_engine_money.at_risk(ctx)]
        got[name] = [s for s in sections if s is not None]
    assert_same_report(got["pandas"], got["spark"])
    keys = (p.Key("task_type"),)
    success = p.In("status", ("success",))
    pd.testing.assert_frame_equal(
        made["pandas"].histogram(keys, "latency_s", success),
        made["spark"].histogram(keys, "latency_s", success),
    )
    window = p.All((p.In("task_type", ("4k",)), p.TimeBefore("create_time", NOW.value // 1000)))
    late = {name: eng.subset(window) for name, eng in made.items()}
    assert late["pandas"].count() == late["spark"].count() > 0
    assert late["pandas"].time_span("create_time") == late["spark"].time_span("create_time")
    tasks.unpersist()


def test_no_pull_to_pandas_over_duckdb(dataset: Path, frame, duckdb_answers) -> None:
    """The whole report with figures over DuckDB: every way of returning a relation as
    pandas raises, and every answer is small (the largest: Kaplan–Meier's event-time
    counts, one row per distinct latency of a group)."""
    sizes = duckdb_answers
    drawn = reporting.build(dataset, engine="duckdb", now=NOW)[0]
    figs = [b.name for s in drawn for b in s.blocks if isinstance(b, Fig)]
    assert figs == [
        "status",
        "latency_ecdf",
        "latency_hist",
        "latency_over_time",
        "failure_rate",
        "failure_pareto",
        "spend",
    ]
    timed = frame.dropna(subset=["latency_s"])
    distinct = timed.groupby("model", dropna=False, observed=True)["latency_s"].nunique().sum()
    running = int((frame["status"] == "generating").sum())
    assert max(sizes) <= distinct + running < N  # distinct (group, time) pairs, not rows
    big = [n for n in sizes if n > N // 4]  # KM counts by model (asked once), by task type
    assert len(big) == 2, sizes


def test_cli_report_over_duckdb(tmp_path: Path, capsys) -> None:
    import orjson

    from veo_notebook.cli import main
    from veo_notebook.simulator import corpus
    from veo_notebook.store import Store

    path = tmp_path / "h.sqlite"
    with Store(path) as st:
        envs = corpus.iter_envelopes(1500, seed=5)
        st.put_many([(e["data"]["taskId"], orjson.dumps(e).decode(), 1e9, None) for e in envs])
    out = tmp_path / "r.html"
    args = ["report", "--store", str(path), "--engine", "duckdb", "--out", str(out)]
    assert main([*args, "--no-figures"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert "1,500 tasks" in html and "not built over an engine" in html
    small = tmp_path / "small.md"
    assert main(["report", "--store", str(path), "--out", str(small), "--no-figures"]) == 0
    assert "not built over an engine" not in small.read_text(encoding="utf-8")  # in memory


def test_counts_rolled_up_equal_the_engines_own(dataset: Path) -> None:
    """What ``share_counts`` answers from one finer count is what the engine answers."""
    from veo_notebook.analysis._keys import plan_keys
    from veo_notebook.reporting._rollup import share_counts

    own = _duckdb.DuckDBEngine(path=str(dataset))
    shared = _duckdb.DuckDBEngine(path=str(dataset))
    share_counts(shared, "1D")
    measures = {
        "n": p.Count(),
        "ok": p.Count(p.In("status", ("success",))),
        "us": p.SumMicros("latency_s", p.In("status", ("success",))),
        "max": p.Max("latency_s"),
    }
    where = p.In("status", ("success", "failed", "generating"))
    for by in ([], ["model"], ["task_type"], ["1D"], ["model", "1D"], ["1D", "task_type"]):
        keys, _ = plan_keys(own, by)
        cols = [f"k{i}{s}" for i in range(len(keys)) for s in ("", "_na")]
        a, b = (e.grouped(keys, measures, where) for e in (own, shared))
        a, b = (x.sort_values(cols).reset_index(drop=True) if cols else x for x in (a, b))
        pd.testing.assert_frame_equal(a, b, check_dtype=True)


@pytest.mark.parametrize("gap", [False, True], ids=["every-day", "day-before-empty"])
def test_change_windows_in_one_grouping_equal_each_alone(frame: pd.DataFrame, gap: bool) -> None:
    """The headline's two windows, buckets of one grouping, give what each window asked
    alone gives (an empty window too)."""
    from veo_notebook.reporting.headline import _success_and_p50

    day = pd.Timedelta("1D")
    end = frame["create_time"].max()
    created = frame["create_time"]
    before = (created > end - 2 * day) & (created <= end - day)
    df = frame[~before].reset_index(drop=True) if gap else frame
    for name in ("duckdb", "pandas"):
        eng = resolve(df, name)
        got = eng.time_span("create_time")
        assert got is not None
        at = over_engine._when(got[1])
        both = over_engine._two_windows(eng, got[1], day.value // 1000)
        alone = [
            _success_and_p50(eng.subset(over_engine._window(at - day, at))),
            _success_and_p50(eng.subset(over_engine._window(at - 2 * day, at - day))),
        ]
        for (s, p50, n), (s0, p0, n0) in zip(both, alone, strict=True):
            assert n == n0
            assert pd.Series([*s, *p50]).equals(pd.Series([*s0, *p0]))
        assert (both[1][2] == 0) is gap


def test_latency_histograms_come_from_the_bins_counted_for_the_ranks(dataset: Path) -> None:
    """What the latency figures draw from the latency tables' bins is the histogram the
    engine counts for them."""
    from veo_notebook import analysis
    from veo_notebook.analysis._keys import plan_keys

    eng = _duckdb.DuckDBEngine(path=str(dataset))
    eng.answers = {}
    for by in ("model", "task_type"):
        keys, _ = plan_keys(eng, by)
        asked = eng.histogram(keys, "latency_s", over_engine.SUCCEEDED)
        analysis.latency_summary(eng, by=by)
        assert ("bins", keys, "latency_s", over_engine.SUCCEEDED) in eng.answers
        kept = eng.histogram(keys, "latency_s", over_engine.SUCCEEDED)
        pd.testing.assert_frame_equal(kept, asked, check_exact=True)


def test_ranks_from_the_shared_bins_equal_the_engines_own(dataset: Path) -> None:
    """Latency percentiles whose bins are summed from one count by model and task type
    (``share_counts``) are the engine's own, and so are the histograms kept from them."""
    from veo_notebook import analysis
    from veo_notebook.analysis._keys import plan_keys
    from veo_notebook.reporting._rollup import share_counts

    own = _duckdb.DuckDBEngine(path=str(dataset))
    shared = _duckdb.DuckDBEngine(path=str(dataset))
    share_counts(shared, "1D")
    shared.answers = {}
    for by in (None, "model", "task_type", "1D"):
        for outcome in ("success", "failed"):
            a, b = (
                analysis.latency_summary(e, by=by, outcome=outcome, upgrades="pooled")
                for e in (own, shared)
            )
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    for by in ("model", "task_type"):
        keys, _ = plan_keys(own, by)
        kept = shared.histogram(keys, "latency_s", over_engine.SUCCEEDED)
        asked = own.histogram(keys, "latency_s", over_engine.SUCCEEDED)
        pd.testing.assert_frame_equal(kept, asked, check_exact=True)
