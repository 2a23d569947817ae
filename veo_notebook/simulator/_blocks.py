"""Making one block of corpus tasks (private): draws, then outcome, request and response.

1. :func:`numbers` makes every random draw of a block at once with numpy and gives each a
   name (:class:`Draw`: ``u_fail``, ``z_latency``, ``w_seeds``, ...); it also places the
   tasks in time and in families, vectorised.
2. For each task, three steps read the draws by name: :func:`outcome` (success or which
   failure, and when it completes), :func:`request` (the ``paramJson``) and
   :func:`response` (what record-info shows once it completed).

The rules (documented in :mod:`.corpus`): a task is a *generate* task unless it draws
extend/1080p/4k **and** an earlier task of its block can be its parent (a successful,
finished generate task); children start after their parent completed. Latency is
log-normal by model x type; failure odds scale with the model, the task type, the age
(older days worse) and one bad day (3x failures, 1.7x slower).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, NamedTuple

import numpy as np
import orjson

from . import _vocab as V
from ._constants import BLOCK, DAY_S, KIE_MEDIA_HOST, TASK_TIME_FORMATS

_DAY = DAY_S
_URL = KIE_MEDIA_HOST
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
#: The day [5, 6) days before the anchor has elevated failures and latency.
BAD_DAY = 5
_PROBES = 8  # videos tried before an upgrade may repeat one (a second 1080p of a video)
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


#: The uniform draws of a task, in the order they are drawn (the order fixes the corpus).
U_NAMES = (
    "u_pending",  # still generating now?
    "u_pending_age",  # how long ago a pending task was created
    "u_non_english",  # a non-English prompt (fails with the language error)
    "u_blank_msg",  # errorMessage "" rather than null on a success
    "u_language_latency",  # how fast the language error comes back
    "u_fail",  # fails at all?
    "u_failure_kind",  # which failure
    "u_flag3",  # a 500/501 failure answered with successFlag 3
    "u_hold",  # how long past now a pending task still runs
    "u_watermark_key_audio",  # waterMark vs watermark spelling; hasAudioList
    "u_callback",  # has a callBackUrl
    "u_aspect_key",  # aspectRatio vs aspect_ratio spelling
    "u_resolution",  # requested / delivered resolution, upgrade index, old string format
    "u_fallback_media_key",  # fallbackFlag of old tasks; mediaIds vs media_ids
)
#: The normal draws: the latency, a failure's latency, a child's delay after its parent.
Z_NAMES = ("z_latency", "z_failure_latency", "z_child_delay")
#: The draws that shape families (their own stream: generate tasks do not depend on them).
F_NAMES = (
    "f_chain",  # a child of an extended video rather than of a generate task
    "f_late",  # a child made days after its parent
    "f_late_days",  # how many days
    "f_retry",  # a failed upgrade retried later
)
#: The integer draws: parent pick and watermark text, time format, seeds and image count,
#: prompt subject and setting (or extend prompt), prompt action and style.
W_NAMES = ("w_parent_watermark", "w_time_format", "w_seeds", "w_prompt_a", "w_prompt_b")


class Draw(NamedTuple):
    """One task's draws and placement, by name (made by :func:`numbers`)."""

    task_type: int
    model: int
    generation_type: int
    aspect: int
    quality: bool  # an extend of the quality tier
    pending: bool
    parent: int  # index in the block, -1: none
    create: float
    complete: float  # if it does not fail
    age: float  # seconds before the anchor
    latency: float
    non_english: bool
    fail: bool
    u_pending: float
    u_pending_age: float
    u_non_english: float
    u_blank_msg: float
    u_language_latency: float
    u_fail: float
    u_failure_kind: float
    u_flag3: float
    u_hold: float
    u_watermark_key_audio: float
    u_callback: float
    u_aspect_key: float
    u_resolution: float
    u_fallback_media_key: float
    z_latency: float
    z_failure_latency: float
    z_child_delay: float
    w_parent_watermark: int
    w_time_format: int
    w_seeds: int
    w_prompt_a: int
    w_prompt_b: int
    f_chain: float
    f_late: float
    f_late_days: float
    f_retry: float


