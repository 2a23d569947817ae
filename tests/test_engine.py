"""One analysis, several engines: pandas and DuckDB (and Spark, tests/test_engine_spark.py)
give the same tables, cell for cell, and no engine path pulls a whole source into pandas."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _frames import make_frame, synthetic_frame

from veo_notebook import analysis, engine, export
from veo_notebook.analysis.duplicates import worst_duplicates
from veo_notebook.engine import _duckdb, _source
from veo_notebook.errors import InputError

N = 20_000
TERMINAL = ["success", "failed", "generation_failed"]
NOW = pd.Timestamp("2026-03-20", tz="UTC")  # some of the history's media has expired by then


def history(n: int, seed: int = 3) -> pd.DataFrame:
    """A synthetic frame with what grouping must label: upgrades without a model, unread rows."""
    df = synthetic_frame(n, seed=seed)
    upgrade = df["task_type"].isin(["1080p", "4k"]).to_numpy()
    df.loc[upgrade, "model"] = pd.NA
    unread = np.zeros(n, dtype=bool)
    unread[::97] = True
    for col in ("status", "model", "latency_s", "complete_time", "task_type", "prompt"):
        df.loc[unread, col] = pd.NA
    df.loc[unread, "fetch_error"] = "422 record is null."
    again = np.flatnonzero(~unread)[5:200:7]  # a client that re-submitted a minute later
    df.loc[again + 1, ["prompt", "model", "task_type", "generation_type", "aspect_ratio"]] = df.loc[
        again, ["prompt", "model", "task_type", "generation_type", "aspect_ratio"]
    ].to_numpy()
    df.loc[again + 1, "create_time"] = df.loc[again, "create_time"].to_numpy() + pd.Timedelta(
        "1min"
    )
    for col in ("create_time", "complete_time", "fetched_at"):  # a dataset holds µs
        df[col] = df[col].dt.floor("us")
    return df


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return history(N)


@pytest.fixture(scope="module")
def dataset(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "history"
    return export.to_parquet(frame, path, partition_by="create_date")


#: (name, call) of every table the analysis gives on a history.
CALLS = [
    ("latency", lambda s, e: analysis.latency_summary(s, engine=e)),
    ("latency_model", lambda s, e: analysis.latency_summary(s, by="model", engine=e)),
    (
        "latency_model_type",
        lambda s, e: analysis.latency_summary(s, by=["model", "task_type"], engine=e),
    ),
    ("latency_day", lambda s, e: analysis.latency_summary(s, by="1D", engine=e)),
    (
        "latency_failed",
        lambda s, e: analysis.latency_summary(s, by="model", outcome="failed", engine=e),
    ),
    ("km_latency", lambda s, e: analysis.km_latency(s, by="task_type", engine=e)),
    ("km_curve", lambda s, e: analysis.km_curve(s, by="model", engine=e)),
    ("rates", lambda s, e: analysis.failure_rates(s, by="model", engine=e)),
    (
        "rates_rolling",
        lambda s, e: analysis.failure_rates(s, by="model", freq="1D", rolling=3, engine=e),
    ),
    ("stuck", lambda s, e: analysis.stuck_tasks(s, "10min", engine=e).reset_index(drop=True)),
    ("cost", lambda s, e: analysis.cost_summary(s, engine=e)),
    (
        "cost_week",
        lambda s, e: analysis.cost_summary(s, by="task_type", freq="W", bill_failed=True, engine=e),
    ),
    ("duplicates", lambda s, e: analysis.duplicate_submissions(s, engine=e)),
    ("worst_duplicates", lambda s, e: worst_duplicates(s, 12, engine=e)),
    (
        "worst_duplicates_billed",
        lambda s, e: worst_duplicates(s, 12, bill_failed=True, prices={"veo3": 99}, engine=e),
    ),
    ("expiring", lambda s, e: analysis.expiring(s, within="3D", now=NOW, engine=e)),
]
BREAKDOWN = ("categories", "messages", "params", "prompts")


def tables(source: object, engine_name: str | None) -> dict[str, pd.DataFrame]:
    out = {name: call(source, engine_name) for name, call in CALLS}
    fb = analysis.failure_breakdown(source, by="model", engine=engine_name)
    out.update({f"breakdown_{t}": getattr(fb, t) for t in BREAKDOWN})
    fb_all = analysis.failure_breakdown(source, engine=engine_name)
    out["breakdown_categories_all"] = fb_all.categories
    return out


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def pandas_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return tables(frame, None)


def test_pandas_path_labels_every_group(pandas_tables: dict[str, pd.DataFrame]) -> None:
    by_model = pandas_tables["latency_model"]
    assert {"unread", "upgrade task"} <= set(by_model.index)
    assert not by_model.index.isna().any()
    assert by_model.loc["unread", "n"] == len(range(0, N, 97))


@pytest.mark.parametrize("billed", [False, True])
def test_worst_duplicates_are_the_head_of_all_of_them(frame: pd.DataFrame, billed: bool) -> None:
    """The engine's bounded list is the whole list sorted by waste (ties: creation order)."""
    prices = {"veo3": 99} if billed else None
    every = analysis.duplicate_submissions(frame, prices=prices, bill_failed=billed)
    assert len(every) > 12 and every["wasted_credits"].gt(0).sum() > 3
    head = every.sort_values("wasted_credits", ascending=False, kind="stable").head(12)
    got = worst_duplicates(frame, 12, prices=prices, bill_failed=billed)
    pd.testing.assert_frame_equal(got, head.reset_index(drop=True), check_exact=True)


