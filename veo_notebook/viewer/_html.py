"""HTML fragments of the status viewer: header, table page, detail pane.

Every text that comes from the API or from a prompt goes through :func:`esc`; only
``http(s)`` URLs become links or ``<video>`` sources (:func:`safe_url`).

>>> safe_url("javascript:alert(1)") is None, safe_url("https://x.test/v.mp4")
(True, 'https://x.test/v.mp4')
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from .. import fmt
from ..schema import STATUS_COLOURS, UNREAD

__all__ = ["STYLE", "detail_html", "esc", "family_html", "header_html", "safe_url", "table_html"]


STYLE = """<style>
.veo-viewer table.veo-t{border-collapse:collapse;font-size:12px;width:100%}
.veo-viewer table.veo-t th,.veo-viewer table.veo-t td{border-bottom:1px solid #ddd;
 padding:2px 6px;text-align:left;vertical-align:top}
.veo-viewer .veo-pill{display:inline-block;border-radius:8px;padding:0 6px;color:#fff;
 font-size:11px;margin-right:4px}
.veo-viewer .veo-kv td:first-child{color:#555;white-space:nowrap}
.veo-viewer .veo-mono{font-family:monospace;font-size:11px}
</style>"""


def esc(value: Any) -> str:
    """HTML-escape any value (NA / None → empty string).

    >>> esc('<img src=x onerror="y">')
    '&lt;img src=x onerror=&quot;y&quot;&gt;'
    """
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):  # lists, arrays
        pass
    return html.escape(str(value), quote=True)


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute ``http(s)`` URL with a host, else None.

    >>> safe_url("data:text/html,x") is None
    True
    """
    if not isinstance(url, str):
        return None
    u = url.strip()
    if not u or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in u):
        return None
    try:
        parts = urlsplit(u)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return u


def _link(url: Any) -> str:
    ok = safe_url(url)
    if ok is None:
        return f'<span class="veo-mono veo-not-link" title="not an http(s) URL">{esc(url)}</span>'
    a = esc(ok)
    return f'<a href="{a}" target="_blank" rel="noopener noreferrer">{a}</a>'


def _pill(status: str, n: int | None = None) -> str:
    colour = STATUS_COLOURS.get(status, "#7f7f7f")
    text = esc(status) if n is None else f"{esc(status)}: {n:,}"
    return f'<span class="veo-pill" style="background:{colour}">{text}</span>'


def fmt_time(ts: Any) -> str:
    """A UTC time stamp as ``YYYY-MM-DD HH:MM:SS`` (NA → empty)."""
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_latency(x: Any) -> str:
    """Seconds with one decimal (NA → empty)."""
    if x is None or pd.isna(x) or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{float(x):,.1f} s"


def header_html(counts: Mapping[str, int], total: int, shown: int, pending: int) -> str:
    """Counts per status (coloured), the share done (not pending) and rows matching the filters."""
    pills = "".join(_pill(k, v) for k, v in counts.items() if v)
    share = (total - pending) / total if total else 1.0
    return (
        f"<div><b>{total:,} tasks</b> · {share:.1%} done · "
        f'<span class="veo-shown">{shown:,} match the filters</span></div><div>{pills}</div>'
    )


