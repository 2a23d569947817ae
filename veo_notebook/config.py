"""The names a user types, defined once: environment variables and option values.

Light on purpose (standard library only): the command line builds its parser and help
from these without loading pandas, and each owner imports its names from here — the
client reads :data:`ENV_KEY` and :data:`ENV_BASE_URL` (:func:`base_url`), the store
:data:`ENV_STORE`, the callback receiver :data:`ENV_WEBHOOK_KEY`, the checks
:data:`ENV_NOTIFY`, ``fetch_records`` its
``refresh`` modes (:data:`REFRESH_MODES`).

>>> base_url() if ENV_BASE_URL not in os.environ else DEFAULT_BASE_URL
'https://api.kie.ai'
>>> list(REFRESH_MODES)
['pending', 'all', 'none']
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_KEY",
    "ENV_NOTIFY",
    "ENV_STORE",
    "ENV_WEBHOOK_KEY",
    "REFRESH_MODES",
    "Refresh",
    "base_url",
]

# --- environment ----------------------------------------------------------------------------
#: The kie.ai API key (never a flag, never printed).
ENV_KEY = "KIE_API_KEY"
#: The API base URL, when not given to the client (a proxy, or the simulator).
ENV_BASE_URL = "KIE_BASE_URL"
DEFAULT_BASE_URL = "https://api.kie.ai"
#: The store the command line keeps its history in, instead of the default one.
ENV_STORE = "VEO_STORE"
#: The kie.ai webhook HMAC key the callback receiver verifies signatures with.
ENV_WEBHOOK_KEY = "KIE_WEBHOOK_HMAC_KEY"
#: The webhook ``veo-notebook check`` tells of a change of state (a secret: shown masked).
ENV_NOTIFY = "VEO_NOTIFY_URL"

# --- option values --------------------------------------------------------------------------
#: ``fetch_records(refresh=...)`` / ``veo-notebook fetch --refresh``: which ids are asked.
Refresh = Literal["pending", "all", "none"]
REFRESH_MODES: dict[Refresh, str] = {
    "pending": "ask only for tasks not terminal in the store",
    "all": "ask for every id",
    "none": "the store alone (no request, no key; the store must exist)",
}


def base_url() -> str:
    """The API base URL: ``$KIE_BASE_URL`` if set (and not blank), else kie.ai's."""
    return os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL
