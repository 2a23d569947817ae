"""The HTML renderer: one self-contained page (style inline, figures as base64 PNG).

It opens offline, can be mailed, and loads nothing from the network. Every text is
HTML-escaped: prompts, error messages, ids and model names come from the API or users.
"""

from __future__ import annotations

import base64
import html

import pandas as pd

from ._cells import cell, generated
from .blocks import Block, Facts, Fig, Section, Table, Text

__all__ = ["render"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em;line-height:1.4}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.scroll{overflow-x:auto;margin:.6em 0 1.2em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;
font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f3f3f3}
td.wrap{white-space:normal;min-width:16em;overflow-wrap:anywhere}
table.facts{font-size:15px;margin:.6em 0 1.2em}table.facts th{width:9em;background:#f7f7f7}
table.facts td{white-space:normal}
figure{margin:1.2em 0}figcaption{font-size:13px;color:#555;margin-top:.3em}
img{width:100%;height:auto}
"""
_WRAP = {"error_message", "prompt", "meaning", "what differs"}  # long text: wrapped


def _esc(text: str) -> str:
    """Text content escaped (<, >, &); attribute values use html.escape with quotes."""
    return html.escape(text, quote=False)


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):  # aggregates only: a few dozen rows
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            cls = ' class="wrap"' if col in _WRAP else ""
            cells.append(f"<td{cls}>{_esc(cell(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{_esc(block.text)}</p>"
    if isinstance(block, Facts):
        rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in block.rows)
        return f'<table class="facts">{rows}</table>'
    if isinstance(block, Table):
        return _table(block.frame) if len(block.frame) else f"<p>{_esc(block.empty)}</p>"
    assert isinstance(block, Fig)
    data = base64.b64encode(block.png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(block.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(block.caption)}</figcaption></figure>"
    )


def render(title: str, sections: list[Section]) -> str:
    """The page: title, the generated line, then each section's heading and blocks."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p>{generated()}</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{_esc(section.heading)}</h2>")
        parts += [_block(block) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(parts)