class Outcome(NamedTuple):
    """How a task ends: its successFlag, error code and message, and when it completes."""

    flag: int
    code: int | None
    msg: str | None
    complete: float


def _day_factors(age: float, span: float) -> tuple[float, float]:
    """Latency factor and failure-odds factor of a task ``age`` seconds old: older days
    fail more, and the bad day (:data:`BAD_DAY`) fails 3x and runs 1.7x slower."""
    bad = BAD_DAY * _DAY <= age < (BAD_DAY + 1) * _DAY
    trend = (0.75 + 0.5 * min(age / span, 1.0)) * (3.0 if bad else 1.0)
    return (1.7 if bad else 1.0), trend


def _badness(
    create: np.ndarray, anchor: float, span: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age, latency factor and failure-odds factor of tasks created at ``create``."""
    age = anchor - create
    factors = [_day_factors(a, span) for a in age.tolist()]
    return age, np.array([f[0] for f in factors]), np.array([f[1] for f in factors])


#: Latency median, sigma and failure rate of children, by key: 0 extend-fast,
#: 1 extend-quality, 2 1080p, 3 4k.
_CHILD = [
    (*V.LATENCY[("extend", "fast")], V.FAILURE_RATE["fast"]),
    (*V.LATENCY[("extend", "quality")], V.FAILURE_RATE["quality"]),
    (*V.LATENCY[("1080p", "")], V.UPGRADE_FAILURE_RATE),
    (*V.LATENCY[("4k", "")], V.UPGRADE_FAILURE_RATE),
]
_SCALE_LIST = _SCALE.tolist()


def numbers(seed: int, block: int, anchor: float, span: float, pending_share: float) -> list[Draw]:
    """Every draw of a block, vectorised, each task placed as if it were a generate task
    (:func:`families` then places the extends and upgrades)."""
    n = BLOCK
    rng = np.random.default_rng([seed, block, 0x5EED])
    tt, mi = _choose(rng, V.TASK_TYPES, n), _choose(rng, V.MODELS, n)
    gi, ai = _choose(rng, V.GENERATION_TYPES, n), _choose(rng, V.ASPECT_RATIOS, n)
    u = dict(zip(U_NAMES, rng.random((n, len(U_NAMES))).T, strict=True))
    z = dict(zip(Z_NAMES, rng.standard_normal((n, len(Z_NAMES))).T, strict=True))
    ages = _diurnal_ages(rng, n, anchor, span)
    w = dict(zip(W_NAMES, rng.integers(0, 1 << 30, (n, len(W_NAMES))).T, strict=True))
    # family draws come from their own stream: the draws above (and so every generate
    # task) do not depend on how families are shaped
    frng = np.random.default_rng([seed, block, 0xFA3])
    f = dict(zip(F_NAMES, frng.random((n, len(F_NAMES))).T, strict=True))
    pending = u["u_pending"] < pending_share
    tt[pending] = 0
    mi[gi == _REF] = _FAST
    create = anchor - np.where(pending, 10.0 + u["u_pending_age"] * 230.0, ages)
    age, slow, trend = _badness(create, anchor, span)
    latency = _GEN_MED[mi] * np.exp(_GEN_SIG[mi] * z["z_latency"]) * slow
    non_english = (tt == 0) & (u["u_non_english"] < V.NON_ENGLISH_SHARE)
    fail = ~non_english & (u["u_fail"] < _GEN_FAIL[mi] * trend)
    held = np.where(pending, np.maximum(latency, age + 20.0 + 280.0 * u["u_hold"]), latency)
    columns = {
        "task_type": tt,
        "model": mi,
        "generation_type": gi,
        "aspect": ai,
        "quality": mi == _MODELS.index("veo3"),
        "pending": pending,
        "parent": np.full(n, -1),
        "create": create,
        "complete": np.round(np.round(create, 3) + np.maximum(held, 1.0), 3),
        "age": age,
        "latency": latency,
        "non_english": non_english,
        "fail": fail,
        **u,
        **z,
        **w,
        **f,
    }
    lists = [columns[name].tolist() for name in Draw._fields]
    return [Draw(*row) for row in zip(*lists, strict=True)]


class _Family:
    """The running state of :func:`families`: who can be a parent, what waits for a retry."""

    def __init__(self) -> None:
        self.generates: list[int] = []  # finished successful generate tasks, in index order
        self.extends: list[int] = []  # finished successful extends with room below them
        self.depth: dict[int, int] = {}
        self.parent_of: dict[int, int] = {}
        self.done_at: dict[int, float] = {}  # unrounded completion of possible parents
        self.upgraded: set[tuple[int, int]] = set()  # (parent, upgrade type) already asked
        self.to_retry: dict[int, list[int]] = {2: [], 3: []}  # failed upgrades, by type


def families(draws: list[Draw], anchor: float, span: float) -> list[Draw]:
    """Place the extends and upgrades of a block under their parents (in index order).

    A child's parent is an earlier finished, successful video of the block: a generate
    task, or (share :data:`~._vocab.CHAIN_SHARE`) an extend, so extends of extends and
    upgrades of extended videos occur, down to :data:`~._vocab.MAX_DEPTH`. A failed
    upgrade is retried (share :data:`~._vocab.RETRIED_SHARE`) by the next upgrade of its
    type: same parent, created after the failure. A share of children
    (:data:`~._vocab.LATE_SHARE`) come days after their parent, so some parents are past
    the 14-day limit while their children are not. A task drawn as a child with no parent
    available is a generate task.
    """
    fam = _Family()
    out: list[Draw] = []
    for i, d in enumerate(draws):
        if d.task_type != 0:
            d = _place_child(i, d, fam, anchor, span)
        out.append(d)
        _remember(i, d, fam, anchor)
    return out


def _place_child(i: int, d: Draw, fam: _Family, anchor: float, span: float) -> Draw:
    retry = fam.to_retry.get(d.task_type)
    if retry:  # the retry of an earlier failed upgrade of this type
        failed = retry.pop(0)
        parent, start = fam.parent_of[failed], fam.done_at[failed]
    else:
        parent = _pick_parent(d, fam)
        if parent < 0:
            return d._replace(task_type=0)  # no parent yet: a generate task
        start = fam.done_at[parent]
    delay = 60.0 * math.exp(1.5 + 1.2 * d.z_child_delay)
    if d.f_late < V.LATE_SHARE and start + V.LATE_DAYS[1] * _DAY < anchor - 3600.0:
        lo, hi = V.LATE_DAYS
        delay += (lo + (hi - lo) * d.f_late_days) * _DAY
    create = max(start + 1.0, min(start + delay, anchor - 30.0))
    age = anchor - create
    slow, trend = _day_factors(age, span)
    key = (1 if d.quality else 0) if d.task_type == 1 else d.task_type
    med, sig, rate = _CHILD[key]
    latency = med * math.exp(sig * d.z_latency) * slow
    fail = d.u_fail < rate * _SCALE_LIST[d.task_type] * trend
    create = round(create, 3)
    fam.depth[i] = fam.depth[parent] + 1
    fam.parent_of[i] = parent
    return d._replace(
        parent=parent,
        create=create,
        complete=round(create + max(latency, 1.0), 3),
        age=age,
        latency=latency,
        non_english=False,
        fail=fail,
    )


def _pick_parent(d: Draw, fam: _Family) -> int:
    """An earlier video for ``d`` (-1: none): an extend (share CHAIN_SHARE) or a generate
    task; an upgrade is not asked twice of one video (its retry is placed apart)."""
    pool = fam.extends if d.f_chain < V.CHAIN_SHARE and fam.extends else fam.generates
    if not pool:
        return -1
    k = d.w_parent_watermark % len(pool)
    for probe in range(_PROBES):
        parent = pool[(k + probe) % len(pool)]
        if d.task_type == 1 or (parent, d.task_type) not in fam.upgraded:
            return parent
    return pool[k]


def _remember(i: int, d: Draw, fam: _Family, anchor: float) -> None:
    """Note what task ``i`` offers later tasks: a parent, or a failed upgrade to retry."""
    if d.task_type in (2, 3) and d.parent >= 0:
        fam.upgraded.add((d.parent, d.task_type))
        if d.fail and d.f_retry < V.RETRIED_SHARE:
            fam.done_at[i] = outcome(d, _TYPES[d.task_type], False).complete
            fam.to_retry[d.task_type].append(i)
        return
    done = d.create + d.latency
    if d.fail or d.non_english or d.pending or done >= anchor - 60.0:
        return
    depth = fam.depth.setdefault(i, 0)
    if d.task_type == 0:
        fam.generates.append(i)
    elif depth < V.MAX_DEPTH:
        fam.extends.append(i)
    else:
        return
    fam.done_at[i] = done


def outcome(d: Draw, task_type: str, image_based: bool) -> Outcome:
    """Success or which failure, and when the task completes."""
    code: int | None = None
    msg: str | None = "" if d.u_blank_msg < 0.7 else None
    flag, latency, complete = 1, d.latency, d.complete
    if d.non_english:
        code, msg = V.LANGUAGE_ERROR
        flag, latency = 2, 2.0 + 4.0 * d.u_language_latency
    elif d.fail:
        if task_type == "4k" and d.u_failure_kind < 0.6:
            (code, msg), fail_median = V.K4_UNAVAILABLE, 20.0
        else:
            code, msg, fail_median = _pick_failure(d.u_failure_kind, image_based)
        latency = fail_median * 2.718281828 ** (0.4 * d.z_failure_latency)
        flag = 3 if code in (500, 501) and d.u_flag3 < V.GENERATION_FAILED_SHARE else 2
    if flag != 1:
        if d.pending:
            latency = max(latency, d.age + 20.0 + 280.0 * d.u_hold)
        complete = round(d.create + max(latency, 1.0), 3)
    return Outcome(flag, code, msg, complete)


def _seeds(d: Draw) -> int:
    return 10000 + d.w_seeds % 90000  # kie.ai's range: 10000-99999


def _prompt(d: Draw, language_error: bool) -> str:
    if language_error:
        return V.NON_ENGLISH_PROMPTS[d.w_prompt_a % len(V.NON_ENGLISH_PROMPTS)]
    return (
        f"{V.SUBJECTS[d.w_prompt_a % len(V.SUBJECTS)]} "
        f"{V.ACTIONS[d.w_prompt_b % len(V.ACTIONS)]} "
        f"{V.SETTINGS[(d.w_prompt_a >> 8) % len(V.SETTINGS)]}, "
        f"{V.STYLES[(d.w_prompt_b >> 8) % len(V.STYLES)]}."
    )


def request(
    d: Draw,
    task_id: str,
    parent_id: str | None,
    kind: tuple[str, str, str | None, str | None],
    out: Outcome,
) -> dict[str, Any]:
    """The task's request (``paramJson``) for ``kind`` = (task type, model, generation
    type, aspect ratio)."""
    ttype, model, gtype, aspect = kind
    seeds = _seeds(d)
    wm_key = "waterMark" if d.u_watermark_key_audio < 0.7 else "watermark"
    watermark = V.WATERMARKS[d.w_parent_watermark % len(V.WATERMARKS)]
    params: dict[str, Any]
    if ttype == "generate":
        language_error = out.code == 400 and out.msg == V.LANGUAGE_ERROR[1]
        old = d.age > 7 * _DAY
        aspect_key = (
            "aspectRatio"
            if (old and d.u_aspect_key < 0.8) or d.u_aspect_key < 0.25
            else "aspect_ratio"
        )
        params = {
            "prompt": _prompt(d, language_error),
            "model": model,
            "generationType": gtype,
            aspect_key: aspect,
        }
        if gtype != "TEXT_2_VIDEO":
            k = 2 if gtype == "FIRST_AND_LAST_FRAMES_2_VIDEO" else 1 + d.w_seeds % 3
            params["imageUrls"] = [
                f"https://cdn.example.com/img/{task_id[4:12]}_{j}.jpg" for j in range(k)
            ]
        params["seeds"] = seeds
        params[wm_key] = watermark
        params["enableTranslation"] = not d.non_english
        if d.age < 5 * _DAY:
            wide = aspect == "16:9" and d.u_resolution < 0.35
            params["resolution"] = "1080p" if wide else "720p"
    elif ttype == "extend":
        prompt = V.EXTEND_PROMPTS[d.w_prompt_a % len(V.EXTEND_PROMPTS)]
        params = {"taskId": parent_id, "prompt": prompt, "seeds": seeds, "model": model}
        params[wm_key] = watermark
    else:
        params = {"taskId": parent_id, "index": 0 if d.u_resolution < 0.9 else 1}
    if d.u_callback < 0.4:
        params["callBackUrl"] = "https://example.com/api/veo-callback"
    return params


def response(
    d: Draw, task_id: str, ttype: str, aspect: str | None, params: dict[str, Any], out: Outcome
) -> tuple[dict[str, Any] | None, bool | None]:
    """What record-info shows once the task completed: (response, fallbackFlag)."""
    fallback: bool | None = None
    if ttype == "generate" and d.age > 9 * _DAY:
        fallback = d.u_fallback_media_key < 0.12
    if out.flag != 1:
        return None, fallback
    stem = f"{task_id[4:]}_{int(out.complete)}"
    video = f"{_URL}/v/{stem}_0.mp4"
    resp: dict[str, Any] = {"taskId": task_id, "resultUrls": [video], "originUrls": None}
    if ttype == "generate":
        res = params.get("resolution") or (
            "1080p" if aspect == "16:9" and not fallback and d.u_resolution < 0.5 else "720p"
        )
        if aspect != "16:9":
            resp["originUrls"] = [f"{_URL}/o/{stem}_0.mp4"]
        if d.age > 10 * _DAY and d.u_resolution > 0.94:  # a very old format: a string
            resp["resultUrls"] = f"[{video}, {_URL}/v/{stem}_1.mp4]"
    elif ttype == "extend":
        res = "720p"
        resp["fullResultUrls"] = [f"{_URL}/full/{stem}_0.mp4"]
    elif ttype == "1080p":
        res = "1080p"
    else:
        res = "4k"
        media_key = "mediaIds" if d.u_fallback_media_key < 0.75 else "media_ids"
        resp[media_key] = [hashlib.blake2b(task_id.encode(), digest_size=8).hexdigest()]
        resp["imageUrls"] = [f"{_URL}/img/{stem}_0.jpg"]
    resp["resolution"] = res
    resp["hasAudioList"] = [d.u_watermark_key_audio > 0.05]
    resp["seeds"] = [_seeds(d)]
    return resp, fallback


def make_block(
    seed: int,
    block: int,
    *,
    anchor: float,
    span_days: float = 20.0,
    pending_share: float = 0.03,
) -> list[Task]:
    """The :data:`BLOCK` tasks with indices ``block*BLOCK ...``, made deterministically."""
    span = span_days * _DAY
    draws = families(numbers(seed, block, anchor, span, pending_share), anchor, span)
    ids = [task_id_for(seed, block * BLOCK + i) for i in range(BLOCK)]
    out: list[Task] = []
    for i, d in enumerate(draws):
        ttype, task_id = _TYPES[d.task_type], ids[i]
        parent_id = ids[d.parent] if d.parent >= 0 else None
        gtype: str | None = _GTYPES[d.generation_type]
        aspect: str | None = _ASPECTS[d.aspect]
        model = _MODELS[d.model]
        if ttype != "generate":
            model = ("quality" if d.quality else "fast") if ttype == "extend" else ""
            gtype = aspect = None
        image_based = gtype in ("FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
        end = outcome(d, ttype, image_based)
        params = request(d, task_id, parent_id, (ttype, model, gtype, aspect), end)
        resp, fallback = response(d, task_id, ttype, aspect, params, end)
        out.append(
            Task(
                task_id=task_id,
                position=block * BLOCK + i,
                task_type=ttype,
                model=model,
                generation_type=gtype,
                aspect_ratio=aspect,
                parent_id=parent_id,
                create_ts=d.create,
                complete_ts=end.complete,
                final_flag=end.flag,
                error_code=end.code,
                error_message=end.msg,
                param_json=orjson.dumps(params).decode(),
                response=resp,
                fallback=fallback,
                time_format=TASK_TIME_FORMATS[d.w_time_format % len(TASK_TIME_FORMATS)],
            )
        )
    return out
