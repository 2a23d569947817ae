"""The simulator's seeded corpus of Veo tasks: deterministic, lazy, realistic in shape.

Task ``i`` of seed ``s`` is the same on every machine and every run (ids never
depend on the clock; times are offsets before an *anchor*, the moment the corpus
is "now"). Tasks are made in blocks of :data:`BLOCK` with numpy, so a million raw
records stream in seconds (see :func:`iter_raw_texts`, the parser benchmark's input).

The shape follows kie.ai's docs and public captures (``shared/api-facts.md``):

* create times over ``span_days`` (default 20, so ~30 % are past the 14-day limit),
  busier in the Shanghai afternoon; ``pending_share`` created minutes ago, still generating;
* models ``veo3_fast`` (most), ``veo3``, ``veo3_lite``; three generation types; aspect
  ratios 16:9 / 9:16 / Auto; task types generate (most), extend, 1080p, 4k;
* log-normal latencies by model x type (veo3 slower than veo3_fast; generate 1-3 min
  typical, 1080p 1-3 min, 4k 5-10 min);
* failures at a few % to ~10 % with kie.ai's exact codes and messages, some with
  ``successFlag`` 3, more on the older days and on one *bad day*
  (:data:`BAD_DAY` days before the anchor: 3x failures, 1.7x slower);
* ``fallbackFlag`` only on older generate tasks, ``hasAudioList``/``seeds`` in every
  response, ``fullResultUrls`` on extends, ``mediaIds`` (sometimes ``media_ids``) and
  ``imageUrls`` on 4k, ``originUrls`` only when the aspect ratio is not 16:9;
  ``aspectRatio``/``aspect_ratio`` and ``waterMark``/``watermark`` both spelt; a few
  older records with ``resultUrls`` as the string ``'[https://a, https://b]'``.

Families (one video's story; :func:`~._blocks.families` places them, the shares are
constants in ``_vocab.py``). An extend or upgrade is a task of its own whose parent is
named **only in its request**: ``paramJson.taskId`` (the frame's ``parent_task_id``);
record-info has no ``parentTaskId`` field, in kie.ai's answers or here. By task type:

==========  ===========================================  =================================
type        ``paramJson``                                ``response`` once successful
==========  ===========================================  =================================
generate    ``prompt``, ``model`` (veo3 / veo3_fast /    ``resultUrls`` (the clip),
            veo3_lite), ``generationType``, aspect        ``resolution`` 720p or 1080p,
            ratio, ``seeds``, ...; no ``taskId``         ``originUrls`` unless 16:9
extend      ``taskId`` (parent: a generate or an         ``resultUrls`` (the new clip),
            extend), ``prompt``, ``seeds``, ``model``    ``fullResultUrls`` (the stitched
            ``fast`` / ``quality``                       video), ``resolution`` 720p
1080p       ``taskId`` (parent: a generate or an         ``resultUrls``, ``resolution``
            extend), ``index`` (0, sometimes 1)          ``1080p``
4k          ``taskId``, ``index``, as 1080p              ``resolution`` ``4k``,
                                                         ``mediaIds`` (or ``media_ids``),
                                                         ``imageUrls``; no ``fallbackFlag``
==========  ===========================================  =================================

A failed 4K upgrade often says "The 4K version of this video is unavailable. ..." (else
its request reads like a 1080p one). The shape of families, on the default corpus:

* about 19 % of tasks are children and 30 % belong to a family of two or more tasks
  (about 14 % of first videos get an extend or an upgrade; most are never touched);
* a parent is always an earlier, finished, successful generate or extend of the same
  block (upgrades are never parents), and a child is created after its parent completed;
* about a third of children build on an extended video (``CHAIN_SHARE``): extends of
  extends and 1080p/4K upgrades of extended videos; depth (ancestors above a task) goes
  up to 4 (``MAX_DEPTH``: generate -> extend -> extend -> extend -> upgrade), about
  13 % / 4.5 % / 1.6 % / 0.5 % of tasks at depth 1 / 2 / 3 / 4;
* a video is upgraded once per type, except that a failed upgrade is retried, with the
  same parent and a later create time, about 60 % of the time (``RETRIED_SHARE``);
  the other failed upgrades are never retried;
* some children come 1-6 days after their parent (``LATE_SHARE``), so about 3 % of the
  children still within 14 days have a parent past them: record-info answers that parent
  422 "Temporarily supports records within 14 days." (an unknown id is 422 "record is
  null."), and its media is gone (404).

Time formats: ``"iso"`` (``2024-03-20T10:30:00Z``), ``"plain"`` (``2024-03-20 18:30:00``,
wall time in **UTC+8 / Asia/Shanghai**, as in the spec's example), ``"epoch_ms"``
(integer milliseconds) and ``"mixed"`` (each task picks one of the three, deterministically).

>>> from veo_notebook.simulator import corpus
>>> env = next(corpus.iter_envelopes(1, seed=0, time_format="iso"))
>>> env["code"], env["data"]["taskId"].startswith("veo_")
(200, True)
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from . import _blocks
from ._blocks import BAD_DAY, Task, task_id_for
from ._constants import BLOCK, EXPIRY_DAYS, PLAIN_OFFSET_S, TASK_TIME_FORMATS

__all__ = [
    "BAD_DAY",
    "BLOCK",
    "DEFAULT_ANCHOR",
    "EXPIRY_DAYS",
    "TIME_FORMATS",
    "Task",
    "envelope",
    "format_time",
    "iter_envelopes",
    "iter_raw_texts",
    "make_block",
    "task_id_for",
]

#: "now" of the corpus when no anchor is given: 2026-03-20 12:00:00 UTC.
DEFAULT_ANCHOR = float(calendar.timegm((2026, 3, 20, 12, 0, 0)))
TIME_FORMATS = (*TASK_TIME_FORMATS, "mixed")


def format_time(ts: float, fmt: str) -> str | int:
    """Render epoch seconds ``ts`` in one of the API's time shapes.

    >>> format_time(0, "iso"), format_time(0, "plain"), format_time(0, "epoch_ms")
    ('1970-01-01T00:00:00Z', '1970-01-01 08:00:00', 0)
    """
    if fmt == "epoch_ms":
        return round(ts * 1000)
    if fmt == "iso":
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    if fmt == "plain":
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts + PLAIN_OFFSET_S))
    raise ValueError(f"unknown time format {fmt!r}; expected one of {TIME_FORMATS}")


def envelope(task: Task, now: float, time_format: str = "plain") -> dict[str, Any]:
    """The record-info envelope of ``task`` at sim time ``now`` (generating until complete).

    >>> from veo_notebook.simulator.corpus import make_block
    >>> t = make_block(0, 0)[0]
    >>> envelope(t, t.create_ts)["data"]["successFlag"]
    0
    """
    fmt = task.time_format if time_format == "mixed" else time_format
    done = now >= task.complete_ts
    complete = format_time(task.complete_ts, fmt) if done else None
    return _envelope(task, done, format_time(task.create_ts, fmt), complete)


def _envelope(
    task: Task, done: bool, create: str | int, complete: str | int | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "taskId": task.task_id,
        "paramJson": task.param_json,
        "completeTime": complete if done else None,
        "response": task.response if done else None,
        "successFlag": task.final_flag if done else 0,
        "errorCode": task.error_code if done else None,
        "errorMessage": task.error_message if done else None,
        "createTime": create,
    }
    if task.fallback is not None:
        data["fallbackFlag"] = task.fallback
    return {"code": 200, "msg": "success", "data": data}


def _format_many(ts: list[float], fmt: str) -> list[Any]:
    """``format_time`` over many times at once (numpy; identical results)."""
    arr = np.asarray(ts, dtype=np.float64)
    if fmt == "epoch_ms":
        return np.round(arr * 1000).astype(np.int64).tolist()
    secs = np.floor(arr).astype(np.int64) + (PLAIN_OFFSET_S if fmt == "plain" else 0)
    text = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s").tolist()
    if fmt == "iso":
        return [t + "Z" for t in text]
    return [t.replace("T", " ") for t in text]


def _block_envelopes(tasks: list[Task], now: float, time_format: str) -> list[dict[str, Any]]:
    groups: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        groups.setdefault(task.time_format if time_format == "mixed" else time_format, []).append(i)
    times: list[tuple[Any, Any]] = [(None, None)] * len(tasks)
    for fmt, idx in groups.items():
        creates = _format_many([tasks[i].create_ts for i in idx], fmt)
        completes = _format_many([tasks[i].complete_ts for i in idx], fmt)
        for i, c, d in zip(idx, creates, completes, strict=True):
            times[i] = (c, d)
    return [
        _envelope(task, now >= task.complete_ts, c, d)
        for task, (c, d) in zip(tasks, times, strict=True)
    ]


def iter_envelopes(
    n: int,
    seed: int = 0,
    time_format: str = "plain",
    *,
    anchor: float = DEFAULT_ANCHOR,
    span_days: float = 20.0,
    pending_share: float = 0.03,
) -> Iterator[dict[str, Any]]:
    """Yield the envelopes of the first ``n`` tasks as they read at ``anchor`` (no 422s).

    >>> sum(1 for _ in iter_envelopes(10))
    10
    """
    if time_format not in TIME_FORMATS:
        raise ValueError(f"unknown time format {time_format!r}; expected one of {TIME_FORMATS}")
    for block in range(math.ceil(n / BLOCK)):
        tasks = make_block(
            seed, block, anchor=anchor, span_days=span_days, pending_share=pending_share
        )
        yield from _block_envelopes(tasks[: n - block * BLOCK], anchor, time_format)


def iter_raw_texts(
    n: int, seed: int = 0, time_format: str = "plain", **kwargs: Any
) -> Iterator[str]:
    """Yield the compact JSON texts the server would send for the first ``n`` tasks.

    >>> next(iter_raw_texts(1)).startswith('{"code":200')
    True
    """
    for env in iter_envelopes(n, seed, time_format, **kwargs):
        yield orjson.dumps(env).decode()


def make_block(
    seed: int,
    block: int,
    *,
    anchor: float = DEFAULT_ANCHOR,
    span_days: float = 20.0,
    pending_share: float = 0.03,
) -> list[Task]:
    """The :data:`BLOCK` tasks with indices ``block*BLOCK ...``, made deterministically.

    >>> len(make_block(0, 0)), make_block(0, 0)[5] == make_block(0, 0)[5]
    (1024, True)
    """
    return _blocks.make_block(
        seed, block, anchor=anchor, span_days=span_days, pending_share=pending_share
    )
