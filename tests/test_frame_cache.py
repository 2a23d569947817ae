"""The parsed-frame cache beside a store file: correct after every kind of write."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import veo_notebook.frame as frame
from veo_notebook.frame import _cache
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
    assert _cache.path_for(store).exists()
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
    monkeypatch.setattr(_cache, "PARSER_VERSION", _cache.PARSER_VERSION + 1)
    df = frame.from_store(store)
    assert parsed == [200, 200]  # everything parsed again
    pd.testing.assert_frame_equal(df, _truth(store))


def test_a_deleted_or_broken_cache_file_loses_nothing(store, parsed) -> None:
    first = frame.from_store(store)
    path = _cache.path_for(store)
    path.unlink()
    pd.testing.assert_frame_equal(frame.from_store(store), first)
    path.write_bytes(b"not arrow")
    pd.testing.assert_frame_equal(frame.from_store(store), first)
    assert not list(path.parent.glob("*.tmp"))  # no partial file left


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
        assert _cache.path_for(st) is None
        assert frame.from_store(st)["status"].tolist() == ["success"]
        assert frame.from_store(st, ["a"])["task_id"].tolist() == ["a"]


def test_a_store_parsed_in_chunks_is_the_frame_parsed_at_once(store, monkeypatch) -> None:
    raw = store.raw_records()
    whole = frame.from_raw(raw.texts, raw.task_ids, raw.fetched_at, raw.fetch_errors)
    monkeypatch.setattr(frame, "STORE_CHUNK_ROWS", 7)  # 200 rows: 29 chunks
    pd.testing.assert_frame_equal(frame.from_store(store, cache=False), whole)
    pd.testing.assert_frame_equal(frame.from_store(store), whole)
    ids = [f"t{i}" for i in range(199, -1, -3)]
    r = store.raw_records(ids)
    some = frame.from_raw(r.texts, r.task_ids, r.fetched_at, r.fetch_errors)
    pd.testing.assert_frame_equal(frame.from_store(store, [*ids, ids[0], "nope"]), some)


def test_a_few_changes_go_to_a_delta_and_many_to_a_new_base(store, parsed) -> None:
    frame.from_store(store)
    path = _cache.path_for(store)
    base_bytes = path.read_bytes()
    store.put("t1", _env(2, "first change"), fetched_at=600.0)
    df = frame.from_store(store)
    delta = _cache.delta_path(path)
    assert delta.exists() and path.read_bytes() == base_bytes  # the base is not rewritten
    store.put("t2", _env(2, "second change"), fetched_at=601.0)
    store.put("n1", _env(0, "new"), fetched_at=602.0)
    df = frame.from_store(store)
    assert parsed[-1] == 2  # only what was written since the delta
    pd.testing.assert_frame_equal(df, _truth(store))
    pd.testing.assert_frame_equal(frame.from_store(store), _truth(store))  # base + delta
    store.put_many([(f"t{i}", _env(3, "many"), 700.0, None) for i in range(100)])
    pd.testing.assert_frame_equal(frame.from_store(store), _truth(store))
    assert path.read_bytes() != base_bytes  # folded into a new base: the old delta is stale
    pd.testing.assert_frame_equal(frame.from_store(store), _truth(store))
