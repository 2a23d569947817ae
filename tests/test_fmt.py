"""fmt: the one vocabulary for what a person reads (unread, n/a, open intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _frames import make_frame

from veo_notebook import fmt

NAN = float("nan")


@pytest.mark.parametrize(
    ("args", "kwargs", "text"),
    [
        pytest.param((96.0, 88.0, 105.0), {}, "96.0 [88.0–105.0]", id="both-bounds"),
        pytest.param((188.7, 182.0, NAN), {}, "188.7 [≥ 182.0]", id="no-upper"),
        pytest.param((44.0, NAN, 95.2), {}, "44.0 [≤ 95.2]", id="no-lower"),
        pytest.param((60.0, NAN, NAN), {}, "60.0 [n/a (too few)]", id="no-bounds"),
        pytest.param((NAN, NAN, NAN), {}, "n/a", id="no-value"),
        pytest.param(
            (pd.NA, 583.0, None),
            {"missing": fmt.NOT_REACHED},
            "not reached [≥ 583.0]",
            id="km-not-reached",
        ),
        pytest.param((96.4, 88.0, 105.0), {"fmt": "{:.0f}"}, "96 [88–105]", id="fmt"),
    ],
)
def test_interval_says_what_is_known(args, kwargs, text):
    assert fmt.interval(*args, **kwargs) == text


def test_rates_and_numbers():
    assert fmt.rate_interval(0.052, 0.035, 0.077) == "5.2% [3.5–7.7%]"
    assert fmt.rate_interval(NAN, NAN, NAN) == "n/a"
    assert fmt.pct(np.float64(0.1234)) == "12.3%"
    assert fmt.num(pd.NA) == "n/a" and fmt.num(3.14159) == "3.1"


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (None, "n/a"),
        (pd.NA, "n/a"),
        (NAN, "n/a"),
        (pd.NaT, "n/a"),
        (("veo3", None), "veo3 / n/a"),
        (pd.Timestamp("2026-03-01 10:30", tz="UTC"), "2026-03-01 10:30"),
        (400.0, "400"),
        ("None", "None"),  # a real string is never taken for missing
    ],
)
def test_label(key, text):
    assert fmt.label(key) == text


def test_group_column_names_why_a_model_is_missing():
    df = make_frame(
        status=["success", "success", None, "success"],
        model=["veo3", None, None, None],
        task_type=["generate", "4k", None, "extend"],
    )
    df["fetch_error"] = pd.array([None, None, "422 record is null.", None], dtype="string")
    assert fmt.group_column(df, "model").tolist() == ["veo3", "upgrade task", "unread", "n/a"]
    assert len(fmt.readable(df)) == 3


def test_group_column_labels_a_derived_key_by_the_same_rule():
    df = make_frame(status=["success", None], create_s=[0.0, np.nan])
    df["fetch_error"] = pd.array([None, "422 record is null."], dtype="string")
    day = df["create_time"].dt.floor("1D").rename("period")
    got = fmt.group_column(df, "period", day)
    assert got.iloc[0] == day.iloc[0] and got.iloc[1] == "unread"
    assert fmt.group_column(df.iloc[:1], "period", day.iloc[:1]).dtype == day.dtype  # untouched
    assert fmt.UNPRICED == "unpriced"


def test_table_has_no_missing_cells_or_labels():
    frame = pd.DataFrame(
        {"n": [1, 2], "p50": [np.nan, 1.25], "name": [None, "x"]},
        index=pd.Index(["a", None], name="model"),
    )
    out = fmt.table(frame)
    assert out.index.tolist() == ["a", "n/a"]
    assert out.to_numpy().tolist() == [[1, "n/a", "n/a"], [2, "1.25", "x"]]


def test_labelled_and_task_rows_say_unread_for_unread_rows():
    df = make_frame(
        status=["success", None],
        model=[None, None],
        task_type=["1080p", None],
        create_s=[0.0, 0.0],
        complete_s=[30.0, None],
    )
    df["fetch_error"] = pd.array([None, "422 record is null."], dtype="string")
    assert fmt.labelled(df, "model")["model"].tolist() == ["upgrade task"]
    rows = fmt.task_rows(df, ["status", "model", "latency_s"])
    assert rows.to_numpy().tolist() == [["success", "upgrade task", "30"], ["unread"] * 3]
