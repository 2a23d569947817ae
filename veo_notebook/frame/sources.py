"""The column-source table: where in a record each frame column is read from (private).

:data:`SOURCES` has one row per (column, JSON path), in priority order: a column takes the
first of its paths that holds a value. Everything the reader needs about a record's keys
is derived from this one table, never copied by hand:

* the reader's Arrow schemas, :data:`ENVELOPE_SCHEMA` (``{code, msg, data}``) and
  :data:`PARAM_SCHEMA` (the paramJson object);
* :data:`PARAM_ALIASES`, rarer spellings of paramJson keys folded into the schema's name;
* the type variants: a value that may come with a second type (``createTime`` as an
  epoch number, ``resultUrls`` as a string ``'[a, b]'``) gets a second field,
  ``createTime__num`` / ``resultUrls__str``, and :func:`variant_keys` gives the keys the
  reader renames so that one explicit schema reads both shapes;
* :data:`COLUMN_SOURCES` (what ``_build`` reads into each column) and
  :data:`EXTRA_SOURCES` (keys read only because a rule looks at them; they stay in
  ``extra``, where the record had them).

Columns computed by rules rather than read from a path (status, task_type, video_url …)
are listed in ``_build.DERIVED``; a test checks that the two cover ``schema.COLUMNS``.

To add a column read from paramJson (or from ``data``): one row here, one
:class:`~veo_notebook.schema.Column` in ``schema.COLUMNS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "COLUMN_SOURCES",
    "ENVELOPE_SCHEMA",
    "EXTRA_SOURCES",
    "FIRST",
    "NUM_SUFFIX",
    "PARAM",
    "PARAM_ALIASES",
    "PARAM_SCHEMA",
    "SOURCES",
    "STR_SUFFIX",
    "TIME",
    "URLS",
    "VALUE",
    "Source",
    "plain_name",
    "variant_keys",
]

_S = pa.string()
_I = pa.int64()
_F = pa.float64()
_B = pa.bool_()
_LS = pa.list_(pa.string())

#: how a column takes a path's value
VALUE = "value"  # as read
FIRST = "first"  # the first item of a list (the variant: a bare item)
URLS = "urls"  # a list of urls (the variant: a string '[a, b]' or '["a"]', split)
TIME = "time"  # a time: string (ISO, plain) or, as the variant, epoch s/ms (see _time)

#: the first segment of the paths read from the paramJson text (a JSON string in ``data``)
PARAM = "paramJson"
#: field-name suffixes of a value's second type: a number, or a string
NUM_SUFFIX = "__num"
STR_SUFFIX = "__str"


@dataclass(frozen=True)
class Source:
    """One path a column is read from.

    ``path`` is dotted from the envelope (``data.response.resultUrls``), or from the
    paramJson object (``paramJson.aspect_ratio``). ``variant`` is the second type the
    value may have; ``aliases`` (paramJson's top-level keys only) are rarer spellings of
    the same key. ``column`` is None for a key read only for a rule: it is kept in
    ``extra`` too (unless it is the envelope's own ``code``/``msg``).
    """

    column: str | None
    path: str
    type: pa.DataType
    variant: pa.DataType | None = None
    take: str = VALUE
    aliases: tuple[str, ...] = ()

    @property
    def variant_path(self) -> str | None:
        """The path of the variant's field (``data.createTime__num``), if there is one."""
        if self.variant is None:
            return None
        suffix = STR_SUFFIX if pa.types.is_string(self.variant) else NUM_SUFFIX
        return self.path + suffix


# fmt: off
SOURCES: tuple[Source, ...] = (
    # the envelope, for the fetch-error rule
    Source(None, "code", _I),
    Source(None, "msg", _S),
    # identity
    Source("task_id", "data.taskId", _S),
    Source("task_id", "data.response.taskId", _S),
    # the outcome
    Source("success_flag", "data.successFlag", _I),
    Source("error_code", "data.errorCode", _I),
    Source("error_message", "data.errorMessage", _S),
    Source("create_time", "data.createTime", _S, _F, TIME),
    Source("complete_time", "data.completeTime", _S, _F, TIME),
    Source("fallback", "data.fallbackFlag", _B),
    Source("cost_time", "data.costTime", _F),
    Source("credits_consumed", "data.creditsConsumed", _F),
    # the request
    Source("model", "paramJson.model", _S),
    Source("prompt", "paramJson.prompt", _S),
    Source("aspect_ratio", "paramJson.aspect_ratio", _S),
    Source("aspect_ratio", "paramJson.aspectRatio", _S),
    Source("generation_type", "paramJson.generationType", _S, aliases=("generation_type",)),
    Source("duration", "paramJson.duration", _I),
    Source("resolution", "data.response.resolution", _S),
    Source("resolution", "paramJson.resolution", _S),
    Source("parent_task_id", "paramJson.taskId", _S, aliases=("task_id",)),
    Source(None, "paramJson.index", _I),  # which video of the parent: tells a 1080p upgrade
    # the answer
    Source("result_urls", "data.response.resultUrls", _LS, _S, URLS),
    Source("origin_urls", "data.response.originUrls", _LS, _S, URLS),
    Source("full_result_urls", "data.response.fullResultUrls", _LS, _S, URLS),
    Source("has_audio", "data.response.hasAudioList", pa.list_(_B), take=FIRST),
    Source("media_ids", "data.response.mediaIds", _LS),
    Source("media_ids", "data.response.media_ids", _LS),
    # 4K answers' images: not a column, read so that such answers stay on the fast path
    Source(None, "data.response.imageUrls", _LS),
    # the rest of the request
    Source("watermark", "paramJson.watermark", _S, aliases=("water_mark",)),
    Source("watermark", "paramJson.waterMark", _S),
    Source("callback_url", "paramJson.callBackUrl", _S,
           aliases=("callbackUrl", "callback_url", "call_back_url")),
    Source("image_urls", "paramJson.imageUrls", _LS, _S, URLS, aliases=("image_urls",)),
    Source("seeds", "paramJson.seeds", _I),
    Source("seeds", "data.response.seeds", pa.list_(_I), _I, FIRST),
    Source("enable_translation", "paramJson.enableTranslation", _B,
           aliases=("enable_translation",)),
    # the request text itself, verbatim
    Source("param_json", "data.paramJson", _S),
)
# fmt: on


def _tree(sources: Iterable[Source], drop: int) -> dict[str, Any]:
    """Nested ``{name: type or {…}}`` of the sources' paths (first ``drop`` segments cut)."""
    tree: dict[str, Any] = {}
    for s in sources:
        *parents, leaf = s.path.split(".")[drop:]
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = s.type
        if s.variant_path is not None:
            node[s.variant_path.rsplit(".", 1)[-1]] = s.variant
    return tree


def _fields(tree: dict[str, Any]) -> list[pa.Field]:
    return [
        pa.field(k, pa.struct(_fields(v)) if isinstance(v, dict) else v) for k, v in tree.items()
    ]


def _check(sources: tuple[Source, ...]) -> None:
    paths = [s.path for s in sources]
    if len(set(paths)) != len(paths):
        raise ValueError("frame.sources: a path is listed twice")
    for s in sources:
        if s.aliases and not (s.path.startswith(PARAM + ".") and s.path.count(".") == 1):
            raise ValueError(f"frame.sources: aliases only for paramJson's own keys ({s.path})")
        if s.take in (TIME, URLS) and s.variant is None:
            raise ValueError(f"frame.sources: {s.path} needs its variant type")


_check(SOURCES)
_PARAMS = [s for s in SOURCES if s.path.startswith(PARAM + ".")]

#: ``{code, msg, data}`` as the reader reads each answer
ENVELOPE_SCHEMA = pa.schema(_fields(_tree((s for s in SOURCES if s not in _PARAMS), 0)))
#: the paramJson object as the reader reads it
PARAM_SCHEMA = pa.schema(_fields(_tree(_PARAMS, 1)))
#: rarer spelling of a paramJson key → the schema's name (the first spelling present wins)
PARAM_ALIASES: dict[str, str] = {a: s.path.split(".")[1] for s in _PARAMS for a in s.aliases}
#: column → its sources, in priority order
COLUMN_SOURCES: dict[str, tuple[Source, ...]] = {}
for _s in SOURCES:
    if _s.column is not None:
        COLUMN_SOURCES[_s.column] = (*COLUMN_SOURCES.get(_s.column, ()), _s)
#: keys read for a rule only: kept in ``extra`` at their path
EXTRA_SOURCES: tuple[Source, ...] = tuple(
    s for s in SOURCES if s.column is None and s.path.split(".")[0] in ("data", PARAM)
)


def plain_name(name: str) -> str:
    """A field's key as the record spells it (``createTime__num`` → ``createTime``)."""
    for suffix in (NUM_SUFFIX, STR_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def variant_keys(schema: pa.Schema) -> tuple[frozenset[str], frozenset[str]]:
    """Keys of ``schema`` (any depth) with a number variant, and those with a string one."""
    num: set[str] = set()
    text: set[str] = set()

    def walk(fields: Iterable[pa.Field]) -> None:
        for f in fields:
            if f.name.endswith(NUM_SUFFIX):
                num.add(plain_name(f.name))
            elif f.name.endswith(STR_SUFFIX):
                text.add(plain_name(f.name))
            if pa.types.is_struct(f.type):
                walk(f.type)

    walk(schema)
    return frozenset(num), frozenset(text)
