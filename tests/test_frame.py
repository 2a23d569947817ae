"""The parser: every quirk of real records (table-driven), fast path = slow path, corpus truth."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from veo_notebook import frame as frame_module
from veo_notebook import schema
from veo_notebook.errors import InputError
from veo_notebook.frame import _read as _frame_read
from veo_notebook.frame import from_raw, to_frame
from veo_notebook.simulator import corpus

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def rec(**data: Any) -> dict[str, Any]:
    """An envelope around ``data`` (taskId defaults to "t", paramJson to "{}")."""
    data.setdefault("taskId", "t")
    data.setdefault("paramJson", "{}")
    return {"code": 200, "msg": "success", "data": data}


def one(**data: Any) -> pd.Series:
    return to_frame([rec(**data)]).iloc[0]


# -- times -------------------------------------------------------------------------------------

TIME_CASES = [
    pytest.param("2024-03-20T10:30:00Z", "Asia/Shanghai", ts("2024-03-20 10:30:00"), id="iso-Z"),
    pytest.param("2024-03-20T10:30:00+08:00", "UTC", ts("2024-03-20 02:30:00"), id="iso-offset"),
    pytest.param("2024-03-20T10:30:00.250Z", "UTC", ts("2024-03-20 10:30:00.250"), id="iso-frac"),
    pytest.param("2025-06-06 10:30:00", "Asia/Shanghai", ts("2025-06-06 02:30:00"), id="plain-sh"),
    pytest.param("2025-06-06 10:30:00", "UTC", ts("2025-06-06 10:30:00"), id="plain-utc"),
    pytest.param(1773967426000, "UTC", ts("2026-03-20 00:43:46"), id="epoch-ms"),
    pytest.param(1773967426, "UTC", ts("2026-03-20 00:43:46"), id="epoch-s"),
    pytest.param("1773967426000", "UTC", ts("2026-03-20 00:43:46"), id="epoch-ms-string"),
    pytest.param("garbage", "UTC", pd.NaT, id="garbage"),
    pytest.param(None, "UTC", pd.NaT, id="null"),
]


@pytest.mark.parametrize(("value", "tz", "expected"), TIME_CASES)
def test_time_shapes(value: Any, tz: str, expected: pd.Timestamp) -> None:
    row = to_frame([rec(createTime=value)], naive_tz=tz).iloc[0]
    assert row["create_time"] == expected if expected is not pd.NaT else pd.isna(row["create_time"])
    if value == "garbage":
        assert "createTime unparseable: 'garbage'" in row["parse_note"]
    else:
        assert pd.isna(row["parse_note"])


def test_time_shapes_mixed_in_one_column() -> None:
    values = [c.values[0] for c in TIME_CASES if c.values[1] == "UTC"]
    expected = [c.values[2] for c in TIME_CASES if c.values[1] == "UTC"]
    df = to_frame(
        [rec(taskId=str(i), completeTime=v) for i, v in enumerate(values)], naive_tz="UTC"
    )
    got = df["complete_time"].tolist()
    for g, e in zip(got, expected, strict=True):
        assert (pd.isna(g) and e is pd.NaT) or g == e
    assert df["complete_time"].dtype == schema.dtypes()["complete_time"]
    assert df["parse_note"].notna().sum() == 1


def test_latency_and_generating() -> None:
    df = to_frame(
        [
            rec(taskId="a", successFlag=1, createTime=1_700_000_000, completeTime=1_700_000_090),
            rec(taskId="b", successFlag=0, createTime=1_700_000_000, completeTime=1_700_000_090),
            rec(taskId="c", successFlag=2, createTime=1_700_000_000),
        ]
    )
    assert df["latency_s"].iloc[0] == 90.0
    assert np.isnan(df["latency_s"].iloc[1]) and np.isnan(df["latency_s"].iloc[2])


# -- paramJson ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "column", "expected"),
    [
        pytest.param({"aspect_ratio": "9:16"}, "aspect_ratio", "9:16", id="aspect_ratio"),
        pytest.param({"aspectRatio": "Auto"}, "aspect_ratio", "Auto", id="aspectRatio"),
        pytest.param({"watermark": "W"}, "watermark", "W", id="watermark"),
        pytest.param({"waterMark": "KieAI"}, "watermark", "KieAI", id="waterMark"),
        pytest.param(
            {"generationType": "TEXT_2_VIDEO"}, "generation_type", "TEXT_2_VIDEO", id="gt"
        ),
        pytest.param(
            {"generation_type": "REFERENCE_2_VIDEO"},
            "generation_type",
            "REFERENCE_2_VIDEO",
            id="gt_",
        ),
        pytest.param({"callBackUrl": "http://cb"}, "callback_url", "http://cb", id="callBackUrl"),
        pytest.param({"callbackUrl": "http://cb"}, "callback_url", "http://cb", id="callbackUrl"),
        pytest.param({"imageUrls": ["http://i"]}, "image_urls", ["http://i"], id="imageUrls"),
        pytest.param({"image_urls": ["http://i"]}, "image_urls", ["http://i"], id="image_urls"),
        pytest.param(
            {"imageUrls": "[http://i, http://j]"},
            "image_urls",
            ["http://i", "http://j"],
            id="imageUrls-str",
        ),
        pytest.param({"seeds": 12345}, "seeds", 12345, id="seeds"),
        pytest.param(
            {"enableTranslation": False}, "enable_translation", False, id="enableTranslation"
        ),
        pytest.param({"model": "veo3_fast", "prompt": "p"}, "model", "veo3_fast", id="model"),
        pytest.param({"prompt": "a cat"}, "prompt", "a cat", id="prompt"),
        pytest.param({"resolution": "1080p"}, "resolution", "1080p", id="resolution"),
        pytest.param({"taskId": "parent"}, "parent_task_id", "parent", id="parent"),
        pytest.param({"task_id": "parent"}, "parent_task_id", "parent", id="parent_"),
    ],
)
def test_param_spellings(params: dict[str, Any], column: str, expected: Any) -> None:
    for parse in (to_frame, _via_slow_path):
        row = parse([rec(paramJson=json.dumps(params))]).iloc[0]
        got = row[column]
        got = list(got) if isinstance(expected, list) else got
        assert got == expected, parse
        assert pd.isna(row["parse_note"])


@pytest.mark.parametrize(
    ("param_json", "note"),
    [
        pytest.param("{not json", "paramJson is not valid JSON", id="malformed"),
        pytest.param("", "paramJson is empty", id="empty"),
        pytest.param("   ", "paramJson is empty", id="blank"),
        pytest.param(None, "paramJson is null", id="null"),
        pytest.param("[1, 2]", "paramJson is not a JSON object", id="array"),
        pytest.param('"text"', "paramJson is not a JSON object", id="string"),
    ],
)
def test_bad_param_json_keeps_the_row(param_json: str | None, note: str) -> None:
    df = to_frame([rec(taskId="x", successFlag=1, paramJson=param_json), rec(taskId="y")])
    row = df.iloc[0]
    assert len(df) == 2 and row["task_id"] == "x" and row["status"] == "success"
    assert note in row["parse_note"]
    assert pd.isna(row["prompt"]) and pd.isna(row["model"])
    assert row["param_json"] == param_json if param_json is not None else pd.isna(row["param_json"])


# -- urls --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "result", "origin", "full", "video"),
    [
        pytest.param(
            {"resultUrls": ["http://a"], "originUrls": ["http://o"]},
            ["http://a"],
            ["http://o"],
            None,
            "http://a",
            id="lists",
        ),
        pytest.param(
            {"resultUrls": "[http://a, http://b]"},
            ["http://a", "http://b"],
            [],
            None,
            "http://a",
            id="string",
        ),
        pytest.param(
            {"resultUrls": '["http://a"]'}, ["http://a"], [], None, "http://a", id="json-string"
        ),
        pytest.param(
            {"resultUrls": ["http://a"], "originUrls": None},
            ["http://a"],
            [],
            None,
            "http://a",
            id="origin-null",
        ),
        pytest.param(
            {"resultUrls": ["http://b"], "fullResultUrls": ["http://f"]},
            ["http://b"],
            [],
            ["http://f"],
            "http://f",
            id="extend",
        ),
        pytest.param({"resultUrls": []}, [], [], None, None, id="empty"),
        pytest.param(None, None, [], None, None, id="no-response"),
    ],
)
def test_urls(response: Any, result: Any, origin: Any, full: Any, video: Any) -> None:
    for parse in (to_frame, _via_slow_path):
        row = parse([rec(response=response)]).iloc[0]
        assert (
            list(row["result_urls"]) if result is not None else row["result_urls"]
        ) == result or (result is None and pd.isna(row["result_urls"]))
        assert list(row["origin_urls"]) == origin
        assert (full is None and pd.isna(row["full_result_urls"])) or list(
            row["full_result_urls"]
        ) == full
        assert (video is None and pd.isna(row["video_url"])) or row["video_url"] == video


# -- status, errors, task type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        (0, "generating"),
        (1, "success"),
        (2, "failed"),
        (3, "generation_failed"),
        (7, "unknown"),
        (-1, "unknown"),
        (None, "unknown"),
    ],
)
def test_status(flag: Any, status: str) -> None:
    row = one(successFlag=flag)
    assert row["status"] == status
    assert pd.isna(row["success_flag"]) if flag is None else row["success_flag"] == flag


def test_status_na_without_record_and_error_message_rules() -> None:
    df = to_frame(
        [
            {"code": 422, "msg": "record is null.", "data": None},
            rec(successFlag=2, errorCode=500, errorMessage=""),
            rec(
                successFlag=2,
                errorCode=400,
                errorMessage="Only English prompts are supported at this time.",
            ),
        ]
    )
    assert pd.isna(df["status"].iloc[0]) and df["fetch_error"].iloc[0] == "422 record is null."
    assert pd.isna(df["error_message"].iloc[1]) and df["error_code"].iloc[1] == 500
    assert df["error_message"].iloc[2].startswith("Only English")
    assert df["fetch_error"].iloc[1:].isna().all()


@pytest.mark.parametrize(
    ("params", "response", "expected"),
    [
        pytest.param(
            {"prompt": "p", "model": "veo3", "generationType": "TEXT_2_VIDEO"},
            None,
            "generate",
            id="generate",
        ),
        pytest.param(
            {"taskId": "P", "prompt": "more", "model": "fast"}, None, "extend", id="extend-fast"
        ),
        pytest.param(
            {"taskId": "P", "prompt": "more", "model": "quality"},
            None,
            "extend",
            id="extend-quality",
        ),
        pytest.param({"taskId": "P", "prompt": "more"}, None, "extend", id="extend-no-model"),
        pytest.param({"taskId": "P", "index": 0}, None, "1080p", id="1080p-index"),
        pytest.param({"taskId": "P", "resolution": "1080p"}, None, "1080p", id="1080p-resolution"),
        pytest.param({"taskId": "P", "index": 0}, {"mediaIds": ["m"]}, "4k", id="4k-mediaIds"),
        pytest.param({"taskId": "P", "index": 1}, {"media_ids": ["m"]}, "4k", id="4k-media_ids"),
        pytest.param({"taskId": "P", "resolution": "4K"}, None, "4k", id="4k-resolution"),
        pytest.param({}, None, "unknown", id="nothing"),
        pytest.param(None, None, "unknown", id="no-params"),
    ],
)
def test_task_type(params: Any, response: Any, expected: str) -> None:
    pj = None if params is None else json.dumps(params)
    row = one(paramJson=pj, response=response, successFlag=1)
    assert row["task_type"] == expected
    has_parent = pd.notna(row["parent_task_id"]) and row["parent_task_id"] == "P"
    assert has_parent == ("taskId" in (params or {}))


def test_task_type_failed_4k_named_by_its_error_message() -> None:
    msg = "The 4K version of this video is unavailable. Please try a different video."
    row = one(paramJson='{"taskId": "P", "index": 0}', successFlag=2, errorMessage=msg)
    assert row["task_type"] == "4k"


# -- extras, inputs, store rows -----------------------------------------------------------------


def test_unknown_keys_are_kept_in_extra() -> None:
    params = {"prompt": "p", "enableFallback": True, "index": 1, "nothing": None}
    data = {"taskId": "t", "newKey": {"a": 1}, "paramJson": json.dumps(params)}
    data["response"] = {"resultUrls": ["u"], "imageUrls": ["i"], "hd": True}
    for parse in (to_frame, _via_slow_path):
        extra = json.loads(parse([{"code": 200, "data": data}]).iloc[0]["extra"])
        assert extra == {
            "data": {"newKey": {"a": 1}, "response": {"imageUrls": ["i"], "hd": True}},
            "paramJson": {"enableFallback": True, "index": 1},
        }


def test_kinds_of_input_and_order() -> None:
    env = rec(taskId="env", successFlag=1)
    data = {"taskId": "data", "successFlag": 2}
    store = {
        "task_id": "store",
        "raw": json.dumps(rec(taskId="other", successFlag=3)),
        "fetched_at": 1.7e9,
        "fetch_error": None,
    }
    failed = {
        "task_id": "gone",
        "raw": None,
        "fetched_at": 1.7e9,
        "fetch_error": "422 record is null.",
    }
    df = to_frame([env, data, store, failed])
    assert df["task_id"].tolist() == ["env", "data", "store", "gone"]
    assert df["status"].tolist()[:3] == ["success", "failed", "generation_failed"]
    assert pd.isna(df["status"].iloc[3]) and df["fetch_error"].iloc[3] == "422 record is null."
    assert df["fetched_at"].iloc[2] == pd.Timestamp(1.7e9, unit="s", tz=UTC)
    assert df["fetched_at"].iloc[:2].isna().all()
    assert list(df.columns) == schema.column_names()
    assert df.dtypes.to_dict() == schema.dtypes()


@pytest.mark.parametrize("bad", [None, "text", 42, ["list"]])
def test_non_mapping_raises_naming_its_position(bad: Any) -> None:
    with pytest.raises(InputError, match="record 1 "):
        to_frame([rec(), bad])


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        pytest.param("{oops", "record is not valid JSON", id="not-json"),
        pytest.param("[1]", "record is not a JSON object", id="array"),
        pytest.param('{"a": 1}\n{"b": 2}', "record is not valid JSON", id="two-objects"),
    ],
)
def test_unreadable_raw_text(raw: str, note: str) -> None:
    texts = [json.dumps(rec(taskId="ok1")), raw, json.dumps(rec(taskId="ok2"))]
    df = from_raw(texts, task_ids=["a", "b", "c"])
    assert df["task_id"].tolist() == ["a", "b", "c"]
    assert note in df["parse_note"].iloc[1] and pd.isna(df["status"].iloc[1])
    assert df["status"].iloc[[0, 2]].tolist() == ["unknown", "unknown"]


def test_answer_without_data_is_noted() -> None:
    df = from_raw(['{"code": 200, "msg": "success"}', '{"code": 200, "data": null}'])
    assert df["status"].isna().all() and df["fetch_error"].isna().all()
    assert (df["parse_note"] == "the answer has no data object").all()


def test_pretty_printed_and_bytes_texts() -> None:
    texts = [
        json.dumps(rec(taskId="a", successFlag=1), indent=2),
        orjson.dumps(rec(taskId="b")),
        None,
        "",
    ]
    df = from_raw(texts, task_ids=["a", "b", "c", "d"])
    assert df["status"].tolist()[:2] == ["success", "unknown"]
    assert df["status"].iloc[2:].isna().all()


def test_odd_types_go_to_notes_and_extra() -> None:
    row = one(successFlag="x", errorCode=1 << 70, fallbackFlag="true")
    assert row["status"] == "unknown" and pd.isna(row["error_code"]) and row["fallback"] is np.True_
    assert "successFlag" in row["parse_note"] and "errorCode" in row["parse_note"]
    assert json.loads(row["extra"])["data"]["successFlag"] == "x"


# -- the fast path equals the per-row path; the corpus's truth ------------------------------------


def _via_slow_path(records: list[dict[str, Any]]) -> pd.DataFrame:
    """to_frame with the columnar reader refusing everything (every row read one by one)."""
    mp = pytest.MonkeyPatch()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise pa.ArrowInvalid("JSON parse error: refused for the test")

    mp.setattr(_frame_read.pj, "read_json", refuse)
    try:
        return to_frame(records)
    finally:
        mp.undo()


@pytest.mark.parametrize("time_format", ["plain", "mixed"])
def test_fast_path_equals_slow_path_on_the_corpus(
    time_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = list(corpus.iter_raw_texts(1500, time_format=time_format))
    texts[10] = texts[10].replace('"successFlag":', '"newTopKey":[1,{"x":2}],"successFlag":')
    texts[700] = "{broken"
    monkeypatch.setattr(_frame_read, "CHUNK_ROWS", 256)  # several chunks, some refused
    fast = from_raw(texts)
    slow = _via_slow_path(
        [json.loads(t) if t != "{broken" else {"raw": t, "task_id": None} for t in texts]
    )
    slow.loc[700, "parse_note"] = fast.loc[700, "parse_note"]
    pd.testing.assert_frame_equal(fast, slow)
    assert "newTopKey" in fast.loc[10, "extra"]


def test_threaded_chunks_with_odd_param_texts_equal_the_slow_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # chunks of 3 rows read on worker threads; paramJson chunks mixing null, empty and
    # unreadable texts (a refused chunk goes back through the per-line path)
    params: list[Any] = [
        '{"prompt": "a"}',
        None,
        "",
        "{broken",
        '{"prompt": "b", "imageUrls": "[http://x/1.png, http://x/2.png]"}',
        "   ",
        "[1, 2]",
        '{"prompt": "c", "aspect_ratio": "9:16"}',
        '{"prompt": "d", "newParamKey": 1}',
        None,
    ]
    records = [
        {"taskId": f"t{i}", "successFlag": 1, "paramJson": pj, "createTime": "2025-06-06 10:00:00"}
        for i, pj in enumerate(params * 2)
    ]
    texts = [json.dumps({"code": 200, "msg": "success", "data": r}) for r in records]
    monkeypatch.setattr(_frame_read, "CHUNK_ROWS", 3)
    monkeypatch.setattr(_frame_read, "WORKERS", 2)
    fast = from_raw(texts)
    pd.testing.assert_frame_equal(fast, _via_slow_path(records))
    assert fast["task_id"].tolist() == [r["taskId"] for r in records]
    assert fast.loc[1, "parse_note"] == "paramJson is null"
    assert fast.loc[2, "parse_note"] == "paramJson is empty"
    assert fast.loc[4, "image_urls"] == ["http://x/1.png", "http://x/2.png"]
    assert "newParamKey" in fast.loc[18, "extra"]


def test_blocks_on_threads_equal_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # many small blocks read and built on two threads give the one-block frame, row for row:
    # ids, fetch errors, broken texts and type variants on both sides of block boundaries
    texts: list[Any] = list(corpus.iter_raw_texts(1200, time_format="mixed"))
    texts[5] = texts[5].replace('"successFlag":', '"newTopKey":{"a":1},"successFlag":')
    texts[96] = "{broken"
    texts[97] = None
    texts[98] = b"\xff not utf-8"
    ids = [f"id{i}" for i in range(len(texts))]
    errors = [("500 Internal Error" if i % 211 == 7 else None) for i in range(len(texts))]
    fetched = [1.7e9 + i for i in range(len(texts))]
    one = from_raw(texts, ids, fetched, errors)
    monkeypatch.setattr(frame_module, "BLOCK_ROWS", 97)
    monkeypatch.setattr(_frame_read, "CHUNK_ROWS", 40)
    many = from_raw(texts, ids, fetched, errors)
    pd.testing.assert_frame_equal(many, one)
    assert isinstance(many.index, pd.RangeIndex) and many["task_id"].tolist() == ids
    assert many.loc[7, "fetch_error"] == "500 Internal Error"
    assert "newTopKey" in many.loc[5, "extra"] and pd.notna(many.loc[96, "parse_note"])


@pytest.mark.parametrize("chunk_rows", [16_384, 2])
def test_texts_that_run_into_each_other_are_not_read_as_one(
    monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    # the reader sees one stream of objects: a text that is not {…} could end inside the
    # next and still give the right row count (here 4 objects from 4 texts). Such texts
    # are read one by one, so each row is its own text, broken ones noted
    monkeypatch.setattr(_frame_read, "CHUNK_ROWS", chunk_rows)
    params = ['{"prompt":', '"x"}{}', '{"prompt":"ok"}', ' {"prompt":"padded"} ']
    df = to_frame([rec(taskId=f"t{i}", successFlag=1, paramJson=p) for i, p in enumerate(params)])
    assert df["prompt"].tolist()[1:] == [pd.NA, "ok", "padded"] and pd.isna(df.loc[0, "prompt"])
    assert df.loc[0, "parse_note"].startswith("paramJson is not valid JSON")
    assert df.loc[1, "parse_note"].startswith("paramJson is not valid JSON")
    assert df["parse_note"].isna().tolist()[2:] == [True, True]
    texts = [
        '{"code":200,"data":{"taskId":"a","successFlag":1',
        '"paramJson":"{}"}}{"code":200,"data":{"taskId":"b","paramJson":"{}"}}',
        '{"code":200,"data":{"taskId":"c","paramJson":"{}"}}',
        '  {"code":200,"data":{"taskId":"d","paramJson":"{}"}}\n',
    ]
    raw = from_raw(texts)
    assert raw["task_id"].tolist()[2:] == ["c", "d"] and raw["task_id"].isna().tolist()[:2] == [
        True,
        True,
    ]
    assert raw["parse_note"].str.startswith("record is not valid JSON").tolist()[:2] == [True] * 2
    assert raw["parse_note"].isna().tolist()[2:] == [True, True]


def test_parse_settings_are_fenced_to_the_parse_and_its_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a parse on the main thread runs with the cyclic collector paused, turned back on
    # after (also when the parse fails); Arrow's default pool is never changed (the reader
    # gets its pool explicitly); a parse on another thread leaves the collector alone; a
    # collector the caller turned off stays off; nested blocks share the pause
    import gc
    import threading

    seen: list[tuple[bool, str]] = []
    real_build = frame_module._build.build

    def build(*args: Any, **kwargs: Any) -> pd.DataFrame:
        seen.append((gc.isenabled(), pa.default_memory_pool().backend_name))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(frame_module._build, "build", build)
    texts = list(corpus.iter_raw_texts(50))
    before = pa.default_memory_pool().backend_name
    assert gc.isenabled()
    df = from_raw(texts)
    assert seen == [(False, before)]
    assert gc.isenabled() and pa.default_memory_pool().backend_name == before
    reader_pool = _frame_read.frame_pool().backend_name
    assert reader_pool == ("system" if before == "mimalloc" else before)

    def boom(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise RuntimeError("boom")

    monkeypatch.setattr(frame_module._build, "build", boom)
    with pytest.raises(RuntimeError):
        from_raw(texts)
    assert gc.isenabled()
    monkeypatch.setattr(frame_module._build, "build", build)

    gc.disable()
    try:
        from_raw(texts)
        assert not gc.isenabled()  # a collector the caller turned off stays off
    finally:
        gc.enable()

    with frame_module.parse_settings():
        pd.testing.assert_frame_equal(from_raw(texts), df)
        assert not gc.isenabled()  # the outer block still holds the pause
    assert gc.isenabled()

    inside = threading.Event()
    release = threading.Event()

    def slow_build(*args: Any, **kwargs: Any) -> pd.DataFrame:
        seen.append((gc.isenabled(), pa.default_memory_pool().backend_name))
        inside.set()
        release.wait(10)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(frame_module._build, "build", slow_build)
    got: list[pd.DataFrame] = []
    t = threading.Thread(target=lambda: got.append(from_raw(texts)))
    t.start()
    assert inside.wait(10)
    assert gc.isenabled()  # a background parse does not pause this thread's collector
    release.set()
    t.join(10)
    assert seen[-1] == (True, before) and gc.isenabled()
    pd.testing.assert_frame_equal(got[0], df)


def test_matches_the_corpus_truth() -> None:
    tasks = corpus.make_block(0, 0)
    envs = [corpus.envelope(t, corpus.DEFAULT_ANCHOR, "mixed") for t in tasks]
    df = to_frame(envs)
    assert df["task_id"].tolist() == [t.task_id for t in tasks]
    # a failed 4K upgrade without a 4K error message reads like a 1080p one (same request)
    truth = [t.task_type for t in tasks]
    got = df["task_type"].astype(str).tolist()
    for g, t, task in zip(got, truth, tasks, strict=True):
        assert g == t or (t == "4k" and g == "1080p" and task.final_flag != 1)
    assert df["parent_task_id"].fillna("").tolist() == [t.parent_id or "" for t in tasks]
    create = pd.to_datetime([t.create_ts for t in tasks], unit="s", utc=True).floor("s")
    assert (df["create_time"].dt.floor("s") == create).all()
    done = df["status"] != "generating"
    lat = np.array([t.latency_s for t in tasks])[done.to_numpy()]
    assert np.allclose(df.loc[done, "latency_s"], lat, atol=1.0)
    assert df["parse_note"].isna().all()
    assert df.loc[df["task_type"] == "extend", "video_url"].str.contains("/full/").all()


# -- property tests: data objects from the spec's schema, plus the quirks of real traffic ---------


#: ``data`` of GET /api/v1/veo/record-info as the spec's OpenAPI schema gives it
SPEC_DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "taskId": {"type": "string"},
        "paramJson": {"type": "string"},
        "completeTime": {"type": "string", "format": "date-time"},
        "response": {
            "type": "object",
            "properties": {
                "taskId": {"type": "string"},
                "resultUrls": {"type": "array", "items": {"type": "string"}},
                "originUrls": {"type": "array", "items": {"type": "string"}},
                "resolution": {"type": "string"},
            },
        },
        "successFlag": {"type": "integer", "enum": [0, 1, 2]},
        "errorCode": {"type": "integer", "enum": [400, 500, 501]},
        "errorMessage": {"type": "string"},
        "createTime": {"type": "string", "format": "date-time"},
        "fallbackFlag": {"type": "boolean"},
    },
}

_TIME = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {
            "type": "string",
            "pattern": r"^20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$",
        },
        {"type": "integer", "minimum": 0, "maximum": 4_000_000_000_000},
        {"type": "string"},
        {"type": "null"},
    ]
}
_URLS = {
    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}, {"type": "null"}]
}


def _with_quirks(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's schema widened by api-facts.md: flag 3 and other ints, nulls, string urls,
    three time shapes, extra keys anywhere."""
    props = dict(spec["properties"])
    props["successFlag"] = {
        "anyOf": [{"type": "integer", "minimum": -5, "maximum": 9}, {"type": "null"}]
    }
    props["errorCode"] = {"anyOf": [{"type": "integer", "enum": [400, 500, 501]}, {"type": "null"}]}
    props["errorMessage"] = {"type": ["string", "null"]}
    props["createTime"] = props["completeTime"] = _TIME
    resp = dict(props["response"])
    resp["properties"] = dict(
        resp["properties"], resultUrls=_URLS, originUrls=_URLS, fullResultUrls=_URLS
    )
    resp["properties"]["mediaIds"] = {"type": "array", "items": {"type": "string"}}
    props["response"] = {"anyOf": [resp, {"type": "null"}]}
    props.pop("paramJson")  # drawn below: JSON text of a request, or garbage
    return {"type": "object", "properties": props, "required": ["taskId"]}


