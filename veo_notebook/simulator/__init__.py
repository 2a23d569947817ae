"""A kie.ai-compatible Veo 3.1 API on loopback, for the demo, notebooks, benchmarks and tests.

It answers ``GET /api/v1/veo/record-info?taskId=...`` as kie.ai's spec and public
captures describe (Bearer auth with envelope 401, 422 for unknown ids and for records
older than 14 days, a seeded corpus of realistic tasks, a clock that can run fast),
accepts ``POST /api/v1/veo/generate``, and can rate-limit (HTTP 429 + ``Retry-After``)
and inject named faults (:mod:`.faults`). Without a key it accepts
:data:`DEFAULT_API_KEY` (``"sim-local-key"``). Requests without a ``User-Agent`` get
HTTP 403 ``error code: 1010``, as from the CDN in front of kie.ai.

Times in the default ``"plain"`` format are wall times in UTC+8 (Asia/Shanghai).

The corpus holds task families as kie.ai makes them (extends of extends, 1080p and 4K
upgrades of extended videos, failed upgrades retried, parents past the 14 days while their
children are not): their shape and shares are documented in :mod:`.corpus`. With
``clock_speed=0`` sim time moves only by ``sim.advance(seconds)``: a test makes pending
tasks finish, or records expire, without sleeping.

>>> from veo_notebook import simulator
>>> with simulator.serve(n_tasks=20) as base_url:
...     base_url.startswith("http://127.0.0.1:")
True

From the shell: ``veo-notebook simulate --port 8765`` (then
``curl -H "Authorization: Bearer sim-local-key" -A curl "http://127.0.0.1:8765/_sim/ids?kind=pending"``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import corpus, faults
from ._constants import DEFAULT_API_KEY, GENERATE_PATH, RECORD_PATH
from .faults import FAULT_NAMES, Fault
from .server import Simulator

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_NAMES",
    "GENERATE_PATH",
    "RECORD_PATH",
    "Fault",
    "Simulator",
    "corpus",
    "faults",
    "serve",
    "serve_forever",
]

log = logging.getLogger("veo_notebook.simulator")


@contextmanager
def serve(api_key: str | None = None, **kwargs: Any) -> Iterator[str]:
    """Run a :class:`Simulator` for the ``with`` block; yields its base URL.

    Every keyword is :class:`Simulator`'s (``seed``, ``n_tasks``, ``latency``,
    ``rate_limit``, ``clock_speed``, ``faults``, ``port``, ...). Use :class:`Simulator`
    itself to read counters, script faults or list task ids.

    >>> with serve(n_tasks=10, latency=0.0) as url:
    ...     url.startswith("http://127.0.0.1:")
    True
    """
    with Simulator(api_key, **kwargs) as sim:
        yield sim.base_url


def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    api_key: str | None = None,
    fault_rate: float = 0.0,
    stop_event: threading.Event | None = None,
    **kwargs: Any,
) -> None:
    """Serve in the foreground until Ctrl-C (or ``stop_event``); logs the URL to stderr.

    ``fault_rate`` spreads that probability evenly over the transient faults.

    >>> ev = threading.Event(); ev.set()
    >>> serve_forever(port=0, n_tasks=5, stop_event=ev)
    """
    if fault_rate:
        kwargs["faults"] = faults.uniform_mix(fault_rate)
    sim = Simulator(api_key, host=host, port=port, **kwargs).start()
    if not log.isEnabledFor(logging.INFO):
        log.setLevel(logging.INFO)
    log.info(
        "kie.ai simulator listening on %s (%d tasks, seed %s)", sim.base_url, sim.n_tasks, sim.seed
    )
    if api_key:
        log.info("accepting only the key given with --api-key; set KIE_API_KEY to it")
    else:
        log.info("accepting the default key: export KIE_API_KEY=%s", DEFAULT_API_KEY)
    pending = sim.task_ids("pending")[:3]
    log.info(
        "try: %s%s?taskId=%s  (more ids: GET /_sim/ids?kind=pending|terminal|expired;"
        " counters: GET /_sim/stats)",
        sim.base_url,
        RECORD_PATH,
        (pending or sim.task_ids() or ["veo_unknown"])[0],
    )
    event = stop_event or threading.Event()
    try:
        while not event.wait(0.5):
            pass
    except KeyboardInterrupt:
        log.info("stopping the simulator")
    finally:
        sim.stop()
