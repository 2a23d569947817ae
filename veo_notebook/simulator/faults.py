"""Named faults the simulator injects, by probability or as a scripted sequence per task id.

=============  ============================================================================
name           what the client sees
=============  ============================================================================
envelope500    HTTP 200, ``{"code": 500, "msg": "Internal Error, Please try again later."}``
envelope455    HTTP 200, ``{"code": 455, "msg": "Service Unavailable - System is currently ..."}``
envelope408    HTTP 200, ``{"code": 408, "msg": "Upstream is currently experiencing ..."}``
http502        HTTP 502 with an HTML body (a CDN/proxy page)
http503        HTTP 503 with an HTML body
http429        HTTP 429 with ``Retry-After: 1`` and a JSON body
reset          the connection is closed without an answer (TCP RST)
slow           a normal answer, but only after ``slow_seconds`` (longer than a client timeout)
truncated      HTTP 200, valid headers, the JSON body cut in half (Content-Length matches the
               cut body, so the connection stays usable: the client's JSON decoding fails)
incomplete     HTTP 200 promising the full Content-Length, half the body, then the connection
               closes (the client's HTTP layer fails with an incomplete read)
nonjson        HTTP 200 with an HTML body
=============  ============================================================================

Which fault meets each event is chosen by a :class:`FaultPlan`: scripts first, then rates.
It is generic over the fault kind, so the API (:class:`Fault`), the media host
(``media.MediaFault``) and the callback sender (``callbacks.CallbackFault``) share one
plan, one validation and one script rule.

``"ok"`` in a script means "answer normally". What each fault does is one entry of
:data:`BEHAVIOUR` (a :class:`Canned` answer or a :class:`Wire` trick): adding a fault is a
member of :class:`Fault`, a row of the table above and an entry there. Every fault is
applied after the User-Agent, rate-limit and auth checks, so it only ever hits a request
that would have been answered.

>>> from veo_notebook.simulator.faults import Fault
>>> Fault("http503").value, Fault.HTTP503 in Fault.transient()
('http503', True)
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar, overload

import orjson

__all__ = [
    "BEHAVIOUR",
    "FAULT_NAMES",
    "Canned",
    "Fault",
    "FaultPlan",
    "NamedFault",
    "Wire",
    "uniform_mix",
]


class NamedFault(str, Enum):
    """A fault kind: a ``str`` enum whose values are the names used in scripts, rates and
    stats, with an ``"ok"`` member meaning "behave normally" (:class:`Fault`,
    :class:`~veo_notebook.simulator.media.MediaFault`,
    :class:`~veo_notebook.simulator.callbacks.CallbackFault`)."""

    @classmethod
    def parse(cls: type[F], value: str | F) -> F:
        """The member named ``value``; a clear ``ValueError`` for an unknown name."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise ValueError(f"unknown fault {value!r}; expected one of: {names}") from None


F = TypeVar("F", bound=NamedFault)


class Fault(NamedFault):
    """A named fault (the value is the name used in scripts, rates and stats)."""

    OK = "ok"
    ENVELOPE500 = "envelope500"
    ENVELOPE455 = "envelope455"
    ENVELOPE408 = "envelope408"
    HTTP502 = "http502"
    HTTP503 = "http503"
    HTTP429 = "http429"
    RESET = "reset"
    SLOW = "slow"
    TRUNCATED = "truncated"
    INCOMPLETE = "incomplete"
    NONJSON = "nonjson"

    @classmethod
    def transient(cls) -> tuple[Fault, ...]:
        """Faults a client should retry and recover from quickly (every fault but ok and slow)."""
        return tuple(f for f in cls if f not in (cls.OK, cls.SLOW))


#: Every fault name (``"ok"`` included).
FAULT_NAMES = tuple(f.value for f in Fault)

_ENVELOPES = {
    Fault.ENVELOPE500: (500, "Internal Error, Please try again later."),
    Fault.ENVELOPE455: (455, "Service Unavailable - System is currently undergoing maintenance"),
    Fault.ENVELOPE408: (
        408,
        "Upstream is currently experiencing service issues. No result has been returned for "
        "over 10 minutes.",
    ),
}

HTML = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n",
    503: b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><h1>Service Temporarily Unavailable</h1><p>The server is temporarily unable to "
    b"service your request due to maintenance downtime or capacity problems.</p></body></html>\n",
    200: b"<!DOCTYPE html><html><head><title>kie.ai</title></head><body>"
    b"<p>Just a moment...</p></body></html>",
}
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
#: Seconds an ``http429`` fault asks the client to wait (a real limit's own 429 says more).
FAULT_RETRY_AFTER_S = 1
TOO_MANY = "Too many requests, please slow down."