def _from_schema(sch: dict[str, Any]) -> st.SearchStrategy[Any]:
    """from_schema, with objects and anyOf built here (hypothesis-jsonschema 0.23's object
    strategy relies on Hypothesis internals that newer Hypothesis no longer has)."""
    if "anyOf" in sch:
        return st.one_of([_from_schema(s) for s in sch["anyOf"]])
    if sch.get("type") == "object":
        props = {k: _from_schema(v) for k, v in sch.get("properties", {}).items()}
        required = {k: props.pop(k) for k in sch.get("required", [])}
        return st.fixed_dictionaries(required, optional=props)
    return from_schema(sch)


_PARAMS = _from_schema(
    {
        "type": "object",
        "properties": {
            "prompt": {"type": "string"},
            "model": {"enum": ["veo3", "veo3_fast", "veo3_lite", "fast", "quality"]},
            "aspect_ratio": {"enum": ["16:9", "9:16", "Auto"]},
            "aspectRatio": {"enum": ["16:9", "9:16", "Auto"]},
            "waterMark": {"type": "string"},
            "generationType": {"enum": ["TEXT_2_VIDEO", "REFERENCE_2_VIDEO"]},
            "imageUrls": _URLS,
            "seeds": {"type": "integer"},
            "taskId": {"type": "string"},
            "index": {"type": "integer"},
        },
    }
)
_PARAM_JSON = st.one_of(_PARAMS.map(json.dumps), st.text(max_size=20), st.none(), st.just(""))
_EXTRA = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in SPEC_DATA_SCHEMA["properties"]),
    st.one_of(st.integers(), st.text(max_size=5), st.lists(st.booleans(), max_size=2)),
    max_size=2,
)


