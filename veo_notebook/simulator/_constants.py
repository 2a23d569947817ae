"""The simulator's URL paths and shared constants (private; imports nothing).

Every module of the simulator takes its paths, hosts and limits from here, so a path or
a limit is written once and no module imports another just to read a constant.
"""

from __future__ import annotations

# --- the API kie.ai documents -------------------------------------------------------------
#: record-info: ``GET ?taskId=...``.
RECORD_PATH = "/api/v1/veo/record-info"
#: generate: ``POST`` a JSON body.
GENERATE_PATH = "/api/v1/veo/generate"
#: kie.ai's media host: what the records link to (rewritten to :data:`MEDIA_PREFIX`).
KIE_MEDIA_HOST = "https://tempfile.aiquickdraw.com"

# --- the simulator's own routes -----------------------------------------------------------
#: Where the simulator serves the files of its result URLs (no key needed).
MEDIA_PREFIX = "/media/"
#: Admin routes (loopback clients only, no auth, not counted).
ADMIN_PREFIX = "/_sim/"

# --- keys (not secrets: they only open loopback) ------------------------------------------
#: The API key the simulator accepts when none is given.
DEFAULT_API_KEY = "sim-local-key"
#: The webhook key callbacks are signed with when none is given.
DEFAULT_CALLBACK_KEY = "sim-webhook-key"

# --- time ---------------------------------------------------------------------------------
DAY_S = 86400.0
#: kie.ai answers 422 for records (and 404 for files) older than this.
EXPIRY_DAYS = 14
EXPIRY_S = EXPIRY_DAYS * DAY_S
#: The time shapes a task's record can use (``time_format="mixed"``: each task picks one).
TASK_TIME_FORMATS = ("plain", "iso", "epoch_ms")
#: Plain (zone-less) times are UTC+8 (Asia/Shanghai).
PLAIN_OFFSET_S = 8 * 3600
#: Tasks are made in blocks of this many (the unit of determinism and of numpy work).
BLOCK = 1024
