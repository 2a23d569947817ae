"""Task families: roots, the final deliverable, total credits and time to final.

The hand-checked set below goes through the real parser (``to_frame`` of record-info
``data`` objects); every expected figure is worked out in the comments from the
documented rules (4K > 1080p > extended > base; prices of ``pricing/prices.csv``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

import veo_notebook as veo
from veo_notebook import Client, fetch_records, schema, to_frame
from veo_notebook.analysis.family import FACET_LABELS, family_facet
from veo_notebook.errors import InputError
from veo_notebook.frame import _roots

T0_MS = 1_772_323_200_000  # 2026-03-01 00:00:00 UTC


def _t(s: float) -> int:
    return int(T0_MS + s * 1000)


def _rec(task_id: str, kind: str, flag: int, start: float, end: float | None, **kw: Any) -> dict:
    """A record-info ``data`` object of one kind of task, as kie.ai writes it."""
    parent = kw.get("parent")
    params: dict[str, Any]
    response: dict[str, Any] = {"taskId": task_id, "resultUrls": [f"https://v.test/{task_id}.mp4"]}
    if kind == "generate":
        params = {"prompt": "a cat", "model": kw.get("model", "veo3_fast"), "aspectRatio": "16:9",
                  "generationType": "TEXT_2_VIDEO"}  # fmt: skip
        response["resolution"] = "720p"
    elif kind == "extend":
        params = {"taskId": parent, "prompt": "and then", "model": "fast"}
        response["fullResultUrls"] = [f"https://v.test/{task_id}-full.mp4"]
        response["resolution"] = "720p"
    elif kind == "1080p":
        params = {"taskId": parent, "index": 0}
        response["resolution"] = "1080p"
    else:  # 4k
        params = {"taskId": parent, "index": 0}
        response.update(resolution="4k", mediaIds=["m1"])
    data: dict[str, Any] = {
        "taskId": task_id,
        "successFlag": flag,
        "createTime": _t(start),
        "completeTime": None if end is None else _t(end),
        "paramJson": json.dumps(params),
        "response": response if flag == 1 else None,
        "errorCode": None if flag in (0, 1) else 500,
        "errorMessage": None if flag in (0, 1) else kw.get("error", "Internal Error"),
    }
    if "credits" in kw:
        data["creditsConsumed"] = kw["credits"]
    return data


def _hand_set() -> pd.DataFrame:
    recs = [
        # F1: generate → extend → extend → 1080p, 4K failed, 4K retried (reported 130)
        _rec("f1-gen", "generate", 1, 0, 100),  # 60 (veo3_fast, 720p)
        _rec("f1-ext1", "extend", 1, 200, 400, parent="f1-gen"),  # 60 (fast extend)
        _rec("f1-ext2", "extend", 1, 500, 700, parent="f1-ext1"),  # 60
        _rec("f1-hd", "1080p", 1, 800, 900, parent="f1-ext2"),  # 5
        _rec("f1-4k-a", "4k", 2, 1000, 1100, parent="f1-ext2",
             error="The 4K version of this video is unavailable."),  # 0: failed, not billed
        _rec("f1-4k-b", "4k", 1, 1200, 1800, parent="f1-ext2", credits=130),  # reported
        # F2: 1080p beats a later extend (the documented order, not recency)
        _rec("f2-gen", "generate", 1, 0, 60, model="veo3"),  # 250
        _rec("f2-hd", "1080p", 1, 100, 200, parent="f2-gen"),  # 5
        _rec("f2-ext", "extend", 1, 300, 500, parent="f2-gen"),  # 60
        # F3: a failed 4K never retried: the base clip is final
        _rec("f3-gen", "generate", 1, 0, 50, model="veo3_lite"),  # 30
        _rec("f3-4k", "4k", 2, 60, 120, parent="f3-gen",
             error="The 4K version of this video is unavailable."),  # 0
        # F4: two upgrades of a parent the history lacks
        _rec("f4-hd", "1080p", 1, 0, 100, parent="f4-gone"),  # 5
        _rec("f4-4k", "4k", 1, 0, 300, parent="f4-gone"),  # 120
        # F6: a cycle of two extends
        _rec("f6-b", "extend", 1, 10, 70, parent="f6-a"),
        _rec("f6-a", "extend", 1, 0, 50, parent="f6-b"),
        # F7: a task naming itself as its parent
        _rec("f7-self", "1080p", 1, 0, 40, parent="f7-self"),  # 5
        # F8: the 4K upgrade is still generating
        _rec("f8-gen", "generate", 1, 0, 30),  # 60
        # 5: a 4K request is a 1080p one (taskId, index); until its answer names 4K it is
        # priced as a 1080p upgrade (frame/'s task-type rule)
        _rec("f8-4k", "4k", 0, 40, None, parent="f8-gen"),
        # F5's child: an extend of an expired parent
        _rec("f5-ext", "extend", 1, 0, 100, parent="f5-old"),  # 60
    ]  # fmt: skip
    df = to_frame(recs)
    expired = to_frame([{"task_id": "f5-old", "raw": None, "fetched_at": 0.0,
                         "fetch_error": schema.EXPIRED_ERROR}])  # fmt: skip
    return _roots.assign(pd.concat([df, expired], ignore_index=True))


# root → (final form, final task, total credits, reported, time to final in s, depth, n)
EXPECTED = {
    "f1-gen": ("4k", "f1-4k-b", 60 + 60 + 60 + 5 + 0 + 130, 130, 1800.0, 3, 6),
    "f2-gen": ("1080p", "f2-hd", 250 + 5 + 60, 0, 200.0, 1, 3),
    "f3-gen": ("base", "f3-gen", 30, 0, 50.0, 1, 2),
    "f4-gone": ("4k", "f4-4k", 125, 0, float("nan"), 1, 2),  # root creation unknown
    "f5-old": ("extended", "f5-ext", 60, 0, float("nan"), 1, 2),  # unread root
    "f6-a": ("extended", "f6-b", 120, 0, 70.0, 1, 2),  # cut at the lowest id; deeper wins
    "f7-self": ("1080p", "f7-self", 5, 0, 40.0, 0, 1),
    "f8-gen": ("base", "f8-gen", 65, 0, 30.0, 1, 2),
}


@pytest.fixture(scope="module")
def hand() -> pd.DataFrame:
    return _hand_set()


@pytest.fixture(scope="module")
def fam(hand: pd.DataFrame) -> pd.DataFrame:
    return veo.families(hand).set_index("root_task_id")


def test_root_task_id_is_in_the_frame(hand: pd.DataFrame) -> None:
    roots = dict(zip(hand["task_id"], hand["root_task_id"], strict=True))
    assert roots["f1-4k-b"] == roots["f1-ext2"] == "f1-gen"
    assert roots["f4-hd"] == roots["f4-4k"] == "f4-gone"  # the missing parent is the root
    assert roots["f6-a"] == roots["f6-b"] == "f6-a"
    assert roots["f7-self"] == "f7-self"
    assert roots["f5-ext"] == roots["f5-old"] == "f5-old"
    assert "root_task_id" in schema.column_names()


@pytest.mark.parametrize("root", sorted(EXPECTED))
def test_hand_checked_final_total_and_time(fam: pd.DataFrame, root: str) -> None:
    form, task, total, reported, time_s, depth, n = EXPECTED[root]
    row = fam.loc[root]
    assert (row["final_form"], row["final_task_id"]) == (form, task)
    assert row["credits"] == total and row["reported_credits"] == reported
    assert row["estimated_credits"] == total - reported
    assert (row["depth"], row["n_tasks"]) == (depth, n)
    if np.isnan(time_s):
        assert np.isnan(row["time_to_final_s"])
    else:
        assert row["time_to_final_s"] == time_s


def test_the_final_file_is_the_final_members(fam: pd.DataFrame) -> None:
    assert fam.loc["f1-gen", "final_url"] == "https://v.test/f1-4k-b.mp4"
    assert fam.loc["f1-gen", "final_resolution"] == "4k"
    assert fam.loc["f5-old", "final_url"] == "https://v.test/f5-ext-full.mp4"  # stitched
    assert (fam["final_status"] == "success").all()
    assert len(fam) == len(EXPECTED)


def test_members_by_type_and_generating(fam: pd.DataFrame) -> None:
    f1 = fam.loc["f1-gen"]
    assert (f1["n_generate"], f1["n_extend"], f1["n_1080p"], f1["n_4k"]) == (1, 2, 1, 2)
    assert fam.loc["f8-gen", "generating"] == 1 and fam["generating"].sum() == 1


def test_failed_upgrade_later_replaced_and_one_never_replaced(fam: pd.DataFrame) -> None:
    assert tuple(fam.loc["f1-gen", ["failed", "failed_replaced", "failed_unreplaced"]]) == (1, 1, 0)
    assert tuple(fam.loc["f3-gen", ["failed", "failed_replaced", "failed_unreplaced"]]) == (1, 0, 1)


def test_missing_and_expired_parents_are_named(fam: pd.DataFrame) -> None:
    assert fam.loc["f4-gone", "root_status"] == "missing"
    assert fam.loc["f4-gone", "missing_parent"] == "f4-gone"
    assert fam.loc["f5-old", "root_status"] == "unread"  # held, but expired: no record
    assert pd.isna(fam.loc["f5-old", "missing_parent"])
    assert fam["missing_parent"].notna().sum() == 1


def test_cycle_and_self_reference_are_flagged(fam: pd.DataFrame) -> None:
    assert fam["cycle"].tolist().count(True) == 1 and fam.loc["f6-a", "cycle"]
    assert fam["self_reference"].tolist().count(True) == 1 and fam.loc["f7-self", "self_reference"]


def test_a_long_cycle_with_a_tail_ends() -> None:
    """A ring of 5 with a chain of 3 hanging under it: every task reaches one root."""
    ids = [f"r{i}" for i in range(5)] + ["t0", "t1", "t2"]
    parents = ["r1", "r2", "r3", "r4", "r0", "r2", "t0", "t1"]
    ln = _roots.links(pd.Series(ids), pd.Series(parents))
    root = ln.ids.take(ln.root).to_pylist()
    assert set(root) == {"r0"} and ln.cycle.all()
    assert ln.depth.tolist()[:5] == [0, 4, 3, 2, 1]  # r0 cut; r4's parent r0 ...


def test_family_of_is_a_tree_root_first(hand: pd.DataFrame) -> None:
    tree = veo.family_of(hand, "f1-hd")
    assert tree["task_id"].tolist() == ["f1-gen", "f1-ext1", "f1-ext2", "f1-hd", "f1-4k-a",
                                        "f1-4k-b"]  # fmt: skip
    assert tree["depth"].tolist() == [0, 1, 2, 3, 3, 3]
    assert tree.loc[tree["final"], "task_id"].tolist() == ["f1-4k-b"]
    assert tree.loc[tree["replaced"], "task_id"].tolist() == ["f1-4k-a"]
    assert tree["tree"].iloc[3] == "            └─ 1080p"
    gone = veo.family_of(hand, "f4-gone")
    assert gone["status"].tolist()[0] == "missing" and "with_parents" in gone["note"].iloc[0]
    assert veo.family_of(hand, "f6-b")["note"].notna().all()


def test_family_of_an_unknown_task_says_so(hand: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="'nope' is not in this history"):
        veo.family_of(hand, "nope")


def test_facet_labels_every_row_by_its_family(hand: pd.DataFrame) -> None:
    facet = dict(zip(hand["task_id"], family_facet(hand), strict=True))
    assert facet["f1-gen"] == facet["f1-4k-a"] == FACET_LABELS["4k"]
    assert facet["f3-4k"] == FACET_LABELS["base"] and facet["f5-old"] == FACET_LABELS["extended"]


def test_a_store_is_a_source_and_a_bad_source_is_one_line() -> None:
    with veo.Store(":memory:") as st:
        envelope = {"code": 200, "msg": "success", "data": _rec("a", "generate", 1, 0, 9)}
        st.put("a", json.dumps(envelope), fetched_at=0.0)
        assert veo.families(st)["final_task_id"].tolist() == ["a"]
    with pytest.raises(InputError, match="give a task frame or a Store"):
        veo.families(["a"])


def test_with_parents_fetches_each_missing_parent_once(fresh_sim: Any) -> None:
    sim = fresh_sim(n_tasks=2000)  # ~12 children of expired parents: 500 sometimes held none
    tasks = {t.task_id: t for t in sim.tasks()}
    children = [t.task_id for t in tasks.values() if t.parent_id is not None]
    client = Client(sim.api_key, base_url=sim.base_url)
    sim.reset_stats()
    df = fetch_records(children, client=client, with_parents=True, progress=False)
    asked = sim.stats()["by_task"]
    read = df["status"].notna() & df["task_id"].isin(children)
    # an expired child (422) says nothing about its parent: only the read ones name theirs
    named = Counter(tasks[c].parent_id for c in df.loc[read, "task_id"])
    wanted = set(named) - set(children)
    assert max(named.values()) > 1, "no parent with two children: the test shows nothing"
    assert wanted and {asked.get(p) for p in wanted} == {1}  # once each, shared or not
    assert set(df["task_id"]) == set(children) | wanted
    assert df["task_id"].tolist()[: len(children)] == children  # the ids first, as given
    assert not set(asked) - set(children) - wanted  # nothing else was asked
    fam = veo.families(df)
    assert fam["missing_parent"].isna().all()  # every parent named is in the history now
    expired = df[df["task_id"].isin(wanted) & df["fetch_error"].notna()]
    assert len(expired), "no parent older than 14 days: the test shows nothing"
    assert (expired["fetch_error"] == schema.EXPIRED_ERROR).all()
    assert set(fam.loc[fam["root_task_id"].isin(expired["task_id"]), "root_status"]) == {"unread"}
    with veo.Store(":memory:") as st:
        fetch_records(children, client=client, store=st, with_parents=True, progress=False)
        sim.reset_stats()
        fetch_records(children, client=client, store=st, with_parents=True, progress=False)
        again = set(sim.stats()["by_task"])
    pending = {p for p in wanted if tasks[p].complete_ts > sim.now()}
    assert again & wanted <= pending


def test_viewer_family_facet_and_detail_tree(hand: pd.DataFrame) -> None:
    from veo_notebook import StatusViewer

    v = StatusViewer(hand, page_size=50)
    assert list(v.family_filter.options) == list(FACET_LABELS.values())
    v.family_filter.value = (FACET_LABELS["4k"],)
    assert set(v.view()["task_id"]) == {"f1-gen", "f1-ext1", "f1-ext2", "f1-hd", "f1-4k-a",
                                        "f1-4k-b", "f4-hd", "f4-4k"}  # fmt: skip
    v.select("f1-hd")
    detail = v.controls.detail.value
    assert "<h5>Family</h5>" in detail
    for tid in ("f1-gen", "f1-ext1", "f1-ext2", "f1-4k-a", "f1-4k-b"):
        assert f'data-task-id="{tid}"' in detail
    assert "final" in detail and "this task" in detail and "replaced" in detail
    v.select("f4-hd")  # the missing root is a row of the tree, said to be missing
    assert "missing" in v.controls.detail.value
    v.close()


def test_archive_final_only_saves_one_file_per_family(fresh_sim: Any, tmp_path: Any) -> None:
    sim = fresh_sim(n_tasks=400)
    client = Client(sim.api_key, base_url=sim.base_url)
    upgraded = [t.task_id for t in sim.tasks() if t.task_type in ("1080p", "4k", "extend")]
    df = fetch_records(upgraded, client=client, with_parents=True, progress=False)
    fam = veo.families(df)
    finals = fam[fam["final_task_id"].notna()]
    assert (finals["final_form"] != "base").any(), "no upgraded family: the test shows nothing"
    out = veo.archive_videos(df, tmp_path, final_only=True, probe=False, progress=False)
    assert sorted(out["task_id"]) == sorted(finals["final_task_id"])  # one file a family
    assert out["root_task_id"].is_unique
    want = finals.set_index("final_task_id")
    assert (want.loc[out["task_id"], "root_task_id"].to_numpy() == out["root_task_id"]).all()
    assert (want.loc[out["task_id"], "final_form"].to_numpy() == out["final_form"]).all()
    saved = {p.name for p in tmp_path.rglob("*.mp4")}
    assert saved == {f"{t}.mp4" for t in out["task_id"][out["archive_error"].isna()]}
    all_files = veo.archive_videos(df, tmp_path / "all", probe=False, progress=False)
    assert len(all_files) > len(out)  # without final_only: every succeeded member


def test_report_has_a_families_section(hand: pd.DataFrame, tmp_path: Any) -> None:
    text = veo.report(hand, tmp_path / "r.md", figures=False).read_text(encoding="utf-8")
    part = text[text.index("## Families") :].split("\n## ", 1)[0]
    assert "| 4k | 2 | 25.0% |" in part  # f1 and f4 of the eight
    assert "| 4k | 4 | 2 | 50.0% [" in part  # f1-4k-a and f3-4k failed; f1-4k-b, f4-4k not
    assert "does not hold: 1 " in part and "| root not in history | 1 | 125 |" in part
    assert "| unread | 1 | 60 |" in part  # f5: its root expired
    for bad in ("nan", "NaN", "<NA>", "None"):
        assert bad not in part


def test_latency_and_failure_tables_keep_generations_and_upgrades_apart(hand) -> None:
    from veo_notebook.analysis._groups import APART_NOTE

    rates = veo.failure_rates(hand)
    assert rates.index.name == "work" and rates.attrs["note"] == APART_NOTE
    # finished: generations f1-gen f1-ext1 f1-ext2 f2-gen f2-ext f3-gen f6-a f6-b f8-gen f5-ext;
    # upgrades f1-hd f1-4k-a f1-4k-b f2-hd f3-4k f4-hd f4-4k f7-self (f8-4k still generating)
    assert rates.loc["generation", "n"] == 10 and rates.loc["generation", "rate"] == 0
    assert rates.loc["upgrade", "n"] == 8 and rates.loc["upgrade", "rate"] == 2 / 8
    assert veo.failure_rates(hand, upgrades="pooled").loc["all", "n"] == 18
    lat = veo.latency_summary(hand, percentiles=(0.5,))
    assert list(lat.index) == ["generation", "upgrade"] and "note" in lat.attrs
    assert list(veo.km_latency(hand, percentiles=(0.5,)).index) == ["generation", "upgrade"]
    by_day = veo.failure_rates(hand, freq="1D")
    assert by_day.index.names == ["work", "period"]
    by_type = veo.failure_rates(hand, by="task_type")  # a column splits them already
    assert by_type.index.name == "task_type" and "note" not in by_type.attrs
    with pytest.raises(InputError, match="upgrades must be 'apart' or 'pooled'"):
        veo.failure_rates(hand, upgrades="mixed")


def test_viewer_refresh_patches_the_whole_family_facet(hand: pd.DataFrame) -> None:
    from veo_notebook.viewer._model import FAMILY, TableModel

    model = TableModel(hand)
    row = int(np.flatnonzero(hand["task_id"] == "f8-4k")[0])
    done = to_frame([_rec("f8-4k", "4k", 1, 40, 400, parent="f8-gen")])
    fresh = pd.concat([hand.iloc[:row], done, hand.iloc[row + 1 :]], ignore_index=True)
    assert fresh["root_task_id"].iloc[row] == "f8-gen"  # its parent: the root either way
    patched = model.with_rows(fresh, np.array([row]))
    rebuilt = TableModel(fresh)
    assert (patched.facets[FAMILY].codes == rebuilt.facets[FAMILY].codes).all()
    gen = int(np.flatnonzero(hand["task_id"] == "f8-gen")[0])  # not a refreshed row
    labels = patched.facets[FAMILY].labels
    assert labels[patched.facets[FAMILY].codes[gen]] == FACET_LABELS["4k"]
    assert labels[model.facets[FAMILY].codes[gen]] == FACET_LABELS["base"]


def test_empty_and_partial_frames() -> None:
    assert veo.families(schema.empty_frame()).empty
    assert len(family_facet(schema.empty_frame())) == 0
    df = schema.enforce(
        pd.DataFrame({"task_id": ["a", "b", None], "status": ["success", "failed", None]})
    )
    fam = veo.families(df)  # no task type, no parent: each task its own family
    assert fam["final_form"].tolist() == ["base", "none"]  # a success of unknown type: base
    assert df["root_task_id"].isna().all() and _roots.assign(df)["root_task_id"].tolist()[:2] == [
        "a",
        "b",
    ]


def test_cli_fetch_with_parents(fresh_sim: Any, tmp_path: Any, monkeypatch: Any) -> None:
    from veo_notebook.cli import main

    sim = fresh_sim(n_tasks=300)
    kids = [t.task_id for t in sim.tasks() if t.parent_id is not None][:20]
    (tmp_path / "ids.txt").write_text("\n".join(kids) + "\n", encoding="utf-8")
    monkeypatch.setenv("KIE_API_KEY", sim.api_key)
    out = tmp_path / "f.parquet"
    argv = ["fetch", str(tmp_path / "ids.txt"), "--base-url", sim.base_url,
            "--store", str(tmp_path / "s.sqlite"), "--with-parents", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    df = veo.read_parquet(out)
    assert set(kids) < set(df["task_id"])  # the parents came with them
    assert df.loc[df["task_id"].isin(kids) & df["status"].notna(), "root_task_id"].notna().all()