@st.composite
def data_objects(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(_from_schema(_with_quirks(SPEC_DATA_SCHEMA)))
    data["paramJson"] = draw(_PARAM_JSON)
    data.update(draw(_EXTRA))
    return data


_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.lists(data_objects(), min_size=1, max_size=6), st.booleans())
def test_property_never_raises_and_keeps_every_row(objs: list[dict[str, Any]], wrap: bool) -> None:
    records = [{"code": 200, "msg": "success", "data": d} for d in objs] if wrap else objs
    df = to_frame(records)
    assert len(df) == len(objs)
    assert df["task_id"].tolist() == [d["taskId"] for d in objs]
    assert df.dtypes.to_dict() == schema.dtypes()
    assert df["status"].notna().all()


@_SETTINGS
@given(st.lists(data_objects(), min_size=1, max_size=6))
def test_property_raw_texts_equal_dicts(objs: list[dict[str, Any]]) -> None:
    texts = [json.dumps({"code": 200, "msg": "success", "data": d}) for d in objs]
    ids = [f"id{i}" for i in range(len(objs))]
    df = from_raw(texts, task_ids=ids)
    assert df["task_id"].tolist() == ids
    expected = to_frame([{"code": 200, "msg": "success", "data": d} for d in objs])
    ids_of = ["task_id", "root_task_id"]  # the root is derived from the ids
    pd.testing.assert_frame_equal(df.drop(columns=ids_of), expected.drop(columns=ids_of))


