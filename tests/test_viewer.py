"""StatusViewer driven in plain Python: filters, sorting, paging, selection, detail, safety,
refresh and auto-refresh against the simulator (requests counted there), export."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from veo_notebook import schema
from veo_notebook.client import Client
from veo_notebook.errors import InputError
from veo_notebook.fetch import fetch_records
from veo_notebook.frame import from_store
from veo_notebook.store import Store
from veo_notebook.viewer import StatusViewer
from veo_notebook.viewer._html import safe_url
from veo_notebook.viewer._live import merge_rows
from veo_notebook.viewer._model import TableModel, _TextIndex

STATUSES = ["generating", "success", "failed", "generation_failed"]
T0 = pd.Timestamp("2026-03-01", tz="UTC")
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'


def make_frame(n: int = 60) -> pd.DataFrame:
    """A typed frame by hand: statuses cycle, two models, hostile texts in rows 5 and 6."""
    i = np.arange(n)
    status = [STATUSES[k % 4] for k in i]
    latency = [
        np.nan if s == "generating" else float((k * 37) % 101)
        for k, s in zip(i, status, strict=True)
    ]
    df = pd.DataFrame(
        {
            "task_id": [f"t{k:04d}" for k in i],
            "status": status,
            "model": ["veo3" if k % 3 == 0 else "veo3_fast" for k in i],
            "task_type": ["extend" if k % 5 == 0 else "generate" for k in i],
            "generation_type": ["TEXT_2_VIDEO" if k % 2 else "REFERENCE_2_VIDEO" for k in i],
            "create_time": T0 + pd.to_timedelta(i * 3600, unit="s"),
            "latency_s": latency,
            "prompt": [SCRIPT if k == 5 else f"a Cat number {k}" for k in i],
            "error_code": [400 if s == "failed" else None for s in status],
            "error_message": [
                IMG if k == 6 else ("Only English prompts are supported" if s == "failed" else None)
                for k, s in zip(i, status, strict=True)
            ],
            "result_urls": [
                ["javascript:alert(1)", "https://cdn.test/r.mp4"]
                if k == 6
                else (["javascript:alert(1)"] if k == 8 else ["https://cdn.test/r.mp4"])
                for k in i
            ],
            "video_url": [
                "data:text/html,<b>x</b>" if k == 7 else f"https://cdn.test/{k}.mp4" for k in i
            ],
            "param_json": [
                json.dumps(
                    {"prompt": SCRIPT if k == 5 else f"cat {k}", "seeds": 12345, "model": "veo3"}
                )
                for k in i
            ],
        }
    )
    return schema.enforce(df)


def page_ids(v: StatusViewer) -> list[str]:
    return v.page_frame()["task_id"].tolist()


# --------------------------------------------------------------------------- header, repr
def test_header_counts_progress_and_cheap_repr():
    v = StatusViewer(make_frame(60), page_size=10)
    assert "60 tasks" in v.header.value
    for s in STATUSES:
        assert f"{s}: 15" in v.header.value
    assert "75.0% done" in v.header.value
    assert (v.progress.value, v.progress.max) == (45, 60)
    assert repr(v) == "StatusViewer(tasks=60, matching=60, page=1/6, pending=15)"
    for cls in ("veo-viewer", "veo-header", "veo-table", "veo-detail", "veo-next", "veo-prev"):
        widgets = [v, *v.children] + [g for c in v.children for g in getattr(c, "children", ())]
        assert any(cls in x._dom_classes for x in widgets), cls


def test_source_must_be_frame_store_or_ids():
    with pytest.raises(InputError):
        StatusViewer("t0001")
    with pytest.raises(InputError):
        StatusViewer(42)


# --------------------------------------------------------------------------- filters
def test_status_filter_and_facets_combine():
    v = StatusViewer(make_frame(60), page_size=100)
    v.status_filter.value = ("failed", "generation_failed")
    page = v.page_frame()
    assert len(page) == 30 and set(page["status"]) == {"failed", "generation_failed"}
    assert "30 match the filters" in v.header.value
    v.model_filter.value = ("veo3",)
    page = v.page_frame()
    assert len(page) == 10 and set(page["model"]) == {"veo3"}
    v.task_type_filter.value = ("extend",)
    v.generation_type_filter.value = ("REFERENCE_2_VIDEO",)
    df = make_frame(60)
    want = df[
        df.status.isin(["failed", "generation_failed"])
        & (df.model == "veo3")
        & (df.task_type == "extend")
        & (df.generation_type == "REFERENCE_2_VIDEO")
    ]
    assert sorted(page_ids(v)) == sorted(want["task_id"])
    v.status_filter.value = ()  # empty selection: no filter
    assert set(v.model_filter.options) == {"veo3", "veo3_fast"}
    assert len(v.page_frame()) == len(
        df[
            (df.model == "veo3")
            & (df.task_type == "extend")
            & (df.generation_type == "REFERENCE_2_VIDEO")
        ]
    )


def test_created_range_and_bad_input():
    v = StatusViewer(make_frame(60), page_size=100)
    v.created_from.value = "2026-03-01 10:00"
    v.created_to.value = "2026-03-01T19:00:00Z"
    ids = sorted(page_ids(v))
    assert ids == [f"t{k:04d}" for k in range(10, 20)]
    v.created_to.value = "not a date"
    assert "not a date" in v.message.value and "veo-invalid" in v.created_to._dom_classes
    assert len(v.page_frame()) == 50  # only the lower bound is left


def test_free_text_search_over_id_prompt_and_error():
    v = StatusViewer(make_frame(60), page_size=100)
    v.search.value = "CAT NUMBER 1"  # case-insensitive, in prompts
    assert set(page_ids(v)) == {f"t{k:04d}" for k in [1, *range(10, 20)]}
    v.search.value = "only english"  # error messages
    assert len(page_ids(v)) == 14  # 15 failed, one of which carries the <img> payload
    v.search.value = "t0042"  # task id
    assert page_ids(v) == ["t0042"]
    v.search.value = "window.__pwned"  # prompt row 5 and error row 6
    assert set(page_ids(v)) == {"t0005", "t0006"}


# --------------------------------------------------------------------------- sort, page
def test_sorting_by_latency_created_status():
    v = StatusViewer(make_frame(60), page_size=250)
    created = v.page_frame()["create_time"]
    assert created.is_monotonic_decreasing  # default: newest first
    v.sort_by.value = "latency"
    v.sort_order.value = False
    lat = v.page_frame()["latency_s"]
    done = lat.dropna()
    assert done.is_monotonic_increasing and lat.iloc[len(done) :].isna().all()  # NaN last
    v.sort_order.value = True
    lat = v.page_frame()["latency_s"]
    assert lat.dropna().is_monotonic_decreasing and lat.iloc[-15:].isna().all()
    v.sort_by.value = "status"
    v.sort_order.value = False
    codes = v.page_frame()["status"].cat.codes
    assert codes.is_monotonic_increasing


def test_paging_walks_every_filtered_row_once():
    v = StatusViewer(make_frame(60), page_size=10)
    v.status_filter.value = ("success", "failed")
    assert v.prev_button.disabled and not v.next_button.disabled
    assert "page 1 of 3" in v.page_label.value
    seen: list[str] = []
    for _ in range(3):
        seen += page_ids(v)
        v.next_button.click()
    assert v.next_button.disabled and "page 3 of 3" in v.page_label.value
    assert len(seen) == len(set(seen)) == 30
    assert v.frame.set_index("task_id").loc[seen, "status"].isin(["success", "failed"]).all()
    v.prev_button.click()
    assert v.page == 1
    v.page_size.value = 50  # a view change goes back to page 1
    assert v.page == 0 and len(page_ids(v)) == 30 and v.next_button.disabled


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_pages_match_pandas(seed):
    """The chunked walk of the cached sort order gives what pandas' filter+sort gives."""
    rng = np.random.default_rng(seed)
    n = 5000
    df = make_frame(n)
    df["latency_s"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 50, n).astype(float))
    m = TableModel(df)
    chosen = ["failed"] if seed else ["failed", "success"]
    m.set_facet("status", chosen)
    m.set_text("cat number 1")
    mask = df.status.isin(chosen) & df.prompt.str.contains("cat number 1", case=False)
    ref = df[mask.fillna(False)]
    done = ref[ref.latency_s.notna()]
    want = list(done.iloc[np.argsort(-done.latency_s.to_numpy(), kind="stable")].index)
    want += list(ref[ref.latency_s.isna()].index)
    got = np.concatenate(
        [m.page_positions(p, 7, "latency", True) for p in range(len(want) // 7 + 2)]
    )
    assert got.tolist() == want and m.count() == len(want)


# --------------------------------------------------------------------------- selection, detail
def test_selection_opens_detail_with_everything():
    v = StatusViewer(make_frame(60), page_size=10, sort_by="created", descending=False)
    assert [o[1] for o in v.selector.options][1:] == page_ids(v)
    v.selector.value = "t0006"
    d = v.detail.value
    assert "t0006" in d and "failed" in d and ">400<" in d
    assert "seeds" in d and "12345" in d  # every parameter of paramJson
    assert "created (UTC)" in d and "2026-03-01 06:00:00" in d and "latency" in d
    assert '<a href="https://cdn.test/r.mp4"' in d
    assert '<video class="veo-video" controls' in d and 'src="https://cdn.test/6.mp4"' in d
    v.next_button.click()  # the selected task stays in the detail pane, off the page
    assert v.selector.value is None and "t0006" in v.detail.value
    v.select("nope")
    assert "No task nope" in v.detail.value


def test_hostile_texts_are_escaped_and_bad_urls_are_not_links():
    v = StatusViewer(make_frame(60), page_size=100, descending=False)
    for html_text in (v.table.value, v.header.value):
        assert "<script" not in html_text and "<img" not in html_text
    v.select("t0005")
    assert "<script" not in v.detail.value and "&lt;script&gt;window.__pwned=1" in v.detail.value
    v.select("t0006")
    d = v.detail.value
    assert "<img" not in d and "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in d
    assert not re.search(r"href=\"\s*javascript", d)
    assert (
        'class="veo-mono veo-not-link" title="not an http(s) URL">javascript:alert(1)</span>' in d
    )
    v.select("t0008")  # a one-item list
    assert ">javascript:alert(1)</span>" in v.detail.value and "href" not in v.detail.value
    v.select("t0007")
    assert "<video" not in v.detail.value and "no playable video" in v.detail.value


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param("https://cdn.test/a.mp4", True, id="https"),
        pytest.param("http://127.0.0.1:8080/a.mp4", True, id="http"),
        pytest.param("javascript:alert(1)", False, id="javascript"),
        pytest.param(" JavaScript:alert(1)", False, id="javascript-case-space"),
        pytest.param("java\tscript:alert(1)", False, id="javascript-tab"),
        pytest.param("data:video/mp4;base64,AAAA", False, id="data"),
        pytest.param("//evil.test/x", False, id="scheme-relative"),
        pytest.param("https:///nohost", False, id="no-host"),
        pytest.param(None, False, id="none"),
    ],
)
def test_safe_url(url, ok):
    assert (safe_url(url) is not None) is ok


