"""Task ids in: a list (deduplicated, blanks dropped), a text file, a CSV, a Parquet or
Arrow file, or stdin.

A task id read from a file is a token (:func:`is_task_id`: letters, digits, ``_``, ``-``
and ``.``; kie.ai publishes no stricter shape: 32 hex characters in practice,
``veo_task_…`` in its docs). A file with any other line (a space inside, Markdown,
prose) is refused whole, naming the first offending line, before anything is sent.

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

__all__ = ["TASK_ID_PATTERN", "IdsRead", "is_task_id", "read_ids", "read_task_ids", "unique_ids"]

log = logging.getLogger(__name__)

#: A CSV column holding task ids: its name, lowercased with ``_``, ``-`` and spaces
#: removed, is this (``taskId``, ``task_id``, ``TaskID``, ``taskid``, ``Task ID`` ...).
_ID_COLUMN_KEY = "taskid"
_ID_COLUMN_NAMES = "taskId or task_id, in any case: TaskID, taskid ..."
#: What a task id is (the one rule): a token of letters, digits, ``_``, ``-`` and ``.``.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
_TOKEN_WORDS = "letters, digits, _ - . only"
_SHOWN_CHARS = 60  # an offending line is quoted up to this many characters
#: The first bytes of the binary files read through their task id column.
_PARQUET_MAGIC = b"PAR1"
_ARROW_MAGIC = b"ARROW1"
_ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"


def is_task_id(text: str) -> bool:
    """Whether ``text`` is a task id (:data:`TASK_ID_PATTERN`).

    >>> is_task_id("4c9a31a5bb61db65d10f1210d78cc08a"), is_task_id("# veo-notebook")
    (True, False)
    """
    return TASK_ID_PATTERN.fullmatch(text) is not None


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
    ``_``/``-``/space ignored); a Parquet or Arrow file (a frame written by
    :func:`~veo_notebook.to_parquet`, say) through the same column. Lines are stripped of
    surrounding whitespace; blank lines and blank cells are dropped; duplicates are kept
    (``fetch_records`` drops them).

    Raises
    ------
    InputError
        A line or cell that is not a task id (:func:`is_task_id`; the message names the
        source and the line), a CSV or table without a task id column, a source that
        holds no id, or a file that cannot be read.

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
            data = Path(source).read_bytes()
        except IsADirectoryError:
            raise InputError(f"{name} is a folder, not a file of task ids") from None
        except FileNotFoundError:
            raise InputError(f"no file of task ids at {name}") from None
        except OSError as exc:
            raise InputError(f"cannot read task ids from {name!r}: {exc}") from exc
        if data.startswith((_PARQUET_MAGIC, _ARROW_MAGIC, _ARROW_STREAM_MAGIC)):
            return _table_ids(Path(source), data, name)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(
                f"{name} is not a text file of task ids (nor CSV, Parquet or Arrow): give one "
                "id a line"
            ) from None
        return _parse_ids(text, name)
    text = source.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return _parse_ids(text.lstrip("\ufeff"), getattr(source, "name", "<file>"))


def _is_id_column(name: str) -> bool:
    return re.sub(r"[\s_-]", "", name).lower() == _ID_COLUMN_KEY


def _refuse(name: str, where: str, value: str) -> InputError:
    shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
    return InputError(
        f"{name}, {where}: {shown!r} is not a task id ({_TOKEN_WORDS}); nothing was sent"
    )


def _parse_ids(text: str, name: str) -> IdsRead:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not any(sep in first for sep in (",", "\t", ";")):
        numbered = [(i, s) for i, s in enumerate((ln.strip() for ln in lines), 1) if s]
        column: str | None = None
        if numbered and _is_id_column(numbered[0][1]):  # a one-column CSV: its header
            column = numbered.pop(0)[1]
        for line_no, value in numbered:
            if not is_task_id(value):
                raise _refuse(name, f"line {line_no}", value)
        return _checked(IdsRead([v for _, v in numbered], name, column))
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
    ids = []
    for row in reader:
        value = (row.get(col) or "").strip()
        if value and not is_task_id(value):
            raise _refuse(name, f"line {reader.line_num}, column {col.strip()!r}", value)
        if value:
            ids.append(value)
    log.info("%s: task ids from column %r", name, col.strip())
    return _checked(IdsRead(ids, name, col.strip()))


def _table_ids(path: Path, data: bytes, name: str) -> IdsRead:
    """The task id column of a Parquet or Arrow (IPC file or stream) file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if data.startswith(_PARQUET_MAGIC):
            fields = pq.read_schema(path).names
            col = next((f for f in fields if _is_id_column(f)), None)
            values = pq.read_table(path, columns=[col]).column(0) if col else None
        else:
            reader = (pa.ipc.open_file if data.startswith(_ARROW_MAGIC) else pa.ipc.open_stream)(
                pa.BufferReader(data)
            )
            table = reader.read_all()
            fields = table.column_names
            col = next((f for f in fields if _is_id_column(f)), None)
            values = table.column(col) if col else None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet or Arrow file ({exc})") from exc
    if col is None or values is None:
        raise InputError(
            f"{name}: a table of task ids needs a task id column ({_ID_COLUMN_NAMES}); "
            f"its columns are {fields[:10]!r}"
        )
    ids = []
    for row, value in enumerate(values.to_pylist(), 1):
        text = "" if value is None else str(value).strip()
        if text and not is_task_id(text):
            raise _refuse(name, f"row {row}, column {col!r}", text)
        if text:
            ids.append(text)
    return _checked(IdsRead(ids, name, col))


def _checked(read: IdsRead) -> IdsRead:
    if not read.ids:
        where = f" (column {read.column!r})" if read.column else ""
        raise InputError(f"{read.source} holds no task id{where}: nothing to fetch")
    return read
