"""The frame dataset beside a store file, as from_store's cache: correct after every write."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import veo_notebook.frame as frame
from veo_notebook import schema
from veo_notebook.errors import InputError, StoreNotFoundError
from veo_notebook.export import read_parquet
from veo_notebook.frame import dataset
from veo_notebook.store import Store


def _env(flag: int, prompt: str = "a cat") -> str:
    data = {"successFlag": flag, "createTime": "2025-06-06 10:25:00"}
    data["paramJson"] = json.dumps({"prompt": prompt})
    return json.dumps({"code": 200, "msg": "success", "data": data})


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "h.sqlite") as st:
        st.put_many([(f"t{i}", _env(i % 4), float(i), None) for i in range(200)])
        yield st


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts each parse got."""
    seen: list[int] = []
    real = frame.from_raw

    def spy(texts: Any, *a: Any, **kw: Any) -> pd.DataFrame:
        seen.append(len(texts))
        return real(texts, *a, **kw)

    monkeypatch.setattr(frame, "from_raw", spy)
    return seen


def _truth(st: Store) -> pd.DataFrame:
    return frame.from_store(st, cache=False)


def test_a_second_open_parses_nothing_and_gives_the_same_frame(store, parsed) -> None:
    first = frame.from_store(store)
    assert (dataset.path_for(store) / ".veo-state.arrow").exists()
    again = frame.from_store(store)
    assert parsed == [200]  # the second open parsed nothing
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(again, _truth(store))


def test_added_changed_and_deleted_records_are_all_seen(store, parsed) -> None:
    frame.from_store(store)
    store.put("new", _env(1, "a dog"), fetched_at=500.0)
    store.put("t3", _env(1, "changed"), fetched_at=501.0)
    with sqlite3.connect(store.path) as conn:  # a writer that is not this code
        conn.execute("DELETE FROM records WHERE task_id = 't7'")
    df = frame.from_store(store)
    assert parsed[-1] == 2  # only the new and the changed record were parsed
    pd.testing.assert_frame_equal(df, _truth(store))
    row = df.set_index("task_id").loc["t3"]
    assert row["prompt"] == "changed" and row["status"] == "success"
    assert "t7" not in set(df["task_id"]) and df["task_id"].iloc[-1] == "new"


def test_a_parser_version_bump_invalidates_the_cache(store, parsed, monkeypatch) -> None:
    frame.from_store(store)
    monkeypatch.setattr(dataset, "PARSER_VERSION", dataset.PARSER_VERSION + 1)
    df = frame.from_store(store)
    assert parsed == [200, 200]  # everything parsed again
    pd.testing.assert_frame_equal(df, _truth(store))


def test_a_deleted_or_broken_dataset_loses_nothing(store, parsed) -> None:
    first = frame.from_store(store)
    root = dataset.path_for(store)
    state = root / ".veo-state.arrow"
    state.unlink()
    pd.testing.assert_frame_equal(frame.from_store(store), first)
    state.write_bytes(b"not arrow")
    pd.testing.assert_frame_equal(frame.from_store(store), first)
    day = next(root.glob("create_date=*/part-0.parquet"))
    day.write_bytes(b"not parquet")  # a day broken by hand: its id no longer matches
    store.put("t5", _env(2, "after the damage"), fetched_at=900.0)
    pd.testing.assert_frame_equal(frame.from_store(store), _truth(store))
    for p in list(root.iterdir()):  # the whole folder gone
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    root.rmdir()
    pd.testing.assert_frame_equal(frame.from_store(store), _truth(store))
    assert not list(root.rglob("*.tmp")) and not list(root.parent.glob(".*build*"))


def test_concurrent_writers_never_make_it_serve_a_stale_row(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Store(path) as st:
        st.put_many([(f"t{i}", _env(0), 0.0, None) for i in range(100)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with Store(path) as w:
                for n in range(40):
                    w.put_many([(f"t{(k * 50 + n) % 100}", _env(1, f"w{k}-{n}"), 1.0, None)])
                    w.put(f"w{k}-{n}", _env(2), fetched_at=2.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    with Store(path) as reader:
        deadline = time.monotonic() + 120
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            df = frame.from_store(reader)
            assert df["task_id"].is_unique
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads)
        assert not errors
        stop.set()
        pd.testing.assert_frame_equal(frame.from_store(reader), _truth(reader))
        assert len(reader) == 180


def test_an_in_memory_store_has_no_cache_and_ids_bypass_it(parsed) -> None:
    with Store(":memory:") as st:
        st.put("a", _env(1), fetched_at=0.0)
        with pytest.raises(InputError, match="in-memory"):
            dataset.path_for(st)
        assert frame.from_store(st)["status"].tolist() == ["success"]
        assert frame.from_store(st, ["a"])["task_id"].tolist() == ["a"]


def test_a_store_parsed_in_chunks_is_the_frame_parsed_at_once(store, monkeypatch) -> None:
    raw = store.raw_records()
    whole = frame.from_raw(raw.texts, raw.task_ids, raw.fetched_at, raw.fetch_errors)
    monkeypatch.setattr(frame, "STORE_CHUNK_ROWS", 7)  # 200 rows: 29 chunks
    monkeypatch.setattr(dataset, "BLOCK_ROWS", 7)
    pd.testing.assert_frame_equal(frame.from_store(store, cache=False), whole)
    pd.testing.assert_frame_equal(frame.from_store(store), whole)
    ids = [f"t{i}" for i in range(199, -1, -3)]
    r = store.raw_records(ids)
    some = frame.from_raw(r.texts, r.task_ids, r.fetched_at, r.fetch_errors)
    pd.testing.assert_frame_equal(frame.from_store(store, [*ids, ids[0], "nope"]), some)


def test_only_the_days_whose_rows_changed_are_rewritten(tmp_path: Path, parsed) -> None:
    def env(day: int, prompt: str = "p") -> str:
        data = {"successFlag": 1, "createTime": f"2025-06-{day:02d}T10:00:00Z"}
        data["paramJson"] = json.dumps({"prompt": prompt})
        return json.dumps({"code": 200, "msg": "success", "data": data})

    with Store(tmp_path / "d.sqlite") as st:
        st.put_many([(f"d{d}-{i}", env(d), 0.0, None) for d in (1, 2, 3) for i in range(5)])
        st.put("gone", None, fetched_at=0.0, fetch_error="422 record is null.")
        root = dataset.sync(st)
        assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
            "create_date=2025-06-01",
            "create_date=2025-06-02",
            "create_date=2025-06-03",
            "create_date=none",  # rows without a creation time are kept
        ]
        stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
        st.put("d2-0", env(2, "changed"), fetched_at=1.0)  # a change on day 2
        st.put("d4-0", env(4), fetched_at=1.0)  # a new day
        st.put("gone", env(3), fetched_at=1.0)  # read at last: leaves "none" for day 3
        assert dataset.sync(st) == root
        now = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
        same = sorted(p.parent.name for p in stamp if now.get(p) == stamp[p])
        assert same == ["create_date=2025-06-01"]  # days 2, 3 rewritten; none emptied
        assert not (root / "create_date=none").exists()
        assert parsed[-1] == 3
        back = read_parquet(root)
        pd.testing.assert_frame_equal(back, read_parquet_sorted(frame.from_store(st, cache=False)))
        assert pd.read_parquet(root).shape[0] == len(st)


def read_parquet_sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = df.sort_values(["create_time", "task_id"], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def test_sync_takes_a_store_path_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    with Store(tmp_path / "p.sqlite") as st:
        st.put("a", _env(1), fetched_at=0.0)
    root = dataset.sync(tmp_path / "p.sqlite")
    assert root == tmp_path / "p.sqlite.frame" and len(read_parquet(root)) == 1
    with pytest.raises(StoreNotFoundError):
        dataset.sync(tmp_path / "missing.sqlite")
    with Store(tmp_path / "e.sqlite") as st:  # an empty store: one empty file, the schema
        root = dataset.sync(st)
        assert pd.read_parquet(root).shape == (0, len(schema.COLUMNS) + 1)


def test_an_empty_store_then_its_first_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "e.sqlite") as st:
        root = dataset.sync(st)  # one empty file in create_date=none
        st.put("u", None, fetched_at=0.0, fetch_error="503 Service Unavailable")
        st.put("a", _env(1), fetched_at=1.0)
        pd.testing.assert_frame_equal(frame.from_store(st), _truth(st))
        assert sorted(pd.read_parquet(dataset.sync(st))["task_id"]) == ["a", "u"]
        with sqlite3.connect(st.path) as conn:  # every row deleted: the schema stays
            conn.execute("DELETE FROM records")
        assert pd.read_parquet(dataset.sync(st)).empty and (root / "create_date=none").is_dir()
        assert frame.from_store(st).empty