# --------------------------------------------------------------------------- export
def test_export_writes_the_filtered_view(tmp_path):
    from veo_notebook.export import read_parquet

    v = StatusViewer(make_frame(60), page_size=10)
    v.status_filter.value = ("failed",)
    v.export_path.value = str(tmp_path / "view.parquet")
    v.export_parquet_button.click()
    back = read_parquet(tmp_path / "view.parquet")
    assert len(back) == 15 and set(back["status"]) == {"failed"}
    assert "wrote 15 rows" in v.message.value
    v.export_csv_button.click()
    csv = pd.read_csv(tmp_path / "view.csv")
    assert len(csv) == 15 and csv["task_id"].tolist() == v.view()["task_id"].tolist()


# --------------------------------------------------------------------------- live mode
def _client(sim) -> Client:
    return Client(sim.api_key, base_url=sim.base_url)


def test_refresh_repolls_only_pending_tasks(fresh_sim):
    sim = fresh_sim(clock_speed=1.0, n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:6]
    terminal = sim.task_ids("terminal")[:20]
    assert len(pending) == 6
    v = StatusViewer(terminal + pending, client=_client(sim))
    assert set(v.pending_ids()) == set(pending)
    sim.reset_stats()
    assert v.refresh() == 6
    by_task = sim.stats()["by_task"]
    assert set(by_task) == set(pending) and all(n == 1 for n in by_task.values())
    assert v.frame["task_id"].tolist() == terminal + pending  # rows stay in place
    v.select(pending[0])
    shown = [repr(v), v.message.value, v.header.value, v.table.value, v.detail.value]
    assert not any(sim.api_key in text for text in shown)  # the key never shows