def tied_runs() -> pd.DataFrame:
    """Runs with submissions at the same instant (the task id orders them), a chain of
    repeats longer than the window, a failure first, and a second request beside it."""
    s = [0, 0, 0, 60, 60, 600, 1140, 1140, 3000, 3000, 0, 30, 30]
    task = ["c", "a", "b", "e", "d", "f", "h", "g", "j", "i", "k", "m", "l"]
    status = ["failed", "failed", "success", "success", "failed", "success", "failed"]
    status += ["success", "generation_failed", "success", "failed", "failed", "success"]
    prompt = ["a cat"] * 10 + ["a dog"] * 3
    return make_frame(
        task_id=task,
        create_s=s,
        complete_s=[x + 100 for x in s],
        status=status,
        prompt=prompt,
        model="veo3_fast",
        task_type="generate",
        resolution=["720p", "1080p"] * 6 + ["720p"],
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
    )


def test_runs_with_ties_are_the_same_on_every_engine(spark, tmp_path: Path) -> None:
    """Ties in creation time are broken by task id on every engine, as pandas breaks them."""
    df = tied_runs()
    path = export.to_parquet(df, tmp_path / "tied", partition_by="create_date")

    def answers(source: object, name: str | None) -> dict[str, pd.DataFrame]:
        return {
            "cost": analysis.cost_summary(source, by="resolution", engine=name),
            "worst": worst_duplicates(source, 20, engine=name),
        }

    expected = answers(df, "pandas")
    assert expected["cost"]["duplicates"].sum() == 10  # 7 + 1 of the cat, 2 of the dog
    assert_same(expected, answers(path, "duckdb"))
    assert_same(expected, answers(spark.read.parquet(str(path)), None))


