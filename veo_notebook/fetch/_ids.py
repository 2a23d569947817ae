"""Task ids in: a list (deduplicated, blanks dropped), a text file, a CSV, or stdin.

>>> unique_ids(["b", "", None, "a", "b", 7])
['b', 'a', '7']
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, NamedTuple

from ..errors import InputError

__all__ = ["IdsRead", "read_ids", "read_task_ids", "unique_ids"]

log = logging.getLogger(__name__)

#: A CSV column holding task ids: its name, lowercased with ``_``, ``-`` and spaces
#: removed, is this (``taskId``, ``task_id``, ``TaskID``, ``taskid``, ``Task ID`` ...).
_ID_COLUMN_KEY = "taskid"
_ID_COLUMN_NAMES = "taskId or task_id, in any case: TaskID, taskid ..."


class IdsRead(NamedTuple):
    """Ids read from a source, where from, and the CSV column used (None: one id a line)."""

    ids: list[str]
    source: str
    column: str | None


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
    r"""Read task ids from a text file (one per line), a CSV, a file object, or ``"-"`` (stdin).

    A source whose first non-blank line holds a comma, tab or semicolon is read as a CSV
    with a task id column: ``taskId``, ``task_id``, ``TaskID``, ``taskid`` (any case,
    ``_``/``-``/space ignored). Lines are stripped of surrounding whitespace; blank
    lines and blank cells are dropped; duplicates are kept (``fetch_records`` drops them).

    Raises
    ------
    InputError
        A CSV without a task id column, a source that holds no id, or a file that cannot
        be read.

    Examples
    --------
    >>> import io
    >>> read_task_ids(io.StringIO("TaskID,model\nt1,veo3\n\nt2,veo3_fast\n"))
    ['t1', 't2']
    """
    return read_ids(source).ids


def read_ids(source: str | os.PathLike[str] | IO[str]) -> IdsRead:
    r""":func:`read_task_ids`, also saying where the ids came from and which column held them.

    >>> import io
    >>> read_ids(io.StringIO("task_id\nt1\n")).column
    'task_id'
    """
    if isinstance(source, str) and source == "-":
        return _parse_ids(sys.stdin.read(), "<stdin>")
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except IsADirectoryError:
            raise InputError(f"{name} is a folder, not a file of task ids") from None
        except FileNotFoundError:
            raise InputError(f"no file of task ids at {name}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read task ids from {name!r}: {exc}") from exc
        return _parse_ids(text, name)
    text = source.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return _parse_ids(text.lstrip("\ufeff"), getattr(source, "name", "<file>"))


def _is_id_column(name: str) -> bool:
    return re.sub(r"[\s_-]", "", name).lower() == _ID_COLUMN_KEY


def _parse_ids(text: str, name: str) -> IdsRead:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not any(sep in first for sep in (",", "\t", ";")):
        ids = [s for s in (ln.strip() for ln in lines) if s]
        if ids and _is_id_column(ids[0]):  # a one-column CSV: its header is not an id
            column: str | None = ids.pop(0)
        else:
            column = None
        return _checked(IdsRead(ids, name, column))
    try:
        dialect = csv.Sniffer().sniff(first, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = reader.fieldnames or []
    col = next((f for f in fields if _is_id_column(f)), None)
    if col is None:
        header = [h.strip() for h in fields]
        raise InputError(
            f"{name}: a CSV needs a task id column ({_ID_COLUMN_NAMES}); its header is {header!r}"
        )
    ids = [v.strip() for row in reader if (v := row.get(col)) and v.strip()]
    log.info("%s: task ids from column %r", name, col.strip())
    return _checked(IdsRead(ids, name, col.strip()))


def _checked(read: IdsRead) -> IdsRead:
    if not read.ids:
        where = f" (column {read.column!r})" if read.column else ""
        raise InputError(f"{read.source} holds no task id{where}: nothing to fetch")
    return read
