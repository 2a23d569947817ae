"""Parquet file and hive dataset round trips, metadata and versions, CSV, and the export CLI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest

from veo_notebook import __version__, cli, schema
from veo_notebook.errors import InputError, SchemaVersionError
from veo_notebook.export import read_parquet, to_csv, to_parquet
from veo_notebook.frame import from_raw, from_store, to_frame
from veo_notebook.simulator import corpus
from veo_notebook.store import Store


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """A realistic frame with every dtype in use, plus rows that are mostly NA."""
    texts = list(corpus.iter_raw_texts(600, time_format="mixed"))
    df = from_raw(texts, fetched_at=[1.77e9 + i for i in range(len(texts))])
    odd = to_frame(
        [
            {
                "task_id": "gone",
                "raw": None,
                "fetched_at": 1.77e9,
                "fetch_error": "422 record is null.",
            },
            {"taskId": "weird", "successFlag": 9, "paramJson": "{bad", "extraKey": [1, 2]},
        ]
    )
    return schema.enforce(pd.concat([df, odd], ignore_index=True))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = df.sort_values(["create_time", "task_id"], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def test_file_round_trip_is_exact(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = to_parquet(frame, tmp_path / "tasks.parquet")
    assert path == tmp_path / "tasks.parquet"
    back = read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)
    assert back["status"].cat.categories.tolist() == schema.STATUS_CATEGORIES
    assert str(back["create_time"].dt.tz) == "UTC"
    meta = pq.read_schema(path).metadata
    assert meta[b"veo_notebook.schema_version"] == str(schema.SCHEMA_VERSION).encode()
    assert meta[b"veo_notebook.version"] == __version__.encode()
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("partition_by", ["create_date", "model", "status"])
def test_dataset_round_trip(frame: pd.DataFrame, tmp_path: Path, partition_by: str) -> None:
    to_parquet(frame, tmp_path / "ds", partition_by=partition_by)
    assert any(p.name.startswith(f"{partition_by}=") for p in (tmp_path / "ds").iterdir())
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "ds"), _sorted(frame))


def test_dataset_appends_a_day_without_rewriting_the_others(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    day = frame["create_time"].dt.strftime("%Y-%m-%d")
    last = day.dropna().max()
    old, new = frame[day != last], frame[day == last]
    ds = tmp_path / "ds"
    to_parquet(old, ds, partition_by="create_date")
    before = {p: p.stat().st_mtime_ns for p in ds.rglob("*.parquet")}
    to_parquet(new, ds, partition_by="create_date")
    after = {p: p.stat().st_mtime_ns for p in ds.rglob("*.parquet")}
    assert all(after.get(p) == t for p, t in before.items())  # old days untouched
    assert len(after) > len(before)
    pd.testing.assert_frame_equal(read_parquet(ds), _sorted(frame))
    to_parquet(new, ds, partition_by="create_date")  # the same day again: replaced, not doubled
    assert len(read_parquet(ds)) == len(frame)


def test_duckdb_and_pyarrow_dataset_read_it_unchanged(frame: pd.DataFrame, tmp_path: Path) -> None:
    ds = to_parquet(frame, tmp_path / "ds", partition_by="create_date")
    table = pds.dataset(ds, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(frame)
    assert table.schema.field("result_urls").type == pa.list_(pa.string())
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT status, count(*) FROM read_parquet('{ds}/**/*.parquet', hive_partitioning=true) "
        "GROUP BY status"
    ).fetchall()
    expected = frame["status"].value_counts(dropna=False)
    assert {k: v for k, v in rows} == {
        (None if pd.isna(k) else k): v for k, v in expected.items() if v
    }
    ids = con.sql(
        f"SELECT task_id FROM read_parquet('{ds}/**/*.parquet') ORDER BY task_id"
    ).fetchall()
    assert [i for (i,) in ids] == sorted(frame["task_id"].dropna().tolist()) + [None] * frame[
        "task_id"
    ].isna().sum()


def test_newer_schema_version_is_refused(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = to_parquet(frame.head(3), tmp_path / "t.parquet")
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"veo_notebook.schema_version"] = str(schema.SCHEMA_VERSION + 1).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(SchemaVersionError, match="upgrade"):
        read_parquet(path)


def test_foreign_files(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a"], "x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(InputError, match="no task_id"):
        read_parquet(tmp_path / "other.parquet")
    pq.write_table(
        pa.table({"task_id": ["a", "b"], "success_flag": [1, 2]}), tmp_path / "ours.parquet"
    )
    df = read_parquet(tmp_path / "ours.parquet")  # schema enforced: the rest is NA
    assert list(df.columns) == schema.column_names() and df.dtypes.to_dict() == schema.dtypes()
    assert df["success_flag"].tolist() == [1, 2] and df["status"].isna().all()
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_parquet(tmp_path / "junk.parquet")
    with pytest.raises(InputError, match="no such"):
        read_parquet(tmp_path / "missing.parquet")
    with pytest.raises(InputError, match="cannot partition"):
        to_parquet(schema.empty_frame(), tmp_path / "ds", partition_by="nope")


def test_csv_lists_as_json(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = to_csv(frame, tmp_path / "t.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(back) == len(frame) and list(back.columns) == list(frame.columns)
    i = int(frame["result_urls"].notna().to_numpy().argmax())
    assert json.loads(back.loc[i, "result_urls"]) == list(frame.loc[i, "result_urls"])
    assert back.loc[i, "create_time"].endswith("Z")


def test_csv_escapes_formula_cells_but_not_ids(tmp_path: Path) -> None:
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": ["-id1", "id2", "id3"],
                "prompt": ['=HYPERLINK("http://x")', "+1", "a calm sea"],
                "error_message": ["@SUM(A1)", None, "-minus"],
            }
        )
    )
    back = pd.read_csv(to_csv(df, tmp_path / "t.csv"), dtype=str, keep_default_na=False)
    assert back["task_id"].tolist() == ["-id1", "id2", "id3"]
    assert back["prompt"].tolist() == ['\'=HYPERLINK("http://x")', "'+1", "a calm sea"]
    assert back["error_message"].tolist() == ["'@SUM(A1)", "", "'-minus"]
    raw = pd.read_csv(
        to_csv(df, tmp_path / "raw.csv", escape_formulas=False), dtype=str, keep_default_na=False
    )
    assert raw["prompt"].tolist() == ['=HYPERLINK("http://x")', "+1", "a calm sea"]


@pytest.mark.parametrize("partition", [None, "create_date", "status"])
def test_cli_export(
    tmp_path: Path, partition: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = list(corpus.iter_raw_texts(50))
    with Store(tmp_path / "s.db") as store:
        for t in texts:
            store.put(json.loads(t)["data"]["taskId"], t, fetched_at=1.77e9)
        expected = from_store(store)
    out = tmp_path / ("ds" if partition else "t.parquet")
    argv = ["export", "--store", str(tmp_path / "s.db"), "--out", str(out)]
    assert cli.main([*argv, "--partition-by", partition] if partition else argv) == 0
    assert "wrote 50 rows" in capsys.readouterr().out
    back = read_parquet(out)  # a store's file holds its rows day by day
    pd.testing.assert_frame_equal(_sorted(back), _sorted(expected))


def test_atomic_path_leaves_no_partial_file_under_the_final_name(tmp_path: Path) -> None:
    from veo_notebook.export import atomic_path

    final = tmp_path / "t.parquet"
    final.write_bytes(b"the old file")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_bytes(b"half a new fi")
        raise RuntimeError("the disk filled up")
    assert final.read_bytes() == b"the old file"  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]  # no temporary left
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


# --- every reader opens what we write, as it is ------------------------------------------
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PROBE = ["task_id", "status", "create_time", "result_urls", "success_flag"]
Row = tuple[Any, ...]


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _micros(t: Any) -> int | None:
    """A time from any reader as epoch microseconds (a naive one is UTC wall time)."""
    if _missing(t):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int((t - _EPOCH) // dt.timedelta(microseconds=1))


def _canon(rows: Iterable[Sequence[Any]]) -> list[Row]:
    """Rows of the probe columns, made comparable across readers (NA → None, lists → lists)."""
    out = []
    for task_id, status, created, urls, flag in rows:
        out.append(
            (
                None if _missing(task_id) else str(task_id),
                None if _missing(status) else str(status),
                _micros(created),
                None if _missing(urls) else [str(u) for u in urls],
                None if _missing(flag) else int(flag),
            )
        )
    return sorted(out, key=lambda r: (r[0] or "", r[2] or 0))


def _pandas_rows(df: pd.DataFrame) -> list[Row]:
    return _canon(df[_PROBE].astype(object).itertuples(index=False, name=None))


def _read_pandas(path: Path, spark: Any) -> list[Row]:
    df = pd.read_parquet(path)
    assert str(df["create_time"].dtype) == "datetime64[us, UTC]"
    assert str(df["success_flag"].dtype) == "Int64" and str(df["fallback"].dtype) == "boolean"
    assert isinstance(df["status"].dtype, pd.CategoricalDtype)
    return _pandas_rows(df)


def _read_dask(path: Path, spark: Any) -> list[Row]:
    import dask.dataframe as dd

    return _pandas_rows(dd.read_parquet(path).compute())


def _read_polars(path: Path, spark: Any) -> list[Row]:
    import polars as pl

    if path.is_dir():
        df = pl.read_parquet(path / "**" / "*.parquet", hive_partitioning=True)
    else:
        df = pl.read_parquet(path)
    assert df.schema["create_time"] == pl.Datetime("us", "UTC")
    return _canon(df.select(_PROBE).rows())


def _read_duckdb(path: Path, spark: Any) -> list[Row]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = f"{path}/**/*.parquet" if path.is_dir() else str(path)
    rel = con.sql(f"SELECT {', '.join(_PROBE)} FROM read_parquet('{glob}', hive_partitioning=true)")
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["create_time"] == "TIMESTAMP WITH TIME ZONE"
    return _canon(rel.fetchall())


def _read_pyarrow(path: Path, spark: Any) -> list[Row]:
    if path.is_dir():
        table = pds.dataset(path, format="parquet", partitioning="hive").to_table()
    else:
        table = pq.read_table(path)
    assert table.schema.field("create_time").type == pa.timestamp("us", tz="UTC")
    return _canon(zip(*(table.column(c).to_pylist() for c in _PROBE), strict=True))


def _read_spark(path: Path, spark: Any) -> list[Row]:
    df = spark.read.parquet(str(path))
    assert df.schema["create_time"].dataType.typeName() == "timestamp"
    return _canon(tuple(r) for r in df.select(*_PROBE).collect())


READERS = [
    pytest.param(_read_pandas, id="pandas"),
    pytest.param(
        _read_dask,  # dask's own code still passes inplace= to pandas 3.1
        marks=pytest.mark.filterwarnings("ignore:The inplace keyword:pandas.errors.Pandas4Warning"),
        id="dask",
    ),
    pytest.param(_read_polars, id="polars"),
    pytest.param(_read_duckdb, id="duckdb"),
    pytest.param(_read_pyarrow, id="pyarrow"),
    pytest.param(_read_spark, id="spark"),
]


@pytest.fixture(scope="module")
def written(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The frame as one file and as a hive dataset by creation day, written once."""
    base = tmp_path_factory.mktemp("written")
    return {
        "file": to_parquet(frame, base / "tasks.parquet"),
        "dataset": to_parquet(frame, base / "ds", partition_by="create_date"),
    }