class _Inserts:
    """A DuckDB connection that counts the pieces inserted into staged tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.inserts = con, 0

    def execute(self, query: str, *args: object) -> object:
        self.inserts += query.startswith("INSERT INTO veo_stage")
        return self.con.execute(query, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)


@pytest.mark.parametrize("keep", [False, True])
def test_runs_found_in_pieces_of_time_are_the_same(tmp_path: Path, monkeypatch, keep: bool) -> None:
    """DuckDB finds the near rows in pieces of creation time (here four pieces of ~72
    minutes over five copies of the tied runs an hour apart, and a pair either side of an
    edge: it fails if a piece does not read past its edges) into a temporary table: the
    same tables as pandas; with answers kept (the report) the second query reads the same
    table, else it is gone. A window as long as a piece is found in one piece."""
    monkeypatch.setattr(_duckdb.DuckDBEngine, "rows_per_piece", 17)
    copies = []
    for i in range(5):
        one = tied_runs()
        one["task_id"] = (one["task_id"].astype(str) + str(i)).astype(one["task_id"].dtype)
        one["create_time"] += pd.Timedelta(hours=i)
        one["complete_time"] += pd.Timedelta(hours=i)
        copies.append(one)
    bird = make_frame(  # one request twice, 10 minutes apart, either side of an edge
        task_id=["p", "q"],
        create_s=[4300, 4900],
        complete_s=[4400, 5000],
        status="success",
        prompt="a bird",
        model="veo3_fast",
        task_type="generate",
        resolution="720p",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
    )
    df = pd.concat([*copies, bird], ignore_index=True)
    path = export.to_parquet(df, tmp_path / "tied", partition_by="create_date")
    eng = _duckdb.DuckDBEngine(path=str(path))
    eng.answers = {} if keep else None
    pieces = _Inserts(eng._con)
    eng._con = pieces
    for prices, billed in ((None, False), ({"veo3_fast": 7}, True)):
        got = {
            "cost": analysis.cost_summary(eng, by="resolution", prices=prices, bill_failed=billed),
            "worst": worst_duplicates(eng, 20, prices=prices, bill_failed=billed),
        }
        expected = {
            "cost": analysis.cost_summary(df, by="resolution", prices=prices, bill_failed=billed),
            "worst": worst_duplicates(df, 20, prices=prices, bill_failed=billed),
        }
        assert_same(expected, got)
    assert pieces.inserts >= 3 * (1 if keep else 4)  # four pieces: a table and 3 inserts
    before = pieces.inserts
    long = analysis.cost_summary(eng, by="resolution", window="3h")
    assert_same({"long": analysis.cost_summary(df, by="resolution", window="3h")}, {"long": long})
    assert pieces.inserts == before
    staged = [k for k in (eng.answers or {}) if k[0] == "staged"]
    assert len(staged) == (2 if keep else 0)  # the 15-minute window's, the 3-hour one's
    temporary = "SELECT table_name FROM duckdb_tables() WHERE temporary"
    assert len(eng._con.sql(temporary).fetchall()) == len(staged)
    eng.forget()  # the report, done with the duplicates: the table dropped with the answers
    assert not eng.answers and not eng._con.sql(temporary).fetchall()


def test_runs_with_a_task_twice_are_the_same(tmp_path: Path) -> None:
    """A task's row twice (a source not deduplicated): DuckDB tells the rows apart by
    their place in the dataset, not by task id, and the tables equal pandas'."""
    df = tied_runs()
    df = pd.concat([df, df.iloc[[2, 5]]], ignore_index=True)
    path = export.to_parquet(df, tmp_path / "twice", partition_by="create_date")
    for source, name in ((df, "pandas"), (path, "duckdb")):
        got = {
            "cost": analysis.cost_summary(source, by="resolution", engine=name),
            "worst": worst_duplicates(source, 20, engine=name),
        }
        if name == "pandas":
            expected = got
    assert expected["cost"]["duplicates"].sum() == 12
    assert_same(expected, got)


def test_a_staged_table_is_dropped_when_its_query_fails(tmp_path: Path) -> None:
    """A staged table not kept (an error in the block, answers kept or not) is gone."""
    path = export.to_parquet(tied_runs(), tmp_path / "tied", partition_by="create_date")
    eng = _duckdb.DuckDBEngine(path=str(path))
    eng.answers = {}
    rows = f"SELECT {eng.us('create_time')} AS t FROM {eng.src}"
    with pytest.raises(KeyboardInterrupt), eng.staged(("k",), "create_time", lambda a, b: rows):
        raise KeyboardInterrupt
    assert not eng.answers
    assert not eng._con.sql("SELECT * FROM duckdb_tables() WHERE temporary").fetchall()