def test_from_raw_checks_lengths_and_takes_generators_and_dataclass_rows() -> None:
    import dataclasses

    with pytest.raises(InputError, match="task_ids has 1 items for 2 texts"):
        from_raw(["{}", "{}"], task_ids=["a"])

    @dataclasses.dataclass
    class Row:
        task_id: str
        raw: str | None
        fetched_at: float
        fetch_error: str | None

    gen = (r for r in [Row("a", json.dumps(rec(successFlag=1)), 1.7e9, None), rec(taskId="b")])
    df = to_frame(gen)
    assert df["task_id"].tolist() == ["a", "b"] and df["status"].tolist() == ["success", "unknown"]


def test_data_object_with_a_code_key_is_not_an_envelope() -> None:
    df = to_frame(
        [{"taskId": "d", "code": 0, "successFlag": 1}, {"code": 200, "data": {"taskId": "e"}}]
    )
    assert df["task_id"].tolist() == ["d", "e"] and df["status"].iloc[0] == "success"
    assert json.loads(df["extra"].iloc[0]) == {"data": {"code": 0}}


def test_unknown_naive_tz_is_an_input_error() -> None:
    with pytest.raises(InputError, match="Mars/Base"):
        to_frame([rec()], naive_tz="Mars/Base")


# -- the column-source table ------------------------------------------------------------------


