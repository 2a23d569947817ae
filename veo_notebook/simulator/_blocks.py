"""Making one block of corpus tasks: numbers with numpy, then records in one loop (private).

The rules (documented in :mod:`.corpus`): a task is a *generate* task unless it draws
extend/1080p/4k **and** an earlier task of its block can be its parent (a successful,
finished generate task); children start after their parent completed. Latency is
log-normal by model x type; failure odds scale with the model, the task type, the age
(older days worse) and one bad day (3x failures, 1.7x slower).
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import numpy as np
import orjson

from . import _vocab as V

_DAY = 86400.0
_URL = "https://tempfile.aiquickdraw.com"
_TYPES = [t for t, _ in V.TASK_TYPES]  # generate, extend, 1080p, 4k
_MODELS = [m for m, _ in V.MODELS]
_GTYPES = [g for g, _ in V.GENERATION_TYPES]
_ASPECTS = [a for a, _ in V.ASPECT_RATIOS]
_REF, _FAST = _GTYPES.index("REFERENCE_2_VIDEO"), _MODELS.index("veo3_fast")
# per-model generate latency/failure; per-type for children (extend split fast/quality below)
_GEN_MED = np.array([V.LATENCY[("generate", m)][0] for m in _MODELS])
_GEN_SIG = np.array([V.LATENCY[("generate", m)][1] for m in _MODELS])
_GEN_FAIL = np.array([V.FAILURE_RATE[m] for m in _MODELS])
_SCALE = np.array([V.TYPE_FAILURE_SCALE[t] for t in _TYPES])
_FAIL_TEXT = [f for f in V.FAILURES if not f[3]]
_CUM_ALL = (np.cumsum([f[2] for f in V.FAILURES]) / sum(f[2] for f in V.FAILURES)).tolist()
_CUM_TEXT = (np.cumsum([f[2] for f in _FAIL_TEXT]) / sum(f[2] for f in _FAIL_TEXT)).tolist()


class Task(NamedTuple):
    """One task of the corpus: what it is, and what it answers once complete."""

    task_id: str
    position: int  # index in the corpus; negative for tasks made by POST /generate
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


def _choose(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    cum = np.cumsum([w for _, w in table])
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right")


def _pick_failure(u: float, image_based: bool) -> tuple[int, str, float]:
    table, cum = (V.FAILURES, _CUM_ALL) if image_based else (_FAIL_TEXT, _CUM_TEXT)
    i = next((k for k, c in enumerate(cum) if u < c), len(table) - 1)
    code, msg, _, _, median = table[i]
    return code, msg, median


def _diurnal_ages(rng: np.random.Generator, n: int, anchor: float, span: float) -> np.ndarray:
    """Ages (seconds before anchor) over ``span``, busier in the Shanghai afternoon."""
    cand = rng.random(4 * n) * span
    hour = ((anchor - cand + 8 * 3600) % _DAY) / 3600.0
    dist = np.minimum(np.abs(hour - 15.0), 24.0 - np.abs(hour - 15.0))
    keep = rng.random(4 * n) < 0.3 + 0.7 * np.exp(-0.5 * (dist / 4.5) ** 2)
    ages = cand[keep][:n]
    return ages if len(ages) == n else np.concatenate([ages, cand[: n - len(ages)]])


def numbers(
    seed: int, block: int, anchor: float, span: float, pending_share: float
) -> dict[str, Any]:
    """Every numeric draw of a block, vectorised; lists ready for the record loop."""
    n = 1024
    rng = np.random.default_rng([seed, block, 0x5EED])
    tt, mi = _choose(rng, V.TASK_TYPES, n), _choose(rng, V.MODELS, n)
    gi, ai = _choose(rng, V.GENERATION_TYPES, n), _choose(rng, V.ASPECT_RATIOS, n)
    u = rng.random((n, 14))
    z = rng.standard_normal((n, 3))
    ages = _diurnal_ages(rng, n, anchor, span)
    w = rng.integers(0, 1 << 30, (n, 5))
    pending = u[:, 0] < pending_share
    tt[pending] = 0
    mi[gi == _REF] = _FAST

    def badness(create: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        age = anchor - create
        bad = (age >= 5 * _DAY) & (age < 6 * _DAY)
        trend = (0.75 + 0.5 * np.minimum(age / span, 1.0)) * np.where(bad, 3.0, 1.0)
        return age, np.where(bad, 1.7, 1.0), trend

    # every task as if it were a generate task first
    create = anchor - np.where(pending, 10.0 + u[:, 1] * 230.0, ages)
    age, slow, trend = badness(create)
    latency = _GEN_MED[mi] * np.exp(_GEN_SIG[mi] * z[:, 0]) * slow
    is_gen = tt == 0
    non_english = is_gen & (u[:, 2] < V.NON_ENGLISH_SHARE)
    fail = u[:, 5] < _GEN_FAIL[mi] * trend
    eligible = is_gen & ~fail & ~non_english & ~pending & (create + latency < anchor - 60.0)
    before = np.concatenate([[0], np.cumsum(eligible)[:-1]])
    tt[~is_gen & (before == 0)] = 0  # no parent yet: a generate task
    child = tt != 0

    # children: after their parent, own latency and odds
    elig_idx = np.flatnonzero(eligible)
    parent = np.where(
        child,
        elig_idx[np.minimum(w[:, 0] % np.maximum(before, 1), len(elig_idx) - 1)]
        if len(elig_idx)
        else 0,
        -1,
    )
    p_done = (create + latency)[np.maximum(parent, 0)]
    c_create = np.maximum(
        p_done + 1.0, np.minimum(p_done + 60.0 * np.exp(1.5 + 1.2 * z[:, 2]), anchor - 30.0)
    )
    create = np.where(child, c_create, create)
    age, slow, trend = badness(create)
    quality = mi == _MODELS.index("veo3")
    c_key = np.where(tt == 1, np.where(quality, 1, 0), tt)  # 0 extend-fast, 1 extend-quality, 2, 3
    c_med = np.array(
        [
            V.LATENCY[("extend", "fast")][0],
            V.LATENCY[("extend", "quality")][0],
            V.LATENCY[("1080p", "")][0],
            V.LATENCY[("4k", "")][0],
        ]
    )[c_key]
    c_sig = np.array(
        [
            V.LATENCY[("extend", "fast")][1],
            V.LATENCY[("extend", "quality")][1],
            V.LATENCY[("1080p", "")][1],
            V.LATENCY[("4k", "")][1],
        ]
    )[c_key]
    c_rate = np.array([V.FAILURE_RATE["fast"], V.FAILURE_RATE["quality"], 0.05, 0.05])[c_key]
    latency = np.where(child, c_med * np.exp(c_sig * z[:, 0]) * slow, latency)
    p_fail = np.where(child, c_rate, _GEN_FAIL[mi]) * _SCALE[tt] * trend
    fail = ~non_english & (u[:, 5] < p_fail)
    create = np.round(create, 3)
    held = np.where(pending, np.maximum(latency, age + 20.0 + 280.0 * u[:, 8]), latency)
    complete = np.round(create + np.maximum(held, 1.0), 3)  # for tasks that do not fail
    return {
        "complete": complete.tolist(),
        "tt": tt.tolist(),
        "mi": mi.tolist(),
        "gi": gi.tolist(),
        "ai": ai.tolist(),
        "quality": quality.tolist(),
        "u": u.tolist(),
        "z": z.tolist(),
        "w": w.tolist(),
        "pending": pending.tolist(),
        "parent": parent.tolist(),
        "create": create.tolist(),
        "age": age.tolist(),
        "latency": latency.tolist(),
        "non_english": non_english.tolist(),
        "fail": fail.tolist(),
    }


def make_block(
    seed: int,
    block: int,
    *,
    anchor: float,
    span_days: float = 20.0,
    pending_share: float = 0.03,
) -> list[Task]:
    """The 1024 tasks with indices ``block*1024 ...``, made deterministically."""
    span = span_days * _DAY
    num = numbers(seed, block, anchor, span, pending_share)
    ids = [task_id_for(seed, block * 1024 + i) for i in range(1024)]
    n_sub, n_act, n_set, n_sty = len(V.SUBJECTS), len(V.ACTIONS), len(V.SETTINGS), len(V.STYLES)
    out: list[Task] = []
    rows = zip(
        ids,
        num["tt"],
        num["u"],
        num["z"],
        num["w"],
        num["create"],
        num["age"],
        num["latency"],
        num["pending"],
        num["parent"],
        num["complete"],
        num["non_english"],
        num["fail"],
        strict=True,
    )
    for i, (
        task_id,
        ti,
        ui,
        zi,
        w,
        create,
        age,
        latency,
        pending,
        p,
        complete,
        non_en,
        failed,
    ) in enumerate(rows):
        ttype = _TYPES[ti]
        parent_id = ids[p] if p >= 0 else None
        gtype: str | None = _GTYPES[num["gi"][i]]
        aspect: str | None = _ASPECTS[num["ai"][i]]
        model = _MODELS[num["mi"][i]]
        if ttype != "generate":
            model = ("quality" if num["quality"][i] else "fast") if ttype == "extend" else ""
            gtype = aspect = None
        code: int | None = None
        msg: str | None = "" if ui[3] < 0.7 else None
        flag = 1
        if non_en:
            code, msg = V.LANGUAGE_ERROR
            flag, latency = 2, 2.0 + 4.0 * ui[4]
        elif failed:
            if ttype == "4k" and ui[6] < 0.6:
                (code, msg), fail_median = V.K4_UNAVAILABLE, 20.0
            else:
                image_based = gtype in ("FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
                code, msg, fail_median = _pick_failure(ui[6], image_based)
            latency = fail_median * 2.718281828 ** (0.4 * zi[1])
            flag = 3 if code in (500, 501) and ui[7] < V.GENERATION_FAILED_SHARE else 2
        if flag != 1:
            if pending:
                latency = max(latency, age + 20.0 + 280.0 * ui[8])
            complete = round(create + max(latency, 1.0), 3)

        # the request, as paramJson
        seeds = 10000 + w[2] % 90000
        wm_key = "waterMark" if ui[9] < 0.7 else "watermark"
        params: dict[str, Any]
        if ttype == "generate":
            if code == 400 and msg == V.LANGUAGE_ERROR[1]:
                prompt = V.NON_ENGLISH_PROMPTS[w[3] % len(V.NON_ENGLISH_PROMPTS)]
            else:
                prompt = (
                    f"{V.SUBJECTS[w[3] % n_sub]} {V.ACTIONS[w[4] % n_act]} "
                    f"{V.SETTINGS[(w[3] >> 8) % n_set]}, {V.STYLES[(w[4] >> 8) % n_sty]}."
                )
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
            params["enableTranslation"] = not non_en
            if age < 5 * _DAY:
                params["resolution"] = "1080p" if aspect == "16:9" and ui[12] < 0.35 else "720p"
        elif ttype == "extend":
            prompt = V.EXTEND_PROMPTS[w[3] % len(V.EXTEND_PROMPTS)]
            params = {"taskId": parent_id, "prompt": prompt, "seeds": seeds, "model": model}
            params[wm_key] = V.WATERMARKS[w[0] % len(V.WATERMARKS)]
        else:
            params = {"taskId": parent_id, "index": 0 if ui[12] < 0.9 else 1}
        if ui[10] < 0.4:
            params["callBackUrl"] = "https://example.com/api/veo-callback"

        # the answer, once complete
        fallback: bool | None = None
        if ttype == "generate" and age > 9 * _DAY:
            fallback = ui[13] < 0.12
        response: dict[str, Any] | None = None
        if flag == 1:
            stem = f"{task_id[4:]}_{int(complete)}"
            video = f"{_URL}/v/{stem}_0.mp4"
            response = {"taskId": task_id, "resultUrls": [video], "originUrls": None}
            if ttype == "generate":
                res = params.get("resolution") or (
                    "1080p" if aspect == "16:9" and not fallback and ui[12] < 0.5 else "720p"
                )
                if aspect != "16:9":
                    response["originUrls"] = [f"{_URL}/o/{stem}_0.mp4"]
                if age > 10 * _DAY and ui[12] > 0.94:  # a very old format: a string, not a list
                    response["resultUrls"] = f"[{video}, {_URL}/v/{stem}_1.mp4]"
            elif ttype == "extend":
                res = "720p"
                response["fullResultUrls"] = [f"{_URL}/full/{stem}_0.mp4"]
            elif ttype == "1080p":
                res = "1080p"
            else:
                res = "4k"
                media_key = "mediaIds" if ui[13] < 0.75 else "media_ids"
                response[media_key] = [hashlib.blake2b(task_id.encode(), digest_size=8).hexdigest()]
                response["imageUrls"] = [f"{_URL}/img/{stem}_0.jpg"]
            response["resolution"] = res
            response["hasAudioList"] = [ui[9] > 0.05]
            response["seeds"] = [seeds]
        out.append(
            Task(
                task_id,
                block * 1024 + i,
                ttype,
                model,
                gtype,
                aspect,
                parent_id,
                create,
                complete,
                flag,
                code,
                msg,
                orjson.dumps(params).decode(),
                response,
                fallback,
                ("plain", "iso", "epoch_ms")[w[1] % 3],
            )
        )
    return out
