"""``POST /api/v1/veo/generate``: validate the documented body, make a new task (private)."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson

from . import _vocab as V
from ._constants import KIE_MEDIA_HOST, TASK_TIME_FORMATS
from .corpus import Task, task_id_for

_MODELS = tuple(sorted(m for m, _ in V.MODELS))  # veo3, veo3_fast, veo3_lite
_GTYPES = tuple(g for g, _ in V.GENERATION_TYPES)
_ASPECTS = tuple(a for a, _ in V.ASPECT_RATIOS)
_RESOLUTIONS = ("720p", "1080p", "4k")


class InvalidRequest(ValueError):
    """The body does not follow the generate endpoint's documentation (answered 422)."""


def validate(body: Any) -> dict[str, Any]:
    """Normalised fields of a generate body, or :class:`InvalidRequest` with a clear msg."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt is required.")
    model = body.get("model", "veo3_fast")
    if model not in _MODELS:
        raise InvalidRequest(f"model must be one of {', '.join(_MODELS)}.")
    images = body.get("imageUrls") or []
    if (
        not isinstance(images, list)
        or not all(isinstance(u, str) and u for u in images)
        or len(images) > 3
    ):
        raise InvalidRequest("imageUrls must be a list of 1 to 3 image URLs.")
    gtype = body.get("generationType") or (
        "FIRST_AND_LAST_FRAMES_2_VIDEO" if images else "TEXT_2_VIDEO"
    )
    if gtype not in _GTYPES:
        raise InvalidRequest(f"generationType must be one of {', '.join(_GTYPES)}.")
    if gtype != "TEXT_2_VIDEO" and not images:
        raise InvalidRequest(f"imageUrls is required for {gtype}.")
    if gtype == "REFERENCE_2_VIDEO" and model != "veo3_fast":
        raise InvalidRequest("REFERENCE_2_VIDEO only supports the veo3_fast model.")
    aspect = body.get("aspect_ratio", body.get("aspectRatio", "16:9"))
    if aspect not in _ASPECTS:
        raise InvalidRequest(f"aspect_ratio must be one of {', '.join(_ASPECTS)}.")
    seeds = body.get("seeds")
    if seeds is not None and (not isinstance(seeds, int) or not 10000 <= seeds <= 99999):
        raise InvalidRequest("seeds must be an integer between 10000 and 99999.")
    resolution = body.get("resolution")
    if resolution is not None and resolution not in _RESOLUTIONS:
        raise InvalidRequest(f"resolution must be one of {', '.join(_RESOLUTIONS)}.")
    translate = body.get("enableTranslation", True)
    return {
        "prompt": prompt,
        "model": model,
        "generationType": gtype,
        "aspect": aspect,
        "imageUrls": images,
        "seeds": seeds,
        "resolution": resolution,
        "enableTranslation": bool(translate),
    }


def make_task(
    seed: int, counter: int, body: dict[str, Any], fields: dict[str, Any], now: float
) -> Task:
    """A new generate task created at sim time ``now`` (deterministic given seed and counter)."""
    rng = random.Random(f"{seed}:generate:{counter}")
    task_id = task_id_for(seed, counter, namespace="generate:")
    model, gtype, aspect = fields["model"], fields["generationType"], fields["aspect"]
    median, sigma = V.LATENCY[("generate", model)]
    latency = median * math.exp(sigma * rng.gauss(0.0, 1.0))
    seeds = fields["seeds"] or rng.randint(10000, 99999)
    code: int | None = None
    msg: str | None = ""
    flag = 1
    if not fields["enableTranslation"] and not fields["prompt"].isascii():
        (code, msg), flag, latency = V.LANGUAGE_ERROR, 2, 2.0 + 4.0 * rng.random()
    elif rng.random() < V.FAILURE_RATE[model]:
        table = [f for f in V.FAILURES if not f[3] or gtype != "TEXT_2_VIDEO"]
        code, msg, _, _, fail_median = rng.choices(table, weights=[f[2] for f in table])[0]
        latency = min(fail_median * math.exp(0.4 * rng.gauss(0.0, 1.0)), 900.0)
        flag = 3 if code in (500, 501) and rng.random() < V.GENERATION_FAILED_SHARE else 2
    create = round(now, 3)
    complete = round(now + max(latency, 1.0), 3)
    response: dict[str, Any] | None = None
    if flag == 1:
        base = f"{KIE_MEDIA_HOST}/v/{task_id[4:]}_{int(complete)}"
        response = {
            "taskId": task_id,
            "resultUrls": [f"{base}_0.mp4"],
            "originUrls": None if aspect == "16:9" else [f"{base}_origin.mp4"],
            "resolution": fields["resolution"] or "720p",
            "hasAudioList": [True],
            "seeds": [seeds],
        }
    return Task(
        task_id=task_id,
        position=-1 - counter,
        task_type="generate",
        model=model,
        generation_type=gtype,
        aspect_ratio=aspect,
        parent_id=None,
        create_ts=create,
        complete_ts=complete,
        final_flag=flag,
        error_code=code,
        error_message=msg,
        param_json=orjson.dumps(body).decode(),
        response=response,
        fallback=None,
        time_format=TASK_TIME_FORMATS[counter % len(TASK_TIME_FORMATS)],
    )
