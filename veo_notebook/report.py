"""``report(df, path)``: one self-contained HTML file (or Markdown + PNGs) about a batch of tasks.

The HTML embeds its figures as base64 PNG and its style inline: it opens offline, can
be mailed, and loads nothing from the network. Every piece of text that came from the
API or from users (prompts, error messages, ids, model names) is HTML-escaped. Only
aggregates are drawn, so a million rows render in well under a minute.

>>> from veo_notebook import report
>>> report(df, "report.html")                              # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from . import analysis, plots, pricing
from .analysis._groups import now_utc
from .analysis._kernels import pct_name
from .analysis.error_rules import CATEGORY_MEANINGS
from .export import atomic_path

__all__ = ["report"]

log = logging.getLogger(__name__)

PERCENTILES = (0.5, 0.9, 0.95, 0.99)
AT_RISK_WITHIN = "3D"  # videos deleted within this span are listed as at risk

DEFINITIONS = [
    ("latency", "complete_time − create_time, in seconds, of successful tasks (naive)."),
    (
        "p50 … p99",
        "percentiles of latency, linear interpolation (as numpy.quantile); "
        "in brackets the exact 95% order-statistic interval (— where the group is too small).",
    ),
    (
        "KM p50 …",
        "Kaplan–Meier percentiles of time-to-success: tasks still generating count "
        "as censored at their age, failed tasks as censored at their failure time. Larger than "
        "the naive value when slow tasks are still running; — when the curve never gets there "
        "(late failures, such as timeouts, hold it up). "
        "In brackets the 95% Brookmeyer–Crowley interval (log-transformed Greenwood band).",
    ),
    ("time to failure", "complete_time − create_time of tasks that failed (successFlag 2 or 3)."),
    (
        "failure rate",
        "(failed + generation_failed) / terminal tasks; tasks still generating, "
        "of unknown status or unread are left out. In brackets the 95% Wilson score interval.",
    ),
    (
        "stuck",
        "still generating more than 30 minutes after creation, at the time of the latest fetch.",
    ),
    (
        "credits",
        "reported by the API where an answer carries creditsConsumed, else estimated from a "
        "dated, sourced price table (veo_notebook/pricing/prices.csv, replaceable: "
        "veo.with_credits(df, prices=...) before the report); failed tasks cost 0 (reported "
        "as not billed).",
    ),
    (
        "duplicate submission",
        "a task whose request (prompt, model, generation type, aspect ratio, images, seeds, "
        "parent, task type) repeats one made less than 15 minutes before; its credits are "
        "wasted when an earlier identical submission did not fail.",
    ),
    (
        "at risk",
        "a succeeded task whose video kie.ai deletes (14 days after completion) within 3 days.",
    ),
    ("times", "all times are UTC."),
]


@dataclass
class _Figure:
    name: str
    caption: str
    png: bytes


def _auto_freq(df: pd.DataFrame) -> str:
    times = df["create_time"].dropna()
    if len(times) < 2:
        return "1D"
    span = times.max() - times.min()
    if span > pd.Timedelta("3D"):
        return "1D"
    if span > pd.Timedelta("6h"):
        return "1h"
    return "10min"


def _ci(value: float, lo: float, hi: float, fmt: str = "{:.1f}") -> str:
    if value is None or pd.isna(value):
        return "—"
    lo_s = "—" if pd.isna(lo) else fmt.format(lo)
    hi_s = "—" if pd.isna(hi) else fmt.format(hi)
    return f"{fmt.format(value)} [{lo_s}–{hi_s}]"


def _num(value: float, fmt: str = "{:.1f}") -> str:
    return "—" if value is None or pd.isna(value) else fmt.format(value)


def _latency_table(df: pd.DataFrame, by: str | None, now: object) -> pd.DataFrame:
    naive = analysis.latency_summary(df, by=by, percentiles=PERCENTILES)
    km = analysis.km_latency(df, by=by, percentiles=PERCENTILES, now=now)
    out = pd.DataFrame(index=naive.index)
    out["tasks"] = naive["n"]
    out["succeeded"] = naive["completed"]
    out["generating"] = naive["generating"]
    out["mean s"] = [_num(v) for v in naive["mean_s"]]
    for q in PERCENTILES:
        p = pct_name(q)
        out[f"{p} s"] = [
            _ci(v, lo, hi)
            for v, lo, hi in zip(naive[p], naive[f"{p}_ci_low"], naive[f"{p}_ci_high"], strict=True)
        ]
    for q in PERCENTILES:
        p = pct_name(q)
        out[f"KM {p} s"] = [
            _ci(v, lo, hi)
            for v, lo, hi in zip(
                km[f"km_{p}"], km[f"km_{p}_ci_low"], km[f"km_{p}_ci_high"], strict=True
            )
        ]
    out["max s"] = [_num(v) for v in naive["max_s"]]
    return out


def _failure_latency_table(df: pd.DataFrame, by: str | None) -> pd.DataFrame:
    s = analysis.latency_summary(df, by=by, percentiles=(0.5, 0.9), outcome="failed")
    return pd.DataFrame(
        {
            "failed tasks": s["completed"],
            "p50 s": [
                _ci(*v) for v in zip(s["p50"], s["p50_ci_low"], s["p50_ci_high"], strict=True)
            ],
            "p90 s": [
                _ci(*v) for v in zip(s["p90"], s["p90_ci_low"], s["p90_ci_high"], strict=True)
            ],
        },
        index=s.index,
    )


def _rate_table(df: pd.DataFrame, by: str | Sequence[str] | None) -> pd.DataFrame:
    r = analysis.failure_rates(df, by=by)
    out = r[["n", "succeeded", "failed", "generation_failed"]].copy()
    out["failure rate"] = [
        _ci(v * 100, lo * 100, hi * 100, "{:.1f}%").replace("%–", "–")
        for v, lo, hi in zip(r["rate"], r["ci_low"], r["ci_high"], strict=True)
    ]
    return out


def _png(draw: Callable[..., object], *args: object, size=(8.0, 4.2), **kwargs: object) -> bytes:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    draw(*args, ax=ax, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _figures(
    df: pd.DataFrame, freq: str, fb: analysis.FailureBreakdown, now: object
) -> list[_Figure]:
    by = "model" if df["model"].notna().any() else None
    specs: list[tuple[str, str, Callable[[], bytes]]] = [
        ("status", "Tasks by status and model.", lambda: _png(plots.status_counts, df, by=by)),
        (
            "latency_ecdf",
            "Share of tasks succeeded by time since creation: Kaplan–Meier (solid, "
            "censored tasks ticked) against the naive ECDF of finished tasks (dashed).",
            lambda: _png(plots.latency_ecdf, df, by=by, now=now),
        ),
        (
            "latency_hist",
            "Latency of successful tasks by task type.",
            lambda: _png(plots.latency_hist, df, by="task_type"),
        ),
        (
            "latency_over_time",
            f"Latency percentiles per {freq} of creation time, with 95% intervals.",
            lambda: _png(plots.latency_percentiles_over_time, df, freq=freq),
        ),
        (
            "failure_rate",
            f"Failure rate per {freq} of creation time and model, with 95% Wilson bands.",
            lambda: _png(plots.failure_rate_over_time, df, freq=freq, by=by),
        ),
        (
            "spend",
            f"Credits spent per {freq} of creation time, by model (estimated unless reported); "
            "dashed: the part wasted on duplicate submissions.",
            lambda: _png(plots.spend_over_time, df, freq=freq),
        ),
        (
            "failure_pareto",
            "Failures by error category, largest first, with the cumulative share.",
            lambda: _png(plots.failure_pareto, fb, size=(8.0, 4.8)),
        ),
    ]
    out = []
    for name, caption, make in specs:
        try:
            out.append(_Figure(name, caption, make()))
        except Exception:  # a figure that cannot be drawn must not sink the report
            log.exception("report: figure %s could not be drawn", name)
    return out


def _delivery(df: pd.DataFrame, archive: pd.DataFrame) -> tuple[str, list[tuple[str, object]]]:
    """The "Delivery" section: what the archive saved, and each file against its request."""
    from .archive import UNREADABLE, delivery_check

    errors = archive["archive_error"]
    saved = archive[errors.isna() | (errors == UNREADABLE)]
    megabytes = float(saved["bytes"].sum()) / 1e6
    blocks: list[tuple[str, object]] = [
        (
            "text",
            f"{len(archive):,} videos of succeeded tasks; {len(saved):,} archived "
            f"({megabytes:,.1f} MB), {int(errors.notna().sum()):,} with an error. Each file "
            "was read with PyAV and compared with what its task asked for (the request, "
            "else the record's response).",
        )
    ]
    failed = errors.dropna()
    if len(failed):
        kinds = failed.str.split(":").str[0].value_counts()
        table = pd.DataFrame({"videos": kinds.astype(int)}).rename_axis("archive error")
        blocks += [("text", "Why videos could not be archived or read."), ("table", table)]
    problems = delivery_check(df, archive)
    if len(problems):
        counts = problems["issue"].value_counts().loc[lambda v: v > 0]
        table = pd.DataFrame({"tasks": counts.astype(int)}).rename_axis("issue")
        blocks += [
            (
                "text",
                f"{len(problems):,} delivery problems in {problems['task_id'].nunique():,} tasks.",
            ),
            ("table", table),
            ("text", "The first 20."),
            ("table", problems.head(20).astype(str).reset_index(drop=True)),
        ]
    else:
        blocks.append(("text", "No delivery problems: every file is what its task asked for."))
    return "Delivery", blocks


def _sections(
    df: pd.DataFrame,
    now: object,
    freq: str | None,
    figures: bool = True,
    archive: pd.DataFrame | None = None,
):
    """Everything the report shows, as (heading, list of blocks) with blocks tables/text."""
    now_ts = now_utc(df, now)
    freq = freq or _auto_freq(df)
    fb = analysis.failure_breakdown(df, top=5)
    stuck = analysis.stuck_tasks(df, "30min", now=now_ts)
    created = df["create_time"].dropna()
    span = (
        f"{created.min():%Y-%m-%d %H:%M} – {created.max():%Y-%m-%d %H:%M} UTC"
        if len(created)
        else "no creation times"
    )
    status = df["status"].astype("string").fillna("unread").value_counts()
    overview = pd.DataFrame({"tasks": status}).rename_axis("status")
    overview.loc["all"] = len(df)
    facts = [
        f"Tasks created {span}; {len(df)} tasks; "
        f"{int(df['fetch_error'].notna().sum())} could not be read; {len(stuck)} stuck "
        f"(generating for more than 30 minutes at {now_ts:%Y-%m-%d %H:%M} UTC).",
    ]
    stuck_view = (
        pd.DataFrame(
            {
                "task_id": stuck["task_id"],
                "model": stuck["model"],
                "task_type": stuck["task_type"].astype("string"),
                "created (UTC)": stuck["create_time"].dt.strftime("%Y-%m-%d %H:%M"),
                "age (min)": (stuck["age_s"] / 60).round(1),
            }
        )
        .head(20)
        .reset_index(drop=True)
    )
    cats = fb.categories.copy()
    cats["meaning"] = [CATEGORY_MEANINGS.get(str(c), "") for c in cats.index]
    cats["share"] = (cats["share"] * 100).round(1).astype(str) + "%"
    cats["cumulative_share"] = (cats["cumulative_share"] * 100).round(1).astype(str) + "%"
    params = fb.params.copy()
    for c in ("rate", "ci_low", "ci_high"):
        params[c] = (params[c] * 100).round(1)
    params = params.rename(columns={"rate": "rate %", "ci_low": "ci low %", "ci_high": "ci high %"})
    sections = [
        ("Overview", [("text", facts[0]), ("table", overview)]),
        (
            "Latency (time to success)",
            [
                (
                    "text",
                    "By model. Brackets: 95% intervals. KM: censoring-aware (see definitions).",
                ),
                ("table", _latency_table(df, "model", now_ts)),
                ("text", "By task type."),
                ("table", _latency_table(df, "task_type", now_ts)),
                ("text", "Time to failure, by model."),
                ("table", _failure_latency_table(df, "model")),
            ],
        ),
        (
            "Failure rates",
            [
                ("text", "By model and by task type. Brackets: 95% Wilson score interval."),
                ("table", _rate_table(df, "model")),
                ("table", _rate_table(df, "task_type")),
            ],
        ),
        (
            "Why tasks fail",
            [
                ("text", "Error categories (a Pareto), from errorCode and errorMessage."),
                ("table", cats),
                ("text", "Most frequent raw messages per category."),
                ("table", fb.messages),
                ("text", "Parameter combinations with the most failures."),
                ("table", params),
                ("text", "Prompts that failed most often."),
                ("table", fb.prompts),
            ],
        ),
        ("Stuck tasks", [("text", f"{len(stuck)} tasks; the 20 oldest:"), ("table", stuck_view)]),
        _money_section(df),
        _at_risk_section(df, now_ts, archive),
    ]
    if archive is not None:
        sections.append(_delivery(df, archive))
    return sections, (_figures(df, freq, fb, now_ts) if figures else [])


def _credits(value: float) -> str:
    return _num(value, "{:,.0f}")


def _money_section(df: pd.DataFrame) -> tuple[str, list]:
    """Credits per model, how they were found, and what duplicate submissions wasted."""
    priced = df if "credits" in df.columns else pricing.with_credits(df)
    table = analysis.cost_summary(priced, by="model")
    dups = analysis.duplicate_submissions(priced)
    credits = priced["credits"]
    source = priced.get("credits_source", credits.notna().map({True: "estimated"}))
    source = source.astype("string")
    estimated = credits[source == "estimated"].sum()
    reported = credits[source == "reported"].sum()
    if "credits" in df.columns:
        origin, failed = "as given in the frame", ""
    else:
        dates = sorted(set(pricing.default_prices().rows["as_of"].dropna()))
        origin = f"the shipped price table, figures as of {', '.join(dates) or 'no date'}"
        failed = "Failed tasks cost 0. "
    facts = (
        f"{_credits(credits.sum())} credits for {len(df):,} tasks: {_credits(estimated)} "
        f"estimated ({origin}), {_credits(reported)} reported by the API; "
        f"{int(credits.isna().sum())} tasks without a price (unread, or no price applies). "
        f"{failed}"
        f"{len(dups)} duplicate submissions (the same request within 15 minutes) wasted "
        f"{_credits(dups['wasted_credits'].sum())} credits."
    )
    view = pd.DataFrame(
        {
            "tasks": table["n"],
            "succeeded": table["succeeded"],
            "credits": [_credits(v) for v in table["credits"]],
            "credits / success": [_num(v) for v in table["credits_per_success"]],
            "reported": [_credits(v) for v in table["reported_credits"]],
            "unpriced": table["unpriced"],
            "duplicates": table["duplicates"],
            "wasted": [_credits(v) for v in table["wasted_credits"]],
        },
        index=table.index,
    )
    view.index = pd.Index(["no model" if pd.isna(k) else str(k) for k in table.index], name="model")
    worst = dups.sort_values("wasted_credits", ascending=False, kind="stable").head(20)
    dup_view = pd.DataFrame(
        {
            "task_id": worst["task_id"],
            "first submission": worst["first_task_id"],
            "created (UTC)": worst["create_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "after (s)": worst["delay_s"].round(0),
            "status": worst["status"].astype("string"),
            "wasted credits": [_credits(v) for v in worst["wasted_credits"]],
        }
    ).reset_index(drop=True)
    blocks = [
        ("text", facts),
        ("text", "By model (upgrades to 1080p/4K carry no model)."),
        ("table", view),
    ]
    if len(dups):
        blocks += [
            ("text", "Duplicate submissions wasting the most credits (up to 20):"),
            ("table", dup_view),
        ]
    return "Money", blocks


def _at_risk_section(
    df: pd.DataFrame, now: pd.Timestamp, archive: pd.DataFrame | None = None
) -> tuple[str, list]:
    """Videos kie.ai is about to delete (completion + 14 days), and those already gone;
    with an ``archive``, only those it has not saved."""
    risk = analysis.expiring(df, within=AT_RISK_WITHIN, now=now, archived=archive)
    soon = risk[~risk["expired"]]
    gone = int(risk["expired"].sum())
    text = (
        f"At {now:%Y-%m-%d %H:%M} UTC: {len(soon)} succeeded tasks' videos are deleted by kie.ai "
        f"within {pd.Timedelta(AT_RISK_WITHIN).days} days, and {gone} are already deleted "
        "(14 days after completion). Archive them before they go; a video already archived is "
        "left out by veo.expiring(df, archived=...)."
        + (" Videos this report's archive saved are left out." if archive is not None else "")
    )
    view = pd.DataFrame(
        {
            "task_id": soon["task_id"],
            "model": soon["model"].astype("string").fillna("no model"),
            "completed (UTC)": soon["complete_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "deleted at (UTC)": soon["expires_at"].dt.strftime("%Y-%m-%d %H:%M"),
            "hours left": (soon["expires_in_s"] / 3600).round(1),
        }
    ).head(20)
    return ("At risk (videos about to expire)", [("text", text), ("table", view)])


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
table{border-collapse:collapse;font-size:13px;margin:.6em 0 1.2em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;
font-variant-numeric:tabular-nums}th{background:#f3f3f3}
figure{margin:1em 0}figcaption{font-size:13px;color:#555}img{max-width:100%}
dt{font-weight:600}dd{margin:0 0 .5em 1.5em}
"""


