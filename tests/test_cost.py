"""Cost analysis: cost_summary, duplicate_submissions, expiring (on hand-made frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _frames import T0, make_frame

import veo_notebook as veo
from veo_notebook import schema
from veo_notebook.analysis import cost_summary, duplicate_submissions, expiring
from veo_notebook.errors import InputError
from veo_notebook.store import Store

MIN = 60.0


def submissions(create_s, status=None, prompt=None, **extra):
    n = len(create_s)
    cols = {
        "model": ["veo3_fast"] * n,
        "task_type": ["generate"] * n,
        "resolution": ["720p"] * n,
        "generation_type": ["TEXT_2_VIDEO"] * n,
        "aspect_ratio": ["16:9"] * n,
        "prompt": prompt or ["a cat on a boat"] * n,
        "status": status or ["success"] * n,
        "create_s": create_s,
        "complete_s": [t + 100 for t in create_s],
    }
    cols.update(extra)
    return make_frame(**cols)


def test_resubmissions_within_the_window_are_duplicates_an_hour_apart_are_not():
    df = submissions([0, 5 * MIN, 12 * MIN, 80 * MIN])
    dups = duplicate_submissions(df, window="15min")
    assert list(dups.columns) == [
        "task_id",
        "first_task_id",
        "create_time",
        "delay_s",
        "model",
        "status",
        "credits",
        "wasted_credits",
    ]
    assert dups["task_id"].tolist() == ["t1", "t2"]  # t3 came 68 min after t2
    assert dups["first_task_id"].tolist() == ["t0", "t0"]
    assert dups["delay_s"].tolist() == [300.0, 720.0]
    assert dups["wasted_credits"].tolist() == [60.0, 60.0]
    assert duplicate_submissions(submissions([0, 60 * MIN])).empty
    assert len(duplicate_submissions(submissions([0, 60 * MIN]), window="2h")) == 1


def test_a_different_request_is_not_a_duplicate():
    base = submissions([0, MIN])
    for col, other in [
        ("prompt", "a dog"),
        ("model", "veo3"),
        ("aspect_ratio", "9:16"),
        ("generation_type", "REFERENCE_2_VIDEO"),
        ("seeds", 12345),
        ("parent_task_id", "p1"),
    ]:
        df = base.copy()
        df[col] = df[col].astype(object)
        df.loc[1, col] = other
        assert duplicate_submissions(schema.enforce(df)).empty, col


def test_image_urls_and_duration_are_part_of_the_request():
    imgs = pd.Series([["https://x/a.png"], ["https://x/b.png"], ["https://x/a.png"]])
    df = submissions([0, MIN, 2 * MIN])
    df["image_urls"] = imgs.astype(schema.dtypes()["image_urls"])  # type: ignore[call-overload]
    dups = duplicate_submissions(df)
    assert dups["task_id"].tolist() == ["t2"] and dups["first_task_id"].tolist() == ["t0"]
    timed = submissions([0, MIN], duration_s=[4, 8])
    assert duplicate_submissions(timed).empty


def test_a_retry_after_a_failure_is_not_waste():
    df = submissions([0, 3 * MIN, 6 * MIN], status=["failed", "success", "success"])
    dups = duplicate_submissions(df)
    assert dups["task_id"].tolist() == ["t1", "t2"]
    assert dups["wasted_credits"].tolist() == [0.0, 60.0]  # t1 was needed; t2 was not
    assert dups["status"].astype(str).tolist() == ["success", "success"]


def test_unread_records_are_never_duplicates_of_each_other():
    df = make_frame(task_id=["a", "b"], create_s=[0, 1], fetch_error=["x", "x"])
    assert duplicate_submissions(df).empty


def test_bad_window():
    with pytest.raises(InputError, match="time span"):
        duplicate_submissions(submissions([0]), window="soon")


def test_cost_summary_per_model():
    df = pd.concat(
        [
            submissions([0, 5 * MIN, 50 * MIN], status=["success", "success", "failed"]),
            submissions([0], model=["veo3"], resolution=["1080p"]),
        ],
        ignore_index=True,
    )
    df["task_id"] = [f"t{i}" for i in range(len(df))]
    s = cost_summary(df, by="model")
    fast, q = s.loc["veo3_fast"], s.loc["veo3"]
    assert (fast["n"], fast["succeeded"], fast["credits"]) == (3, 2, 120.0)
    assert fast["credits_per_success"] == 60.0
    assert (fast["duplicates"], fast["wasted_credits"]) == (1, 60.0)
    assert q["credits"] == 255.0 and q["duplicates"] == 0
    assert "usd" not in s.columns
    usd = cost_summary(df, by="model", usd_per_credit=0.01)
    assert usd.loc["veo3_fast", "usd"] == pytest.approx(1.2)
    assert usd.loc["veo3_fast", "wasted_usd"] == pytest.approx(0.6)
    billed = cost_summary(df, by="model", bill_failed=True)
    assert billed.loc["veo3_fast", "credits"] == 180.0


def test_cost_summary_prices_mapping_buckets_and_unpriced():
    df = submissions([0, 2 * 86400, 2 * 86400 + 60], prompt=["a", "b", "c"])
    df.loc[2, "model"] = "veo9"
    s = cost_summary(df, by=None, freq="1D", prices={"veo3_fast": 50})
    assert s.index.name == "period"
    assert s["credits"].tolist() == [50.0, 50.0]
    assert s["unpriced"].tolist() == [0, 1]
    assert cost_summary(df, by=None).loc["all", "n"] == 3


def test_cost_summary_uses_existing_credits_and_the_tables_rate(tmp_path):
    df = veo.with_credits(submissions([0]), prices={"veo3_fast": 7})
    assert cost_summary(df).loc["veo3_fast", "credits"] == 7.0
    own = submissions([0]).assign(credits=[9.0])  # credits from elsewhere, no source column
    assert cost_summary(own).loc["veo3_fast", ["credits", "reported_credits"]].tolist() == [9, 0]
    toml = tmp_path / "p.toml"
    toml.write_text("usd_per_credit = 0.5\n[[price]]\ncredits = 10\n", encoding="utf-8")
    s = cost_summary(df, prices=toml)
    assert s.loc["veo3_fast", "credits"] == 10.0 and s.loc["veo3_fast", "usd"] == 5.0


def test_cost_summary_counts_reported_credits():
    df = submissions([0, 3600], credits_consumed=[120, None], prompt=["a", "b"])
    s = cost_summary(df)
    assert s.loc["veo3_fast", "reported_credits"] == 120.0
    assert s.loc["veo3_fast", "credits"] == 180.0


def test_empty_frames():
    empty = schema.empty_frame()
    s = cost_summary(empty, by=None)
    assert s.loc["all", "n"] == 0 and np.isnan(s.loc["all", "credits_per_success"])
    assert cost_summary(empty).empty
    assert duplicate_submissions(empty).empty
    assert expiring(empty, now=T0).empty


# --- expiring ---------------------------------------------------------------------------
DAY = 86400.0


def finished(days_ago, status=None):
    now_s = 20 * DAY
    return make_frame(
        model=["veo3_fast"] * len(days_ago),
        status=status or ["success"] * len(days_ago),
        create_s=[now_s - d * DAY - 100 for d in days_ago],
        complete_s=[now_s - d * DAY for d in days_ago],
    ), T0 + pd.Timedelta(20, "D")


def test_expiring_within_and_expired_are_flagged_apart():
    df, now = finished([1, 12, 13.5, 15, 16])
    out = expiring(df, within="3D", now=now)
    assert out["task_id"].tolist() == ["t2", "t1", "t4", "t3"]  # at risk first, soonest first
    assert out["expired"].tolist() == [False, False, True, True]
    assert out.loc[0, "expires_in_s"] == pytest.approx(0.5 * DAY)
    assert out.loc[0, "expires_at"] == df.loc[2, "complete_time"] + schema.MEDIA_RETENTION
    assert expiring(df, within="1D", now=now)["task_id"].tolist() == ["t2", "t4", "t3"]


def test_expiring_leaves_out_failed_and_archived_tasks(tmp_path):
    df, now = finished([13, 13, 13], status=["success", "failed", "success"])
    assert expiring(df, now=now)["task_id"].tolist() == ["t0", "t2"]
    archive = pd.DataFrame({"task_id": ["t0", "t2"], "archive_error": [None, "HTTP 404"]})
    assert expiring(df, now=now, archived=archive)["task_id"].tolist() == ["t2"]
    assert expiring(df, now=now, archived=["t2"])["task_id"].tolist() == ["t0"]
    with Store(tmp_path / "s.db") as store:  # a store without an archive table: none saved
        assert expiring(df, now=now, archived=store)["task_id"].tolist() == ["t0", "t2"]
    with pytest.raises(InputError, match="not an archive"):
        expiring(df, now=now, archived=3)
    with pytest.raises(InputError, match="time span"):
        expiring(df, within="later", now=now)


def test_expiring_defaults_to_the_wall_clock():
    df, _ = finished([1])
    df["complete_time"] = pd.Timestamp.now(tz="UTC") - pd.Timedelta(12, "D")
    out = expiring(df)
    assert len(out) == 1 and not out["expired"].iloc[0]


# --- end to end, over a real socket -------------------------------------------------------
def test_resubmissions_in_the_simulator_are_found_and_priced(fresh_sim, sentinel_key):
    sim = fresh_sim(n_tasks=1024, resubmit_share=0.04, span_days=10, latency=0.0)
    plain = [t.param_json for t in fresh_sim(n_tasks=1024, span_days=10).tasks()]
    resubmitted = {t.task_id for t, p in zip(sim.tasks(), plain, strict=True) if t.param_json != p}
    assert resubmitted
    with veo.Client(sentinel_key, base_url=sim.base_url) as client:
        df = veo.fetch_records(sim.task_ids(), client=client, progress=False)
    dups = duplicate_submissions(df)
    found = set(dups["task_id"])
    readable = set(df.loc[df["fetch_error"].isna(), "task_id"])
    assert found == resubmitted & readable  # span 10 days: no original is past 14 days
    assert dups["delay_s"].between(20, 600).all()
    same = df.set_index("task_id")["param_json"]
    assert (same[dups["task_id"]].to_numpy() == same[dups["first_task_id"]].to_numpy()).all()
    summary = cost_summary(df, by=None)
    assert summary.loc["all", "duplicates"] == len(dups)
    assert summary.loc["all", "wasted_credits"] == dups["wasted_credits"].sum() > 0


# --- request defaults and unpriced models ---------------------------------------------
def test_a_request_without_a_model_costs_what_an_explicit_veo3_fast_costs(fresh_sim) -> None:
    from veo_notebook.simulator.callbacks import create_task

    sim = fresh_sim(n_tasks=10)
    key = sim.api_key
    bare = create_task(sim.base_url, key, {"prompt": "a fox"})
    named = create_task(sim.base_url, key, {"prompt": "a fox", "model": "veo3_fast"})
    with veo.Client(key, base_url=sim.base_url) as client:
        df = veo.fetch_records([bare, named], client=client, progress=False).set_index("task_id")
    assert df.loc[bare, "model"] == df.loc[named, "model"] == "veo3_fast"
    assert list(df.loc[bare, "defaults_applied"]) == ["model", "enable_translation"]
    assert list(df.loc[named, "defaults_applied"]) == ["enable_translation"]
    priced = veo.with_credits(df)
    assert priced.loc[bare, "credits"] == priced.loc[named, "credits"] > 0
    s = cost_summary(df.reset_index(), by="model")
    assert list(s.index) == ["veo3_fast"] and s.loc["veo3_fast", "unpriced"] == 0


def test_defaults_apply_to_generate_requests_only() -> None:
    from veo_notebook.frame import to_frame

    def record(task_id: str, params: dict) -> dict:
        import json

        data = {"taskId": task_id, "successFlag": 1, "paramJson": json.dumps(params)}
        return {"code": 200, "msg": "success", "data": data}

    df = to_frame(
        [
            record("g", {"prompt": "p", "enableTranslation": False}),
            record("e", {"prompt": "more", "taskId": "g", "model": "fast"}),
            record("u", {"taskId": "g", "index": 0}),
        ]
    ).set_index("task_id")
    assert df.loc["g", "model"] == "veo3_fast" and not df.loc["g", "enable_translation"]
    assert list(df.loc["g", "defaults_applied"]) == ["model"]
    assert df.loc["e", "model"] == "fast" and list(df.loc["e", "defaults_applied"]) == []
    assert pd.isna(df.loc["u", "model"]) and list(df.loc["u", "defaults_applied"]) == []


def test_a_price_table_that_omits_a_model_says_unpriced_never_zero() -> None:
    df = pd.concat(
        [
            submissions([0, 3600], prompt=["a", "b"]),
            submissions(
                [0, 7200, 9000],
                model=["veo3"] * 3,
                prompt=["c", "d", "e"],
                status=["success", "success", "failed"],  # failed: 0, not billed
            ),
        ],
        ignore_index=True,
    )
    df["task_id"] = [f"t{i}" for i in range(len(df))]
    s = cost_summary(df, by="model", prices={"veo3_fast": 60})
    assert s.loc["veo3_fast", "credits"] == 120.0 and s.loc["veo3_fast", "unpriced"] == 0
    veo3 = s.loc["veo3"]
    assert veo3["unpriced"] == 2 and veo3["succeeded"] == 2
    assert np.isnan(veo3["credits"]) and np.isnan(veo3["credits_per_success"])  # never 0.0
    everything = cost_summary(df, by=None, prices={"veo3_fast": 60}).loc["all"]
    assert everything["credits"] == 120.0 and everything["unpriced"] == 2  # the failed one is 0
    assert everything["credits_per_success"] == 60.0  # of the priced successes only
