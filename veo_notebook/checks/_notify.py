"""Telling a webhook what changed: one JSON POST, retried, with a timeout (private).

The message is Slack-compatible (a ``text`` field) and carries the changed rows
(``rows``) for any other receiver. A webhook URL is a secret (whoever has it can post
to the channel): it is read from ``--notify`` or :data:`ENV_NOTIFY`, and only ever shown
masked (:func:`mask_url`: scheme and host). The POST goes through ``urllib`` so that no
HTTP library logs its path.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import fmt
from .._version import __version__
from ..config import ENV_NOTIFY
from ..errors import ConfigError, VeoError
from ._table import Change
from ._text import describe

__all__ = ["ENV_NOTIFY", "NotifyError", "mask_url", "message", "notify_url", "post"]

TRIES = 3
TIMEOUT_S = 10.0
BACKOFF_S = 1.0  # waits 1 s, then 2 s, between tries
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class NotifyError(VeoError):
    """The webhook did not take the message after every try (the state is kept for next time)."""


def mask_url(url: str) -> str:
    """The URL as it may be shown: scheme and host, the rest hidden.

    >>> mask_url("https://hooks.slack.com/services/T0/B0/XYZ")
    'https://hooks.slack.com/***'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/***"


def notify_url(flag: str | None) -> str | None:
    """The webhook URL: ``--notify``, else :data:`ENV_NOTIFY`, else None; checked."""
    url = (flag or os.environ.get(ENV_NOTIFY, "")).strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--notify / {ENV_NOTIFY}: not an http(s) URL ({mask_url(url)})")
    return url


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if fmt.is_missing(v):
            out[k] = None
        elif hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        elif hasattr(v, "item"):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def message(changes: Sequence[Change], source: str) -> dict[str, Any]:
    """The JSON body: ``text`` (Slack) and ``rows`` (the changed rows, machine-readable)."""
    up = [c for c in changes if c.breached]
    down = [c for c in changes if not c.breached]
    lines = [f"veo-notebook check on {source}: {len(up)} breached, {len(down)} cleared"]
    for c in up:
        lines.append("BREACHED " + describe(c.row or {}))
    for c in down:
        what = describe(c.row) if c.row else f"{c.rule}  {c.group}  no tasks in the window"
        lines.append("cleared  " + what)
    rows = [
        {
            "state": "breached" if c.breached else "clear",
            "rule": c.rule,
            "group": c.group,
            "window": c.window,
            **({} if c.row is None else _json_row(c.row)),
        }
        for c in changes
    ]
    return {"text": "\n".join(lines), "rows": rows}


@dataclass(frozen=True)
class Delivery:
    """How a POST went: the tries it took and the last HTTP status (None: no answer)."""

    tries: int
    status: int | None


def post(
    url: str,
    body: dict[str, Any],
    *,
    tries: int = TRIES,
    timeout: float = TIMEOUT_S,
    backoff: float = BACKOFF_S,
) -> Delivery:
    """POST ``body`` as JSON; retry a refused connection, a timeout, 429 and 5xx.

    Raises :class:`NotifyError` (naming only the masked URL) after the last try.
    """
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": f"veo-notebook/{__version__}"}
    why = "no answer"
    for attempt in range(1, tries + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Delivery(attempt, int(answer.status))
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
            if exc.code not in _RETRY_STATUS:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            why = type(reason).__name__ if not isinstance(reason, str) else "unreachable"
        if attempt < tries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise NotifyError(
        f"notify: {mask_url(url)} did not take the message ({why}) after "
        f"{attempt} tries; the state is kept, the next run sends it again"
    )