def _lazy_spark(request: pytest.FixtureRequest, reader: Any) -> Any:
    """The session Spark fixture, started only for the Spark reader."""
    return request.getfixturevalue("spark") if reader is _read_spark else None


@pytest.mark.parametrize("kind", ["file", "dataset"])
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_opens_what_we_write(
    frame: pd.DataFrame,
    written: dict[str, Path],
    kind: str,
    reader: Any,
    request: pytest.FixtureRequest,
) -> None:
    rows = reader(written[kind], _lazy_spark(request, reader))
    assert rows == _pandas_rows(frame)
    assert any(r[2] is None for r in rows) and any(r[3] for r in rows)  # the hard rows are in


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_opens_the_sample(reader: Any, request: pytest.FixtureRequest) -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "sample_tasks.parquet"
    rows = reader(sample, _lazy_spark(request, reader))
    assert rows == _pandas_rows(read_parquet(sample))
    assert len(rows) == 3000


def test_times_are_microseconds_utc_on_disk(written: dict[str, Path]) -> None:
    for kind, path in written.items():
        files = [path] if kind == "file" else sorted(path.rglob("*.parquet"))
        for f in files:
            parquet = pq.ParquetFile(f).schema
            for i in range(len(parquet)):
                col = parquet.column(i)
                if col.logical_type.type == "TIMESTAMP":
                    logical = json.loads(col.logical_type.to_json())
                    assert logical["timeUnit"] == "microseconds" and logical["isAdjustedToUTC"]