def test_source_table_covers_the_schema_and_drives_the_reader() -> None:
    from veo_notebook.frame import _build, _text, sources

    read = set(sources.COLUMN_SOURCES)
    assert read | _build.DERIVED == set(schema.column_names())
    assert not read & _build.DERIVED
    # every path of the table is a field of the reader's schemas, its variant beside it
    for s in sources.SOURCES:
        names = s.path.split(".")
        sch = sources.PARAM_SCHEMA if names[0] == sources.PARAM else sources.ENVELOPE_SCHEMA
        names = names[1:] if names[0] == sources.PARAM else names
        typ: Any = sch
        for name in names[:-1]:
            typ = typ.field(name).type
        assert typ.field(names[-1]).type == s.type, s.path
        if s.variant_path is not None:
            assert typ.field(s.variant_path.rsplit(".", 1)[-1]).type == s.variant
    # the renaming patterns come from the schemas' variant fields
    env = _text.variants_of(sources.ENVELOPE_SCHEMA)
    assert env.num_keys == {"createTime", "completeTime", "seeds"}
    assert env.str_keys == {"resultUrls", "originUrls", "fullResultUrls"}
    assert _text.variants_of(sources.PARAM_SCHEMA).str_keys == {"imageUrls"}
    assert sources.PARAM_ALIASES["callback_url"] == "callBackUrl"


