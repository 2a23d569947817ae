"""Raw texts → the newline-joined UTF-8 buffers the columnar reader reads (private).

Joining (one chunk at a time, bytes passed through as they are), the framing check that
makes the reader's row count trustworthy, and the renaming of keys whose value has a type
variant (``"createTime": 1773…`` → ``"createTime__num": 1773…``, ``"resultUrls": "[…]"``
→ ``"resultUrls__str": "[…]"``), so that one explicit schema reads both shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .sources import NUM_SUFFIX, STR_SUFFIX, variant_keys


class Variants:
    """The renaming of one schema's type-variant keys (``sources.variant_keys``).

    A number where a string is expected (``"createTime": 1773…``) is renamed to the
    ``__num`` field, a string where a list is expected (``"resultUrls": "[…]"``) to the
    ``__str`` field, so that one explicit schema reads both shapes.
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.num_keys, self.str_keys = variant_keys(schema)
        self._num = _pattern(self.num_keys, rb"(?=[-0-9])")
        self._str = _pattern(self.str_keys, rb'(?=")')

    def __contains__(self, key: object) -> bool:
        return key in self.num_keys or key in self.str_keys

    def rename_all(self, buf: bytes) -> bytes:
        """Rename every key whose value has its variant type."""
        if self._num is not None:
            buf = self._num.sub(rb'"\1' + NUM_SUFFIX.encode() + rb'"\2', buf)
        if self._str is not None:
            buf = self._str.sub(rb'"\1' + STR_SUFFIX.encode() + rb'"\2', buf)
        return buf

    def rename(self, buf: bytes, key: str, *, compact_only: bool = False) -> bytes:
        """Rename one key's variant-typed values; the compact spelling goes by plain replace."""
        k = key.encode()
        if key in self.str_keys:
            parts = buf.split(b'"' + k + b'":"')  # split+join: faster than bytes.replace
            if len(parts) > 1:
                return (b'"' + k + STR_SUFFIX.encode() + b'":"').join(parts)
            if compact_only:
                return buf
            return re.sub(
                rb'"(' + re.escape(k) + rb')"(\s*:\s*)(?=")',
                rb'"\1' + STR_SUFFIX.encode() + rb'"\2',
                buf,
            )
        return re.sub(
            rb'"(' + re.escape(k) + rb')"(\s*:\s*)(?=[-0-9])',
            rb'"\1' + NUM_SUFFIX.encode() + rb'"\2',
            buf,
        )


def _pattern(keys: frozenset[str], lookahead: bytes) -> re.Pattern[bytes] | None:
    if not keys:
        return None
    names = b"|".join(re.escape(k.encode()) for k in sorted(keys))
    return re.compile(rb'"(' + names + rb')"(\s*:\s*)' + lookahead)


@functools.lru_cache(maxsize=8)
def variants_of(schema: pa.Schema) -> Variants:
    """The :class:`Variants` of a schema (built once per schema)."""
    return Variants(schema)


def compact(texts: Sequence[str | bytes | None]) -> tuple[list[str | bytes], np.ndarray]:
    """The non-empty texts, and ``pos`` mapping each one to its input row."""
    lines: list[str | bytes] = []
    pos: list[int] = []
    for i, t in enumerate(texts):
        if t:
            lines.append(t)
            pos.append(i)
    return lines, np.asarray(pos, dtype=np.int64)


def to_bytes(t: str | bytes) -> bytes:
    """UTF-8 bytes of a text (a lone surrogate becomes U+FFFD; bytes-likes are copied)."""
    return t.encode("utf-8", "replace") if isinstance(t, str) else bytes(t)


def join(chunk: list[str | bytes]) -> tuple[bytes, list[Any]]:
    """Newline-joined UTF-8, and the texts as joined (encoded one chunk at a time: the
    input is never copied whole)."""
    if chunk and isinstance(chunk[0], bytes):  # as the store hands them over
        try:
            return b"\n".join(chunk), chunk  # type: ignore[arg-type]
        except TypeError:
            pass
    try:
        parts = [t.encode() for t in chunk]  # type: ignore[union-attr]
    except (AttributeError, UnicodeError):
        parts = [to_bytes(t) for t in chunk]
    return b"\n".join(parts), parts


_OPEN, _CLOSE = ord("{"), ord("}")


def unframed(parts: list[Any], buf: bytes) -> np.ndarray:
    """Positions of the texts that do not start with ``{`` and end with ``}``.

    The reader parses the joined texts as one stream of objects, so only the row count
    tells where a text's object ended. That count can be trusted when every text starts
    with ``{`` and ends with ``}``: such a text cannot run on into the next (a string
    would have to span the newline between them, which JSON forbids, and after a ``}``
    inside a value a ``{`` is never valid), so each holds at least one object, and n
    objects from n texts means one each. Texts that are not so framed (``{"a":`` then
    ``"x"}{}``, or padded with spaces) are read one by one instead.
    """
    lens = np.fromiter(map(len, parts), np.int64, len(parts))
    ends = np.cumsum(lens + 1) - 1  # where the newline after each text is (or the end)
    data = np.frombuffer(buf, np.uint8)
    ok = lens > 0
    first = np.zeros(len(parts), np.uint8)
    last = np.zeros(len(parts), np.uint8)
    first[ok] = data[(ends - lens)[ok]]
    last[ok] = data[ends[ok] - 1]
    return np.flatnonzero((first != _OPEN) | (last != _CLOSE))


def framed_array(part: pa.Array) -> bool:
    """Every non-empty text of a string array starts with ``{`` and ends with ``}``."""
    wide = pa.types.is_large_string(part.type) or pa.types.is_large_binary(part.type)
    offsets = np.frombuffer(part.buffers()[1], dtype=np.int64 if wide else np.int32)[
        part.offset : part.offset + len(part) + 1
    ]
    lens = np.diff(offsets)
    ok = lens > 0
    if part.null_count:
        ok &= np.asarray(part.is_valid())
    if not ok.any():
        return True
    data = np.frombuffer(part.buffers()[2], np.uint8)
    starts = offsets[:-1][ok]
    return bool(((data[starts] == _OPEN) & (data[starts + lens[ok] - 1] == _CLOSE)).all())
