"""kie.ai's webhook signature, defined once: the receiver verifies it, the simulator signs.

``X-Webhook-Signature`` = base64(HMAC-SHA256(``taskId + "." + X-Webhook-Timestamp``,
key)), with the timestamp in Unix seconds. The key is the account's webhook HMAC key,
read from ``KIE_WEBHOOK_HMAC_KEY`` only (here, in one place) and never shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from ..config import ENV_WEBHOOK_KEY
from ..errors import ConfigError

__all__ = [
    "KEY_ENV",
    "MAX_SKEW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookKey",
    "key_from_env",
    "sign",
]

KEY_ENV = ENV_WEBHOOK_KEY
SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
#: A timestamp further than this from the receiver's clock is a replay (or a broken clock).
MAX_SKEW_S = 300.0


class WebhookKey:
    """The webhook HMAC key: signs and verifies, and never shows itself (repr, str, pickle)."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode() if isinstance(key, str) else bytes(key)
        if not raw:
            raise ConfigError(f"the webhook HMAC key is empty; set {KEY_ENV} to your kie.ai key")
        self._key = raw

    def sign(self, task_id: str, timestamp: str) -> str:
        """The signature kie.ai sends for ``task_id`` at ``timestamp`` (both as sent)."""
        mac = hmac.new(self._key, f"{task_id}.{timestamp}".encode(), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode("ascii")

    def verify(self, task_id: str, timestamp: str, signature: str) -> bool:
        """Whether ``signature`` is right, compared in constant time."""
        return hmac.compare_digest(self.sign(task_id, timestamp).encode(), signature.encode())

    def __repr__(self) -> str:
        return "WebhookKey(****)"

    __str__ = __repr__

    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise TypeError("a WebhookKey is not picklable (it would write the key out)")


def sign(task_id: str, timestamp: str | int, key: str | bytes | WebhookKey) -> str:
    """base64(HMAC-SHA256(``task_id + "." + timestamp``, key)): the ``X-Webhook-Signature``.

    >>> sign("veo_task_1", 1767658623, "k")
    'FodGHb+eYNnX5YWc1njfxf1XMpT7eAY3K9b5mS6B89c='
    """
    k = key if isinstance(key, WebhookKey) else WebhookKey(key)
    return k.sign(task_id, str(timestamp))


def key_from_env() -> WebhookKey | None:
    """The key in ``KIE_WEBHOOK_HMAC_KEY``, or None when it is unset or blank."""
    value = os.environ.get(KEY_ENV, "")
    return WebhookKey(value) if value.strip() else None