def test_a_number_for_the_response_seeds_stays_on_the_fast_path() -> None:
    texts = [json.dumps(rec(response={"seeds": 34186, "resultUrls": ["u"]}))] * 3
    assert from_raw(texts)["seeds"].tolist() == [34186] * 3
    assert _via_slow_path([rec(response={"seeds": 34186})]).loc[0, "seeds"] == 34186


# -- one policy for plain times in a zone's DST change, on every path ---------------------------


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        pytest.param("2025-10-26 02:30:00", ts("2025-10-26 00:30:00"), id="ambiguous"),
        pytest.param("2025-03-30 02:30:00", ts("2025-03-30 01:00:00"), id="nonexistent"),
        pytest.param("2025-06-01 02:30:00", ts("2025-06-01 00:30:00"), id="summer"),
    ],
)
def test_plain_time_in_a_dst_change_does_not_depend_on_other_rows(
    plain: str, expected: pd.Timestamp
) -> None:
    tz = "Europe/Berlin"
    alone = [rec(createTime=plain)]  # one shape in the column: the cast path
    mixed = [rec(createTime=plain), rec(createTime="2024-03-20T10:30:00Z")]  # the mixed path
    for records in (alone, mixed):
        fast = to_frame(records, naive_tz=tz)
        slow = _via_slow_path_tz(records, tz)
        assert fast.loc[0, "create_time"] == expected
        pd.testing.assert_frame_equal(fast, slow)
        assert fast["parse_note"].isna().all()


