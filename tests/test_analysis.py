"""Latency and failure analysis: numbers checked against numpy, scipy and hand computations."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _frames import T0, make_frame, synthetic_frame
from scipy.stats import binom, binomtest

from veo_notebook import analysis, schema
from veo_notebook.analysis._kernels import binom_ppf, pct_name, wilson_interval
from veo_notebook.errors import InputError

API_FACTS = Path("/work/shared/api-facts.md")


def _successes(latencies, **extra) -> pd.DataFrame:
    n = len(latencies)
    return make_frame(
        status=["success"] * n, create_s=[0.0] * n, complete_s=list(latencies), **extra
    )


# --- latency percentiles -----------------------------------------------------------


def test_percentiles_match_numpy_linear_per_group():
    rng = np.random.default_rng(1)
    n = 3001
    lat = np.round(rng.lognormal(4, 0.6, n), 3)
    models = rng.choice(["veo3", "veo3_fast", "veo3_lite"], n)
    df = _successes(lat, model=list(models))
    qs = (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.995, 1.0)
    out = analysis.latency_summary(df, by="model", percentiles=qs)
    assert list(out.index) == ["veo3", "veo3_fast", "veo3_lite"]
    for m in out.index:
        x = lat[models == m]
        for q in qs:
            assert out.loc[m, pct_name(q)] == np.quantile(x, q)  # bit for bit
        assert out.loc[m, "mean_s"] == pytest.approx(x.mean())
        assert out.loc[m, "max_s"] == x.max()
        assert out.loc[m, "completed"] == len(x)
    assert "p99.5" in out.columns and "p99.5_ci_high" in out.columns


def test_naive_latency_uses_successful_tasks_only():
    df = make_frame(
        status=["success", "success", "failed", "generating", "generation_failed"],
        create_s=[0, 0, 0, 0, 0],
        complete_s=[10, 30, 1, np.nan, 2],
    )
    out = analysis.latency_summary(df)
    row = out.loc["all"]
    assert (row["n"], row["completed"], row["generating"]) == (5, 2, 1)
    assert row["p50"] == 20.0
    fail = analysis.latency_summary(df, outcome="failed").loc["all"]
    assert fail["completed"] == 2 and fail["p50"] == 1.5


def test_order_statistic_interval_is_the_textbook_one_for_n10_median():
    lat = np.arange(1.0, 11.0)  # X(k) = k
    out = analysis.latency_summary(_successes(lat), percentiles=(0.5,)).loc["all"]
    # the classic 95% interval for the median of 10 is (X(2), X(9)), coverage 97.9%
    assert (out["p50_ci_low"], out["p50_ci_high"]) == (2.0, 9.0)
    assert binom.cdf(8, 10, 0.5) - binom.cdf(1, 10, 0.5) >= 0.95


def test_order_statistic_interval_covers_and_is_nan_when_too_small():
    rng = np.random.default_rng(7)
    lat = rng.exponential(60, 400)
    out = analysis.latency_summary(_successes(lat), percentiles=(0.9, 0.99)).loc["all"]
    assert out["p90_ci_low"] <= out["p90"] <= out["p90_ci_high"]
    assert out["p99_ci_low"] <= out["p99"] <= out["p99_ci_high"]
    small = analysis.latency_summary(_successes([1.0, 2.0, 3.0]), percentiles=(0.99,)).loc["all"]
    assert np.isnan(small["p99_ci_high"])  # 3 values cannot bound a 99th percentile


@pytest.mark.parametrize("q", [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("p", [0.005, 0.025, 0.05, 0.95, 0.975, 0.995])
def test_the_exact_binomial_quantile_is_scipys(p: float, q: float) -> None:
    # every size to 600, then large ones: the ranks of every interval the toolkit gives
    n = np.concatenate([np.arange(0, 601), [1_000, 4_999, 12_345, 100_000, 1_000_000]])
    assert binom_ppf(p, n, q).tolist() == binom.ppf(p, n, q).astype(np.int64).tolist()


def test_order_statistic_coverage_by_simulation():
    rng = np.random.default_rng(3)
    n, reps, true_p90 = 50, 400, -np.log(0.1)  # exponential(1)
    lat = rng.exponential(1.0, n * reps)
    group = np.repeat([f"r{i:03d}" for i in range(reps)], n)
    out = analysis.latency_summary(_successes(lat, model=list(group)), percentiles=(0.9,))
    covered = ((out["p90_ci_low"] <= true_p90) & (true_p90 <= out["p90_ci_high"])).mean()
    assert covered >= 0.93  # exact intervals are conservative: nominal 95%


def test_time_buckets_and_mixed_keys():
    df = make_frame(
        status=["success"] * 4,
        model=["a", "b", "a", "a"],
        create_s=[0, 10, 86400 + 5, 86400 + 50],
        complete_s=[10, 30, 86400 + 25, 86400 + 100],
    )
    by_day = analysis.latency_summary(df, by="1D")
    assert list(by_day.index) == [T0, T0 + pd.Timedelta("1D")]
    assert by_day.index.name == "period"
    assert list(by_day["p50"]) == [15.0, 35.0]
    mixed = analysis.latency_summary(df, by=["model", "1D"])
    assert mixed.loc[("a", T0 + pd.Timedelta("1D")), "completed"] == 2
    assert mixed.loc[("b", T0), "p50"] == 20.0


def test_bad_by_and_empty_frame():
    with pytest.raises(InputError):
        analysis.latency_summary(make_frame(status=["success"]), by="no_such_column")
    empty = analysis.latency_summary(schema.empty_frame())
    assert empty.loc["all", "n"] == 0 and np.isnan(empty.loc["all", "p50"])
    assert analysis.failure_rates(schema.empty_frame()).loc["all", "n"] == 0


# --- Kaplan–Meier ----------------------------------------------------------------------


def _km_example() -> pd.DataFrame:
    # successes at 1, 3, 3, 5; still generating at ages 2 and 4; failed at 2.5
    now = T0 + pd.Timedelta(seconds=100)
    return make_frame(
        status=["success", "generating", "failed", "success", "success", "generating", "success"],
        create_s=[0, 98, 0, 0, 0, 96, 0],
        complete_s=[1, np.nan, 2.5, 3, 3, np.nan, 5],
        fetched_at=[now] * 7,
    )


def test_km_curve_matches_hand_computation():
    curve = analysis.km_curve(_km_example())
    assert list(curve["time_s"]) == [1, 2, 2.5, 3, 4, 5]
    assert list(curve["at_risk"]) == [7, 6, 5, 4, 2, 1]
    assert list(curve["events"]) == [1, 0, 0, 2, 0, 1]
    assert list(curve["censored"]) == [0, 1, 1, 0, 1, 0]
    # S(1) = 6/7, S(3) = 6/7 * 2/4 = 3/7, S(5) = 0
    np.testing.assert_allclose(curve["survival"], [6 / 7, 6 / 7, 6 / 7, 3 / 7, 3 / 7, 0.0])


def test_km_latency_percentiles_by_hand():
    out = analysis.km_latency(_km_example(), percentiles=(0.5, 0.9)).loc["all"]
    assert out["km_p50"] == 3.0  # first t with S(t) <= 0.5
    assert out["km_p90"] == 5.0
    assert out["p90"] == pytest.approx(np.quantile([1, 3, 3, 5], 0.9))
    assert (out["n"], out["succeeded"], out["generating"], out["failed"]) == (7, 4, 2, 1)


def test_km_median_interval_by_hand():
    # Greenwood: after t=1, 1/(7*6); after t=3, + 2/(4*2). Log band at z=1.96:
    # lower S*exp(-z*se) is 0.633 at t=1, 0.154 at t=3 (<= 0.5: lower bound 3);
    # upper S*exp(+z*se) stays >= 0.5 until S reaches 0 at t=5 (upper bound 5).
    curve = analysis.km_curve(_km_example())
    np.testing.assert_allclose(curve["greenwood"].iloc[:5], [1 / 42] * 3 + [1 / 42 + 0.25] * 2)
    assert np.isinf(curve["greenwood"].iloc[5])
    out = analysis.km_latency(_km_example(), percentiles=(0.5,)).loc["all"]
    assert (out["km_p50_ci_low"], out["km_p50"], out["km_p50_ci_high"]) == (3.0, 3.0, 5.0)


def test_km_interval_narrows_with_more_data_and_covers_the_estimate():
    rng = np.random.default_rng(11)
    widths = []
    for n in (200, 5000):
        out = analysis.km_latency(_successes(rng.exponential(60, n)), percentiles=(0.9,)).loc["all"]
        assert out["km_p90_ci_low"] <= out["km_p90"] <= out["km_p90_ci_high"]
        widths.append(out["km_p90_ci_high"] - out["km_p90_ci_low"])
    assert widths[1] < widths[0] / 3


def test_km_without_censoring_is_the_inverted_cdf_quantile():
    lat = np.random.default_rng(5).gamma(2.0, 40.0, 101).round(2)
    out = analysis.km_latency(_successes(lat), percentiles=(0.1, 0.5, 0.9)).loc["all"]
    for q in (0.1, 0.5, 0.9):
        assert out[f"km_{pct_name(q)}"] == np.quantile(lat, q, method="inverted_cdf")


def test_failed_tasks_censored_or_excluded():
    lat = [10.0, 20.0, 30.0, 40.0]
    df = make_frame(
        status=["success"] * 4 + ["failed"],
        create_s=[0.0] * 5,
        complete_s=[*lat, 35.0],  # a late failure (a timeout)
    )
    censor = analysis.km_latency(df, percentiles=(0.75,)).loc["all"]
    exclude = analysis.km_latency(df, percentiles=(0.75,), failed="exclude").loc["all"]
    # censored: S = 4/5 · 3/4 · 2/3 = 0.4 after 30 s, then 0.4 · 0 at 40 s → p75 = 40
    assert (censor["n"], censor["failed"]) == (5, 1) and censor["km_p75"] == 40.0
    # excluded: the successes alone → inverted-cdf p75 = 30
    assert (exclude["n"], exclude["failed"]) == (4, 0)
    assert exclude["km_p75"] == np.quantile(lat, 0.75, method="inverted_cdf") == 30.0
    with pytest.raises(InputError):
        analysis.km_latency(df, failed="drop")


def test_censoring_moves_the_median_up_for_a_batch_with_slow_pending_tasks():
    now = T0 + pd.Timedelta(seconds=1000)
    done = list(np.arange(10.0, 101.0, 10.0))  # ten fast tasks finished
    df = make_frame(
        status=["success"] * 10 + ["generating"] * 8,  # eight slow ones still running
        create_s=[0.0] * 10 + [500.0] * 8,
        complete_s=done + [np.nan] * 8,
        fetched_at=[now] * 18,
    )
    out = analysis.km_latency(df, percentiles=(0.5,)).loc["all"]
    assert out["p50"] == 55.0
    assert out["km_p50"] == 90.0 > out["p50"]
    # a curve that never falls to 1 - q gives NaN, not a made-up number
    assert np.isnan(analysis.km_latency(df, percentiles=(0.9,)).loc["all", "km_p90"])
    # an earlier "now" means younger pending tasks: they are censored sooner
    early = analysis.km_curve(df, now=T0 + pd.Timedelta(seconds=520))
    assert early["time_s"].min() == 10.0 and 20.0 in set(early.loc[early["censored"] > 0, "time_s"])


def test_stuck_tasks_oldest_first():
    now = T0 + pd.Timedelta("2h")
    df = make_frame(
        status=["generating", "generating", "success", "generating"],
        create_s=[3600, 0, 0, 6000],
        complete_s=[np.nan, np.nan, 10, np.nan],
    )
    out = analysis.stuck_tasks(df, older_than="30min", now=now)
    assert list(out["task_id"]) == ["t1", "t0"]
    assert list(out["age_s"]) == [7200.0, 3600.0]
    assert len(analysis.stuck_tasks(df, older_than=7000, now=now)) == 1


# --- failure rates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (0, 10), (3, 10), (81, 263), (5, 100), (10, 10), (999, 1000)]
)
def test_wilson_matches_scipy(k, n):
    lo, hi = wilson_interval(np.array([k]), np.array([n]))
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo[0] == pytest.approx(ref.low, abs=1e-12)
    assert hi[0] == pytest.approx(ref.high, abs=1e-12)


def test_wilson_published_value():
    # Newcombe (1998), Stat Med 17:857, example 81/263: Wilson 0.2553 to 0.3662
    lo, hi = wilson_interval(np.array([81]), np.array([263]))
    assert (round(lo[0], 4), round(hi[0], 4)) == (0.2553, 0.3662)


def test_failure_rates_counts_and_interval():
    df = make_frame(
        status=["success", "failed", "generation_failed", "generating", "success", "unknown", None],
        model=["a", "a", "a", "a", "b", "b", "b"],
        create_s=[0] * 7,
    )
    out = analysis.failure_rates(df, by="model", confidence=0.9)
    a = out.loc["a"]
    assert (a["n"], a["succeeded"], a["failed"], a["generation_failed"]) == (3, 1, 1, 1)
    assert a["rate"] == pytest.approx(2 / 3)
    ref = binomtest(2, 3).proportion_ci(confidence_level=0.9, method="wilson")
    assert (a["ci_low"], a["ci_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert out.loc["b", "n"] == 1 and out.loc["b", "rate"] == 0.0


def test_failure_rates_by_day_and_rolling():
    day = 86400
    df = make_frame(
        status=["failed", "success", "success", "failed", "success", "success"],
        create_s=[10, 20, day + 5, 2 * day + 1, 2 * day + 2, 2 * day + 3],
    )
    daily = analysis.failure_rates(df, freq="1D")
    assert list(daily["n"]) == [2, 1, 3]
    assert list(daily["rate"]) == [0.5, 0.0, pytest.approx(1 / 3)]
    rolled = analysis.failure_rates(df, freq="1D", rolling=2)
    assert list(rolled["n"]) == [2, 3, 4]
    assert list(rolled["failed"]) == [1, 1, 1]
    with pytest.raises(InputError):
        analysis.failure_rates(df, rolling=3)


# --- error classification ----------------------------------------------------------------

FLOW = (
    "Your request was rejected by Flow(…). You may consider using our other fallback channels, "
    "which are likely to succeed. Please refer to the documentation."
)
CASES = [
    (400, "Your prompt was flagged by Website as violating content policies.", "content_policy"),
    (400, "Only English prompts are supported at this time.", "prompt_language"),
    (
        400,
        "Failed to fetch the image. Kindly verify any access limits set by you or your service "
        "provider.",
        "image_fetch",
    ),
    (
        451,
        "Failed to fetch the image. Kindly verify any access limits set by you or your service "
        "provider.",
        "image_fetch",
    ),
    (400, "public error unsafe image upload.", "unsafe_image"),
    (400, "Public error: unsafe image upload", "unsafe_image"),
    (400, "public error minor upload", "unsafe_image"),
    (400, "public error prominent people upload", "unsafe_image"),
    (
        400,
        "Rejected by Google's content policy (public error prominent people upload)",
        "unsafe_image",
    ),
    (422, FLOW, "upstream_rejected"),
    (422, FLOW.replace("…", "content policy"), "upstream_rejected"),  # as the simulator says
    (500, "Internal Error, Please try again later.", "internal_error"),
    (500, "Internal Error - Timeout", "upstream_timeout"),
    (
        408,
        "Upstream is currently experiencing service issues. No result has been returned for over "
        "10 minutes.",
        "upstream_timeout",
    ),
    (501, "Video generation task failed", "generation_failed"),
    (
        400,
        "The 4K version of this video is unavailable. Please try a different video.",
        "upgrade_unavailable",
    ),
    (500, None, "internal_error"),
    (501, "", "generation_failed"),
    (None, "something nobody has seen", "unknown"),
]


@pytest.mark.parametrize(
    ("code", "message", "category"), CASES, ids=[c[2] + str(i) for i, c in enumerate(CASES)]
)
def test_each_real_message_gets_its_category(code, message, category):
    df = make_frame(status=["failed"], error_code=[code], error_message=[message])
    assert analysis.classify_errors(df).iloc[0] == category


def test_every_failure_message_in_api_facts_is_covered():
    if not API_FACTS.exists():
        pytest.skip("api-facts.md not available")
    text = API_FACTS.read_text()
    section = text.split("## Failure messages seen", 1)[1].split("\n## ", 1)[0]
    quoted = re.findall(r'"([^"]+)"', section)
    covered = {m.replace("…", "") for _, m, _ in CASES if m}
    for msg in quoted:
        assert any(msg.replace("…", "") in c or c in msg for c in covered), msg
        df = make_frame(status=["failed"], error_message=[msg])
        assert analysis.classify_errors(df).iloc[0] != "unknown", msg


def test_classification_is_na_for_tasks_that_did_not_fail_and_uses_flag_3():
    df = make_frame(
        status=["success", "generating", "generation_failed", "failed"],
        error_code=[None, None, None, None],
        error_message=[None, None, None, None],
    )
    cat = analysis.classify_errors(df)
    assert cat.isna().tolist() == [True, True, False, False]
    assert cat.iloc[2] == "generation_failed" and cat.iloc[3] == "unknown"
    assert cat.name == "error_category" and cat.index.equals(df.index)


def test_rules_are_extensible():
    df = make_frame(
        status=["failed", "failed"],
        error_message=["Quota exceeded for today", "public error minor upload"],
    )
    rules = [analysis.ErrorRule("quota", pattern=r"quota exceeded"), *analysis.ERROR_RULES]
    cat = analysis.classify_errors(df, rules=rules)
    assert cat.tolist() == ["quota", "unsafe_image"]
    assert analysis.classify_errors(df).iloc[0] == "unknown"


def test_failure_breakdown_is_a_pareto_with_messages_params_and_prompts():
    df = synthetic_frame(20_000, seed=2)
    fb = analysis.failure_breakdown(df, top=3)
    cats = fb.categories
    assert cats["count"].is_monotonic_decreasing
    assert cats["count"].sum() == df["status"].isin(["failed", "generation_failed"]).sum()
    assert cats["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert cats.index[0] == "content_policy"  # the most frequent message in the synthetic mix
    assert fb.messages.groupby("error_category", observed=True).size().max() <= 3
    top_msg = fb.messages[fb.messages["error_category"] == "content_policy"].iloc[0]
    assert top_msg["error_message"].startswith("Your prompt was flagged")
    assert len(fb.params) == 3 and fb.params["failures"].is_monotonic_decreasing
    assert len(fb.prompts) == 3 and fb.prompts["failures"].is_monotonic_decreasing
    by = analysis.failure_breakdown(df, by="model").categories
    for _, grp in by.groupby(level="model"):
        assert grp["share"].sum() == pytest.approx(1.0)
    assert "<table" in fb._repr_html_()


# --- no NA group key ----------------------------------------------------------------
def _mixed_frame() -> pd.DataFrame:
    """Generate tasks, upgrade tasks (no model of their own) and unread records."""
    df = make_frame(
        task_id=[f"t{i}" for i in range(8)],
        model=["veo3", "veo3", "veo3_fast", None, None, None, None, None],
        task_type=["generate", "generate", "generate", "1080p", "4k", None, None, "generate"],
        status=["success", "failed", "success", "success", "success", None, None, "success"],
        fetch_error=[None] * 5 + ["422 Temporarily supports records within 14 days."] * 2 + [None],
        create_s=[0, 10, 20, 30, 40, np.nan, np.nan, 50],
        complete_s=[100, 110, 150, 300, 500, np.nan, np.nan, 160],
    )
    return df


def _keys(table: pd.DataFrame) -> list[str]:
    index = table.index
    values = index.to_flat_index() if isinstance(index, pd.MultiIndex) else index
    return [str(v) for v in values]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda df: analysis.latency_summary(df, by="model"), id="latency-model"),
        pytest.param(lambda df: analysis.km_latency(df, by="task_type"), id="km-task_type"),
        pytest.param(lambda df: analysis.failure_rates(df, by="model"), id="failures-model"),
        pytest.param(lambda df: analysis.cost_summary(df, by="model"), id="cost-model"),
        pytest.param(
            lambda df: analysis.cost_summary(df, by=["task_type", "1D"]), id="cost-type-day"
        ),
        pytest.param(lambda df: analysis.latency_summary(df, by="1D"), id="latency-day"),
    ],
)
def test_every_group_key_is_labelled_none_is_na(call) -> None:
    table = call(_mixed_frame())
    flat = [k for key in table.index for k in (key if isinstance(key, tuple) else (key,))]
    assert not any(pd.isna(k) for k in flat), table.index
    assert not {"nan", "NaN", "<NA>", "None", "NaT"} & {str(k) for k in flat}, _keys(table)


def test_the_labels_say_what_a_missing_key_is() -> None:
    df = _mixed_frame()
    by_model = analysis.latency_summary(df, by="model")
    assert set(by_model.index) == {"veo3", "veo3_fast", "upgrade task", "unread", "n/a"}
    assert by_model.loc["unread", "n"] == 2 and by_model.loc["upgrade task", "n"] == 2
    by_type = analysis.km_latency(df, by="task_type")
    assert set(by_type.index) == {"generate", "1080p", "4k", "unread"}
    by_day = analysis.latency_summary(df, by="1D", upgrades="pooled")
    assert "unread" in set(by_day.index) and by_day.loc["unread", "n"] == 2
