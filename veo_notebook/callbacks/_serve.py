"""Serving the receiver with uvicorn: in a background thread (:func:`serve`) or in the
foreground for ``veo-notebook callbacks`` (:func:`run`).

The socket is bound here, before uvicorn starts, so a port in use is one clear
:class:`ConfigError` instead of a log line and ``sys.exit`` inside uvicorn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from ..errors import ConfigError
from ..net import is_loopback
from ..store import Store
from ._app import DEFAULT_PATH, HEALTH_PATH, make_app, resolve_key
from ._signature import KEY_ENV, WebhookKey

__all__ = ["DEFAULT_HOST", "run", "serve"]

log = logging.getLogger("veo_notebook.callbacks")

DEFAULT_HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_BACKLOG = 128
_KEEP_ALIVE_S = 20  # kie.ai's 15 s timeout, plus a margin


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    # (without it, each answer stalls ~40 ms on Nagle + delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port/--host"
        ) from None
    sock.listen(_BACKLOG)  # connections wait in the backlog until uvicorn accepts them
    return sock


def _server(app, sock: socket.socket):  # type: ignore[no-untyped-def]
    from ..extras import require

    uvicorn = require("uvicorn", "the callback receiver")

    config = uvicorn.Config(
        app,
        log_config=None,  # our loggers, the caller's logging setup
        access_log=False,  # the app logs what it keeps and what it refuses
        lifespan="off",
        timeout_keep_alive=_KEEP_ALIVE_S,
        server_header=False,
    )
    return uvicorn.Server(config)


def _url(sock: socket.socket, path: str) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


@contextlib.contextmanager
def serve(
    store: Store | str | os.PathLike[str],
    *,
    key: str | bytes | WebhookKey | None = None,
    verify: bool = True,
    host: str = DEFAULT_HOST,
    port: int = 0,
    path: str = DEFAULT_PATH,
    clock: Callable[[], float] = time.time,
) -> Iterator[str]:
    """Run the receiver on a real port for the ``with`` block; yields its callback URL.

    ``port=0`` picks a free port. ``key`` defaults to ``KIE_WEBHOOK_HMAC_KEY``; the other
    parameters are :func:`make_app`'s.

    >>> from veo_notebook import Store
    >>> with serve(Store(":memory:"), key="k") as url:
    ...     url.startswith("http://127.0.0.1:") and url.endswith("/callback")
    True
    """
    own = not isinstance(store, Store)
    st = store if isinstance(store, Store) else Store(store)
    try:
        app = make_app(st, key=key, verify=verify, path=path, clock=clock)  # type: ignore[arg-type]
        sock = _bind(host, port)
        server = _server(app, sock)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="veo-callbacks", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the callback receiver did not start (see the log)")
            time.sleep(0.01)
        try:
            yield _url(sock, path)
        finally:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT_S)
            sock.close()
    finally:
        if own:
            st.close()


def run(
    store: str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int,
    path: str = DEFAULT_PATH,
    verify: bool = True,
    out: TextIO | None = None,
) -> None:
    """Serve the receiver in the foreground until Ctrl-C (``veo-notebook callbacks``).

    Raises :class:`ConfigError` before binding anything when verification is on and
    ``KIE_WEBHOOK_HMAC_KEY`` is unset.
    """
    out = out or sys.stderr
    key = resolve_key(None, verify)
    with Store(store) as st:
        app = make_app(st, key=key, verify=verify, path=path)
        sock = _bind(host, port)
        url = _url(sock, path)
        if key is None:
            out.write(
                "WARNING: --no-signature: callbacks are NOT verified; anyone who can reach "
                f"{url} can write deliveries into {st.path}. Set {KEY_ENV} and drop "
                "--no-signature for real use.\n"
            )
        if not is_loopback(host):
            out.write(
                f"note: listening on {host}, not loopback; put a TLS reverse proxy in front "
                "(see docs/callbacks.md, 'Deploying')\n"
            )
        health = url[: -len(path)] + HEALTH_PATH
        checked = "signatures verified" if key is not None else "signatures NOT checked"
        out.write(
            f"veo-notebook callbacks: receiving on {url} ({checked}; health {health}), "
            f"keeping deliveries in {st.path}; Ctrl-C stops\n"
        )
        out.flush()
        try:
            _server(app, sock).run(sockets=[sock])
        finally:
            sock.close()
