"""The simulator's callbacks: what kie.ai POSTs to a task's ``callBackUrl``, with faults.

A task created through ``POST /api/v1/veo/generate`` with a ``callBackUrl`` gets its
callback when it completes (on the simulator's clock), signed as kie.ai signs
(``X-Webhook-Timestamp``, ``X-Webhook-Signature``; the key is ``callback_key``). A
delivery not answered 2xx within ``timeout`` is retried 1, 5 and 15 sim minutes after the
first attempt, then given up. The callBackUrl must be a loopback address: the simulator
never POSTs anywhere else.

Each task draws one fault (a script for the next tasks first, then the rates):

===============  ==========================================================================
fault            what the receiver sees
===============  ==========================================================================
ok               one delivery when the task completes
dropped          nothing, ever
duplicated       the delivery, then the same body again 60 sim s later (a lost 200, retried)
delayed          the delivery, 600 sim s after completion
wrong_signature  deliveries signed with another key (each refused, so retried, never kept)
nonjson          an HTML body instead of JSON (each refused, so retried, never kept)
disagreeing      a body that contradicts record-info (another video URL; "success" for a
                 failed task)
===============  ==========================================================================

Adding a fault is a member of :class:`CallbackFault`, a row of the table above and an
entry of :data:`CALLBACK_FAULTS` (how it behaves); faults are chosen by the simulator's one
:class:`~veo_notebook.simulator.faults.FaultPlan`.

>>> from veo_notebook.simulator.callbacks import CALLBACK_FAULTS
>>> CALLBACK_FAULTS["dropped"].sends, CALLBACK_FAULTS["duplicated"].sends
(0, 2)
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from ..callbacks._signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookKey
from ..net import is_loopback
from ._blocks import Task
from ._constants import DEFAULT_CALLBACK_KEY, GENERATE_PATH, KIE_MEDIA_HOST
from .faults import HTML, FaultPlan, NamedFault

__all__ = [
    "CALLBACK_FAULTS",
    "DEFAULT_CALLBACK_KEY",
    "RETRY_OFFSETS_S",
    "CallbackBehaviour",
    "CallbackFault",
    "CallbackSender",
    "check_url",
    "create_task",
]

log = logging.getLogger("veo_notebook.simulator")

#: kie.ai retries a failed delivery 1, 5 and 15 minutes after the first attempt.
RETRY_OFFSETS_S = (60.0, 300.0, 900.0)
#: kie.ai waits 15 s for an answer.
TIMEOUT_S = 15.0
DELAY_S = 600.0
DUPLICATE_AFTER_S = 60.0
CREDITS_4K = 120  # creditsConsumed of a 4K callback (the figure in kie.ai's docs)
STRING_URLS_SHARE = 0.2  # successes whose resultUrls come as the string "[http://…]"
SUCCESS_MSG = "Veo3.1 video generated successfully."
_AGENT = "kie-sim-callbacks/1.0"
_STEP_PAST_S = 0.001  # a stepped clock lands just past a due time, never just short of it


class CallbackFault(NamedFault):
    """A callback fault (the value is its name in scripts, rates and ``injected()``)."""

    OK = "ok"
    DROPPED = "dropped"
    DUPLICATED = "duplicated"
    DELAYED = "delayed"
    WRONG_SIGNATURE = "wrong_signature"
    NONJSON = "nonjson"
    DISAGREEING = "disagreeing"


@dataclass(frozen=True)
class CallbackBehaviour:
    """How one task's callback misbehaves (one entry of :data:`CALLBACK_FAULTS`)."""

    name: str
    sends: int = 1  # deliveries made: 0 dropped, 2 duplicated
    delay_s: float = 0.0  # sim seconds after completion of the first attempt
    good_signature: bool = True
    json_body: bool = True
    agrees: bool = True


#: THE callback-fault table: what each fault does, by name. A fault missing here fails
#: at import.
CALLBACK_FAULTS: dict[str, CallbackBehaviour] = {
    f.name: f
    for f in (
        CallbackBehaviour("ok"),
        CallbackBehaviour("dropped", sends=0),
        CallbackBehaviour("duplicated", sends=2),
        CallbackBehaviour("delayed", delay_s=DELAY_S),
        CallbackBehaviour("wrong_signature", good_signature=False),
        CallbackBehaviour("nonjson", json_body=False),
        CallbackBehaviour("disagreeing", agrees=False),
    )
}
if set(CALLBACK_FAULTS) != {f.value for f in CallbackFault}:  # pragma: no cover - caught at import
    raise RuntimeError("CallbackFault and CALLBACK_FAULTS disagree")


class Clock(Protocol):
    """What the sender needs of the simulator's clock (:class:`~._state.SimClock`)."""

    speed: float

    def now(self) -> float: ...

    def on_advance(self, wake: Callable[[], None]) -> None: ...


