"""The report's building blocks: a :class:`Section` is a heading and a list of blocks.

A section function returns one; the renderers (:mod:`.render_html`,
:mod:`.render_markdown`) turn each kind of block into text and know nothing of what
the sections say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["Block", "Facts", "Fig", "Section", "Table", "Text"]


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class Facts:
    """Label → value lines (the headline)."""

    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """A table; ``empty`` is the sentence shown instead when it has no rows."""

    frame: pd.DataFrame
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class Fig:
    """A figure as PNG bytes, with a one-line caption saying what to look at."""

    name: str
    caption: str
    png: bytes


Block = Text | Facts | Table | Fig


@dataclass(frozen=True)
class Section:
    """A heading and its blocks."""

    heading: str
    blocks: Sequence[Block]
