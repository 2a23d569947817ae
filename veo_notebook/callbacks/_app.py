"""The callback receiver: a small Starlette app that verifies, bounds and keeps deliveries.

``POST <path>`` (default ``/callback``), in order:

1. ``Content-Length`` over :data:`MAX_BODY_BYTES` → 413, before reading the body;
2. with verification on: no ``X-Webhook-Timestamp`` / ``X-Webhook-Signature``, or a
   timestamp more than :data:`MAX_SKEW_S` from the receiver's clock → 401;
3. the body is read in chunks and counted: past :data:`MAX_BODY_BYTES` → 413 (a body
   without ``Content-Length`` cannot make it read more);
4. not a JSON object with a string ``data.taskId`` → 400;
5. a forged signature → 401 (compared in constant time);
6. the delivery is kept raw in the store's ``callbacks`` table (one short transaction;
   a repeat for the same task is kept and marked duplicate) → 200
   ``{"code": 200, "msg": "success"}``. A store that cannot be written → 503, so kie.ai
   retries.

Nothing rejected is stored. ``GET /health`` answers ``{"status": "ok", "deliveries": n}``
(503 when the store cannot be read). Any error inside a request is logged and answered
500; it never stops the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ConfigError, StoreError
from ..store import Store
from ._signature import (
    KEY_ENV,
    MAX_SKEW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookKey,
    key_from_env,
)
from ._table import CallbackTable

__all__ = ["DEFAULT_PATH", "HEALTH_PATH", "KEPT_HEADERS", "MAX_BODY_BYTES", "make_app"]

log = logging.getLogger("veo_notebook.callbacks")

DEFAULT_PATH = "/callback"
HEALTH_PATH = "/health"
#: A callback is a few hundred bytes; anything past 1 MiB is refused unread.
MAX_BODY_BYTES = 1024 * 1024
#: The request headers kept with each delivery (lower case, as Starlette gives them).
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    TIMESTAMP_HEADER.lower(),
    SIGNATURE_HEADER.lower(),
    "x-forwarded-for",
    "x-real-ip",
)


class _Reject(Exception):
    """A delivery refused with ``status`` and a short reason (answered, logged, not stored)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _reply(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": status, "msg": msg}, status_code=status)


def resolve_key(key: str | bytes | WebhookKey | None, verify: bool) -> WebhookKey | None:
    """The key to verify with: ``key``, else ``KIE_WEBHOOK_HMAC_KEY``; None when not verifying.

    Raises :class:`ConfigError` when verification is on and there is no key.
    """
    if not verify:
        return None
    if key is not None:
        return key if isinstance(key, WebhookKey) else WebhookKey(key)
    found = key_from_env()
    if found is None:
        raise ConfigError(
            f"{KEY_ENV} is not set: export your kie.ai webhook HMAC key in it "
            "(or pass --no-signature to accept unsigned callbacks)"
        )
    return found


class _Receiver:
    """The state one app holds: the store, the key (never shown), the clock, the bounds."""

    def __init__(
        self,
        store: Store,
        key: WebhookKey | None,
        clock: Callable[[], float],
        max_body: int,
        max_skew_s: float,
    ) -> None:
        self.store, self.key, self.clock = store, key, clock
        self.table = CallbackTable(store)
        self.max_body, self.max_skew_s = max_body, max_skew_s

    def __repr__(self) -> str:
        return f"_Receiver({self.store!r}, verify={self.key is not None})"

    async def callback(self, request: Request) -> Response:
        try:
            row = await self._accept(request)
        except _Reject as r:
            log.warning("callback refused (%d): %s", r.status, r.reason)
            return _reply(r.status, r.reason)
        except ClientDisconnect:
            log.warning("callback sender disconnected before the body was read")
            return Response(status_code=400)
        except StoreError as exc:
            log.error("callback not kept, the store failed: %s", exc)
            return _reply(503, "the store cannot be written; retry later")
        except Exception:  # a bug must not stop the receiver: log it, answer 500
            log.exception("callback receiver error")
            return _reply(500, "internal error")
        log.info(
            "callback kept: task %s%s", row["task_id"], " (duplicate)" if row["duplicate"] else ""
        )
        return _reply(200, "success")

    async def _accept(self, request: Request):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _Reject(400, "Content-Length is not a number")
            if int(length) > self.max_body:
                raise _Reject(413, f"body over {self.max_body} bytes")
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        given = request.headers.get(SIGNATURE_HEADER, "")
        if self.key is not None:
            if not stamp or not given:
                raise _Reject(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
            try:
                sent = float(stamp)
            except ValueError:
                raise _Reject(401, f"{TIMESTAMP_HEADER} is not Unix seconds") from None
            if not abs(self.clock() - sent) <= self.max_skew_s:
                raise _Reject(
                    401, f"stale {TIMESTAMP_HEADER} (more than {self.max_skew_s:g} s off)"
                )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                raise _Reject(413, f"body over {self.max_body} bytes")
        task_id = _task_id(bytes(body))
        if self.key is not None and not self.key.verify(task_id, stamp, given):
            raise _Reject(401, f"forged {SIGNATURE_HEADER} (task {task_id[:64]!r})")
        headers = {h: request.headers[h] for h in KEPT_HEADERS if h in request.headers}
        return await run_in_threadpool(
            self.table.put,
            task_id,
            bytes(body),
            headers,
            received_at=self.clock(),
            signature_ok=True if self.key is not None else None,
        )

    async def health(self, request: Request) -> Response:
        try:
            n = await run_in_threadpool(self.table.count)
        except StoreError as exc:
            log.error("health: the store cannot be read: %s", exc)
            return JSONResponse({"status": "store unreadable"}, status_code=503)
        return JSONResponse({"status": "ok", "deliveries": n})


def _task_id(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Reject(400, "body is not JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id.strip():
        raise _Reject(400, "body has no data.taskId")
    return task_id


def make_app(
    store: Store,
    *,
    key: str | bytes | WebhookKey | None = None,
    verify: bool = True,
    path: str = DEFAULT_PATH,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY_BYTES,
    max_skew_s: float = MAX_SKEW_S,
) -> Starlette:
    """The receiver as an ASGI app (serve it with uvicorn, or mount it in your own app).

    Parameters
    ----------
    store : Store
        Where genuine deliveries are kept (its ``callbacks`` table).
    key : str, bytes or WebhookKey, optional
        The webhook HMAC key; default ``KIE_WEBHOOK_HMAC_KEY``.
    verify : bool
        False accepts unsigned callbacks (the signature is then not checked at all).
    path : str
        The POST route kie.ai calls (the path of your ``callBackUrl``).
    clock : callable
        Epoch seconds now: for the timestamp check and ``received_at``.

    Raises
    ------
    ConfigError
        ``verify`` is on and there is no key.

    >>> from veo_notebook import Store
    >>> app = make_app(Store(":memory:"), key="k")
    >>> [r.path for r in app.routes]
    ['/callback', '/health']
    """
    if not path.startswith("/"):
        raise ConfigError(f"the callback path must start with '/', got {path!r}")
    if path == HEALTH_PATH:
        raise ConfigError(f"the callback path cannot be {HEALTH_PATH} (the health endpoint)")
    receiver = _Receiver(store, resolve_key(key, verify), clock, max_body, max_skew_s)
    return Starlette(
        routes=[
            Route(path, receiver.callback, methods=["POST"]),
            Route(HEALTH_PATH, receiver.health, methods=["GET"]),
        ]
    )
