"""The SQLite store: raw records as fetched, never replaced by worse, foreign files untouched."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

import veo_notebook.store
from veo_notebook import InputError, SchemaVersionError, Store, StoreError
from veo_notebook.archive import ArchiveTable
from veo_notebook.callbacks import CallbackTable
from veo_notebook.frame import from_store
from veo_notebook.store import STORE_VERSION


def _env(flag: int, tid: str = "t") -> str:
    data = f'"taskId":"{tid}","successFlag":{flag},"createTime":"2025-06-06 10:25:00"'
    return f'{{"code":200,"msg":"success","data":{{{data}}}}}'


NULL = "422 record is null."
EXPIRED = "422 Temporarily supports records within 14 days."


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_put_get_rows_and_terminal_ids(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        st.put("done", _env(1), fetched_at=10.0)
        st.put("failed", _env(3), fetched_at=11.0)
        st.put("running", _env(0), fetched_at=12.0)
        st.put("unknown", None, fetched_at=13.0, fetch_error=NULL)
        assert len(st) == 4 and "done" in st and "nope" not in st and 5 not in st
        assert st.get("done") == {
            "task_id": "done",
            "raw": _env(1),
            "fetched_at": 10.0,
            "fetch_error": None,
        }
        assert st.get("nope") is None
        # settled = not schema.is_pending: a 422 "record is null." is the API's answer too
        assert st.terminal_ids(["done", "failed", "running", "unknown", "nope"]) == {
            "done",
            "failed",
            "unknown",
        }
        assert [r["task_id"] for r in st.rows(["unknown", "nope", "done", "unknown"])] == [
            "unknown",
            "done",
        ]
        assert [r["task_id"] for r in st.rows()] == ["done", "failed", "running", "unknown"]
        assert st.ids() == ["done", "failed", "running", "unknown"]


def test_raw_is_kept_byte_for_byte(tmp_path: Path) -> None:
    odd = '{"code":200,  "msg":"ok","data":{"successFlag":1,"x":"视频 \\u00e9","n":1.50}}'
    with Store(tmp_path / "s.sqlite") as st:
        st.put("t", odd, fetched_at=1.0)
    with Store(tmp_path / "s.sqlite") as st:
        assert st.get("t")["raw"] == odd


def test_a_worse_answer_never_replaces_a_record(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        st.put("t", _env(1), fetched_at=1.0)
        st.put("t", None, fetched_at=2.0, fetch_error=EXPIRED)  # expired since
        st.put("t", None, fetched_at=3.0, fetch_error="503 Service Unavailable (gave up)")
        assert st.get("t") == {
            "task_id": "t",
            "raw": _env(1),
            "fetched_at": 1.0,
            "fetch_error": None,
        }
        assert st.terminal_ids(["t"]) == {"t"}


def test_a_newer_record_replaces_an_older_one_and_an_error(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        st.put("t", None, fetched_at=1.0, fetch_error="503 gave up")
        st.put("t", None, fetched_at=2.0, fetch_error=NULL)  # errors replace errors
        assert st.get("t")["fetch_error"] == NULL
        st.put("t", _env(0), fetched_at=3.0)
        assert st.terminal_ids(["t"]) == set()
        st.put("t", _env(1), fetched_at=4.0)
        assert st.get("t")["fetched_at"] == 4.0 and st.terminal_ids(["t"]) == {"t"}


def test_the_file_is_wal_with_a_version_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.put_many([(f"t{i}", _env(i % 4), float(i), None) for i in range(1200)])  # > one chunk
        assert len(st.terminal_ids([f"t{i}" for i in range(1200)])) == 900
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='store_version'").fetchone()[0] == str(
        STORE_VERSION
    )
    conn.close()
    with Store(path) as st:
        assert len(st) == 1200
        assert [r["task_id"] for r in st.rows(["t1199", "t0"])] == ["t1199", "t0"]


def test_memory_store_and_to_frame(tmp_path: Path) -> None:
    with Store(":memory:") as st:
        st.put("a", _env(1, "a"), fetched_at=1.7e9)
        st.put("b", None, fetched_at=1.7e9, fetch_error=NULL)
        df = from_store(st)
    assert df["task_id"].tolist() == ["a", "b"]
    assert df["status"].astype(object).tolist()[0] == "success"
    assert df["fetch_error"].isna().tolist() == [True, False]


def test_to_frame_reads_utf8_bytes_and_equals_the_row_path(tmp_path: Path) -> None:
    # from_store hands the raw UTF-8 bytes to from_raw; same frame as to_frame(rows)
    from veo_notebook import to_frame

    with Store(tmp_path / "s.sqlite") as st:
        st.put("a", _env(1, "a").replace('"success"', '"成功 ✓"'), fetched_at=1.7e9)
        st.put("b", None, fetched_at=1.7e9, fetch_error=NULL)
        st.put("c", "{broken", fetched_at=1.7e9)
        st.put("d", _env(2, "d"), fetched_at=1.7e9)
        for ids in (None, ["d", "zz", "a", "c", "b", "a"]):
            fast, rows = from_store(st, ids), to_frame(st.rows(ids))
            assert fast["task_id"].tolist() == [r["task_id"] for r in st.rows(ids)]
            pd.testing.assert_frame_equal(fast, rows)
        assert from_store(st, []).empty


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:

        def write(k: int) -> None:
            for i in range(50):
                st.put(f"w{k}-{i}", _env(1), fetched_at=float(i))

        threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(st) == 300


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database at all\n" * 200)


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    with Store(path) as st:
        st.put("t", _env(1), fetched_at=1.0)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='store_version'", (str(STORE_VERSION + 1),))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(_garbage, StoreError, "not an SQLite file", id="corrupt"),
        pytest.param(_foreign, StoreError, "not a veo-notebook store", id="foreign-sqlite"),
        pytest.param(_newer, SchemaVersionError, "newer", id="newer-version"),
    ],
)
def test_a_bad_file_is_a_clear_error_and_nothing_is_overwritten(
    tmp_path, make, error, match
) -> None:
    path = tmp_path / "s.sqlite"
    make(path)
    before = _digest(path)
    with pytest.raises(error, match=match):
        Store(path)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]  # no -wal/-shm created


def test_a_directory_or_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "s.sqlite")


def test_callbacks_are_kept_raw_in_order_with_duplicates_marked(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    body = b'{"code":200,"data":{"taskId":"a"}}\n'
    with Store(path) as s:
        cb = CallbackTable(s)
        assert cb.rows() == [] and cb.task_ids() == [] and cb.count() == 0
        cb.put("a", body, {"x-webhook-timestamp": "1"}, received_at=5.0, signature_ok=True)
        cb.put("b", b"{}", {}, received_at=6.0)
        cb.put("a", body, {}, received_at=7.0, signature_ok=True)
    with Store(path) as s:  # survives reopening
        cb = CallbackTable(s)
        rows = cb.rows()
        assert [(r["task_id"], r["duplicate"]) for r in rows] == [
            ("a", False),
            ("b", False),
            ("a", True),
        ]
        assert rows[0]["body"] == body and rows[0]["headers"] == {"x-webhook-timestamp": "1"}
        assert rows[0]["signature_ok"] is True and rows[1]["signature_ok"] is None
        assert cb.task_ids() == ["a", "b"] and cb.count() == 3
        assert len(s) == 0  # callbacks are not records


def test_an_older_store_gets_the_callbacks_table_on_its_first_delivery(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with Store(path) as s:
        s.put("t", _env(1), fetched_at=1.0)
    with sqlite3.connect(path) as conn:  # a store made before the table existed
        conn.execute("DROP TABLE IF EXISTS callbacks")
    with Store(path) as s:
        cb = CallbackTable(s)
        assert cb.rows() == []
        cb.put("t", b"{}", {})
        assert cb.count() == 1 and s.get("t") is not None


def test_archive_rows_round_trip_and_replace_by_task(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.put("t1", '{"code":200,"data":{"successFlag":1}}', fetched_at=1.0)
        table = ArchiveTable(s)
        assert table.rows() == []  # a store made before the archive table: nothing archived
        assert table.put([{"task_id": "t1", "archived_at": 1.0, "error": "HTTP 404"}]) == 1
        row = {
            "task_id": "t1",
            "url": "u",
            "path": "p",
            "bytes": 3,
            "sha256": "ab",
            "archived_at": 2.0,
            "error": None,
            "media_width": 1280,
            "media_height": 720,
            "media_duration_s": 8.0,
            "media_fps": 24.0,
            "media_codec": "h264",
            "media_has_audio": True,
        }
        table.put([row, {"task_id": "t2", "archived_at": 3.0}])
    with Store(path) as s:  # survives reopening; the records are untouched
        table = ArchiveTable(s)
        got = table.rows(["t2", "t1", "nope"])
        assert {r["task_id"] for r in got} == {"t1", "t2"}
        assert next(r for r in got if r["task_id"] == "t1") == {
            **row,
            "kind": "video",
            "media_has_audio": 1,
        }
        table.put([{**row, "kind": "origin", "sha256": "cd"}])  # a second file, beside
        assert [r["sha256"] for r in table.rows(["t1"], kind="origin")] == ["cd"]
        assert [r["sha256"] for r in table.rows(["t1"])] == ["ab"]
        with pytest.raises(ValueError, match="archive kind"):
            table.rows(kind="thumbnail")
        assert len(s) == 1 and s.ids() == ["t1"]
        assert table.archived_ids() == {"t1"}  # t2 has no file


def test_every_store_error_is_in_the_veo_error_tree(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite")
    with pytest.raises(InputError, match="archive kind"):
        ArchiveTable(s).rows(kind="thumbnail")
    with pytest.raises(InputError, match="task_id, raw, fetched_at, fetch_error"):
        s.put_many([("t", None, 1.0, None, None, "extra")])  # type: ignore[list-item]
    with pytest.raises(InputError, match="fetched_at of 't' must be epoch seconds"):
        s.put("t", None, fetched_at="yesterday")  # type: ignore[arg-type]
    s.close()
    calls = (s.__len__, s.ids, s.row_version, lambda: s.put("t", None), CallbackTable(s).count)
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()


def test_sqlite_errors_are_translated_in_one_place() -> None:
    # every `except sqlite3.Error` of the store package is in _translate.py
    pkg = Path(veo_notebook.store.__file__).parent
    holders = {p.name for p in pkg.rglob("*.py") if "except sqlite3.Error" in p.read_text("utf-8")}
    assert holders == {"_translate.py"}
