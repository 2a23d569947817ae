"""The table that turns a failed task's errorCode + errorMessage into a category (private).

:data:`ERROR_RULES` is an ordered list; the first rule that matches a row wins. A rule
matches when every condition it sets holds: the error code is in ``codes``, the message
matches ``pattern`` (a case-insensitive regular expression, searched), the status is in
``statuses``. Extend it by building your own list::

    >>> from veo_notebook.analysis import ERROR_RULES, ErrorRule
    >>> rules = [ErrorRule("quota", pattern=r"quota exceeded"), *ERROR_RULES]

and passing ``classify_errors(df, rules=rules)``. Rows no rule matches are ``unknown``.
The regexes run once per distinct (code, message, status), not once per row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..schema import FAILED_STATUSES
from ._kernels import group_codes

__all__ = ["CATEGORY_MEANINGS", "ERROR_RULES", "ErrorRule", "classify"]

#: Statuses whose rows get a category; every other row is NA.


@dataclass(frozen=True)
class ErrorRule:
    """One row of the error table: a category and the conditions that select it."""

    category: str
    codes: frozenset[int] | None = None
    pattern: str | None = None
    statuses: frozenset[str] | None = None
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.codes is not None and not isinstance(self.codes, frozenset):
            object.__setattr__(self, "codes", frozenset(self.codes))
        if self.statuses is not None and not isinstance(self.statuses, frozenset):
            object.__setattr__(self, "statuses", frozenset(self.statuses))
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE))

    def matches(self, code: int | None, message: str | None, status: str | None) -> bool:
        """Whether this rule selects a row with this code, message and status."""
        if self.codes is not None and code not in self.codes:
            return False
        if self._regex is not None and (message is None or not self._regex.search(message)):
            return False
        return self.statuses is None or status in self.statuses


#: The default table. Message rules first (the message says most), code-only fallbacks
#: after them. Messages are those kie.ai documents or clients have captured.
ERROR_RULES: list[ErrorRule] = [
    # "public error unsafe image upload." / "Public error: unsafe image upload" /
    # "public error minor upload" / "public error prominent people upload" /
    # "Rejected by Google's content policy (public error prominent people upload)"
    ErrorRule("unsafe_image", pattern=r"unsafe image|minor upload|prominent people"),
    # "Your request was rejected by Flow(…). You may consider using our other fallback
    # channels, which are likely to succeed." (before content_policy:
    # the reason in brackets may be a content policy)
    ErrorRule("upstream_rejected", pattern=r"rejected by flow|fallback channels"),
    # "Your prompt was flagged by Website as violating content policies."
    ErrorRule("content_policy", pattern=r"content polic|flagged"),
    # "Only English prompts are supported at this time."
    ErrorRule(
        "prompt_language", pattern=r"english prompts?|prompt language|language is not supported"
    ),
    # "Failed to fetch the image. Kindly verify any access limits set by you or your
    # service provider." (errorCode 400 or 451)
    ErrorRule("image_fetch", pattern=r"fetch the image|access limits|image.*(download|access)"),
    ErrorRule("image_fetch", codes=frozenset({451})),
    # "Internal Error - Timeout"; 408 "Upstream is currently experiencing service issues.
    # No result has been returned for over 10 minutes."
    ErrorRule("upstream_timeout", pattern=r"timeout|timed out|no result has been returned"),
    ErrorRule("upstream_timeout", codes=frozenset({408})),
    # "Internal Error, Please try again later."
    ErrorRule("internal_error", pattern=r"internal error|try again later"),
    # "Video generation task failed" (errorCode 501)
    ErrorRule("generation_failed", pattern=r"generation (task )?failed"),
    # "The 4K version of this video is unavailable. Please try a different video."
    ErrorRule("upgrade_unavailable", pattern=r"(4k|1080p) version .* unavailable"),
    ErrorRule("internal_error", codes=frozenset({500})),
    ErrorRule("generation_failed", codes=frozenset({501})),
    ErrorRule("generation_failed", statuses=frozenset({"generation_failed"})),  # flag 3
]

#: One line per category, for reports and docs.
CATEGORY_MEANINGS: dict[str, str] = {
    "unsafe_image": "an input image was refused (unsafe, a minor, prominent people)",
    "content_policy": "the prompt was flagged by the content policy",
    "prompt_language": "the prompt is not in a supported language (English only)",
    "image_fetch": "an input image could not be fetched (access limits, 451)",
    "upstream_rejected": "the upstream (Google Flow) refused the request; another channel may work",
    "upstream_timeout": "the upstream did not answer in time (Internal Error - Timeout, 408)",
    "internal_error": "kie.ai internal error (500); retrying later may work",
    "generation_failed": "the generation itself failed (501, or successFlag 3)",
    "upgrade_unavailable": "a 1080p/4K upgrade of this video is not available",
    "unknown": "no rule matched: read the raw message",
}


def classify(
    codes: pd.Series, messages: pd.Series, statuses: pd.Series, rules: Sequence[ErrorRule]
) -> pd.Series:
    """Category of each row (categorical, NA where the status is not a failure)."""
    order: list[str] = []
    for r in rules:
        if r.category not in order:
            order.append(r.category)
    if "unknown" not in order:
        order.append("unknown")
    if isinstance(statuses.dtype, pd.CategoricalDtype):  # the typed frame: compare codes
        cats = list(statuses.cat.categories)
        wanted = [cats.index(s) for s in FAILED_STATUSES if s in cats]
        failed = np.isin(statuses.cat.codes.to_numpy(), wanted)
    else:
        failed = statuses.isin(list(FAILED_STATUSES)).fillna(False).to_numpy(dtype=bool)
    out_codes = np.full(len(codes), -1, dtype=np.int16)
    if failed.any():
        keys = [
            codes[failed].astype("Int64"),
            messages[failed].astype("string"),
            statuses[failed].astype("string"),
        ]
        row_group, uniq = group_codes(keys, ["c", "m", "s"])
        cat_of_unique = np.empty(len(uniq), dtype=np.int16)
        for i, (c, m, s) in enumerate(uniq):
            code = None if pd.isna(c) else int(c)
            msg = None if pd.isna(m) else str(m)
            st = None if pd.isna(s) else str(s)
            cat = next((r.category for r in rules if r.matches(code, msg, st)), "unknown")
            cat_of_unique[i] = order.index(cat)
        out_codes[failed] = cat_of_unique[row_group]
    cat = pd.Categorical.from_codes(out_codes, categories=order)
    return pd.Series(cat, index=codes.index, name="error_category")