def test_refresh_updates_rows_in_place_and_the_store(fresh_sim, tmp_path):
    sim = fresh_sim(clock_speed=0, n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:5]
    c = _client(sim)
    with Store(tmp_path / "s.sqlite") as store:
        fetch_records(pending, client=c, store=store, progress=False)
        v = StatusViewer(store, client=c)
        assert set(v.pending_ids()) <= set(pending) and v.pending_ids()
        before = v.frame["task_id"].tolist()
        sim.advance(max(sim.task(t).complete_ts for t in pending) - sim.now())
        v.refresh()
        assert v.pending_ids() == [] and v.frame["task_id"].tolist() == before
        assert v.progress.value == v.progress.max == len(pending)
        assert (from_store(store)["status"] != "generating").all()
        assert v.refresh() == 0 and "nothing to refresh" in v.message.value


def test_refresh_button_polls_in_the_background(fresh_sim):
    sim = fresh_sim(clock_speed=1.0, n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:4]
    v = StatusViewer(pending, client=_client(sim))
    sim.reset_stats()
    v.refresh_button.click()  # returns at once; the poll runs in a thread
    assert v.wait(timeout=30) and not v.refresh_button.disabled
    assert set(sim.stats()["by_task"]) == set(pending)
    assert "re-polled 4 tasks" in v.message.value