def table_html(page: pd.DataFrame, categories: Sequence[Any]) -> str:
    """The rows of one page as an HTML table (columns fixed by the viewer)."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("task id", "status", "model", "task type", "created (UTC)", "latency", "error")
    )
    rows = []
    ids = page["task_id"].tolist()
    statuses = page["status"].tolist()
    models = fmt.group_column(page, "model").tolist()  # "upgrade task", "unread", "n/a"
    types = page["task_type"].tolist()
    created = page["create_time"].tolist()
    latency = page["latency_s"].tolist()
    for i, tid in enumerate(ids):
        st = statuses[i]
        status = _pill(str(st)) if isinstance(st, str) else _pill(UNREAD)
        rows.append(
            f'<tr data-task-id="{esc(tid)}"><td class="veo-mono">{esc(tid)}</td><td>{status}</td>'
            f"<td>{esc(models[i])}</td><td>{esc(types[i])}</td><td>{fmt_time(created[i])}</td>"
            f"<td>{fmt_latency(latency[i])}</td><td>{esc(categories[i])}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="7"><i>no task matches the filters</i></td></tr>')
    return (
        f'<table class="veo-t"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _params(param_json: Any) -> str:
    if not isinstance(param_json, str) or not param_json:
        return "<i>no paramJson</i>"
    try:
        params = json.loads(param_json)
    except ValueError:
        return f'<div class="veo-mono">{esc(param_json)}</div><i>(paramJson is not valid JSON)</i>'
    if not isinstance(params, dict):
        return f'<div class="veo-mono">{esc(param_json)}</div>'
    rows = []
    for k, v in params.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        rows.append(f"<tr><td>{esc(k)}</td><td>{esc(text)}</td></tr>")
    return f'<table class="veo-t veo-kv veo-params">{"".join(rows)}</table>'


def _urls(values: Any) -> list[Any]:
    if values is None or isinstance(values, str):
        return [] if values is None else [values]
    if hasattr(values, "__iter__"):  # list, tuple, numpy / arrow array
        return list(values)
    return [] if pd.isna(values) else [values]


def _wrap(cls: str, text: str) -> str:
    return f'<span class="{cls}">{text}</span>' if text else ""


def family_html(tree: pd.DataFrame | None, selected: str | None) -> str:
    """The family tree of the task shown (``family_of``'s frame): each member, indented
    under its parent, with its state; the final deliverable and this task marked."""
    if tree is None or tree.empty:
        return ""
    rows = []
    for r in tree.itertuples(index=False):
        depth = int(r.depth)
        status = str(r.status)
        marks = [m for m, on in (("final", bool(r.final)), ("this task", r.task_id == selected),
                                 ("replaced", bool(r.replaced))) if on]  # fmt: skip
        note = "" if fmt.is_missing(r.note) else str(r.note)
        rows.append(
            f'<tr data-task-id="{esc(r.task_id)}"><td style="padding-left:{6 + 16 * depth}px">'
            f"{esc(str(r.tree).strip())}</td>"
            f'<td class="veo-mono">{esc(r.task_id)}</td><td>{_pill(status)}</td>'
            f"<td>{esc(', '.join(marks))}</td><td>{esc(note)}</td></tr>"
        )
    return f'<h5>Family</h5><table class="veo-t veo-family">{"".join(rows)}</table>'


def detail_html(row: pd.Series, category: Any, family: str = "") -> str:
    """Everything about one task: fields, timings, error, parameters, links, video, and
    its family (:func:`family_html`)."""
    kv = [
        ("task id", esc(row["task_id"])),
        (
            "status",
            _pill(str(row["status"])) if isinstance(row["status"], str) else _pill(UNREAD),
        ),
        ("model", esc(row["model"])),
        ("task type", esc(row["task_type"])),
        ("generation type", esc(row["generation_type"])),
        ("aspect ratio", esc(row["aspect_ratio"])),
        ("resolution", esc(row["resolution"])),
        ("parent task", esc(row["parent_task_id"])),
        ("created (UTC)", fmt_time(row["create_time"])),
        ("completed (UTC)", fmt_time(row["complete_time"])),
        ("latency", fmt_latency(row["latency_s"])),
        ("fetched (UTC)", fmt_time(row["fetched_at"])),
        ("error code", esc(row["error_code"])),
        ("error message", _wrap("veo-error-message", esc(row["error_message"]))),
        ("error category", esc(category)),
        ("fetch error", esc(row["fetch_error"])),
        ("parse note", esc(row["parse_note"])),
    ]
    fields = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in kv if v)
    links = []
    for col, label in (
        ("result_urls", "result"),
        ("full_result_urls", "full result"),
        ("origin_urls", "origin"),
    ):
        links += [f"<li>{label}: {_link(u)}</li>" for u in _urls(row[col])]
    video = safe_url(row["video_url"])
    player = (
        '<video class="veo-video" controls preload="metadata" width="480" '
        f'src="{esc(video)}"></video>'
        if video
        else "<i>no playable video</i>"
    )
    return (
        f'<h4>Task <span class="veo-mono">{esc(row["task_id"])}</span></h4>'
        f'<table class="veo-t veo-kv">{fields}</table>{family}'
        f"<h5>Parameters</h5>{_params(row['param_json'])}"
        f'<h5>Results</h5><ul class="veo-links">{"".join(links) or "<li><i>none</i></li>"}</ul>'
        f"{player}"
    )
