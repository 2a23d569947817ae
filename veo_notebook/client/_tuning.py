"""The adaptive limiter's tuning: each number it paces by, named and explained once.

Measured against every kind of server limit in ``bench/limits.py`` (``bench/fetch.py``
prints the table; the figures are in ``bench/README.md``).
"""

from __future__ import annotations

#: slow start multiplies the rate by this every round-trip while answers are clean; less
#: than TCP's 2: against a 1-second window, what is sent in the round-trip before the
#: first refusal comes back is refused, ln(gain) x the limit (2: 0.69x, 1.6: 0.47x)
SLOW_START_GAIN = 1.6
#: first rate, requests/s: modest, and slow start multiplies it every round-trip
START_RATE = 10.0
#: the rate never goes below this (one request every two seconds)
MIN_RATE = 0.5
#: in-flight cap = rate x round-trip x this: room for jitter in the answers' timing
WINDOW_HEADROOM = 2.0
#: the in-flight cap never goes below this (a slow start needs a few requests out)
MIN_WINDOW = 4
#: a cut sets the rate to this share of what the server accepted in the last second
BACKOFF = 0.95
#: once a check confirms the limit, the rate holds at this share of it ...
HOLD = 0.99
#: ... holding there, a cut needs this many refusals in a second more than the background
#: explains (elsewhere 1; past the limit, 0)
HOLD_SLACK = 2.0
#: ... for this many seconds before probing above it again
PLATEAU_S = 30.0
#: a check judges at least this many answers (fewer say too little about the cause)
CHECK_ANSWERS = 30
#: the congestion signal looks at the last second's answers, or at least this many
SIGNAL_ANSWERS = 20
#: answers remembered for the signals (several seconds' worth at the in-flight cap)
ANSWERS_KEPT = 4096
#: the background share of refusals is taken to be at most this
MAX_BACKGROUND = 0.5
#: probing gain: the rate grows by this fraction of itself per second after a cut
PROBE_GAIN = 0.01
#: the probing gain doubles after every this many seconds without congestion
PROBE_ACCEL_S = 2.0
#: a limit found once may be a fluke: the rate goes back up this much faster, ...
FAST_GAIN = 0.1
#: ... and a limit found again within this share of the first is taken as found
SAME_CEILING = 0.1
#: refused while holding under a limit found again, the limit is lowered by this factor
LOWER = 0.98
#: a clean rate this many times the limit found means there was none: slow start again
RESTART = 1.25
#: ... for this many seconds (a fixed window refuses the excess only at its second's end)
RESTART_S = 2.0
#: seconds of answers the congestion signal looks at (the server's window is 1 s)
SIGNAL_S = 1.0
#: a check that still sees refusals cuts again to what the server accepted during it, at
#: most this many times in a row, while the share refused falls to this share of the
#: check before (a cut that did not help: a token bucket's burst or a fixed window's
#: double second had inflated the estimate); when it does not fall, it is the background
RECUTS = 3
#: the share refused "fell" when it is this many standard deviations under the last
FELL_SIGMAS = 2.0
#: a share refused above this is never taken for the background: the cuts go on, each
#: at least to this share of the last estimate (a fixed window's estimate can stay high)
NOT_BACKGROUND = 0.15
STEP = 0.85
#: a check re-cuts at once when this many requests sent after the cut were refused over
#: at least this many seconds: it measures what the server let in between them
EARLY_REFUSALS = 6
EARLY_SPAN = 0.2
#: ... and at least this share of those sent in between (random 429s rarely are)
EARLY_SHARE = 0.25
#: ... a cut again at most halves the estimate (a few let in between say little), ...
EARLY_FLOOR = 0.5
#: ... but when this many or more got in between, at a rate under the second before's,
#: that rate is a token bucket's refill (its burst spent): the cut may go down to this
#: share of the estimate, and the rate a check then finds clean is held (no fast re-probe)
EARLY_BETWEEN = 8
DRAINED_FLOOR = 0.25
#: when none of those sent between them was let in, a fixed window is full until its
#: edge: one request every this many seconds finds the edge (each costs a refusal); ...
EDGE_PROBE_S = 0.05
#: ... told from this many refusals over this many seconds (fewer than a re-cut needs:
#: everything sent until the edge is refused, at 300 ms per answer 10 more a cut)
FULL_REFUSALS = 4
FULL_SPAN = 0.1
#: refusals over this many seconds or more, all within this share of a second of one
#: phase of the clock, are a fixed window's edge (held just over its limit), not random
EDGE_REFUSALS = 3
EDGE_WIDTH = 0.1
#: two clusters of this many refusals or more (each within EDGE_WIDTH) after a cut, this
#: many seconds or more apart and nothing refused between, are a fixed window's edges:
#: what was let in between is what the window holds, and the cut is to that at once
EDGE_CLUSTER = 2
EDGE_GAP = 0.5
#: a trickle of refusals over this many seconds, above the background, is the limit too
#: (a limit found a little high: a fixed window lets up to twice its rate through a
#: sliding second); the cut is then to what the server accepted over them
HOLD_LOOK_S = 5.0
#: ... when more refusals than the background explains by this many (a refusal or two
#: in 5 s come from a loaded machine's jitter: requests sent on time, delayed on their way)
TRICKLE_SLACK = 3.0
#: at most this many such cuts (random 429s under the background learned so far would
#: otherwise ratchet the rate down, a few per cent each time)
TRICKLE_CUTS = 2
#: a concurrency cap is read from refusals that all come above some number in flight
#: while nearly all accepted requests were at or below it: at least this many refusals, ...
CAP_REFUSALS = 3
#: ... at most this share of accepted requests above it, over the last this many seconds
CAP_ABOVE = 0.1
CAP_LOOK_S = 2.0
#: a cap found is probed one higher after this many seconds without a refusal
CAP_PROBE_S = 5.0
#: slow start ends when this many of the last SLOW_START_LOOK answers were refused
SLOW_START_REFUSED = 4
SLOW_START_LOOK = 8
#: slow start pauses while the smoothed round-trip exceeds its recent minimum by this
#: factor (a queue building, or a busy machine) ...
RTT_RISE = 4.0
#: ... the least round-trip of the last this many seconds (a slower machine is the new
#: normal after a while: slow start resumes)
RTT_MIN_S = 3.0
#: a slot the server's window frees is used this share of a round-trip after it frees
REPLAY_MARGIN = 0.1
#: a Retry-After longer than this pauses every request, not just the refused one
LONG_RETRY_AFTER = 1.0
#: a sender that wakes late sends the slots it missed in the last this many seconds at
#: once (while the last second's sends stay under the rate): a loaded machine wakes its
#: threads tens of milliseconds late, and each slot lost is a request not sent
CATCH_UP_S = 0.2
#: the rate grows only if a request waited for the limiter within this many seconds
BOUND_S = 1.0
#: weight of a new round-trip sample in the smoothed round-trip (TCP's 1/8)
RTT_WEIGHT = 0.125
#: waiters behind the first in line wake this often to see a cancel (seconds)
CANCEL_POLL = 0.2