def _via_slow_path_tz(records: list[dict[str, Any]], tz: str) -> pd.DataFrame:
    mp = pytest.MonkeyPatch()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise pa.ArrowInvalid("JSON parse error: refused for the test")

    mp.setattr(_frame_read.pj, "read_json", refuse)
    try:
        return to_frame(records, naive_tz=tz)
    finally:
        mp.undo()


# -- the published shapes of /work/shared/api-facts.md, fast and per-row paths agreeing ----------

_SPEC_EXAMPLE = {
    "code": 200,
    "msg": "success",
    "data": {
        "taskId": "veo_task_abcdef123456",
        "paramJson": (
            '{"prompt":"A futuristic city with flying cars at sunset.","waterMark":"KieAI"}'
        ),
        "completeTime": "2025-06-06 10:30:00",
        "response": {
            "taskId": "veo_task_abcdef123456",
            "resultUrls": ["http://example.com/video1.mp4"],
            "originUrls": ["http://example.com/original_video1.mp4"],
            "resolution": "1080p",
        },
        "successFlag": 1,
        "errorCode": None,
        "errorMessage": "",
        "createTime": "2025-06-06 10:25:00",
        "fallbackFlag": False,
    },
}
_IMAGE_FETCH = "Image fetch failed. Check access settings or use our File Upload API instead."
_NO_AUDIO = "The Google model was unable to generate audio for this request."
_ID = "4c9a31a5bb61db65d10f1210d78cc08a"  # a real id: 32 hex characters
_PARENT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

