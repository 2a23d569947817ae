"""Task ids in: a list (deduplicated, blanks dropped), a text file, a CSV, or stdin.

>>> unique_ids(["b", "", None, "a", "b", 7])
['b', 'a', '7']
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ..errors import InputError

__all__ = ["read_task_ids", "unique_ids"]

_ID_COLUMNS = ("taskId", "task_id")


def unique_ids(task_ids: Iterable[Any]) -> list[str]:
    """Unique ids in first-seen order: blank/None/NaN dropped, ints made str, rest kept exactly."""
    if isinstance(task_ids, (str, bytes)):
        raise InputError("task_ids must be a list of ids, not one string (wrap it: [task_id])")
    seen: dict[str, None] = {}
    for x in task_ids:
        if x is None or (isinstance(x, float) and math.isnan(x)) or type(x).__name__ == "NAType":
            continue
        if isinstance(x, str):
            if not x.strip():
                continue
            seen.setdefault(x, None)
        elif isinstance(x, int) and not isinstance(x, bool):
            seen.setdefault(str(x), None)
        else:
            raise InputError(f"a task id must be a str (or an int), got {type(x).__name__}: {x!r}")
    return list(seen)


def read_task_ids(source: str | os.PathLike[str] | IO[str]) -> list[str]:
    """Read task ids from a text file (one per line), a CSV, a file object, or ``"-"`` (stdin).

    A source whose first non-blank line holds a comma, tab or semicolon is read as a CSV
    with a ``taskId`` or ``task_id`` column. Lines are stripped of surrounding whitespace;
    blank lines and blank cells are dropped; duplicates are kept (``fetch_records``
    drops them).

    Raises
    ------
    InputError
        A CSV without a ``taskId``/``task_id`` column, or a file that cannot be read.

    >>> import io
    >>> read_task_ids(io.StringIO("taskId,model\\nt1,veo3\\n\\nt2,veo3_fast\\n"))
    ['t1', 't2']
    """
    if isinstance(source, str) and source == "-":
        return _parse_ids(sys.stdin.read(), "<stdin>")
    if isinstance(source, (str, os.PathLike)):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read task ids from {os.fspath(source)!r}: {exc}") from exc
        return _parse_ids(text, os.fspath(source))
    text = source.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return _parse_ids(text.lstrip("\ufeff"), getattr(source, "name", "<file>"))


def _parse_ids(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not any(sep in first for sep in (",", "\t", ";")):
        return [s for s in (ln.strip() for ln in lines) if s]
    try:
        dialect = csv.Sniffer().sniff(first, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or [])]
    col = next((reader.fieldnames[i] for i, h in enumerate(header) if h in _ID_COLUMNS), None)  # type: ignore[index]
    if col is None:
        raise InputError(
            f"{name}: a CSV needs a taskId or task_id column; its header is {header!r}"
        )
    return [v.strip() for row in reader if (v := row.get(col)) and v.strip()]
