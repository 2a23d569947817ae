"""Vectorised statistics behind :mod:`veo_notebook.analysis` (private).

Everything here works on plain numpy arrays and integer group codes, so that one pass
over a million rows serves every group at once: no Python loop runs per row, and none
per group except where noted.

>>> import numpy as np
>>> lo, hi = wilson_interval(np.array([5]), np.array([100]))
>>> round(float(lo[0]), 4), round(float(hi[0]), 4)
(0.0215, 0.1118)
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

#: The confidence of every interval (analysis, plots, report) unless one is asked for.
CONFIDENCE = 0.95

__all__ = [
    "binom_ppf",
    "group_codes",
    "grouped_order",
    "grouped_sort_values",
    "km_band",
    "km_from_counts",
    "km_quantiles",
    "km_table",
    "linear_combine",
    "linear_quantiles",
    "linear_ranks",
    "order_stat_ci",
    "order_stat_ranks",
    "pct_name",
    "wilson_interval",
]


def pct_name(q: float) -> str:
    """Column name of percentile ``q``: 0.5 → ``p50``, 0.995 → ``p99.5``.

    >>> pct_name(0.5), pct_name(0.995)
    ('p50', 'p99.5')
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile {q!r} is not between 0 and 1")
    return "p" + f"{q * 100:.6f}".rstrip("0").rstrip(".")