def check_url(url: Any) -> str | None:
    """Why ``url`` cannot be a callBackUrl here (None: it can): http(s) to loopback only.

    >>> check_url("http://127.0.0.1:8000/callback") is None
    True
    >>> check_url("https://example.com")[:44]
    'callBackUrl must point at a loopback address'
    """
    if not isinstance(url, str) or not url.strip():
        return "callBackUrl must be a URL."
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "callBackUrl must be an http(s) URL."
    if not is_loopback(parts.hostname):
        return (
            "callBackUrl must point at a loopback address in the simulator "
            "(127.0.0.1, ::1, localhost)."
        )
    return None


def _resolves_to_loopback(url: str) -> bool:
    """Checked again right before each POST: every address the host resolves to is loopback."""
    parts = urlsplit(url)
    if check_url(url) is not None or parts.hostname is None:
        return False
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(is_loopback(str(i[4][0])) for i in infos)


@dataclass
class _Delivery:
    task: Task
    url: str
    fault: CallbackBehaviour
    first_due: float
    attempt: int = 0  # attempts made so far
    duplicate: bool = False
    first_sent: float = 0.0  # sim time of the first attempt: retries count from it


class CallbackSender:
    """Schedules, signs and POSTs callbacks on the simulator's clock (one daemon thread).

    ``rates`` are per-task probabilities ``{fault: p}``; :meth:`script` queues faults for
    the next tasks. :meth:`injected` says which fault each task drew, :meth:`attempts`
    what every POST met.
    """

    def __init__(
        self,
        clock: Clock,
        key: str | None = None,
        *,
        rates: Mapping[str, float] | None = None,
        seed: int = 0,
        timeout: float = TIMEOUT_S,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._clock = clock
        self._key = WebhookKey(key or DEFAULT_CALLBACK_KEY)
        self._wrong = WebhookKey(b"not-" + (key or DEFAULT_CALLBACK_KEY).encode())
        self._seed = seed
        # applied to every body sent: the simulator points kie.ai's media links at its
        # own media host, in its records and in its callbacks alike
        self._rewrite = rewrite or (lambda body: body)
        self.faults = FaultPlan(rates, seed=f"{seed}:callbacks", kind=CallbackFault)
        self.timeout = float(timeout)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._injected: dict[str, str] = {}
        self._attempts: list[dict[str, Any]] = []
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._session: Any = None
        clock.on_advance(self._wake)

    def __repr__(self) -> str:
        with self._cond:
            return f"CallbackSender({len(self._heap)} due, {len(self._attempts)} sent)"

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # --- plan -----------------------------------------------------------------------
    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Per-task fault probabilities, e.g. ``{"dropped": 0.1}`` (total at most 1)."""
        self.faults.set_rates(rates)

    def script(self, faults: Iterable[str]) -> None:
        """Faults for the next tasks created with a callBackUrl, one per task, in order."""
        self.faults.script(None, faults)

    def schedule(self, task: Task, url: str) -> str:
        """Plan ``task``'s callback to ``url`` (a loopback URL); returns the fault drawn."""
        fault = CALLBACK_FAULTS[self.faults.next(None).value]
        with self._cond:
            self._injected[task.task_id] = fault.name
            if fault.sends:
                due = task.complete_ts + fault.delay_s
                self._push(due, _Delivery(task, url, fault, due))
            self._start()
        return fault.name

    def _push(self, due: float, d: _Delivery) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), d))
        self._cond.notify_all()

    # --- inspection -----------------------------------------------------------------
    def injected(self) -> dict[str, str]:
        """``{task_id: fault name}`` for every task given a callBackUrl."""
        with self._cond:
            return dict(self._injected)

    def attempts(self) -> list[dict[str, Any]]:
        """Every POST made: task_id, fault, attempt (1-4), duplicate, sent_at (sim), status
        (HTTP status, or None with ``error`` when the POST failed)."""
        with self._cond:
            return [dict(a) for a in self._attempts]

    def pending(self) -> int:
        """Deliveries still to attempt (or being attempted)."""
        with self._cond:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout: float, *, step: Callable[[float], None] | None = None) -> bool:
        """Wait (real seconds) until nothing is left to send; False at the timeout.

        With ``step`` (the simulator's ``advance``), sim time is stepped to each next
        delivery as soon as the sender has nothing due: on a frozen clock a test sees every
        delivery and retry (minutes apart in sim time) without waiting for them.
        """
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            gap = self._gap() if step is not None else 0.0
            if step is not None and gap > 0:
                step(gap)
            else:
                time.sleep(0.02)  # real time: a POST is under way
        return True

    def _gap(self) -> float:
        """Sim seconds to the next delivery when nothing is due or being sent, else 0."""
        with self._cond:
            if self._busy or not self._heap:
                return 0.0
            gap = self._heap[0][0] - self._clock.now()
        return gap + _STEP_PAST_S if gap > 0 else 0.0

    # --- sending --------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="veo-sim-callbacks", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop sending (what is still due is dropped)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        if self._session is not None:
            self._session.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                if not self._heap:
                    self._cond.wait(0.5)
                    continue
                due, _, d = self._heap[0]
                now = self._clock.now()
                if due > now:
                    speed = self._clock.speed
                    self._cond.wait(min((due - now) / speed, 0.5) if speed > 0 else 0.5)
                    continue
                heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._attempt(d)
            except Exception:  # the sender must outlive any one delivery
                log.exception("simulator: callback for %s failed", d.task.task_id)
            finally:
                with self._cond:
                    self._busy -= 1

    def _body(self, d: _Delivery) -> bytes:
        t, f = d.task, d.fault
        if not f.json_body:
            return HTML[200]
        ok = t.final_flag == 1
        if ok or not f.agrees:
            base = f"{KIE_MEDIA_HOST}/v/{t.task_id[4:]}_{int(t.complete_ts)}"
            urls: list[str] = (t.response or {}).get("resultUrls") or [f"{base}_0.mp4"]
            if not f.agrees and ok:
                urls = [u.replace(".mp4", "_other.mp4") for u in urls]
            resolution = (t.response or {}).get("resolution") or "720p"
            pick = random.Random(f"{self._seed}:urls:{t.task_id}").random()
            info: dict[str, Any] = {
                "resultUrls": f"[{', '.join(urls)}]" if pick < STRING_URLS_SHARE else urls,
                "originUrls": (t.response or {}).get("originUrls"),
                "resolution": resolution,
            }
            data: dict[str, Any] = {"taskId": t.task_id, "info": info, "fallbackFlag": False}
            if str(resolution).lower() == "4k":
                data["creditsConsumed"] = CREDITS_4K
            return self._rewrite(orjson.dumps({"code": 200, "msg": SUCCESS_MSG, "data": data}))
        code = t.error_code or 500
        msg = t.error_message or "Generation failed."
        data = {"taskId": t.task_id, "fallbackFlag": False}
        return orjson.dumps({"code": code, "msg": msg, "data": data})

    def _attempt(self, d: _Delivery) -> None:
        import requests

        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False  # no proxy: loopback only
        now = self._clock.now()
        stamp = str(int(now))
        key = self._key if d.fault.good_signature else self._wrong
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _AGENT,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: key.sign(d.task.task_id, stamp),
        }
        d.attempt += 1
        if d.attempt == 1:
            d.first_sent = now
        status: int | None = None
        error: str | None = None
        if not _resolves_to_loopback(d.url):
            error = "refused: not a loopback address"
        else:
            try:
                r = self._session.post(
                    d.url, data=self._body(d), headers=headers, timeout=self.timeout
                )
                status = r.status_code
                r.close()
            except requests.RequestException as exc:
                error = type(exc).__name__
        record = {
            "task_id": d.task.task_id,
            "fault": d.fault.name,
            "attempt": d.attempt,
            "duplicate": d.duplicate,
            "sent_at": now,
            "status": status,
            "error": error,
        }
        log.debug("simulator: callback %s attempt %d → %s", d.task.task_id, d.attempt, status)
        with self._cond:
            self._attempts.append(record)
            if status is not None and 200 <= status < 300:
                if d.fault.sends > 1 and not d.duplicate:
                    again = _Delivery(d.task, d.url, d.fault, now + DUPLICATE_AFTER_S)
                    again.duplicate = True
                    self._push(again.first_due, again)
            elif d.attempt <= len(RETRY_OFFSETS_S) and error != "refused: not a loopback address":
                self._push(d.first_sent + RETRY_OFFSETS_S[d.attempt - 1], d)


def create_task(base_url: str, api_key: str, body: Mapping[str, Any]) -> str:
    """``POST /api/v1/veo/generate`` on a simulator at ``base_url``; returns the new taskId.

    For demos and tests of the callback loop: the toolkit itself never creates tasks (that
    costs credits on the real API). Only loopback base URLs are accepted.
    """
    import requests

    if not is_loopback(urlsplit(base_url).hostname):
        raise ValueError("create_task talks to a simulator on loopback only")
    with requests.Session() as s:
        s.trust_env = False
        r = s.post(
            base_url.rstrip("/") + GENERATE_PATH,
            json=dict(body),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": _AGENT},
            timeout=TIMEOUT_S,
        )
    env = r.json()
    if env.get("code") != 200:
        raise ValueError(f"the simulator refused the task: {env.get('code')} {env.get('msg')}")
    return str(env["data"]["taskId"])