@dataclass(frozen=True)
class Canned:
    """A fault answered with a fixed HTTP status, body and headers."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)


class Wire(str, Enum):
    """A fault that plays with the connection or the real answer (rendered by the server)."""

    ANSWER = "answer"  # the real answer
    RESET = "reset"  # close with a TCP RST, no answer
    SLOW = "slow"  # the real answer after ``slow_seconds``
    TRUNCATED = "truncated"  # half the real body, Content-Length matching the half
    INCOMPLETE = "incomplete"  # Content-Length of the whole body, half sent, then close


def _envelope(fault: Fault) -> Canned:
    code, msg = _ENVELOPES[fault]
    return Canned(200, orjson.dumps({"code": code, "msg": msg, "data": None}))


#: THE fault table: what each fault does. A fault missing here fails at import.
BEHAVIOUR: dict[Fault, Canned | Wire] = {
    Fault.OK: Wire.ANSWER,
    Fault.ENVELOPE500: _envelope(Fault.ENVELOPE500),
    Fault.ENVELOPE455: _envelope(Fault.ENVELOPE455),
    Fault.ENVELOPE408: _envelope(Fault.ENVELOPE408),
    Fault.HTTP502: Canned(502, HTML[502], "text/html"),
    Fault.HTTP503: Canned(503, HTML[503], "text/html"),
    Fault.HTTP429: Canned(
        429,
        orjson.dumps({"code": 429, "msg": TOO_MANY, "data": None}),
        headers={"Retry-After": str(FAULT_RETRY_AFTER_S)},
    ),
    Fault.RESET: Wire.RESET,
    Fault.SLOW: Wire.SLOW,
    Fault.TRUNCATED: Wire.TRUNCATED,
    Fault.INCOMPLETE: Wire.INCOMPLETE,
    Fault.NONJSON: Canned(200, HTML[200], _HTML),
}
if set(BEHAVIOUR) != set(Fault):  # pragma: no cover - a developer's mistake, caught at import
    raise RuntimeError(f"faults without a behaviour: {sorted(set(Fault) - set(BEHAVIOUR))}")


class FaultPlan(Generic[F]):
    """Thread-safe choice of a fault per event: scripts first, then rates (any fault kind).

    One plan serves the API (:class:`Fault`, one event per request, scripted per task id),
    the media host (one per file request) and the callback sender (one per task, scripted
    under the key ``None``: "the next tasks"). ``kind`` is the fault enum (default
    :class:`Fault`); ``seed`` makes the draws reproducible.

    >>> plan = FaultPlan({"http503": 1.0}, seed=0)
    >>> plan.script("veo_x", ["reset", "ok"])
    >>> [plan.next("veo_x").value, plan.next("veo_x").value, plan.next("veo_x").value]
    ['reset', 'ok', 'http503']
    """

    @overload
    def __init__(
        self: FaultPlan[Fault],
        rates: Mapping[str, float] | None = None,
        *,
        seed: int | str = 0,
    ) -> None: ...
    @overload
    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        seed: int | str = 0,
        kind: type[F],
    ) -> None: ...
    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        seed: int | str = 0,
        kind: type[Any] | None = None,
    ) -> None:
        self.kind: type[F] = kind if kind is not None else Fault  # type: ignore[assignment]
        self._ok = self.kind.parse("ok")
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rates: list[tuple[F, float]] = []
        self._scripts: dict[str | None, deque[F]] = defaultdict(deque)
        self.set_rates(rates or {})

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Replace the probabilities per event (``{name: p}``, each >= 0, total at most 1)."""
        parsed = [(self.kind.parse(k), float(p)) for k, p in rates.items()]
        if any(p < 0 for _, p in parsed) or sum(p for _, p in parsed) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1: {dict(rates)}")
        with self._lock:
            self._rates = [(f, p) for f, p in parsed if p > 0 and f is not self._ok]

    def rates(self) -> dict[str, float]:
        """The current probabilities by fault name."""
        with self._lock:
            return {f.value: p for f, p in self._rates}

    def script(self, key: str | None, faults: Iterable[str | F]) -> None:
        """Append faults for ``key`` (a task id; None: events about no task), one per event."""
        parsed = [self.kind.parse(f) for f in faults]
        with self._lock:
            self._scripts[key].extend(parsed)

    def pending_script(self, key: str | None) -> list[str]:
        """What is left of ``key``'s script."""
        with self._lock:
            return [f.value for f in self._scripts.get(key, ())]

    def clear_scripts(self) -> None:
        """Forget every script."""
        with self._lock:
            self._scripts.clear()

    def next(self, key: str | None) -> F:
        """The fault for the next event about ``key`` (the ``ok`` member: behave normally)."""
        with self._lock:
            queue = self._scripts.get(key)
            if queue:
                fault = queue.popleft()
                if not queue:
                    del self._scripts[key]
                return fault
            if not self._rates:
                return self._ok
            x = self._rng.random()
            for fault, p in self._rates:
                if x < p:
                    return fault
                x -= p
            return self._ok


def uniform_mix(total_rate: float) -> dict[str, float]:
    """Spread ``total_rate`` evenly over the transient faults (what ``--fault-rate`` uses).

    >>> round(sum(uniform_mix(0.1).values()), 6)
    0.1
    """
    kinds = Fault.transient()
    return {f.value: total_rate / len(kinds) for f in kinds} if total_rate > 0 else {}
