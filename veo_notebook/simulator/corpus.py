"""The simulator's seeded corpus of Veo tasks: deterministic, lazy, realistic in shape.

Task ``i`` of seed ``s`` is the same on every machine and every run (ids never
depend on the clock; times are offsets before an *anchor*, the moment the corpus
is "now"). Tasks are made in blocks of :data:`BLOCK` with numpy, so a million raw
records stream in seconds (see :func:`iter_raw_texts`, the parser benchmark's input).

The shape follows kie.ai's docs and public captures (``shared/api-facts.md``):

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
import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from . import _vocab as V

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

BLOCK = 1024
#: "now" of the corpus when no anchor is given: 2026-03-20 12:00:00 UTC.
DEFAULT_ANCHOR = float(calendar.timegm((2026, 3, 20, 12, 0, 0)))
TIME_FORMATS = ("iso", "plain", "epoch_ms", "mixed")
EXPIRY_DAYS = 14
BAD_DAY = 5  # the day [5, 6) days before the anchor has elevated failures and latency
_DAY = 86400.0
_PLAIN_OFFSET = 8 * 3600  # plain times are UTC+8 (Asia/Shanghai)
_URL = "https://tempfile.aiquickdraw.com"


@dataclass(frozen=True, slots=True)
class Task:
    """One task of the corpus: what it is, and what it answers once complete."""

    task_id: str
    index: int
    task_type: str  # generate / extend / 1080p / 4k
    model: str  # veo3 / veo3_fast / veo3_lite (extend: fast / quality; upgrades: "")
    generation_type: str | None
    aspect_ratio: str | None
    parent_id: str | None
    create_ts: float  # epoch seconds (ms precision)
    complete_ts: float
    final_flag: int  # successFlag once complete: 1, 2 or 3
    error_code: int | None
    error_message: str | None
    param_json: str
    response: dict[str, Any] | None
    fallback: bool | None  # None: no fallbackFlag key
    time_format: str  # the format this task uses under "mixed"

    @property
    def latency_s(self) -> float:
        """Seconds from creation to completion."""
        return self.complete_ts - self.create_ts


def task_id_for(seed: int, index: int, *, namespace: str = "") -> str:
    """The deterministic id of task ``index`` (``veo_`` + 24 hex digits).

    >>> task_id_for(0, 0) == task_id_for(0, 0) != task_id_for(1, 0)
    True
    """
    digest = hashlib.blake2b(f"{seed}:{namespace}{index}".encode(), digest_size=12)
    return "veo_" + digest.hexdigest()


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
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts + _PLAIN_OFFSET))
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
    data: dict[str, Any] = {
        "taskId": task.task_id,
        "paramJson": task.param_json,
        "completeTime": format_time(task.complete_ts, fmt) if done else None,
        "response": task.response if done else None,
        "successFlag": task.final_flag if done else 0,
        "errorCode": task.error_code if done else None,
        "errorMessage": task.error_message if done else None,
        "createTime": format_time(task.create_ts, fmt),
    }
    if task.fallback is not None:
        data["fallbackFlag"] = task.fallback
    return {"code": 200, "msg": "success", "data": data}


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
        for task in tasks[: n - block * BLOCK]:
            yield envelope(task, anchor, time_format)


def iter_raw_texts(
    n: int, seed: int = 0, time_format: str = "plain", **kwargs: Any
) -> Iterator[str]:
    """Yield the compact JSON texts the server would send for the first ``n`` tasks.

    >>> next(iter_raw_texts(1)).startswith('{"code":200')
    True
    """
    for env in iter_envelopes(n, seed, time_format, **kwargs):
        yield orjson.dumps(env).decode()


# --- making a block -------------------------------------------------------------------
def _choose(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> list[str]:
    values = [v for v, _ in table]
    cum = np.cumsum([w for _, w in table])
    idx = np.searchsorted(cum / cum[-1], rng.random(n), side="right")
    return [values[i] for i in idx]


_FAIL_CUM_ALL = np.cumsum([f[2] for f in V.FAILURES])
_FAIL_TEXT = [f for f in V.FAILURES if not f[3]]
_FAIL_CUM_TEXT = np.cumsum([f[2] for f in _FAIL_TEXT])


def _pick_failure(u: float, image_based: bool) -> tuple[int, str, float]:
    table, cum = (V.FAILURES, _FAIL_CUM_ALL) if image_based else (_FAIL_TEXT, _FAIL_CUM_TEXT)
    i = min(int(np.searchsorted(cum / cum[-1], u, side="right")), len(table) - 1)
    code, msg, _, _, median = table[i]
    return code, msg, median


def _url(kind: str, task_id: str, ts: float, k: int = 0, ext: str = "mp4") -> str:
    return f"{_URL}/{kind}/{task_id[4:]}_{int(ts)}_{k}.{ext}"


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
    rng = np.random.default_rng([seed, block, 0x5EED])
    n = BLOCK
    span = span_days * _DAY
    types = _choose(rng, V.TASK_TYPES, n)
    models = _choose(rng, V.MODELS, n)
    gtypes = _choose(rng, V.GENERATION_TYPES, n)
    aspects = _choose(rng, V.ASPECT_RATIOS, n)
    u = rng.random((n, 14)).tolist()
    z = rng.standard_normal((n, 2)).tolist()
    ages = (rng.random(n) * span).tolist()
    words = rng.integers(0, 1 << 30, (n, 5)).tolist()
    parents: list[Task] = []
    out: list[Task] = []
    for i in range(n):
        index = block * n + i
        ui, zi, w = u[i], z[i], words[i]
        task_id = task_id_for(seed, index)
        pending = ui[0] < pending_share
        ttype = "generate" if pending or not parents else types[i]
        model, gtype, aspect = models[i], gtypes[i], aspects[i]
        if gtype == "REFERENCE_2_VIDEO":
            model = "veo3_fast"
        parent: Task | None = None
        if ttype == "generate":
            create = anchor - (10.0 + ui[1] * 230.0 if pending else ages[i])
        else:
            parent = parents[w[0] % len(parents)]
            model = ("quality" if model == "veo3" else "fast") if ttype == "extend" else ""
            gtype = aspect = None
            delay = 60.0 * math.exp(1.5 + 1.2 * zi[1])
            create = max(parent.complete_ts + 1.0, min(parent.complete_ts + delay, anchor - 30.0))
        create = round(create, 3)
        age = anchor - create
        bad_day = BAD_DAY * _DAY <= age < (BAD_DAY + 1) * _DAY
        fmt = ("plain", "iso", "epoch_ms")[w[1] % 3]

        # what happens to it
        median, sigma = V.LATENCY[(ttype, model if ttype in ("generate", "extend") else "")]
        latency = median * math.exp(sigma * zi[0]) * (1.7 if bad_day else 1.0)
        p_fail = V.FAILURE_RATE.get(model, 0.05) * V.TYPE_FAILURE_SCALE[ttype]
        p_fail *= (0.75 + 0.5 * min(age / span, 1.0)) * (3.0 if bad_day else 1.0)
        non_english = ttype == "generate" and ui[2] < V.NON_ENGLISH_SHARE
        code: int | None = None
        msg: str | None = "" if ui[3] < 0.7 else None
        flag = 1
        if non_english:
            code, msg = V.LANGUAGE_ERROR
            flag, latency = 2, 2.0 + 4.0 * ui[4]
        elif ui[5] < p_fail:
            if ttype == "4k" and ui[6] < 0.6:
                (code, msg), fail_median = V.K4_UNAVAILABLE, 20.0
            else:
                image_based = gtype in ("FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
                code, msg, fail_median = _pick_failure(ui[6], image_based)
            latency = fail_median * math.exp(0.4 * zi[1])
            flag = 3 if code in (500, 501) and ui[7] < V.GENERATION_FAILED_SHARE else 2
        if pending:
            latency = max(latency, (anchor - create) + 20.0 + 280.0 * ui[8])
        complete = round(create + max(latency, 1.0), 3)

        # the request, as paramJson
        seeds = 10000 + w[2] % 90000
        wm_key = "waterMark" if ui[9] < 0.7 else "watermark"
        callback = "https://example.com/api/veo-callback" if ui[10] < 0.4 else None
        params: dict[str, Any]
        if ttype == "generate":
            if non_english:
                prompt = V.NON_ENGLISH_PROMPTS[w[3] % len(V.NON_ENGLISH_PROMPTS)]
            else:
                subject = V.SUBJECTS[w[3] % len(V.SUBJECTS)]
                action = V.ACTIONS[w[4] % len(V.ACTIONS)]
                setting = V.SETTINGS[(w[3] >> 8) % len(V.SETTINGS)]
                prompt = f"{subject} {action} {setting}, {V.STYLES[(w[4] >> 8) % len(V.STYLES)]}."
            old = age > 7 * _DAY
            aspect_key = (
                "aspectRatio" if (old and ui[11] < 0.8) or ui[11] < 0.25 else "aspect_ratio"
            )
            params = {"prompt": prompt, "model": model, "generationType": gtype, aspect_key: aspect}
            if gtype != "TEXT_2_VIDEO":
                k = 2 if gtype == "FIRST_AND_LAST_FRAMES_2_VIDEO" else 1 + w[2] % 3
                params["imageUrls"] = [
                    f"https://cdn.example.com/img/{task_id[4:12]}_{j}.jpg" for j in range(k)
                ]
            params["seeds"] = seeds
            params[wm_key] = V.WATERMARKS[w[0] % len(V.WATERMARKS)]
            params["enableTranslation"] = not non_english
            if age < 5 * _DAY:
                params["resolution"] = "1080p" if aspect == "16:9" and ui[12] < 0.35 else "720p"
        elif ttype == "extend":
            assert parent is not None
            prompt = V.EXTEND_PROMPTS[w[3] % len(V.EXTEND_PROMPTS)]
            params = {"taskId": parent.task_id, "prompt": prompt, "seeds": seeds, "model": model}
            params[wm_key] = V.WATERMARKS[w[0] % len(V.WATERMARKS)]
        else:
            assert parent is not None
            params = {"taskId": parent.task_id, "index": 0 if ui[12] < 0.9 else 1}
        if callback:
            params["callBackUrl"] = callback

        # the answer, once complete
        fallback: bool | None = None
        if ttype == "generate" and age > 9 * _DAY:
            fallback = ui[13] < 0.12
        response: dict[str, Any] | None = None
        if flag == 1:
            video = _url("v", task_id, complete)
            response = {"taskId": task_id, "resultUrls": [video], "originUrls": None}
            if ttype == "generate":
                res = params.get("resolution") or (
                    "1080p" if aspect == "16:9" and not fallback and ui[12] < 0.5 else "720p"
                )
                if aspect != "16:9":
                    response["originUrls"] = [_url("o", task_id, complete)]
                if age > 10 * _DAY and ui[12] > 0.94:  # a very old format: a string, not a list
                    response["resultUrls"] = f"[{video}, {_url('v', task_id, complete, 1)}]"
            elif ttype == "extend":
                res = "720p"
                response["fullResultUrls"] = [_url("full", task_id, complete)]
            elif ttype == "1080p":
                res = "1080p"
            else:
                res = "4k"
                media_key = "mediaIds" if ui[13] < 0.75 else "media_ids"
                response[media_key] = [hashlib.blake2b(task_id.encode(), digest_size=8).hexdigest()]
                response["imageUrls"] = [_url("img", task_id, complete, ext="jpg")]
            response["resolution"] = res
            response["hasAudioList"] = [ui[9] > 0.05]
            response["seeds"] = [seeds]
        task = Task(
            task_id=task_id,
            index=index,
            task_type=ttype,
            model=model,
            generation_type=gtype,
            aspect_ratio=aspect,
            parent_id=parent.task_id if parent else None,
            create_ts=create,
            complete_ts=complete,
            final_flag=flag,
            error_code=code,
            error_message=msg,
            param_json=orjson.dumps(params).decode(),
            response=response,
            fallback=fallback,
            time_format=fmt,
        )
        out.append(task)
        if ttype == "generate" and flag == 1 and not pending and complete < anchor - 60.0:
            parents.append(task)
    return out