@pytest.mark.parametrize("name", ["pandas", "duckdb"])
def test_duplicates_without_a_model_column_have_none(frame: pd.DataFrame, name: str) -> None:
    """A source with no ``model`` column: the tables leave the column out, never blank."""
    bare = frame.drop(columns=["model"])
    worst = worst_duplicates(bare, 5, engine=name)
    every = analysis.duplicate_submissions(bare, engine=name)
    assert len(worst) and len(every)
    assert "model" not in worst.columns and "model" not in every.columns
    assert not worst.drop(columns=["credits"]).isna().any().any()  # unpriced: NaN credits


def test_duckdb_dataset_equals_pandas(dataset: Path, pandas_tables) -> None:
    assert engine.resolve(dataset, "duckdb").name == "duckdb"
    assert_same(pandas_tables, tables(dataset, "duckdb"))


def test_duckdb_relation_equals_pandas(dataset: Path, pandas_tables) -> None:
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{dataset}/**/*.parquet', hive_partitioning=true)")
    assert engine.resolve(rel).name == "duckdb"
    assert_same(pandas_tables, tables(rel, None))


def test_a_dataset_whose_files_differ_is_read_by_column_name(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Files written before a column existed: read by name (missing values where absent)."""
    (tmp_path / "h").mkdir()
    export.to_parquet(frame.iloc[100:300], tmp_path / "h" / "b.parquet")
    whole = export.to_parquet(frame.iloc[:100], tmp_path / "a.parquet")
    table = pq.read_table(whole)
    pq.write_table(table.drop_columns(["credits_consumed"]), tmp_path / "h" / "a.parquet")
    got = analysis.failure_rates(tmp_path / "h", engine="duckdb", upgrades="pooled")
    assert int(got["n"].sum()) == int(frame.iloc[:300]["status"].isin(TERMINAL).sum())
    eng = _duckdb.DuckDBEngine(path=str(tmp_path / "h"))
    assert eng.count() == 300 and "credits_consumed" in eng.columns()
    assert not _duckdb.DuckDBEngine(path=str(tmp_path / "a.parquet"))._mixed(str(whole))


def test_dataset_by_default_is_read_by_size(dataset: Path, monkeypatch) -> None:
    assert engine.resolve(dataset).name == "pandas"  # N is below the threshold
    monkeypatch.setattr(_source, "PANDAS_MAX_ROWS", N // 2)
    assert engine.resolve(dataset).name == "duckdb"


def test_no_engine_path_pulls_the_source_into_pandas(
    dataset: Path, frame: pd.DataFrame, duckdb_answers: list[int]
) -> None:
    """Only aggregates come back: every way DuckDB has of returning a whole relation as
    pandas raises, and every result is small; the largest are Kaplan–Meier's event-time
    counts (one row per distinct latency of a group: what its product-limit step needs)
    and expiring's answer itself (every succeeded task past its deletion date)."""
    sizes = duckdb_answers
    tables(dataset, "duckdb")
    big = [n for n in sizes if n > N // 3]  # the rest: counts, bins, the values of a few bins
    assert len(big) == 3  # km_latency's and km_curve's event-time counts, expiring's rows
    timed = frame.dropna(subset=["latency_s"])
    distinct = max(
        timed.groupby(k, dropna=False, observed=True)["latency_s"].nunique().sum()
        for k in ("model", "task_type")
    )
    running = int((frame["status"] == "generating").sum())
    assert max(big) <= distinct + running  # distinct (group, time) pairs, not rows


def test_unknown_engine_and_source_are_one_line_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="engine: 'polars' is not one of"):
        analysis.latency_summary(frame, engine="polars")
    with pytest.raises(InputError, match="is not a source of tasks"):
        analysis.latency_summary(42)
    with pytest.raises(InputError, match="calendar bucket the duckdb engine does not cut"):
        analysis.failure_rates(frame, freq="MS", engine="duckdb")
    with pytest.raises(InputError, match="one category per row"):
        analysis.classify_errors(Path("x.parquet"))


def test_a_store_is_read_through_its_frame_dataset(tmp_path: Path) -> None:
    """A Store (or its path) is analysed over the dataset kept beside it: the same tables
    as the frame read from the store, on pandas and on DuckDB."""
    import orjson

    from veo_notebook import frame as frame_mod
    from veo_notebook.simulator import corpus
    from veo_notebook.store import Store

    path = tmp_path / "h.sqlite"
    with Store(path) as st:
        envs = corpus.iter_envelopes(3000, seed=2)
        st.put_many([(e["data"]["taskId"], orjson.dumps(e).decode(), 1e9, None) for e in envs])
        df = frame_mod.from_store(st)
        expected = analysis.latency_summary(df, by="model")
        assert engine.resolve(st).name == "pandas"
        pd.testing.assert_frame_equal(analysis.latency_summary(st, by="model"), expected)
    got = analysis.latency_summary(path, by="model", engine="duckdb")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    rates = analysis.failure_rates(str(path), by="task_type", engine="duckdb")
    pd.testing.assert_frame_equal(rates, analysis.failure_rates(df, by="task_type"))


def test_cli_store_info_and_export_on_duckdb(tmp_path: Path, capsys) -> None:
    import orjson

    from veo_notebook import frame as frame_mod
    from veo_notebook.cli import main
    from veo_notebook.simulator import corpus
    from veo_notebook.store import Store

    path = tmp_path / "h.sqlite"
    with Store(path) as st:
        envs = corpus.iter_envelopes(2000, seed=4)
        st.put_many([(e["data"]["taskId"], orjson.dumps(e).decode(), 1e9, None) for e in envs])
        df = frame_mod.from_store(st)
    assert main(["store", "info", "--store", str(path), "--engine", "duckdb"]) == 0
    out = capsys.readouterr().out
    assert f"({len(df):,} tasks, read by duckdb)" in out and "upgrade task" in out
    target = tmp_path / "all.parquet"
    assert main(["export", "--store", str(path), "--engine", "duckdb", "--out", str(target)]) == 0
    back = export.read_parquet(target).sort_values("task_id", ignore_index=True)
    pd.testing.assert_frame_equal(back, df.sort_values("task_id", ignore_index=True))


# --- the report's tables at 100k tasks: pandas, DuckDB and Spark, cell by cell ----------
BIG = 100_000

#: Every table the report shows (its sections call these, by model).
REPORT_CALLS = [
    ("latency", lambda s: analysis.latency_summary(s, by="model")),
    ("latency_type", lambda s: analysis.latency_summary(s, by="task_type")),
    ("km", lambda s: analysis.km_latency(s, by="model", percentiles=(0.5, 0.9), now=NOW)),
    ("rates", lambda s: analysis.failure_rates(s, by="model")),
    ("rates_day", lambda s: analysis.failure_rates(s, by="model", freq="1D")),
    ("stuck", lambda s: analysis.stuck_tasks(s, now=NOW).reset_index(drop=True)),
    ("cost", lambda s: analysis.cost_summary(s, by="model")),
    ("duplicates", lambda s: analysis.duplicate_submissions(s)),
    ("expiring", lambda s: analysis.expiring(s, within="3D", now=NOW)),
]


def report_tables(source: object) -> dict[str, pd.DataFrame]:
    out = {name: call(source) for name, call in REPORT_CALLS}
    fb = analysis.failure_breakdown(source, top=5)
    out.update({f"breakdown_{t}": getattr(fb, t) for t in BREAKDOWN})
    return out


def test_report_tables_at_100k_are_identical_on_pandas_duckdb_and_spark(
    spark, tmp_path: Path
) -> None:
    big = history(BIG, seed=7)
    path = export.to_parquet(big, tmp_path / "big", partition_by="create_date")
    expected = report_tables(big)
    assert_same(expected, report_tables(_duckdb.DuckDBEngine(path=str(path))))
    tasks = spark.read.parquet(str(path)).cache()  # read once: each table is a few jobs
    assert_same(expected, report_tables(tasks))
    tasks.unpersist()


def test_duckdb_unifies_the_files_schemas_only_when_they_differ(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    pd.DataFrame({"task_id": ["a"], "status": ["success"]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"task_id": ["b"]}).to_parquet(folder / "b.parquet")  # an older file
    one = _duckdb.DuckDBEngine(path=str(folder / "a.parquet"))
    assert not one._mixed(_duckdb.parquet_glob(str(folder / "a.parquet")))
    eng = _duckdb.DuckDBEngine(path=str(folder))
    assert eng._mixed(_duckdb.parquet_glob(str(folder)))
    assert eng.count() == 2 and "status" in eng.columns()


@pytest.mark.parametrize("rows_per_piece", [None, 1000])
def test_kaplan_meier_counts_merge_ties_the_same_on_every_engine(
    tmp_path: Path, monkeypatch, rows_per_piece: int | None
) -> None:
    """The event and censoring counts come back per (group, time) from the engine (in
    one piece, or in four: each piece the times that hash to it) and are merged with
    the still-generating tasks' ages in compact arrays: with whole-second times (ties
    within a group, and between a success and a running task's age) the curve and the
    quantiles are the same, cell for cell, on pandas and DuckDB, for every grouping and
    either rule for failures."""
    monkeypatch.setattr(_duckdb.DuckDBEngine, "rows_per_piece", rows_per_piece)
    df = history(4000, seed=11)
    df["latency_s"] = df["latency_s"].round()
    running = (df["status"] == "generating").to_numpy()
    assert running.any()
    df.loc[running, "create_time"] = NOW - pd.to_timedelta(
        df.loc[running, "latency_s"].fillna(30).round().to_numpy(), unit="s"
    )
    path = export.to_parquet(df, tmp_path / "ties", partition_by="create_date")
    duck = _duckdb.DuckDBEngine(path=str(path))
    for by in (None, "model", ["model", "task_type"]):
        for failed in ("censor", "exclude"):
            curve = analysis.km_curve(df, by=by, now=NOW, failed=failed)
            both = (curve["events"] > 0) & (curve["censored"] > 0)
            assert both.any()  # ties merged: successes and censored tasks at one time
            pd.testing.assert_frame_equal(
                curve, analysis.km_curve(duck, by=by, now=NOW, failed=failed), check_exact=True
            )
            km = analysis.km_latency(df, by=by, now=NOW, failed=failed, upgrades="pooled")
            got = analysis.km_latency(duck, by=by, now=NOW, failed=failed, upgrades="pooled")
            pd.testing.assert_frame_equal(km, got, check_exact=True)


def test_an_engine_keeping_answers_asks_only_the_ranks_it_lacks(dataset: Path) -> None:
    """With :attr:`Engine.answers` set (as the report does), the naive percentiles
    km_latency asks after latency_summary come from the values kept: no second query,
    the same tables."""
    plain = _duckdb.DuckDBEngine(path=str(dataset))
    expected = analysis.km_latency(plain, by="model", percentiles=(0.5, 0.9), now=NOW)
    eng = _duckdb.DuckDBEngine(path=str(dataset))
    eng.answers = {}
    analysis.latency_summary(eng, by="model", percentiles=(0.5, 0.9, 0.99))
    asked: list[str] = []
    fetch = eng._fetch
    eng._fetch = lambda sql: asked.append(sql) or fetch(sql)  # type: ignore[method-assign]
    got = analysis.km_latency(eng, by="model", percentiles=(0.5, 0.9), now=NOW)
    pd.testing.assert_frame_equal(expected, got, check_exact=True)
    assert not any(sql.startswith("WITH v AS") for sql in asked)  # no rank query


def test_duckdb_memory_is_bounded_and_spills_into_its_own_folder(dataset: Path) -> None:
    eng = _duckdb.DuckDBEngine(path=str(dataset))
    limit, spill = eng._con.sql(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()[0]
    default = duckdb.connect().sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit != default
    assert Path(spill).is_dir() and Path(spill) != Path.cwd() / ".tmp"
    del eng
    import gc

    gc.collect()
    assert not Path(spill).exists()