# --- the dataset to anywhere fsspec reaches: S3 for real (moto on loopback) -----------------
def _s3_options(s3: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": s3["creds"]["aws_access_key_id"],
        "secret": s3["creds"]["aws_secret_access_key"],
        "client_kwargs": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"},
    }


def _bucket(s3: dict[str, Any], name: str) -> Any:
    import boto3

    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name="us-east-1", **s3["creds"])
    client.create_bucket(Bucket=name)
    return client


def _read_s3(s3: dict[str, Any], url: str) -> pd.DataFrame:
    """A dataset on S3 read back through pyarrow and s3fs, as the typed frame, sorted."""
    import s3fs

    from veo_notebook.frame import _parquet, _roots

    fs = s3fs.S3FileSystem(**_s3_options(s3))
    table = pds.dataset(url.removeprefix("s3://"), filesystem=fs, partitioning="hive").to_table()
    df = _parquet.to_frame(table.drop_columns(["create_date"]))
    if df["root_task_id"].isna().all():  # a store's dataset leaves the roots to its reader
        _roots.assign(df)
    return _sorted(df)


def _store_of(path: Path, texts: list[str]) -> Path:
    with Store(path) as store:
        store.put_many([(json.loads(t)["data"]["taskId"], t, 1.77e9, None) for t in texts])
        store.put("unread", None, fetched_at=1.77e9, fetch_error="422 record is null.")
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_frame_and_store_datasets_to_s3(
    frame: pd.DataFrame, tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from veo_notebook.export import export_store
    from veo_notebook.frame import dataset

    client = _bucket(s3, "frames")
    url = to_parquet(
        frame, "s3://frames/ds", partition_by="create_date", storage_options=_s3_options(s3)
    )
    assert url == "s3://frames/ds"
    pd.testing.assert_frame_equal(_read_s3(s3, url), _sorted(frame))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="frames")["Contents"]]
    assert all(k.startswith("ds/create_date=") and k.endswith("/part-0.parquet") for k in keys)
    assert "ds/create_date=none/part-0.parquet" in keys  # rows without a creation time kept

    monkeypatch.setattr(dataset, "BLOCK_ROWS", 64)  # many blocks: the build streams them
    monkeypatch.setattr(dataset, "BUFFER_ROWS", 100)
    texts = list(corpus.iter_raw_texts(500, time_format="mixed"))
    with Store(_store_of(tmp_path / "s.sqlite", texts)) as store:
        rows = export_store(store, "s3://frames/store", storage_options=_s3_options(s3))
        expected = from_store(store, cache=False)
    assert rows == len(expected) == 501
    pd.testing.assert_frame_equal(_read_s3(s3, "s3://frames/store"), _sorted(expected))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cli_export_to_s3(
    tmp_path: Path,
    s3: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _bucket(s3, "cli")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3["creds"]["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3["creds"]["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = _store_of(tmp_path / "s.sqlite", list(corpus.iter_raw_texts(80)))
    argv = ["export", "--store", str(store), "--out", "s3://cli/veo"]
    assert cli.main([*argv, "--partition-by", "create_date"]) == 0
    assert "wrote 81 rows to s3://cli/veo" in capsys.readouterr().out
    with Store(store) as st:
        pd.testing.assert_frame_equal(_read_s3(s3, "s3://cli/veo"), _sorted(from_store(st)))
    assert cli.main(argv) == 2  # a URL takes a dataset or a .parquet file: one line
    assert "--partition-by create_date" in capsys.readouterr().err
    assert cli.main(["export", "--store", str(store), "--out", "s3://cli/t.parquet"]) == 0
    assert "wrote 81 rows to s3://cli/t.parquet" in capsys.readouterr().out
    assert len(read_parquet("s3://cli/t.parquet")) == 81


@pytest.fixture(scope="module")
def store_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A store's own dataset (``frame.dataset.sync``) and the store's frame."""
    from veo_notebook.frame import dataset

    texts = list(corpus.iter_raw_texts(300, time_format="mixed"))
    path = _store_of(tmp_path_factory.mktemp("store") / "s.sqlite", texts)
    with Store(path) as store:
        return dataset.sync(store), from_store(store, cache=False)


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_opens_the_store_dataset(
    store_dataset: tuple[Path, pd.DataFrame], reader: Any, request: pytest.FixtureRequest
) -> None:
    root, expected = store_dataset
    assert reader(root, _lazy_spark(request, reader)) == _pandas_rows(expected)
    pd.testing.assert_frame_equal(read_parquet(root), _sorted(expected))


@pytest.mark.parametrize("partition", [None, "create_date", "model"])
def test_store_export_carries_each_tasks_root(tmp_path: Path, partition: str | None) -> None:
    from veo_notebook.export import export_store
    from veo_notebook.frame import dataset

    texts = list(corpus.iter_raw_texts(600, time_format="mixed"))
    with Store(_store_of(tmp_path / "s.sqlite", texts)) as store:
        out = tmp_path / ("ds" if partition else "t.parquet")
        assert export_store(store, out, partition_by=partition) == 601
        expected = from_store(store, cache=False)
        days = pd.read_parquet(dataset.sync(store))
    assert days["root_task_id"].isna().all()  # the store's own files leave roots to readers
    pd.testing.assert_frame_equal(_sorted(read_parquet(out)), _sorted(expected))
    got = pd.read_parquet(out)  # as a colleague opens it, without veo-notebook
    want = dict(zip(expected["task_id"], expected["root_task_id"], strict=True))
    assert dict(zip(got["task_id"], got["root_task_id"], strict=True)) == want
    deep = expected["parent_task_id"].isin(expected["task_id"]) & expected["parent_task_id"].notna()
    parents = expected.set_index("task_id")["parent_task_id"]
    assert deep.any() and parents.reindex(expected.loc[deep, "parent_task_id"]).notna().any()


def test_store_export_by_a_column_of_many_values_is_refused_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veo_notebook import export

    monkeypatch.setattr(export, "MAX_PARTITIONS", 10)
    store = _store_of(tmp_path / "s.sqlite", list(corpus.iter_raw_texts(40)))
    with pytest.raises(InputError, match="more than 10 values"):
        export.export_store(store, tmp_path / "ds", partition_by="task_id")
    with pytest.raises(InputError, match="not a column"):
        export.export_store(store, tmp_path / "ds", partition_by="colour")
    assert not (tmp_path / "ds").exists()  # nothing half written
    assert not [p for p in tmp_path.iterdir() if ".stage-" in p.name]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_store_exported_to_s3_reads_back_and_is_analysed_there(
    tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import veo_notebook as veo
    from veo_notebook.export import export_store

    _bucket(s3, "analysed")
    for name, value in {
        "AWS_ENDPOINT_URL": s3["endpoint"],
        "AWS_ACCESS_KEY_ID": s3["creds"]["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3["creds"]["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    store = _store_of(tmp_path / "s.sqlite", list(corpus.iter_raw_texts(300)))
    export_store(store, "s3://analysed/ds")
    export_store(store, "s3://analysed/t.parquet", partition_by=None)
    with Store(store) as st:
        expected = _sorted(from_store(st))
    for url in ("s3://analysed/ds", "s3://analysed/t.parquet"):
        pd.testing.assert_frame_equal(_sorted(read_parquet(url)), expected)
        for call in (veo.latency_summary, veo.failure_rates, veo.cost_summary):
            pd.testing.assert_frame_equal(call(url, engine="duckdb"), call(expected))
    opts = _s3_options(s3)
    assert len(read_parquet("s3://analysed/t.parquet", storage_options=opts)) == 301
    with pytest.raises(InputError, match="no such Parquet file or dataset: s3://analysed/none"):
        read_parquet("s3://analysed/none")
    with pytest.raises(InputError, match="not a readable Parquet file or dataset"):
        veo.latency_summary("s3://analysed/none", engine="duckdb")


@pytest.fixture(scope="module")
def store_exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], pd.DataFrame]:
    """A store streamed out by ``export_store``: one file, by day, by model; its frame."""
    from veo_notebook.export import export_store

    base = tmp_path_factory.mktemp("exports")
    texts = list(corpus.iter_raw_texts(300, time_format="mixed"))
    path = _store_of(base / "s.sqlite", texts)
    outs = {"file": base / "t.parquet", "create_date": base / "by-day", "model": base / "by-model"}
    for kind, out in outs.items():
        export_store(path, out, partition_by=None if kind == "file" else kind)
    with Store(path) as store:
        return outs, from_store(store, cache=False)


@pytest.mark.parametrize("kind", ["file", "create_date", "model"])
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_opens_a_store_export(
    store_exports: tuple[dict[str, Path], pd.DataFrame],
    kind: str,
    reader: Any,
    request: pytest.FixtureRequest,
) -> None:
    outs, expected = store_exports
    assert reader(outs[kind], _lazy_spark(request, reader)) == _pandas_rows(expected)


def test_store_export_to_csv_streams_what_to_csv_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veo_notebook.export import export_store
    from veo_notebook.frame import _stream

    monkeypatch.setattr(_stream, "BATCH_ROWS", 50)  # many batches: one header
    texts = list(corpus.iter_raw_texts(300, time_format="mixed"))
    store = _store_of(tmp_path / "s.sqlite", texts)
    assert export_store(store, tmp_path / "streamed.csv", partition_by=None) == 301
    with Store(store) as st:
        to_csv(from_store(st), tmp_path / "whole.csv")

    def back(name: str) -> pd.DataFrame:
        df = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False)
        return df.sort_values("task_id", ignore_index=True)

    pd.testing.assert_frame_equal(back("streamed.csv"), back("whole.csv"))
    with Store(tmp_path / "empty.sqlite"):
        pass
    assert export_store(tmp_path / "empty.sqlite", tmp_path / "e.csv", partition_by=None) == 0
    assert (tmp_path / "e.csv").read_text().startswith("task_id,")
