"""The one exception tree of veo-notebook.

::

    VeoError                      anything this toolkit raises on purpose
    ├── ConfigError               missing/invalid configuration (no API key, key over plain http)
    │   ├── EndpointError (+ApiError) the base URL is not a kie.ai API that answers: nothing
    │   │                         reachable there at first contact (refused, DNS, TLS), or
    │   │                         its first answers all the same batch-wide error (404 ...)
    │   └── MissingExtraError (+ImportError) a feature's optional extra is not installed;
    │                             the message names the command (pip install '...[archive]')
    ├── InputError (ValueError)   input that is not what was asked for (no id column, not a record)
    ├── ApiError                  the API refused a query; carries code, message, task_id
    │   ├── AuthError             401: the key was refused; stops a whole batch at once
    │   └── TransientError        retryable trouble (429, 5xx, 455/500/408, resets, timeouts,
    │                             bodies that are not JSON) that outlived its retries
    ├── StoreError                the local store cannot be opened or written (corrupt file, ...)
    │   └── StoreNotFoundError    a store opened to be read does not exist (+InputError)
    ├── ArchiveError              the archive destination cannot be written or read
    └── SchemaVersionError        a store or Parquet file written by a newer schema version

Low-level errors (``requests``, JSON decoding, ``sqlite3``) are translated into this
tree at one boundary per module, with ``raise ... from exc``. No message ever contains
the API key.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ArchiveError",
    "AuthError",
    "ConfigError",
    "EndpointError",
    "InputError",
    "MissingExtraError",
    "SchemaVersionError",
    "StoreError",
    "StoreNotFoundError",
    "TransientError",
    "VeoError",
]


class VeoError(Exception):
    """Base class of every error veo-notebook raises on purpose."""


class ConfigError(VeoError):
    """Configuration is missing or unsafe (no API key, key over plain http to a remote host)."""


class InputError(VeoError, ValueError):
    """Input is not what the function takes (a CSV without an id column, a non-mapping record)."""


class ApiError(VeoError):
    """The API answered a query with an error.

    ``code`` is the envelope code (or the HTTP status when there was no envelope),
    ``http_status`` the HTTP status, ``task_id`` the task queried, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.task_id = task_id

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (
            _rebuild,
            (type(self), self.message, self.code, self.http_status, self.task_id),
        )


def _rebuild(cls, message, code, http_status, task_id):  # type: ignore[no-untyped-def]
    return cls(message, code=code, http_status=http_status, task_id=task_id)


class AuthError(ApiError):
    """The API refused the key (401, in the HTTP status or the envelope); the batch stops."""


class TransientError(ApiError):
    """A retryable failure (429, 5xx, 455, reset, timeout, bad body) that outlived its retries."""


class StoreError(VeoError):
    """The local store cannot be opened, read or written."""


class StoreNotFoundError(StoreError, InputError):
    """A store opened only to be read (``Store(path, create=False)``) does not exist."""


class EndpointError(ConfigError, ApiError):
    """The base URL does not lead to a kie.ai API: unreachable at first contact, or not kie.ai.

    Raised before any task is recorded as failed, so a typo in ``base_url`` costs a few
    requests and one clear message rather than a batch of rows that all say "404".
    """


class MissingExtraError(ConfigError, ImportError):
    """A feature needs an optional extra that is not installed; ``extra`` names it."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra

    def __reduce__(self):  # keep pickling working (the keyword-only argument)
        return (_rebuild_extra, (self.args[0], self.extra))


def _rebuild_extra(message: str, extra: str) -> MissingExtraError:
    return MissingExtraError(message, extra=extra)


class ArchiveError(VeoError):
    """The archive's destination (folder, bucket) cannot be written or read; the run stops."""


class SchemaVersionError(VeoError):
    """A store or Parquet file was written by a newer schema version than this toolkit knows."""
