"""Plots: each draws on the Axes it is given, returns it, and labels it (title, units, UTC)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from _frames import make_frame, synthetic_frame
from matplotlib.figure import Figure

from veo_notebook import analysis, plots, read_parquet, schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def df():
    return synthetic_frame(5000, seed=4, recent_share=0.3)


CASES = [
    pytest.param(plots.latency_ecdf, {}, "time since creation", id="ecdf"),
    pytest.param(plots.latency_ecdf, {"by": None}, "time since creation", id="ecdf-all"),
    pytest.param(plots.latency_hist, {"by": "task_type"}, "(s", id="hist"),
    pytest.param(plots.latency_percentiles_over_time, {"freq": "1D"}, "UTC", id="percentiles"),
    pytest.param(plots.failure_rate_over_time, {"freq": "1D", "by": "model"}, "UTC", id="rate"),
    pytest.param(plots.failure_rate_over_time, {"freq": "1D", "rolling": 3}, "UTC", id="rate-roll"),
    pytest.param(plots.failure_pareto, {}, "error category", id="pareto"),
    pytest.param(plots.status_counts, {}, "tasks", id="status"),
    pytest.param(plots.status_counts, {"by": "model"}, "tasks", id="status-by"),
    pytest.param(plots.spend_over_time, {"freq": "1D"}, "UTC", id="spend"),
    pytest.param(plots.spend_over_time, {"freq": "W", "by": None}, "UTC", id="spend-weekly"),
]


@pytest.mark.parametrize(("func", "kwargs", "xlabel"), CASES)
def test_plot_returns_the_axes_it_was_given_with_labels(df, func, kwargs, xlabel):
    fig = Figure()
    ax = fig.add_subplot()
    out = func(df, ax=ax, **kwargs)
    assert out is ax
    assert ax.get_title()
    assert xlabel in ax.get_xlabel()
    assert ax.get_ylabel()
    assert ax.lines or ax.patches or ax.collections  # something was drawn


def test_plot_without_ax_makes_a_figure(df):
    ax = plots.latency_hist(df)
    assert ax.figure is not None
    plt.close(ax.figure)


def test_ecdf_draws_km_and_naive_curves_and_thins_them():
    big = synthetic_frame(60_000, seed=1, recent_share=0.3)
    ax = Figure().add_subplot()
    plots.latency_ecdf(big, by=None, ax=ax)
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # the naive ECDF
    assert any(line.get_marker() == "|" for line in ax.lines)  # censored ticks
    assert max(len(line.get_xdata()) for line in ax.lines) <= 2 * plots.MAX_POINTS + 1


def test_failure_rate_band_is_the_wilson_interval(df):
    ax = Figure().add_subplot()
    plots.failure_rate_over_time(df, freq="1D", ax=ax)
    rates = analysis.failure_rates(df, freq="1D", upgrades="pooled")  # the plot pools all
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rates["rate"].to_numpy())
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(rates["ci_low"].min())
    assert band.max() == pytest.approx(rates["ci_high"].max())


def test_pareto_accepts_a_breakdown_and_bars_sum_to_failures(df):
    fb = analysis.failure_breakdown(df)
    ax = Figure().add_subplot()
    plots.failure_pareto(fb, ax=ax)
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == int(df["status"].isin(["failed", "generation_failed"]).sum())
    assert heights == sorted(heights, reverse=True)


ALL_PLOTS = [
    pytest.param(plots.latency_ecdf, id="ecdf"),
    pytest.param(plots.latency_hist, id="hist"),
    pytest.param(plots.latency_percentiles_over_time, id="percentiles"),
    pytest.param(plots.failure_rate_over_time, id="rate"),
    pytest.param(plots.failure_pareto, id="pareto"),
    pytest.param(plots.status_counts, id="status"),
    pytest.param(plots.spend_over_time, id="spend"),
]


def _sentence(ax) -> str:
    return " ".join(t.get_text() for t in ax.texts)


@pytest.mark.parametrize("func", ALL_PLOTS)
def test_an_empty_frame_is_said_not_drawn(func):
    ax = Figure().add_subplot()
    assert func(schema.empty_frame(), ax=ax) is ax  # the suite turns warnings into errors
    assert not ax.axison and not ax.lines and not ax.patches and not ax.collections
    assert _sentence(ax) == plots.NO_TASKS


@pytest.mark.parametrize("func", ALL_PLOTS)
def test_a_frame_with_nothing_finished_says_so(func):
    df = make_frame(status=["generating"] * 4, create_s=[0.0, 10.0, 20.0, 30.0])
    ax = Figure().add_subplot()
    func(df, ax=ax)
    if not ax.axison:
        assert _sentence(ax).endswith(".")


def test_empty_frame_panels_say_so():
    fig = Figure()
    axes = plots.failure_rate_panels(schema.empty_frame(), fig=fig)
    assert len(axes) == 1 and not axes[0].axison and _sentence(axes[0]) == plots.NO_TASKS


def test_panels_one_per_group_shared_y_small_groups_pooled(df):
    small = make_frame(
        status=["failed"] * 3,
        model=["veo_tiny"] * 3,
        create_s=[0.0, 1.0, 2.0],
        complete_s=[5.0, 6.0, 7.0],
    )
    frame = schema.enforce(pd.concat([df, small], ignore_index=True))
    fig = Figure()
    axes = plots.failure_rate_panels(frame, freq="1D", by="model", fig=fig)
    titles = [ax.get_title() for ax in axes]
    assert titles[-1].startswith("other (") and "veo_tiny" in titles[-1]
    assert not any(t.startswith("veo_tiny") for t in titles)
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y
    assert all(ax.lines for ax in axes)


def _thin_spike() -> pd.DataFrame:
    """Day 0..4: 20 finished tasks a day, 1 failed; day 5: one task, failed (100%)."""
    days = [d for d in range(5) for _ in range(20)] + [5]
    status = ["failed" if i % 20 == 0 else "success" for i in range(100)] + ["failed"]
    return make_frame(
        status=status,
        model=["veo3_fast"] * 101,
        create_s=[d * 86400.0 + 60 for d in days],
        complete_s=[d * 86400.0 + 160 for d in days],
    )


def test_the_rate_scale_holds_every_band_and_explains_its_markers():
    frame = _thin_spike()
    fig = Figure()
    axes = plots.failure_rate_panels(frame, freq="1D", by="model", fig=fig)
    rates = analysis.failure_rates(frame, by="model", freq="1D")
    solid = rates[rates["n"] >= plots.MIN_BUCKET_TASKS]
    top = axes[0].get_ylim()[1]
    assert solid["ci_high"].max() <= top < 1.0  # no band cut, and the 1-of-1 spike is not the scale
    label = fig.get_supxlabel()
    assert f"fewer than {plots.MIN_BUCKET_TASKS} finished tasks" in label
    assert "▲: one above the scale, its rate written beside it" in label
    assert "100%" in [t.get_text() for t in axes[0].texts]
    one = plots.failure_rate_over_time(frame, freq="1D", ax=Figure().add_subplot())
    assert "▲" in one.get_xlabel() and "100%" in [t.get_text() for t in one.texts]
    plain = plots.failure_rate_over_time(frame.iloc[:100], freq="1D", ax=Figure().add_subplot())
    assert "▲" not in plain.get_xlabel() and "hollow" not in plain.get_xlabel()


def test_time_plots_leave_out_tasks_without_a_creation_time():
    frame = schema.enforce(
        pd.concat(
            [_thin_spike(), make_frame(status=["failed"], model=["veo3"], complete_s=[50.0])],
            ignore_index=True,
        )
    )
    assert "n/a" in set(analysis.failure_rates(frame, freq="1D").index)  # counted in tables
    fig = Figure()
    assert plots.failure_rate_panels(frame, freq="1D", by="model", fig=fig)
    assert plots.failure_rate_over_time(frame, freq="1D", ax=Figure().add_subplot()).lines
    priced = frame.assign(credits=60.0)
    assert plots.spend_over_time(priced, freq="1D", ax=Figure().add_subplot()).patches


def test_no_placeholder_in_labels_legends_or_ticks():
    sample = read_parquet(ROOT / "data" / "sample_tasks.parquet")
    bad = re.compile(r"\bNaN\b|<NA>|\bNone\b|\bnan\b|\bNA\b|n=0\b")
    for func, kwargs in [
        (plots.latency_ecdf, {"by": "model"}),
        (plots.latency_hist, {"by": "model"}),
        (plots.status_counts, {"by": "model"}),
        (plots.failure_rate_over_time, {"by": "model"}),
        (plots.failure_pareto, {}),
    ]:
        fig = Figure()
        ax = func(sample, ax=fig.add_subplot(), **kwargs)
        fig.canvas.draw()
        legend = ax.get_legend()
        texts = [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        texts += [t.get_text() for t in legend.get_texts()] if legend else []
        found = [t for t in texts if bad.search(t)]
        assert not found, (func.__name__, found)


def test_date_axis_is_concise():
    fig = Figure()
    ax = plots.failure_rate_over_time(
        synthetic_frame(2000, seed=2), freq="1D", ax=fig.add_subplot()
    )
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all(re.fullmatch(r"\d{2} \w{3}|\w{3}|\d{4}", t) for t in labels if t), labels


def test_spend_bars_add_up_to_the_credits_and_show_duplicates():
    frame = synthetic_frame(400, seed=2)
    again = frame.iloc[:20].copy()
    again["task_id"] = again["task_id"] + "-again"
    again["create_time"] = again["create_time"] + pd.Timedelta("2min")
    both = pd.concat([frame, again], ignore_index=True)
    ax = plots.spend_over_time(both, freq="1D", ax=Figure().add_subplot())
    drawn = sum(p.get_height() for p in ax.patches)
    assert drawn == pytest.approx(analysis.cost_summary(both, by=None)["credits"].sum())
    assert any("wasted" in str(t.get_text()) for t in ax.get_legend().get_texts())


def test_callback_delay_draws_the_audit_and_copes_with_none():
    import pandas as pd

    from veo_notebook.callbacks import AUDIT_COLUMNS

    empty = pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in AUDIT_COLUMNS})
    ax = Figure().add_subplot()
    assert plots.callback_delay(empty, ax=ax) is ax
    assert ax.texts and "0 tasks" in ax.get_title()
    audit = pd.DataFrame(
        {
            "first_delay_s": [1.0, 2.0, 600.0, np.nan],
            "deliveries": pd.array([1, 2, 1, 0], dtype="Int64"),
            "disagreement": pd.array([None, None, None, "no callback"], dtype="string"),
        }
    )
    ax = Figure().add_subplot()
    assert plots.callback_delay(audit, ax=ax) is ax
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == 3 and "1 terminal with no callback" in ax.get_title()
    assert ax.get_xlabel().endswith("(s)")