def test_refresh_failure_is_reported_not_raised(fresh_sim, no_env_key):
    sim = fresh_sim(n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:2]
    df = fetch_records(pending, client=_client(sim), progress=False)
    v = StatusViewer(df)  # no client, no KIE_API_KEY: the fetch layer refuses
    v.refresh_button.click()
    assert v.wait(timeout=30)
    assert "refresh failed" in v.message.value and "KIE_API_KEY" in v.message.value
    v.auto_button.value = True
    assert v.wait(timeout=30) and "auto-refresh stopped" in v.message.value
    assert not v.auto_button.value


def test_auto_refresh_stops_when_every_task_is_terminal(fresh_sim):
    sim = fresh_sim(clock_speed=300.0, n_tasks=300, pending_share=0.1)
    pending = sim.task_ids("pending")[:5]
    v = StatusViewer(pending, client=_client(sim), poll_scale=0.05)
    assert v.pending_ids()
    v.auto_button.value = True  # the toggle starts the thread
    assert v.running
    assert v.wait(timeout=30)
    assert not v.running and not v.auto_button.value
    assert v.pending_ids() == [] and "every task is terminal" in v.message.value
    assert v.refresh_count >= 1


def test_stop_ends_auto_refresh_promptly(fresh_sim):
    sim = fresh_sim(clock_speed=0.001, n_tasks=300, pending_share=0.1)  # nothing finishes
    pending = sim.task_ids("pending")[:3]
    v = StatusViewer(pending, client=_client(sim), auto_refresh=True)
    assert v.running and v.auto_button.value
    assert v.stop(timeout=10)
    assert not v.running and not v.auto_button.value
    v.close()