def _html(title: str, sections, figures: list[_Figure]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC by veo-notebook.</p>",
    ]
    for heading, blocks in sections:
        parts.append(f"<h2>{esc(heading)}</h2>")
        for kind, content in blocks:
            if kind == "text":
                parts.append(f"<p>{esc(content)}</p>")
            else:
                plain = isinstance(content.index, pd.RangeIndex)
                parts.append(content.to_html(escape=True, na_rep="—", border=0, index=not plain))
    if figures:
        parts.append("<h2>Figures</h2>")
    for f in figures:
        data = base64.b64encode(f.png).decode("ascii")
        parts.append(
            f'<figure><img alt="{esc(f.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(f.caption)}</figcaption></figure>"
        )
    parts.append("<h2>Definitions</h2><dl>")
    for term, meaning in DEFINITIONS:
        parts.append(f"<dt>{esc(term)}</dt><dd>{esc(meaning)}</dd>")
    parts.append("</dl></body></html>")
    return "\n".join(parts)


def _md_cell(value: object) -> str:
    text = "—" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(df: pd.DataFrame) -> str:
    flat = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    cols = [str(c) for c in flat.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in flat.itertuples(index=False):  # aggregates only: a few dozen rows
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _markdown(title: str, sections, figures: list[_Figure], fig_dir: Path, rel: str) -> str:
    fig_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        f"# {_md_cell(title)}",
        "",
        f"Generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC by veo-notebook.",
        "",
    ]
    for heading, blocks in sections:
        parts += [f"## {heading}", ""]
        for kind, content in blocks:
            parts += [_md_cell(content) if kind == "text" else _md_table(content), ""]
    parts += ["## Figures", ""] if figures else []
    for f in figures:
        with atomic_path(fig_dir / f"{f.name}.png") as tmp:
            tmp.write_bytes(f.png)
        parts += [f"![{f.name}]({rel}/{f.name}.png)", "", f"*{_md_cell(f.caption)}*", ""]
    parts += ["## Definitions", ""]
    parts += [f"- **{_md_cell(t)}**: {_md_cell(m)}" for t, m in DEFINITIONS]
    return "\n".join(parts) + "\n"


def report(
    df: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "Veo task report",
    freq: str | None = None,
    now: object = None,
    figures: bool = True,
    archive: pd.DataFrame | None = None,
) -> Path:
    """Write a one-file report on the tasks in ``df``; return its path.

    ``path`` ending in ``.md`` gives Markdown with the figures as PNG files in a
    ``<name>_figures`` folder beside it; anything else gives self-contained HTML.
    ``freq`` is the time bucket of the over-time figures (default: from the time span);
    ``now`` the time tasks still generating are aged at (default: the latest fetch);
    ``figures=False`` leaves the figures out (a quicker, text-only report); ``archive``
    (what :func:`~veo_notebook.archive_videos` returned) adds a "Delivery" section.

    >>> report(df, "out/report.html", title="March batch")     # doctest: +SKIP
    PosixPath('out/report.html')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections, figs = _sections(df, now, freq, figures, archive)
    if path.suffix.lower() == ".md":
        fig_dir = path.with_name(f"{path.stem}_figures")
        text = _markdown(title, sections, figs, fig_dir, fig_dir.name)
    else:
        text = _html(title, sections, figs)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("report: %d tasks → %s", len(df), path)
    return path