PUBLISHED = [
    pytest.param(
        _SPEC_EXAMPLE,
        {
            "task_id": "veo_task_abcdef123456",
            "status": "success",
            "task_type": "generate",
            "watermark": "KieAI",
            "resolution": "1080p",
            "video_url": "http://example.com/video1.mp4",
            "error_message": None,
            "error_code": None,
            "fallback": False,
            "create_time": ts("2025-06-06 02:25:00"),  # plain times are UTC+8
            "latency_s": 300.0,
        },
        id="spec-example",
    ),
    pytest.param(
        {"code": 500, "msg": "Task generation failed", "data": {"errorMessage": _IMAGE_FETCH}},
        {
            "fetch_error": "500 Task generation failed",
            "status": None,
            "task_type": None,
            "error_message": None,
            "extra": {"data": {"errorMessage": _IMAGE_FETCH}},
        },
        id="error-envelope-with-data",
    ),
    pytest.param(
        {"code": 401, "msg": "Unauthorized: bad key", "data": None},
        {"fetch_error": "401 Unauthorized: bad key", "status": None, "extra": None},
        id="bad-key-http-200",
    ),
    pytest.param(
        {"code": 422, "msg": "recordInfo is null"},
        {"fetch_error": "422 recordInfo is null", "status": None, "parse_note": None},
        id="market-endpoint-422",
    ),
    pytest.param(
        {"code": 422, "msg": "Temporarily supports records within 14 days.", "data": None},
        {"fetch_error": "422 Temporarily supports records within 14 days.", "status": None},
        id="older-than-14-days",
    ),
    pytest.param(
        {
            "code": 200,
            "msg": "success",
            "data": {
                "taskId": _ID,
                "successFlag": 3,
                "errorCode": 422,
                "errorMessage": "failed",
                "paramJson": '{"prompt": "a prominent person", "model": "veo3_fast"}',
            },
        },
        {"status": "generation_failed", "error_code": 422, "error_message": "failed"},
        id="flag-3-code-422",
    ),
    pytest.param(
        {
            "code": 200,
            "msg": "success",
            "data": {
                "taskId": _ID,
                "successFlag": 3,
                "errorCode": 400,
                "errorMessage": _NO_AUDIO + " Please try a different prompt.",
                "paramJson": '{"prompt": "p", "model": "veo3"}',
            },
        },
        {"status": "generation_failed", "error_code": 400, "task_type": "generate"},
        id="no-audio",
    ),
    pytest.param(
        rec(
            successFlag=1,
            paramJson='{"prompt": "p"}',
            response={"resultUrls": ["http://v/1.mp4"], "hasAudioList": [False], "seeds": [34186]},
        ),
        {"has_audio": False, "seeds": 34186, "status": "success"},
        id="silent-success",
    ),
    pytest.param(
        rec(
            successFlag=2,
            errorCode="null",
            errorMessage="null",
            paramJson='{"prompt": "p", "model": "null", "aspect_ratio": "null"}',
        ),
        {
            "error_code": None,
            "error_message": None,
            "model": "veo3_fast",  # "null" is no model: kie.ai's default (defaults_applied)
            "aspect_ratio": None,
            "parse_note": None,
            "extra": None,
        },
        id="null-strings",
    ),
    pytest.param(
        rec(
            successFlag=1,
            paramJson='{"prompt": "p", "model": "veo3_fast", "generationType": "TEXT_2_VIDEO"}',
            response={"resultUrls": ["http://v/1.mp4"], "fullResultUrls": None},
        ),
        {"task_type": "generate", "full_result_urls": None, "video_url": "http://v/1.mp4"},
        id="full-result-urls-null",
    ),
    pytest.param(
        rec(
            successFlag=1,
            paramJson=None,
            response={"resultUrls": ["http://v/b.mp4"], "fullResultUrls": ["http://v/f.mp4"]},
        ),
        {"task_type": "extend", "video_url": "http://v/f.mp4"},
        id="extend-by-its-stitched-video",
    ),
    pytest.param(
        rec(successFlag=0, paramJson='{"prompt": "more", "model": "fast"}'),
        {"task_type": "extend", "parent_task_id": None},
        id="extend-by-its-model",
    ),
    pytest.param(
        rec(
            successFlag=1,
            paramJson=json.dumps({"taskId": _PARENT, "index": 0}),
            response={"resultUrls": ["http://v/1080.mp4"], "resolution": "1080p"},
        ),
        {"task_type": "1080p", "parent_task_id": _PARENT, "extra": {"paramJson": {"index": 0}}},
        id="1080p-upgrade",
    ),
    pytest.param(
        rec(
            successFlag=1,
            paramJson=json.dumps({"taskId": _PARENT}),
            response={"resultUrls": ["http://v/4k.mp4"], "resolution": "4k"},
        ),
        {"task_type": "4k"},
        id="4k-by-the-answer's-resolution",
    ),
    pytest.param(
        {
            "code": 200,
            "msg": "success",
            "data": {
                "taskId": _ID,
                "successFlag": 1,
                "creditsConsumed": 120,
                "paramJson": json.dumps({"taskId": _PARENT, "index": 0, "callBackUrl": "http://c"}),
                "response": {
                    "resultUrls": ["http://v/4k.mp4"],
                    "mediaIds": ["m1"],
                    "imageUrls": ["http://v/4k.jpg"],
                },
            },
        },
        {
            "task_type": "4k",
            "credits_consumed": 120.0,
            "media_ids": ["m1"],
            "callback_url": "http://c",
            "extra": {
                "data": {"response": {"imageUrls": ["http://v/4k.jpg"]}},
                "paramJson": {"index": 0},
            },
        },
        id="4k-with-credits",
    ),
    pytest.param(
        rec(successFlag=1, costTime=35, paramJson='{"prompt": "p", "duration": 8}'),
        {"cost_time": 35.0, "duration": 8, "credits_consumed": None},
        id="cost-time-and-duration",
    ),
    pytest.param(
        rec(
            successFlag=1,
            createTime=1767658563526,
            completeTime="2026-01-06 08:17:04",
            response={"resultUrls": "[http://v/a.mp4, http://v/b.mp4]"},
        ),
        {
            "create_time": pd.Timestamp(1767658563526, unit="ms", tz=UTC),
            "complete_time": ts("2026-01-06 00:17:04"),
            "result_urls": ["http://v/a.mp4", "http://v/b.mp4"],
        },
        id="epoch-ms-and-old-url-string",
    ),
    pytest.param(
        rec(successFlag=7, paramJson='{"prompt": "p"}'),
        {"status": "unknown", "success_flag": 7},
        id="unknown-flag-kept",
    ),
]


@pytest.mark.parametrize(("record", "expected"), PUBLISHED)
def test_published_shapes(record: dict[str, Any], expected: dict[str, Any]) -> None:
    fast = to_frame([record, record])  # twice: a column of one shape
    raw = from_raw([json.dumps(record)])
    slow = _via_slow_path([record, record])
    pd.testing.assert_frame_equal(fast, slow)
    pd.testing.assert_frame_equal(raw, fast.iloc[:1])
    row = fast.iloc[0]
    for column, want in expected.items():
        got = row[column]
        if want is None:
            assert pd.isna(got) if not isinstance(got, (list, np.ndarray)) else False, column
        elif column == "extra":
            assert json.loads(got) == want
        elif isinstance(want, list):
            assert list(got) == want, column
        else:
            assert got == want, (column, got)


def test_the_string_null_is_null_everywhere_on_both_paths() -> None:
    data = {
        "taskId": "t",
        "successFlag": "null",
        "errorCode": "null",
        "errorMessage": "null",
        "createTime": "null",
        "fallbackFlag": "null",
        "costTime": "null",
        "unknownKey": "null",
        "nested": {"a": "null", "b": 1},
        "list": ["null"],  # an item of a list is a value, not a null
        "paramJson": '{"prompt":"null", "duration": "null", "imageUrls": "null", "x": "null"}',
        "response": {"resultUrls": "null", "resolution": "null", "hasAudioList": [True]},
    }
    records = [{"code": 200, "msg": "null", "data": data}]
    pretty = [json.dumps(records[0], indent=2)]
    fast, slow, raw = to_frame(records), _via_slow_path(records), from_raw(pretty)
    pd.testing.assert_frame_equal(fast, slow)
    pd.testing.assert_frame_equal(fast, raw)
    row = fast.iloc[0]
    for column in (
        "success_flag",
        "error_code",
        "error_message",
        "create_time",
        "fallback",
        "cost_time",
        "prompt",
        "duration",
        "image_urls",
        "result_urls",
        "resolution",
        "fetch_error",
        "parse_note",
    ):
        assert pd.isna(row[column]), column
    assert row["status"] == "unknown" and row["has_audio"] is np.True_
    assert json.loads(row["extra"]) == {"data": {"nested": {"b": 1}, "list": ["null"]}}
    assert row["param_json"] == data["paramJson"]  # the raw text, untouched