def test_expired_ids_count_as_done_and_unread_ones_as_pending():
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": ["gone", "flaky", "ok", "bad"],
                "status": [None, None, "success", None],
                "fetch_error": [
                    "422 record is null.",
                    "transient: connection reset",
                    None,
                    "414 Request-URI Too Long",
                ],
            }
        )
    )
    v = StatusViewer(df)
    # the fetch rule (schema.is_pending): a 422 or a 414 is final, a transient failure is not
    assert v.pending_ids() == ["flaky"]
    assert repr(v).endswith("pending=1)") and (v.progress.value, v.progress.max) == (3, 4)
    assert "unread: 3" in v.header.value and "75.0% done" in v.header.value


def test_unreadable_answer_never_replaces_a_read_row():
    df = make_frame(8)
    worse = schema.enforce(
        pd.DataFrame({"task_id": ["t0000", "t0004"], "fetch_error": ["transient: reset"] * 2})
    )
    out, n = merge_rows(df, np.array([0, 4]), worse)
    assert n == 0 and out["status"].tolist() == df["status"].tolist()
    better = schema.enforce(pd.DataFrame({"task_id": ["t0004"], "status": ["success"]}))
    out, n = merge_rows(df, np.array([0, 4]), better)
    assert n == 1 and out.loc[4, "status"] == "success" and out.loc[0, "status"] == "generating"
    assert out["task_id"].tolist() == df["task_id"].tolist() and out.dtypes.equals(df.dtypes)


def test_filters_set_during_a_refresh_survive_the_swap():
    m = TableModel(make_frame(40))
    m.set_facet("status", ["failed"])
    fresh = m.with_frame(make_frame(40))  # built while the user keeps clicking
    m.set_text("cat number 1")
    fresh.adopt_spec(m)
    assert fresh.count() == m.count() == 3


@pytest.mark.parametrize(
    "needle",
    ["abc", "ABC", "veo_", "x", "é", "Ünï", "b\nc", "zzz-none", "1", " "],
)
def test_text_index_agrees_with_a_plain_scan(needle):
    values = pd.Series(
        ["veo_abc1", "VEO_ABX2", None, "Ünïcode é", "b", "c", "abc abc", "x y", ""] * 40,
        dtype="string[pyarrow]",
    )
    expected = values.str.contains(needle, case=False, regex=False).fillna(False)
    got = _TextIndex(values).search(needle)
    assert got.tolist() == expected.to_numpy(dtype=bool).tolist()


def test_text_search_over_ids_prompts_and_messages_together():
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": ["veo_aaa", "veo_bbb", "veo_ccc", "veo_ddd"],
                "prompt": ["a red CAT", "dog", None, "cat and dog"],
                "error_message": [None, None, "Cat policy", None],
            }
        )
    )
    m = TableModel(df)
    m.set_text("cat")
    assert m.count() == 3
    m.set_text("BBB")
    assert m.count() == 1
    m.set_text("nothing-like-it")
    assert m.count() == 0


def test_text_index_pair_prefilter_agrees_with_a_plain_scan():
    rng = np.random.default_rng(7)
    ids = [f"veo_{x:016x}" for x in rng.integers(0, 2**63, 3000)] + ["ABCD-x", None, "dcba"]
    values = pd.Series(ids, dtype="string[pyarrow]")
    index = _TextIndex(values)
    assert index.sigs is not None  # ASCII: the pre-filter is in use
    needles = ["abcd", "ABC", "dcb", "bcda", "veo_0", ids[5][3:12], ids[17][-5:], "q" * 200]
    for needle in needles:
        expected = values.str.contains(needle, case=False, regex=False).fillna(False)
        assert index.search(needle).tolist() == expected.to_numpy(dtype=bool).tolist(), needle