def group_codes(keys: list[pd.Series], names: list[str]) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row (0..G-1, sorted by key, NA last) and the index of the G groups.

    With no keys every row is in the one group ``"all"``.
    """
    n = len(keys[0]) if keys else 0
    if not keys:
        return np.zeros(0, dtype=np.intp), pd.Index(["all"])
    combined = np.zeros(n, dtype=np.int64)
    uniques: list[pd.Index] = []
    sizes: list[int] = []
    for k in keys:
        codes, uniq = pd.factorize(k, sort=True, use_na_sentinel=False)
        uniq = pd.Index(uniq)
        sizes.append(max(len(uniq), 1))
        uniques.append(uniq)
        combined = combined * sizes[-1] + codes
    total = int(np.prod(sizes, dtype=np.int64))
    if total <= 4 * max(n, 1) + 1024:  # O(n) relabelling through a dense lookup table
        used = np.flatnonzero(np.bincount(combined, minlength=total))
        lookup = np.full(total, -1, dtype=np.intp)
        lookup[used] = np.arange(len(used))
        out = lookup[combined]
    else:  # many sparse combinations: sort instead
        used, out = np.unique(combined, return_inverse=True)
    levels = []
    rest = used
    for size in reversed(sizes):
        levels.append(rest % size)
        rest = rest // size
    levels.reverse()
    arrays = [u.take(lv) for u, lv in zip(uniques, levels, strict=True)]
    if len(arrays) == 1:
        index = pd.Index(arrays[0], name=names[0])
    else:
        index = pd.MultiIndex.from_arrays(arrays, names=names)
    return out.astype(np.intp, copy=False), index


_LOOP_GROUPS = 20_000  # below this, sort each group's segment in place (fast SIMD sorts)


def _by_code(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    small = codes.astype(np.int16) if n_groups < 2**15 else codes
    order = np.argsort(small, kind="stable")  # a radix sort on small integer codes
    counts = np.bincount(codes, minlength=n_groups)
    starts = (np.cumsum(counts) - counts).astype(np.intp)
    return order, starts, counts


def grouped_sort_values(values: np.ndarray, codes: np.ndarray, n_groups: int):
    """``values`` sorted within each group: (sorted values, group start offsets, counts)."""
    if n_groups >= _LOOP_GROUPS:
        order, starts, counts = grouped_order(values, codes, n_groups)
        return values[order], starts, counts
    order, starts, counts = _by_code(codes, n_groups)
    xs = values[order]
    for s, c in zip(starts.tolist(), counts.tolist(), strict=True):
        if c > 1:
            xs[s : s + c].sort()
    return xs, starts, counts


def grouped_order(values: np.ndarray, codes: np.ndarray, n_groups: int):
    """Order that sorts ``values`` within each group, group start offsets, group counts."""
    if n_groups >= _LOOP_GROUPS:
        order = np.lexsort((values, codes))
        counts = np.bincount(codes, minlength=n_groups)
        starts = (np.cumsum(counts) - counts).astype(np.intp)
        return order, starts, counts
    order, starts, counts = _by_code(codes, n_groups)
    for s, c in zip(starts.tolist(), counts.tolist(), strict=True):
        if c > 1:
            seg = order[s : s + c]
            order[s : s + c] = seg[np.argsort(values[seg])]
    return order, starts, counts


def linear_ranks(counts: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two 1-based ranks ``numpy.quantile(method="linear")`` interpolates between, and
    the weight of the second, for samples of ``counts`` values (ranks 0 where empty)."""
    n = np.asarray(counts, dtype=np.int64)
    virtual = (np.maximum(n, 1) - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = n[above] - 1
    nxt[above] = n[above] - 1
    gamma = virtual - prev  # as numpy: from the virtual index before clipping
    empty = n <= 0
    lo = (prev + 1).astype(np.int64)
    hi = (nxt + 1).astype(np.int64)
    lo[empty] = 0
    hi[empty] = 0
    return lo, hi, gamma


def linear_combine(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """``a + (b − a)·gamma`` computed exactly as numpy's ``linear`` quantile does."""
    diff = b - a
    res = a + diff * gamma
    hi = gamma >= 0.5
    res[hi] = b[hi] - diff[hi] * (1 - gamma[hi])
    return res


def linear_quantiles(
    xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float
) -> np.ndarray:
    """Quantile ``q`` of each sorted segment, exactly as ``numpy.quantile(method="linear")``."""
    out = np.full(len(counts), np.nan)
    ok = counts > 0
    if not ok.any():
        return out
    lo, hi, gamma = linear_ranks(counts[ok], q)
    s = starts[ok]
    out[ok] = linear_combine(xs[s + lo - 1], xs[s + hi - 1], gamma)
    return out


_TAIL_SD = 40.0  # pmf terms beyond this many sd from the mean are below 1e-300: left out


def binom_ppf(p: float, n: np.ndarray, q: float) -> np.ndarray:
    """Quantile of Binomial(n, q) for each ``n``: the least k with P(X ≤ k) ≥ p.

    Exact (what ``scipy.stats.binom.ppf`` gives, which the tests check): the pmf is
    built from the ratio of neighbouring terms around the mean, normalised by its sum,
    and the tail above the mean is summed from the top for ``p > 0.5``, so no
    cancellation. One small numpy pass per distinct ``n`` (at most √(2·rows) of them).

    >>> binom_ppf(0.025, np.array([10, 100]), 0.5).tolist()
    [2, 40]
    """
    n = np.asarray(n, dtype=np.int64)
    out = np.zeros(len(n), dtype=np.int64)
    for size in np.unique(n):
        out[n == size] = _binom_ppf_one(p, int(size), q)
    return out


def _binom_ppf_one(p: float, n: int, q: float) -> int:
    if n <= 0 or q <= 0.0:
        return 0
    if q >= 1.0:
        return n
    mean, sd = n * q, float(np.sqrt(n * q * (1.0 - q)))
    lo = max(0, int(np.floor(mean - _TAIL_SD * sd)) - 10)
    hi = min(n, int(np.ceil(mean + _TAIL_SD * sd)) + 10)
    k = np.arange(lo, hi, dtype=float)  # log pmf(k+1) - log pmf(k), for k in lo..hi-1
    steps = np.log(n - k) - np.log(k + 1.0) + (np.log(q) - np.log1p(-q))
    log_pmf = np.concatenate(([0.0], np.cumsum(steps)))
    w = np.exp(log_pmf - log_pmf.max())
    total = w.sum()
    if p <= 0.5:  # first k with cdf(k) >= p
        idx = int(np.searchsorted(np.cumsum(w) / total, p, side="left"))
    else:  # cdf(k) >= p  <=>  P(X > k) <= 1 - p, summed from the top
        above = np.concatenate((np.cumsum(w[::-1])[::-1][1:], [0.0])) / total
        idx = int(np.argmax(above <= 1.0 - p))
    return lo + min(idx, hi - lo)


def order_stat_ranks(
    counts: np.ndarray, q: float, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks of the exact distribution-free interval for the ``q`` quantile.

    ``l = F⁻¹(α/2)``, ``u = F⁻¹(1 − α/2) + 1`` with F the Binomial(n, q) distribution,
    so that the coverage is at least ``confidence`` (for continuous data). A rank
    outside 1..n means the sample is too small to give that bound.
    """
    alpha = 1.0 - confidence
    n = np.asarray(counts, dtype=np.int64)
    l_rank = binom_ppf(alpha / 2, n, q)
    u_rank = binom_ppf(1 - alpha / 2, n, q) + 1
    return l_rank, u_rank


def order_stat_ci(
    xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution-free interval for the ``q`` quantile of each segment.

    The bounds are the order statistics at :func:`order_stat_ranks`; a bound that would
    need a rank outside 1..n is NaN: the sample is too small to give it.
    """
    lo = np.full(len(counts), np.nan)
    hi = np.full(len(counts), np.nan)
    ok = counts > 0
    if not ok.any():
        return lo, hi
    n = counts[ok]
    s = starts[ok]
    l_rank, u_rank = order_stat_ranks(n, q, confidence)
    lo_ok = l_rank >= 1
    hi_ok = u_rank <= n
    lo_v = np.full(len(n), np.nan)
    hi_v = np.full(len(n), np.nan)
    lo_v[lo_ok] = xs[s[lo_ok] + l_rank[lo_ok] - 1]
    hi_v[hi_ok] = xs[s[hi_ok] + u_rank[hi_ok] - 1]
    lo[ok] = lo_v
    hi[ok] = hi_v
    return lo, hi


def wilson_interval(
    k: np.ndarray, n: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (no continuity correction) for ``k`` successes in ``n`` trials.

    NaN where ``n`` is 0.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2n = z * z / n
        denom = 1 + z2n
        centre = (p + z2n / 2) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
    lo = np.where(n > 0, lo, np.nan)
    hi = np.where(n > 0, hi, np.nan)
    # exact endpoints at the edges (the formula gives them up to rounding)
    lo = np.where((n > 0) & (k == 0), 0.0, lo)
    hi = np.where((n > 0) & (k == n), 1.0, hi)
    return lo, hi


def km_table(
    times: np.ndarray, events: np.ndarray, codes: np.ndarray, n_groups: int
) -> pd.DataFrame:
    """Kaplan–Meier product-limit table of every group, one row per distinct time.

    ``events`` is True for an observed event, False for a right-censored time. The
    counts per distinct (group, time) go to :func:`km_from_counts`.
    """
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=bool)
    order, _starts, counts = grouped_order(times, codes, n_groups)
    xs = times[order]
    ev = events[order]
    order_codes = np.repeat(np.arange(n_groups), counts)
    new = np.ones(len(xs), dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (order_codes[1:] != order_codes[:-1])
    run_start = np.flatnonzero(new)
    run_id = np.cumsum(new) - 1
    size = np.bincount(run_id).astype(np.int64) if len(xs) else np.zeros(0, np.int64)
    d = np.bincount(run_id, weights=ev).astype(np.int64) if len(xs) else np.zeros(0, np.int64)
    return km_from_counts(order_codes[run_start], xs[run_start], d, size - d, n_groups)


def km_from_counts(
    group: np.ndarray, time: np.ndarray, events: np.ndarray, censored: np.ndarray, n_groups: int
) -> pd.DataFrame:
    """Kaplan–Meier table from event and censoring counts per distinct (group, time).

    What every engine computes is these counts; the product-limit step is this one
    function. At a time with both, events come first (the censored are still at risk
    then), the usual convention. Columns: ``group`` (code), ``time_s``, ``at_risk``,
    ``events``, ``censored``, ``survival`` and ``greenwood`` (Σ d / (n (n − d)) so far:
    the variance of log Ŝ(t); infinite once Ŝ reaches 0).
    """
    group = np.asarray(group, dtype=np.intp)
    time = np.asarray(time, dtype=float)
    d = np.asarray(events, dtype=np.int64)
    c = np.asarray(censored, dtype=np.int64)
    if len(time) == 0:
        return pd.DataFrame(
            {
                "group": np.zeros(0, np.intp),
                "time_s": np.zeros(0),
                "at_risk": np.zeros(0, np.int64),
                "events": np.zeros(0, np.int64),
                "censored": np.zeros(0, np.int64),
                "survival": np.zeros(0),
                "greenwood": np.zeros(0),
            }
        )
    if not _sorted(group, time):  # the engines' counts come sorted: no copy then
        order = np.lexsort((time, group))
        group, time, d, c = group[order], time[order], d[order], c[order]
        del order
    # full-length temporaries made in place, each dropped once used (1.7M rows at 20M)
    size = d + c
    totals = np.bincount(group, weights=size, minlength=n_groups).astype(np.int64)
    before = np.cumsum(size)  # rows up to this time, over all groups
    before -= size
    del size
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    group_start = np.where(first, before, 0)
    del first
    np.maximum.accumulate(group_start, out=group_start)
    before -= group_start  # now: the group's rows before this time
    del group_start
    at_risk = totals[group]
    at_risk -= before
    del before
    step = d / at_risk
    np.subtract(1.0, step, out=step)
    surv = pd.Series(step).groupby(group).cumprod().to_numpy()
    del step
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = at_risk - d
        pairs *= at_risk
        gw_step = d / pairs
        del pairs
    gw_step[d == 0] = 0.0
    gw_step[(d > 0) & (d >= at_risk)] = np.inf
    greenwood = pd.Series(gw_step).groupby(group).cumsum().to_numpy()
    del gw_step
    columns = {
        "group": group,
        "time_s": time,
        "at_risk": at_risk,
        "events": d,
        "censored": c,
        "survival": surv,
        "greenwood": greenwood,
    }
    return pd.DataFrame(columns, copy=False)  # the arrays as they are, not consolidated


def _sorted(group: np.ndarray, time: np.ndarray) -> bool:
    """Whether the rows are in (group, time) order already."""
    if len(group) < 2:
        return True
    up = group[1:] > group[:-1]
    return bool((up | ((group[1:] == group[:-1]) & (time[1:] >= time[:-1]))).all())


def km_quantiles(
    table: pd.DataFrame, n_groups: int, q: float, curve: np.ndarray | None = None
) -> np.ndarray:
    """Quantile ``q`` of each group's KM curve: the first time with Ŝ(t) ≤ 1 − q.

    NaN where the curve never gets that low (too much censoring). With nothing
    censored this equals ``numpy.quantile(x, q, method="inverted_cdf")``. ``curve``
    replaces Ŝ (a confidence band, for the quantile's interval).
    """
    out = np.full(n_groups, np.nan)
    if len(table) == 0:
        return out
    surv = table["survival"].to_numpy() if curve is None else curve
    hit = table["events"].to_numpy() > 0
    if q != 0:
        hit &= surv <= (1.0 - q) + 1e-12
    at = np.flatnonzero(hit)  # rows are time-sorted per group: a group's first hit is it
    del hit
    groups, first = np.unique(table["group"].to_numpy()[at], return_index=True)
    out[groups] = table["time_s"].to_numpy()[at[first]]
    return out


def km_band(table: pd.DataFrame, side: int, confidence: float = CONFIDENCE) -> np.ndarray:
    """The pointwise lower (``side`` −1) or upper (+1) band of Ŝ: Ŝ·exp(∓z·√greenwood)
    (log-transformed; the upper capped at 1), one at a time (a curve is 1.7M rows).

    The times where they fall to 1 − q bound the KM quantile (Brookmeyer–Crowley): the
    method of R's ``quantile.survfit`` with its default ``conf.type="log"``. Pass them
    to :func:`km_quantiles` as ``curve``.
    """
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    surv = table["survival"].to_numpy()
    band = np.sqrt(table["greenwood"].to_numpy())
    with np.errstate(invalid="ignore", over="ignore"):  # in place
        band *= z if side > 0 else -z
        np.exp(band, out=band)
        band *= surv
        if side > 0:
            np.minimum(band, 1.0, out=band)
    band[~(surv > 0)] = 0.0
    return band
