"""Typed frames for the analysis, plots and report tests (and bench/analysis.py).

``make_frame`` builds a small frame by hand; ``synthetic_frame`` a large realistic one,
vectorised with numpy (a million rows in about a second).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from veo_notebook import schema

T0 = pd.Timestamp("2026-03-01 00:00:00", tz="UTC")


def make_frame(**columns: object) -> pd.DataFrame:
    """A typed frame from columns given as lists; ``latency_s`` is derived when absent.

    Times may be given as seconds after :data:`T0` (``create_s=``/``complete_s=``).
    """
    create_s = columns.pop("create_s", None)
    complete_s = columns.pop("complete_s", None)
    n = max(
        (len(v) for v in columns.values() if isinstance(v, list | tuple | np.ndarray)), default=0
    )
    if create_s is not None:
        n = len(create_s)  # type: ignore[arg-type]
        columns["create_time"] = T0 + pd.to_timedelta(np.asarray(create_s, dtype=float), unit="s")
    if complete_s is not None:
        columns["complete_time"] = T0 + pd.to_timedelta(
            np.asarray(complete_s, dtype=float), unit="s"
        )
    data = {
        k: (v if isinstance(v, list | tuple | np.ndarray | pd.Index) else [v] * n)
        for k, v in columns.items()
    }
    df = pd.DataFrame(data)
    if "task_id" not in df:
        df["task_id"] = [f"t{i}" for i in range(len(df))]
    if "success_flag" not in df and "status" in df:
        flags = {"generating": 0, "success": 1, "failed": 2, "generation_failed": 3}
        df["success_flag"] = [flags.get(s) for s in df["status"]]
    if "latency_s" not in df and "complete_time" in df and "create_time" in df:
        df["latency_s"] = (df["complete_time"] - df["create_time"]).dt.total_seconds()
    return schema.enforce(df)


MESSAGES = [  # (errorCode, errorMessage, weight, successFlag)
    (400, "Your prompt was flagged by Website as violating content policies.", 30, 2),
    (400, "Only English prompts are supported at this time.", 8, 2),
    (
        400,
        "Failed to fetch the image. Kindly verify any access limits set by you or your "
        "service provider.",
        10,
        2,
    ),
    (400, "public error unsafe image upload.", 6, 2),
    (400, "Public error: unsafe image upload", 3, 2),
    (400, "public error minor upload", 3, 2),
    (400, "Rejected by Google's content policy (public error prominent people upload)", 4, 2),
    (
        422,
        "Your request was rejected by Flow(code 3). You may consider using our other "
        "fallback channels, which are likely to succeed. Please refer to the documentation.",
        9,
        2,
    ),
    (500, "Internal Error, Please try again later.", 12, 2),
    (500, "Internal Error - Timeout", 7, 2),
    (501, "Video generation task failed", 8, 3),
]


def synthetic_frame(
    n: int, seed: int = 0, *, days: int = 14, recent_share: float = 0.03
) -> pd.DataFrame:
    """``n`` realistic typed rows: three models, four task types, lognormal latencies, 14 days."""
    rng = np.random.default_rng(seed)
    models = np.array(["veo3", "veo3_fast", "veo3_lite"])
    model_i = rng.choice(3, size=n, p=[0.3, 0.55, 0.15])
    ttypes = np.array(["generate", "extend", "1080p", "4k"])
    tt_i = rng.choice(4, size=n, p=[0.78, 0.08, 0.1, 0.04])
    gtypes = np.array(["TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"])
    gt_i = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    ar = np.array(["16:9", "9:16", "Auto"])[rng.choice(3, size=n, p=[0.6, 0.3, 0.1])]
    span = days * 86400.0
    recent = rng.random(n) < recent_share  # a batch submitted in the last hour, still running
    create = np.sort(np.where(recent, rng.uniform(span - 3600, span, n), rng.uniform(0, span, n)))
    median = np.array([150.0, 70.0, 50.0])[model_i] * np.array([1.0, 1.2, 1.5, 5.0])[tt_i]
    latency = np.round(median * rng.lognormal(0.0, 0.45, size=n), 3)
    fail_p = np.array([0.07, 0.1, 0.12])[model_i] * np.where(gt_i == 0, 0.8, 1.5)
    now = span + 60.0  # fetched a minute after the last task was created
    stuck = rng.random(n) < 0.001  # a few tasks never finish
    pending = stuck | (create + latency > now)
    failed = ~pending & (rng.random(n) < fail_p)
    weights = np.array([m[2] for m in MESSAGES], dtype=float)
    msg_i = rng.choice(len(MESSAGES), size=n, p=weights / weights.sum())
    flag = np.where(pending, 0, np.where(failed, np.array([m[3] for m in MESSAGES])[msg_i], 1))
    fail_latency = np.round(
        np.array([60.0, 20.0, 30.0])[model_i] * rng.lognormal(0.0, 0.8, size=n), 3
    )
    lat = np.where(pending, np.nan, np.where(failed, fail_latency, latency))
    status_names = np.array(["generating", "success", "failed", "generation_failed"])
    codes = np.array([m[0] for m in MESSAGES], dtype=float)[msg_i]
    msgs = np.array([m[1] for m in MESSAGES], dtype=object)[msg_i]
    create_ns = T0.value + (create * 1e9).astype(np.int64)
    complete_ns = create_ns + np.nan_to_num(lat * 1e9).astype(np.int64)
    prompts = np.array(
        [f"prompt {i}: a cat surfing a wave at dusk" for i in range(2000)], dtype=object
    )
    df = pd.DataFrame(
        {
            "task_id": pd.array(
                [f"veo_{i:08d}" for i in range(n)], dtype=schema.dtypes()["task_id"]
            ),
            "status": pd.Categorical(status_names[flag], categories=schema.STATUS_CATEGORIES),
            "success_flag": pd.array(flag, dtype="Int64"),
            "error_code": pd.array(np.where(failed, codes, np.nan), dtype="Float64").astype(
                "Int64"
            ),
            "error_message": pd.array(
                np.where(failed, msgs, None), dtype=schema.dtypes()["error_message"]
            ),
            "create_time": pd.to_datetime(create_ns, utc=True),
            "complete_time": pd.to_datetime(
                np.where(pending, np.iinfo(np.int64).min, complete_ns), utc=True
            ),
            "latency_s": lat,
            "model": models[model_i],
            "prompt": prompts[rng.integers(0, len(prompts), size=n)],
            "aspect_ratio": ar,
            "generation_type": gtypes[gt_i],
            "task_type": pd.Categorical(ttypes[tt_i], categories=schema.TASK_TYPE_CATEGORIES),
            "fetched_at": pd.to_datetime(np.full(n, T0.value + int(now * 1e9)), utc=True),
        }
    )
    return schema.enforce(df)
