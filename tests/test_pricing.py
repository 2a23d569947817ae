"""The price table: shipped default (dated, sourced), wildcards, most-specific-wins,
overrides by mapping / DataFrame / CSV / TOML, reported vs estimated, bill_failed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _frames import make_frame

import veo_notebook as veo
from veo_notebook import pricing, schema
from veo_notebook.errors import InputError
from veo_notebook.pricing import PriceTable, default_prices, load_prices, with_credits


def tasks(**extra: object) -> pd.DataFrame:
    base = {
        "model": ["veo3_fast", "veo3_fast", "veo3", "veo3_lite", None, None, "fast", "veo9"],
        "task_type": [*["generate"] * 4, "4k", "1080p", "extend", "generate"],
        "resolution": ["720p", "1080P", "4k", None, "4k", "1080p", None, "720p"],
        "status": ["success"] * 8,
    }
    base.update(extra)  # type: ignore[arg-type]
    return make_frame(**base)


def test_default_table_is_dated_and_sourced_and_shipped():
    table = default_prices()
    rows = table.rows
    assert rows["source"].notna().all() and rows["as_of"].notna().all()
    assert rows["credits"].ge(0).all()
    fig = rows.set_index(["model", "resolution"])["credits"]
    assert fig[("veo3_lite", "720p")] == 30 and fig[("veo3_fast", "1080p")] == 65
    assert fig[("veo3", "4k")] == 370
    assert "*" in table.describe()["model"].tolist()  # wildcards are shown, never NA


def test_default_estimates_follow_the_table():
    got = with_credits(tasks())
    # fast 720p, fast 1080P (case-insensitive), quality 4k, lite with unknown resolution,
    # a 4K upgrade (wildcard model), a 1080p upgrade, an extend, an unknown model
    assert got["credits"].tolist()[:7] == [60, 65, 370, 30, 120, 5, 60]
    assert np.isnan(got["credits"].iloc[7])
    assert got["credits_source"].tolist()[:7] == ["estimated"] * 7
    assert pd.isna(got["credits_source"].iloc[7])
    assert "credits" not in tasks().columns  # a copy: the frame is not touched


def test_most_specific_row_wins_and_ties_go_to_the_later_row():
    table = pd.DataFrame(
        {
            "model": [None, "veo3_fast", "veo3_fast", None],
            "task_type": [None, None, "generate", "generate"],
            "resolution": [None, None, "1080p", None],
            "credits": [1, 2, 3, 4],
        }
    )
    got = with_credits(tasks(), prices=table)["credits"].tolist()
    # fast 720p: (fast,*,*)=2 and (*,generate,*)=4 tie at one key: the later row, 4
    assert got[0] == 4
    assert got[1] == 3  # fast/generate/1080p: three keys beat everything
    assert got[4] == 1  # a 4K upgrade with no model: only the all-wildcard row


def test_a_mapping_of_models_replaces_the_table():
    got = with_credits(tasks(), prices={"veo3_fast": 55, "veo3": 240})["credits"]
    assert got.tolist()[:3] == [55, 55, 240]
    assert got.iloc[3:].isna().all()  # models the mapping does not price: no price applies


def test_a_mapping_with_tuple_keys_and_none_wildcards():
    prices = {("veo3_fast", "generate", "1080p"): 70, (None, "4k"): 100, "veo3_fast": 50}
    got = with_credits(tasks(), prices=prices)["credits"].tolist()
    assert got[0] == 50 and got[1] == 70 and got[4] == 100


def test_duration_is_a_key_when_the_frame_has_one():
    df = tasks(duration_s=[4, 8, 8, 8, 8, 8, 8, 8])
    prices = {"veo3_fast": 60, ("veo3_fast", None, None, 4): 30}
    got = with_credits(df, prices=prices)["credits"].tolist()
    assert got[:2] == [30, 60]
    # without a duration column only the rows that leave duration open apply
    assert with_credits(tasks(), prices=prices)["credits"].tolist()[:2] == [60, 60]


def test_csv_and_toml_files(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text(
        "# my prices\nmodel,resolution,credits,source,as_of\n"
        "veo3_fast,,10,our invoice,2026-11-01\nveo3_fast,1080p,12,our invoice,2026-11-01\n",
        encoding="utf-8",
    )
    got = with_credits(tasks(), prices=csv)["credits"].tolist()
    assert got[:2] == [10, 12]
    toml = tmp_path / "p.toml"
    toml.write_text(
        'usd_per_credit = 0.005\n[[price]]\nmodel = "veo3"\ncredits = 200\n'
        'source = "contract"\nas_of = 2026-10-01\n[[price]]\ntask_type = "4k"\ncredits = 99\n',
        encoding="utf-8",
    )
    table = load_prices(str(toml))
    assert table.usd_per_credit == 0.005
    assert table.rows["as_of"].iloc[0] == "2026-10-01"
    got = with_credits(tasks(), prices=toml)["credits"].tolist()
    assert got[2] == 200 and got[4] == 99


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        pytest.param({"veo3": -1}, "non-negative", id="negative"),
        pytest.param({"veo3": "lots"}, "non-negative", id="not-a-number"),
        pytest.param(pd.DataFrame({"model": ["veo3"]}), "no 'credits' column", id="no-credits"),
        pytest.param(pd.DataFrame({"modle": ["x"], "credits": [1]}), "unknown columns", id="typo"),
        pytest.param({("a", "b", "c", 4, "e"): 1}, "more than 4 parts", id="long-key"),
        pytest.param(42, "not a price table", id="int"),
        pytest.param("nope.csv", "no file", id="missing-file"),
    ],
)
def test_bad_tables_fail_with_one_clear_line(prices, message):
    with pytest.raises(InputError, match=message):
        with_credits(tasks(), prices=prices)


def test_bad_files_and_rates(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[price]\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_prices(bad)
    txt = tmp_path / "p.txt"
    txt.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"neither \.csv nor \.toml"):
        load_prices(txt)
    with pytest.raises(InputError, match="usd_per_credit"):
        load_prices(None, usd_per_credit=-0.1)


def test_failed_tasks_cost_nothing_unless_billed():
    df = tasks(status=["failed", "generation_failed", "success", "generating"] + ["success"] * 4)
    got = with_credits(df)
    assert got["credits"].tolist()[:4] == [0, 0, 370, 30]
    assert got["credits_source"].tolist()[:2] == ["estimated", "estimated"]
    billed = with_credits(df, bill_failed=True)["credits"].tolist()
    assert billed[:2] == [60, 65]


def test_reported_credits_win_where_the_frame_has_them():
    df = tasks(credits_consumed=[None, 120, None, None, 130, None, None, 7])
    got = with_credits(df)
    assert got["credits"].tolist()[1] == 120 and got["credits"].tolist()[4] == 130
    assert got["credits"].tolist()[7] == 7  # reported, though no price applies
    assert got["credits_source"].tolist()[:2] == ["estimated", "reported"]
    assert got["credits_source"].tolist()[7] == "reported"


def test_empty_and_unread_frames():
    empty = with_credits(schema.empty_frame())
    assert empty.empty and {"credits", "credits_source"} <= set(empty.columns)
    assert empty["credits"].dtype == "float64"
    unread = make_frame(task_id=["a"], fetch_error=["422 record is null."])
    got = with_credits(unread)
    assert np.isnan(got["credits"].iloc[0]) and pd.isna(got["credits_source"].iloc[0])


def test_lookup_on_a_sample_is_vectorised_and_matches_a_row_by_row_reading():
    df = veo.read_parquet("data/sample_tasks.parquet")
    got = with_credits(df)
    table = default_prices().rows
    for row in df.sample(40, random_state=1).itertuples():
        if row.status in ("failed", "generation_failed"):
            continue
        spec = -1
        want = np.nan
        for i, p in table.iterrows():  # the rule, read row by row (the slow, obvious way)
            keys = {"model": row.model, "task_type": row.task_type, "resolution": row.resolution}
            match = all(
                pd.isna(p[k]) or (not pd.isna(v) and str(v).lower() == p[k])
                for k, v in keys.items()
            ) and pd.isna(p["duration_s"])
            n = int(p[["model", "task_type", "resolution"]].notna().sum())
            if match and n >= spec:
                spec, want = n, p["credits"]
            del i
        assert got.loc[row.Index, "credits"] == want or (
            np.isnan(want) and np.isnan(got.loc[row.Index, "credits"])
        )


def test_public_names():
    assert veo.with_credits is with_credits
    assert isinstance(pricing.load_prices(), PriceTable)


def test_a_partial_price_table_leaves_the_other_models_unpriced() -> None:
    df = make_frame(
        model=["veo3_fast", "veo3", "veo3"],
        task_type=["generate"] * 3,
        status=["success", "success", "failed"],
    )
    got = with_credits(df, prices={"veo3_fast": 60})
    assert got["credits"].iloc[0] == 60.0
    assert np.isnan(got["credits"].iloc[1]) and pd.isna(got["credits_source"].iloc[1])
    assert got["credits"].iloc[2] == 0.0  # failed: not billed, whatever the table
