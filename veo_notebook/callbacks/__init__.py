"""Callbacks: receive kie.ai's completion callbacks, keep every delivery, audit them.

kie.ai POSTs to a task's ``callBackUrl`` when it finishes (15 s timeout, retried 1, 5
and 15 minutes later): a callback can arrive twice, late, or never, and record-info
stays the authority. This stage has three parts, data flowing one way:

* the receiver (:func:`make_app`, :func:`serve`, ``veo-notebook callbacks``): verifies
  ``X-Webhook-Signature`` (:func:`sign`), refuses what is stale, forged, too large or
  not JSON, and keeps every genuine delivery raw in the store's ``callbacks`` table;
* :func:`read_callbacks`: the deliveries as a typed frame (from a store, or a JSONL file
  of callback bodies your own app logged); :func:`task_ids` the ids seen;
* :func:`callback_audit`: callbacks against the record-info frame, one row per task.

>>> from veo_notebook import Store, callbacks
>>> with Store(":memory:") as store, callbacks.serve(store, key="k") as url:
...     url.endswith("/callback")
True

Starlette and uvicorn (the ``callbacks`` extra) load only when a receiver is made;
reading and auditing callbacks needs neither.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CallbackRow": "_table",
    "CallbackTable": "_table",
    "CALLBACK_COLUMNS": "_read",
    "AUDIT_COLUMNS": "_audit",
    "DEFAULT_PATH": "_app",
    "HEALTH_PATH": "_app",
    "KEY_ENV": "_signature",
    "MAX_BODY_BYTES": "_app",
    "MAX_SKEW_S": "_signature",
    "WebhookKey": "_signature",
    "callback_audit": "_audit",
    "make_app": "_app",
    "read_callbacks": "_read",
    "run": "_serve",
    "serve": "_serve",
    "sign": "_signature",
    "task_ids": "_read",
}


__all__ = sorted(_EXPORTS)  # the names are written once, in _EXPORTS

#: The receiver's modules: they need the ``callbacks`` extra.
_RECEIVER = ("_app", "_serve")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        if _EXPORTS[name] in _RECEIVER:
            from ..extras import require

            for module in ("starlette", "uvicorn"):
                require(module, "the callback receiver")
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