@pytest.mark.parametrize("by", ["created", "latency", "status"])
@pytest.mark.parametrize("descending", [True, False])
def test_pages_of_a_selective_filter_follow_the_sort_order(by, descending):
    rng = np.random.default_rng(3)
    n = 6400
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": [f"veo_{i:06d}" for i in range(n)],
                "status": rng.choice(["success", "failed", "generating"], n),
                "model": rng.choice(["veo3", "veo3_fast"], n),
                "create_time": pd.Timestamp("2026-11-01", tz="UTC")
                + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
                "latency_s": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 300),
            }
        )
    )
    m = TableModel(df)
    m.set_text("veo_0000")  # 100 rows of 6,400: the few-matches path
    assert 0 < m.count() * 64 <= n
    everything = m.positions(by, descending)
    for page in range(5):
        got = m.page_positions(page, 25, by, descending)
        assert got.tolist() == everything[page * 25 : (page + 1) * 25].tolist()


def test_failed_rows_show_their_error_category():
    # the category comes from analysis.classify_errors; a broken import must not hide it
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": ["bad", "ok"],
                "status": ["failed", "success"],
                "error_code": [400, None],
                "error_message": [
                    "Your prompt was flagged by Website as violating content policies.",
                    None,
                ],
            }
        )
    )
    v = StatusViewer(df)
    v.select("bad")
    assert "content_policy" in v.detail.value
    v.select("ok")
    assert "content_policy" not in v.detail.value


def test_the_table_names_what_a_missing_model_means():
    df = schema.enforce(
        pd.DataFrame(
            {
                "task_id": ["up", "gone"],
                "status": ["success", None],
                "task_type": ["1080p", None],
                "fetch_error": [None, "422 record is null."],
            }
        )
    )
    table = StatusViewer(df).table.value
    assert "upgrade task" in table and "unread" in table


@pytest.mark.parametrize("new_label", [False, True], ids=["known-values", "a-new-model"])
def test_a_refresh_patches_the_model_and_equals_a_rebuild(new_label):
    # the viewer's refresh re-indexes only the replaced rows (TableModel.with_rows); the
    # result must be the model a full rebuild gives, for every filter, sort and summary
    from veo_notebook.viewer._live import _merge

    df = schema.enforce(make_frame(200))
    old = TableModel(df)
    old.set_facet("status", ["generating", "success"])
    old.set_text("cat number 1")
    for by in ("created", "latency", "status"):
        old.order(by, True)
        old.page_positions(0, 10, by, True)
    old._text_facet("prompt"), old._text_facet("error_message")
    pending = old.pending_positions()
    answers = df.iloc[pending].copy()
    answers["status"] = ["success" if k % 2 else "failed" for k in range(len(answers))]
    answers["latency_s"] = np.arange(len(answers), dtype=float) * 7.0
    answers["error_message"] = [
        None if k % 2 else f"Only English prompts are supported #{k % 3}"
        for k in range(len(answers))
    ]
    if new_label:
        answers["model"] = "veo3_lite"
    frame, rows = _merge(df, pending, answers)
    assert len(rows) == len(pending) > 0
    patched, rebuilt = old.with_rows(frame, rows), old.with_frame(frame)
    assert patched.count() == rebuilt.count()
    assert patched.status_counts() == rebuilt.status_counts()
    assert patched.pending_positions().tolist() == rebuilt.pending_positions().tolist() == []
    for facet in ("status", "model", "task_type", "generation_type"):
        assert patched.options(facet) == rebuilt.options(facet)
    for by in ("created", "latency", "status"):
        for desc in (True, False):
            assert patched.positions(by, desc).tolist() == rebuilt.positions(by, desc).tolist()
            for page in (0, 3):
                got = patched.page_positions(page, 10, by, desc).tolist()
                assert got == rebuilt.page_positions(page, 10, by, desc).tolist()
    for needle in ("english prompts are supported #2", "veo3_lite", "t0003", ""):
        patched.set_text(needle)
        rebuilt.set_text(needle)
        assert (
            patched.positions("created", True).tolist()
            == rebuilt.positions("created", True).tolist()
        ), needle
    patched.set_facet("model", ["veo3_lite"])
    rebuilt.set_facet("model", ["veo3_lite"])
    expected = int((answers["status"] == "success").sum()) if new_label else 0  # status filter
    assert patched.count() == rebuilt.count() == expected
