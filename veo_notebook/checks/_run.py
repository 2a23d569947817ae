"""One unattended run: check a store, keep the run, notify on a change of state (private).

This is what ``veo-notebook check`` does each time cron starts it. The state changes
only once the webhook took the message, so a receiver that was down hears of the change
on the next run; without a webhook nothing is announced and the state stays as it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..store import Store
from ._evaluate import check
from ._notify import Delivery, NotifyError, message, post
from ._table import Change, changes, record_run, save_state
from ._text import describe

__all__ = ["RunResult", "breach_lines", "run"]


@dataclass(frozen=True)
class RunResult:
    """What a run found and did: the rows, the changes, and the delivery (if any)."""

    rows: pd.DataFrame
    changes: list[Change] = field(default_factory=list)
    delivery: Delivery | None = None
    notify_error: str | None = None  # the webhook did not take the message (masked URL)

    @property
    def breached(self) -> pd.DataFrame:
        """The breached rows."""
        return self.rows[self.rows["breached"].to_numpy(dtype=bool)]


def run(
    store: Store,
    rules: object,
    *,
    window: str,
    by: str | Sequence[str] | None = None,
    notify: str | None = None,
    strict: bool = False,
    now: object = None,
) -> RunResult:
    """Check ``store``, keep the rows in its ``check_runs``, and POST the changes to
    ``notify`` (one message, only when a state changed). When the webhook does not take
    it after its retries, ``notify_error`` says so and the state stays, for the next run.

    >>> result = run(store, "failure_rate > 5%", window="1D", notify=url)  # doctest: +SKIP
    """
    rows = check(store, rules, window=window, by=by, now=now, strict=strict)
    at = time.time()
    record_run(store, rows, at, strict)
    if notify is None:
        return RunResult(rows)
    found = changes(store, rows)
    if not found:
        return RunResult(rows, found)
    try:
        delivery = post(notify, message(found, _source_name(store)))
    except NotifyError as exc:
        return RunResult(rows, found, None, str(exc))
    save_state(store, found, at)
    return RunResult(rows, found, delivery)


def _source_name(store: Store) -> str:
    from pathlib import Path

    return Path(store.path).name


def breach_lines(rows: pd.DataFrame) -> list[str]:
    """One line per breached row: rule, group, value [interval], n."""
    return [describe(r) for r in rows.to_dict("records") if r["breached"]]
