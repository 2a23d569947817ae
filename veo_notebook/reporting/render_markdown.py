"""The Markdown renderer: text and tables inline, each figure a PNG in a folder beside it."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..export import atomic_path
from ._cells import cell, generated
from .blocks import Block, Facts, Fig, Section, Table, Text

__all__ = ["render"]


def _md(value: object) -> str:
    """A value as Markdown text: escaped, no pipe or newline to break a table."""
    return html.escape(cell(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    return "\n".join(lines)


def _block(block: Block, fig_dir: Path) -> list[str]:
    if isinstance(block, Text):
        return [_md(block.text), ""]
    if isinstance(block, Facts):
        return [f"- **{_md(k)}**: {_md(v)}" for k, v in block.rows] + [""]
    if isinstance(block, Table):
        return [_table(block.frame) if len(block.frame) else _md(block.empty), ""]
    assert isinstance(block, Fig)
    fig_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(fig_dir / f"{block.name}.png") as tmp:
        tmp.write_bytes(block.png)
    return [f"![{block.name}]({fig_dir.name}/{block.name}.png)", "", f"*{_md(block.caption)}*", ""]


def render(title: str, sections: list[Section], fig_dir: Path) -> str:
    """The document; figures are written into ``fig_dir`` (whole files only)."""
    parts = [f"# {_md(title)}", "", generated(), ""]
    for section in sections:
        parts += [f"## {_md(section.heading)}", ""]
        for block in section.blocks:
            parts += _block(block, fig_dir)
    return "\n".join(parts) + "\n"
