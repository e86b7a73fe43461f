"""Rolling windows of every measure per series, updated incrementally (amortised O(1) per event).

Each window of length W is kept as P panes of W/P seconds plus a running total. An event is added to
the pane its timestamp falls in and to the total; when time moves past a pane, the pane is subtracted
from the total. The window at time ``now`` therefore holds exactly the events whose pane index
``floor(ts / (W/P))`` is greater than ``floor(now' / (W/P)) - P``, where ``now'`` is the later of the
clock and the newest event seen. Late events inside that span are counted in their own pane; older
ones only reach the cumulative totals.

Over 500 lines for a reason: the windows, their panes, the nesting and the aggregator's per-event
loop are one hot path, tuned together (names bound locally, the common case without a call), and
the measures worked out from a window's total sit beside the counters they read.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cxmon import sketch
from cxmon.business_time import Calendar
from cxmon.config import OTHER, Config, Step, known_labels
from cxmon.events import ContactEvent, EventKind
from cxmon.measures import abandon_rate_denominator, service_level_denominator
from cxmon.rows import (
    AGENTS_AVAILABLE,
    AGENTS_STAFFED,
    CHANNEL,
    CONTACT_ID,
    CONTACTS_WAITING,
    CUSTOMER_ID,
    DURATION,
    KIND,
    NO_NUMBER,
    QUEUE,
    SCORE,
    SOURCE,
    TS,
    WAIT,
    Row,
    row_of,
)
from cxmon.snapshot import RESOLUTION_BUCKETS, WAIT_BUCKETS, SeriesKey

# Pane counter slots.
OFFERED: Final = 0
ANSWERED: Final = 1
ANSWERED_WITHIN: Final = 2
ABANDONED: Final = 3
SHORT_ABANDONED: Final = 4
WAIT_SUM: Final = 5  # waits of answered contacts
ESCALATED: Final = 6
TRANSFERRED: Final = 7
RESOLVED: Final = 8
REOPENED: Final = 9
FEEDBACK_N: Final = 10
FEEDBACK_SUM: Final = 11
LOST: Final = 12
ANSWERED_TIMED: Final = 13  # answered contacts whose wait is known
SURVEYED: Final = 14  # surveys sent (feedback events without a score)
NEXT_REPLIED: Final = 15  # agents' replies to a customer's later message
NEXT_REPLY_WITHIN: Final = 16  # those within the step's next-reply target
N_SLOTS: Final = 17
FRACTIONAL: Final = (WAIT_SUM, FEEDBACK_SUM)
"""Slots that add up fractions (the others count whole contacts)."""
FIXED: Final = 2**40
"""Waits and scores are added up in units of 2**-40 (Python ints, so exactly): a window's sum is
then the same whatever order its panes came in and went out, and whenever it is read."""
_ZERO: Final = [0] * N_SLOTS
"""A pane's counters before anything is counted: Python ints, so a count (a small int, which the
interpreter keeps ready-made) costs no allocation as it is added and taken away, where a float
would cost one at every change. :func:`window_measures` gives the counts out as floats."""


def _fixed(value: float) -> int:
    """``value`` in units of 1/FIXED (a figure that is not finite adds nothing)."""
    try:
        return int(value * FIXED)
    except (ValueError, OverflowError):
        return 0


STRIKE_WINDOW: Final = 86400.0
_ROUTE_CACHE_LIMIT: Final = 10_000
ANSWERS_MAX: Final = 100_000
"""Survey answers a series remembers, to replace one when its contact's answer changes."""

# Module-level names for the kinds: _add_rows tests them for every event, and a global is cheaper
# than an attribute of the enum class.
_ARRIVED: Final = EventKind.ARRIVED
_ANSWERED: Final = EventKind.ANSWERED
_ABANDONED: Final = EventKind.ABANDONED
_RESOLVED: Final = EventKind.RESOLVED
_ESCALATED: Final = EventKind.ESCALATED
_TRANSFERRED: Final = EventKind.TRANSFERRED
_REOPENED: Final = EventKind.REOPENED
_FEEDBACK: Final = EventKind.FEEDBACK
_LOST: Final = EventKind.LOST
_STAFFING: Final = EventKind.STAFFING
_HEARTBEAT: Final = EventKind.HEARTBEAT
_REPLIED: Final = EventKind.REPLIED
_PAUSED: Final = EventKind.PAUSED
_RESUMED: Final = EventKind.RESUMED
_KIND_OF: Final = {kind.value: kind for kind in EventKind}


_ZERO_BIN: Final = sketch.ZERO
_MIN_VALUE: Final = sketch.MIN_VALUE
_LOG_GAMMA: Final = sketch.LOG_GAMMA
_WAIT_EDGES: Final[tuple[float, ...]] = tuple(float(edge) for edge in WAIT_BUCKETS)
_RESOLUTION_EDGES: Final[tuple[float, ...]] = tuple(float(edge) for edge in RESOLUTION_BUCKETS)


def _bucket(edges: tuple[float, ...], value: float) -> int:
    """``bisect.bisect_left(edges, value)`` as a loop over a dozen edges (compiled, no call into
    Python per event): the histogram bucket of ``value``."""
    i = 0
    n = len(edges)
    while i < n and edges[i] < value:
        i += 1
    return i


class Pane:
    """Counters and sketches for one slice of time (or a window's running total)."""

    __slots__ = ("c", "idx", "res", "shared", "wait")

    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.c = list(_ZERO)
        self.wait: dict[int, int] = {}
        self.res: dict[int, int] = {}
        self.shared = False
        """True when a nested window's ``_pending`` holds this pane's lists: change copies then."""


class Window:
    """One rolling window of one series.

    Windows of one series nest when each pane length is a whole multiple of the next shorter
    window's (the default 10 s, 30 s and 120 s do): a window then keeps only what is older than
    its ``inner`` window (panes that left it, and events that arrived too late for it), and its
    :attr:`total` is its own part plus the inner window's total. An event then touches only the
    shortest window, and a pane moves outwards as it is when it leaves a window, rather than every
    event being counted in every window. A nested window keeps the shortest window's panes (10 s)
    and lets them go by its own pane (30 s, 120 s), so its edge moves exactly as if it kept its own.

    A nested window's own running sums are brought up to date when it is read: the panes that came
    in and went out since are kept (as they were then) and applied in one go. A window read every
    tick pays for the few panes that moved; one rarely read adds its panes up again instead of
    keeping a long list.
    """

    __slots__ = (
        "_fresh",
        "_pending",
        "_read",
        "base",
        "changes",
        "head",
        "inner",
        "length",
        "n_panes",
        "outer",
        "own",
        "pane_len",
        "panes",
        "ratio",
    )

    def __init__(self, length: float, n_panes: int, inner: Window | None = None) -> None:
        self.length = length
        self.n_panes = n_panes
        self.pane_len = length / n_panes
        self.panes: deque[Pane] = deque()
        self.own = Pane(0)
        """Running sums of the window's own panes; for a nested window, as of its last read plus
        ``_pending``, unless ``_fresh`` is False (they must then be added up again)."""
        self._fresh = True
        self._pending: list[tuple[int, list[int], dict[int, int], dict[int, int]]] = []
        """(+1 or -1, counters, wait bins, resolution bins) of panes in and out since the last read."""
        self.head = -(2**62)
        """Index of the newest pane the window has reached (by events or by the clock)."""
        self.base: float = inner.base if inner is not None else self.pane_len
        """Length of the panes kept: a nested window keeps the shortest window's panes as they
        come out of it (uncombined), and expires them by its own, longer pane."""
        self.ratio = round(self.pane_len / self.base)
        """Panes kept per pane of this window (1 unless nested)."""
        self.inner = inner
        """The shorter window whose events this one holds too, when they nest."""
        self.outer: Window | None = None
        if inner is not None:
            inner.outer = self
        self.changes = 1
        """Bumped when the window's total changes through its own part (a pane in from the
        inner window leaves the total as it was); see :attr:`dirty`."""
        self._read = 0

    @staticmethod
    def nests(inner: Window, outer_length: float, n_panes: int) -> bool:
        """True when a window of ``outer_length`` can hold ``inner``'s expired panes whole."""
        pane, inner_pane = outer_length / n_panes, inner.pane_len
        return pane == int(pane) and inner_pane == int(inner_pane) and int(pane) % int(inner_pane) == 0

    @property
    def total(self) -> Pane:
        """Counters and sketches of every event in the window."""
        if self.inner is None:
            return self.own
        self.flush()
        return _merged(self.own, self.inner.total)

    def total_for(self, wait: bool, res: bool, inner: Pane | None = None) -> Pane:
        """:attr:`total` with only the sketches asked for (the others empty): every counter, and
        the wait and resolution sketches when ``wait`` and ``res``. ``inner`` is the inner
        window's total as it is now (with those sketches), when the caller has it."""
        if self.inner is None or (inner is None and wait and res):
            return self.total
        self.flush()
        if inner is None:
            inner = self.inner.total_for(wait, res)
        out = Pane(0)
        out.c = _plus_counts(self.own.c, inner.c)
        if wait:
            out.wait = dict(self.own.wait)
            _add_bins(out.wait, inner.wait)
        if res:
            out.res = dict(self.own.res)
            _add_bins(out.res, inner.res)
        return out

    def flush(self) -> None:
        """Bring a nested window's own running sums up to date (what reading :attr:`total` does
        first)."""
        own = self.own
        if self.inner is None:
            return
        if not self._fresh:
            own = self.own = Pane(0)
            self._fresh = True
            if self.panes:
                own.c = [sum(col) for col in zip(*(p.c for p in self.panes), strict=True)]
                for p in self.panes:
                    if p.wait:
                        _add_bins(own.wait, p.wait)
                    if p.res:
                        _add_bins(own.res, p.res)
        elif self._pending:
            for sign, c, wait, res in self._pending:
                own.c = _plus_counts(own.c, c) if sign > 0 else _minus_counts(own.c, c)
                if wait:
                    sketch.merge_into(own.wait, wait, sign)
                if res:
                    sketch.merge_into(own.res, res, sign)
            if not self.panes:
                own.c = list(_ZERO)
        self._pending.clear()

    def _moved(self, sign: int, pane: Pane) -> None:
        """Note a pane coming into (+1) or leaving (-1) a nested window's own part."""
        if not self._fresh:
            return
        pending = self._pending
        pending.append((sign, pane.c, pane.wait, pane.res))
        pane.shared = True
        if len(pending) > 2 * self.n_panes:
            # Not read for a while: adding the panes up again is cheaper than replaying this.
            self._fresh = False
            pending.clear()

    def _stamp(self) -> int:
        return self.changes + (self.inner._stamp() if self.inner is not None else 0)

    @property
    def dirty(self) -> bool:
        """True when the window's figures changed since it was last marked clean."""
        return self._stamp() != self._read

    @dirty.setter
    def dirty(self, value: bool) -> None:
        if value:
            self.changes += 1
        else:
            self._read = self._stamp()

    @staticmethod
    def take_dirty(windows: Sequence[Window]) -> list[bool]:
        """:attr:`dirty` of each of a series' windows (shortest first), all marked clean: one pass
        over the chain of nested windows rather than one per window."""
        out = []
        stamp = 0
        for w in windows:
            # A window nests in the one before it, or in none (Aggregator._windows).
            stamp = w.changes + stamp if w.inner is not None else w.changes
            out.append(stamp != w._read)
            w._read = stamp
        return out

    def pane_for(self, ts: float) -> Pane | None:
        """Return the pane for ``ts``, creating it; None when ``ts`` is older than the window."""
        key = int(ts // self.base)
        idx = key // self.ratio
        panes = self.panes
        if idx >= self.head:
            if idx > self.head:
                self.head = idx
                self.expire(idx)
            if panes and panes[-1].idx == key:
                return panes[-1]
            if not panes or panes[-1].idx < key:
                pane = Pane(key)
                panes.append(pane)
                return pane
        elif idx <= self.head - self.n_panes:
            return None
        # A late event: find its pane, newest first (lateness is usually small).
        for pos in range(len(panes) - 1, -1, -1):
            p = panes[pos]
            if p.idx == key:
                return p
            if p.idx < key:
                pane = Pane(key)
                panes.insert(pos + 1, pane)
                return pane
        pane = Pane(key)
        panes.appendleft(pane)
        return pane

    def expire(self, head_idx: int) -> None:
        """Take panes at or before ``head_idx - n_panes`` out of the window (into the outer one)."""
        panes = self.panes
        limit = head_idx - self.n_panes
        own = self.own
        outer = self.outer
        keeps_own = self.inner is None
        ratio = self.ratio
        while panes and panes[0].idx // ratio <= limit:
            old = panes.popleft()
            if keeps_own:
                own.c = _minus_counts(own.c, old.c)
                if old.wait:
                    _take_bins(own.wait, old.wait)
                if old.res:
                    _take_bins(own.res, old.res)
            elif self._fresh:
                self._moved(-1, old)
            self.changes += 1
            if outer is not None and outer.take(old):
                # The pane left this window for the one around it, whose total is the same.
                outer.changes -= 1
        if not panes and keeps_own:
            # Nothing left: reset the running sums exactly (no floating-point residue).
            own.c = list(_ZERO)
            own.wait.clear()
            own.res.clear()

    def take(self, pane: Pane) -> bool:
        """Add a pane that left the inner window to this window's own part (as it is: panes are
        kept at the shortest window's length and expired by this window's); return False when it
        is too old for this window (it went on outwards, or out)."""
        idx = pane.idx // self.ratio
        if idx > self.head:
            self.head = idx
            self.expire(idx)
        elif idx <= self.head - self.n_panes:
            if self.outer is not None and self.outer.take(pane):
                self.outer.changes -= 1  # as in expire: the outer window's total is the same
            return False
        panes = self.panes
        if not panes or panes[-1].idx < pane.idx:
            panes.append(pane)
        else:  # a pane made for a late event may be newer
            pos = len(panes)
            while pos and panes[pos - 1].idx > pane.idx:
                pos -= 1
            if pos and panes[pos - 1].idx == pane.idx:
                # The same stretch of time already has a pane here (made for a late event): combine.
                target = panes[pos - 1]
                if target.shared:
                    target.wait, target.res, target.shared = dict(target.wait), dict(target.res), False
                target.c = _plus_counts(target.c, pane.c)
                _add_bins(target.wait, pane.wait)
                _add_bins(target.res, pane.res)
            else:
                panes.insert(pos, pane)
        if self._fresh:
            self._moved(1, pane)
        return True

    def advance(self, now: float) -> None:
        """Move the window's edge to ``now`` (time passes even when no events come)."""
        idx = int(now // self.base) // self.ratio
        if idx > self.head:
            self.head = idx
            self.expire(idx)


def _plus_counts(a: list[int], b: list[int]) -> list[int]:
    """A new counter list: ``a`` plus ``b``, slot by slot (a typed loop: no call per slot)."""
    out = [0] * N_SLOTS
    for i in range(N_SLOTS):
        out[i] = a[i] + b[i]
    return out


def _minus_counts(a: list[int], b: list[int]) -> list[int]:
    """A new counter list: ``a`` minus ``b``, slot by slot."""
    out = [0] * N_SLOTS
    for i in range(N_SLOTS):
        out[i] = a[i] - b[i]
    return out


def _add_bins(target: dict[int, int], other: dict[int, int]) -> None:
    """sketch.merge_into for adding, where no count can fall to zero."""
    for key, count in other.items():
        target[key] = target.get(key, 0) + count


def _take_bins(target: dict[int, int], other: dict[int, int]) -> None:
    """sketch.merge_into subtracting (a pane's bins out of the running sums that hold them)."""
    for key, count in other.items():
        left = target.get(key, 0) - count
        if left:
            target[key] = left
        else:
            target.pop(key, None)


def _merged(a: Pane, b: Pane) -> Pane:
    out = Pane(0)
    out.c = _plus_counts(a.c, b.c)
    out.wait = dict(a.wait)
    _add_bins(out.wait, b.wait)
    out.res = dict(a.res)
    _add_bins(out.res, b.res)
    return out


@dataclass(slots=True)
class Series:
    """Everything kept for one (step, channel, queue)."""

    key: SeriesKey
    step: Step | None
    sl_target: float
    long_wait: float
    backlog_age: float
    windows: list[Window]
    lost_after: float = 4 * 3600.0
    """A contact open or waiting this long (wall clock) is closed as lost (its step's ``lost_after``)."""
    next_reply: float = 20.0
    """Next-reply target (seconds, business time when the step has a calendar)."""
    """Shortest first."""
    direct: list[Window] = field(default_factory=list)
    """The windows events are counted in directly: those not nested in a shorter one."""
    totals: list[int] = field(default_factory=lambda: [0] * 9)
    wait_hist: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS) + 1))
    wait_hist_sum: float = 0.0
    res_hist: list[int] = field(default_factory=lambda: [0] * (len(RESOLUTION_BUCKETS) + 1))
    res_hist_sum: float = 0.0
    waiting: dict[str, float] = field(default_factory=dict)
    """contact_id → arrival time, for contacts in queue now."""
    open: dict[str, float] = field(default_factory=dict)
    """contact_id → arrival time, for contacts not yet resolved (backlog)."""
    paused: dict[str, tuple[float, float, float | None]] = field(default_factory=dict)
    """contact_id → (its time in :attr:`open` then, seconds paused in pauses that ended, start of
    the pause going on or None), for contacts paused since they opened: aged backlog leaves the
    paused time out. An entry whose first item is not the contact's open time is left over."""
    agents_staffed: int | None = None
    agents_available: int | None = None
    contacts_waiting: int | None = None
    """Contacts waiting as a source counts them (staffing events): waiting now, when given."""
    answers: dict[str, tuple[float, float]] = field(default_factory=dict)
    """contact_id → (time, score) of the survey answer counted for it: a contact's survey has one
    answer, the latest (at most :data:`ANSWERS_MAX`, the oldest forgotten first)."""
    sources: set[str] = field(default_factory=set)
    touched: bool = False
    """True while the series is on :attr:`Aggregator.touched` (it changed since last taken)."""
    advanced_to: float = 0.0
    """The time its windows were last moved to (see :meth:`Aggregator.advance`)."""
    due_at: float = math.inf
    """When a pane next leaves one of its windows (the time it is scheduled at; inf: never)."""


# Indexes into Series.totals (names match cxmon.snapshot.TOTALS).
T_OFFERED: Final = 0
T_ANSWERED: Final = 1
T_ABANDONED: Final = 2
T_SHORT: Final = 3
T_LOST: Final = 4
T_ESCALATED: Final = 5
T_TRANSFERRED: Final = 6
T_RESOLVED: Final = 7
T_REOPENED: Final = 8


def _forget(series: Series, contacts: dict[str, SeriesKey], cid: str) -> None:
    """The contact is done with this series: no longer waiting in it, open in it or routed to it
    (``del`` after ``in``: a compiled dict lookup, where ``pop(cid, None)`` calls into Python)."""
    if cid in series.waiting:
        del series.waiting[cid]
    if cid in series.open:
        del series.open[cid]
    if cid in contacts:
        del contacts[cid]  # noqa: RUF051 (compiled: see the docstring)


class Aggregator:
    """Routes events to series and keeps every series' windows, contact state and totals."""

    def __init__(self, config: Config, *, time_out_lost: bool = True) -> None:
        """Build an empty aggregator.

        Args:
            config: the validated configuration (steps, windows, panes, limits).
            time_out_lost: when True, contacts with no terminal event after their step's
                ``lost_after`` (``monitor.lost_after`` for contacts of no step) are closed as lost
                by :meth:`advance` (off when replaying stored history, which already holds those
                lost events).
        """
        self.config = config
        mon = config.monitor
        self.windows = mon.windows
        self.n_panes = mon.panes
        self.short_abandon = mon.short_abandon
        self.lost_after = mon.lost_after
        self.time_out_lost = time_out_lost
        self.strike_limit = mon.strikes
        self.low_score = mon.low_score
        self.series: dict[SeriesKey, Series] = {}
        self._contacts: dict[str, SeriesKey] = {}
        """contact_id → series it is open in."""
        self._routes: dict[tuple[str, str], tuple[SeriesKey, Step | None]] = {}
        self._series_of: dict[str, dict[str, Series]] = {}
        """channel → queue → its series: route and series lookup in one step for each event (two
        lookups of strings, whose hashes they keep, rather than a tuple made and hashed per event)."""
        self._series_cached = 0
        """Entries in :attr:`_series_of`."""
        self._channels, self._queues = known_labels(config)
        self.watermark = 0.0
        """Newest event time seen."""
        self.late_dropped = 0
        """Events too old for any window (still in the totals)."""
        self._next_lost_scan = 0.0
        self._lost_scan_every = min(60.0, min([mon.lost_after] + [s.lost_after for s in config.steps]) / 4)
        self.lost_due = math.inf
        """No contact open or waiting is due to be closed as lost before this (a lower bound: what
        the last lost scan found soonest, or an arrival since)."""
        self.touched: list[Series] = []
        """Series whose windows, contacts or totals changed since :meth:`take_touched`."""
        self.advanced_to = 0.0
        """The time :meth:`advance` last moved time to; a series behind it is caught up (it had
        nothing to expire meanwhile) before an event is counted in it."""
        self._due: list[tuple[float, int, SeriesKey]] = []
        """Heap of (time a pane leaves a window, tie-break, series): the series :meth:`advance`
        must move. Entries whose time is no longer the series' ``due_at`` are stale."""
        self._due_seq = 0
        # Strikes: per customer, bad experiences in the last 24 h.
        self._strike_log: deque[tuple[float, str]] = deque()
        self.strikes: dict[str, int] = {}
        self.struck = 0
        """Customers with at least ``monitor.strikes`` strikes."""

    # ------------------------------------------------------------------ routing

    def route(self, channel: str, queue: str) -> tuple[SeriesKey, Step | None]:
        """Return the series key and step for a contact on ``channel``/``queue``.

        Steps come from the config's match rules on the raw names; the channel and queue labels
        are kept only when known (config) and are otherwise ``other``, so no input can grow the
        number of series without bound.
        """
        hit = self._routes.get((channel, queue))
        if hit is not None:
            return hit
        step = self.config.step_for(channel, queue)
        key = (
            step.name if step else OTHER,
            channel if channel in self._channels else OTHER,
            queue if queue in self._queues else OTHER,
        )
        if len(self._routes) >= _ROUTE_CACHE_LIMIT:
            self._routes.clear()
        self._routes[(channel, queue)] = (key, step)
        return key, step

    def _windows(self) -> list[Window]:
        windows: list[Window] = []
        for length in self.windows:
            inner = windows[-1] if windows else None
            if inner is not None and not Window.nests(inner, length, self.n_panes):
                inner = None
            windows.append(Window(length, self.n_panes, inner))
        return windows

    def _series(self, key: SeriesKey, step: Step | None) -> Series:
        series = self.series.get(key)
        if series is None:
            sl_target = step.service_level_target if step else 20.0
            series = Series(
                key=key,
                step=step,
                sl_target=sl_target,
                long_wait=step.long_wait if step else max(3 * sl_target, 60.0),
                backlog_age=step.backlog_age if step else 86400.0,
                windows=self._windows(),
                lost_after=step.lost_after if step else self.lost_after,
                next_reply=(step.next_reply or sl_target) if step else sl_target,
            )
            series.direct = [w for w in series.windows if w.inner is None]
            self.series[key] = series
        return series

    # ------------------------------------------------------------------ events

    def add(self, events: Iterable[ContactEvent], source: str = "") -> None:
        """Account for a batch of events."""
        self._add_rows(map(row_of, events), source, None)

    def add_one(self, ev: ContactEvent, source: str = "", into: Series | None = None) -> None:
        """Account for one event (in series ``into`` when given, else where the event routes)."""
        self._add_rows((row_of(ev),), source, into)

    def add_rows(self, rows: Iterable[Row], source: str = "") -> None:
        """Account for events given as rows (:mod:`cxmon.rows`).

        A backfill read in a child process (cxmon.ingest) arrives as rows; taking them as they are
        saves building a ContactEvent per row just to read its fields here.
        """
        self._add_rows(rows, source, None)

    def _add_rows(self, rows: Iterable[Row], source: str, into: Series | None) -> None:
        """Account for rows (:mod:`cxmon.rows`: optional fields hold its sentinels), in series
        ``into`` when given."""
        # This runs for every event of every source: one loop for a whole batch, names bound
        # locally, and the common case (the event falls in each window's newest pane) handled
        # without a call. Written for the compiler too: a row is a tuple (its fields read by
        # index, not through Python's item protocol), ``x[i] = x[i] + 1`` where ``x[i] += 1``
        # would be a generic in-place add, ``del`` after ``in`` where ``pop(cid, None)`` would be a
        # method call, and math.log and math.ceil called as such (compiled to C calls).
        kinds = _KIND_OF
        series_of = self._series_of
        contacts = self._contacts
        all_series = self.series
        short_abandon = self.short_abandon
        low_score = self.low_score
        watermark = self.watermark
        touched = self.touched
        advanced_to = self.advanced_to
        for row in rows:
            stamp = row[TS]
            # A float local: the comparisons and pane arithmetic below run unboxed (``stamp``,
            # the row's own object, is what the contact dicts keep: no float is made per event).
            ts: float = stamp
            if ts > watermark:
                watermark = self.watermark = ts
            kind = kinds[row[KIND]]
            if kind is _HEARTBEAT:
                continue
            cid = row[CONTACT_ID]
            if into is None:
                channel, queue = row[CHANNEL], row[QUEUE]
                of_channel = series_of.get(channel)
                found_series = None if of_channel is None else of_channel.get(queue)
                if found_series is None:
                    key, step = self.route(channel, queue)
                    found_series = self._series(key, step)
                    if self._series_cached >= _ROUTE_CACHE_LIMIT:
                        series_of.clear()
                        self._series_cached = 0
                        of_channel = None
                    if of_channel is None:
                        of_channel = series_of[channel] = {}
                    of_channel[queue] = found_series
                    self._series_cached += 1
                series = found_series
                key = series.key
            else:
                series, key = into, into.key
            if not series.touched:
                series.touched = True
                touched.append(series)
                if series.advanced_to != advanced_to:
                    self._catch_up(series)
            src = source or row[SOURCE]
            if src:
                series.sources.add(src)
            totals = series.totals

            if kind is _STAFFING:
                staffed, available = row[AGENTS_STAFFED], row[AGENTS_AVAILABLE]
                if staffed != NO_NUMBER:
                    series.agents_staffed = staffed
                if available != NO_NUMBER:
                    series.agents_available = available
                if row[CONTACTS_WAITING] != NO_NUMBER:
                    series.contacts_waiting = row[CONTACTS_WAITING]
                continue

            # Which pane slots this event touches, and what it adds to the sketches.
            slot = -1
            slot2 = -1
            wait_value: float | None = None
            res_value: float | None = None
            feedback: float | None = None
            strike = False

            if kind is _ARRIVED:
                prev = contacts.get(cid)
                if prev is not None and prev != key:
                    old = all_series.get(prev)
                    if old is not None:
                        if cid in old.waiting:
                            del old.waiting[cid]
                        if cid in old.open:
                            del old.open[cid]
                        if not old.touched:
                            old.touched = True
                            touched.append(old)
                series.waiting[cid] = stamp
                series.open[cid] = stamp
                contacts[cid] = key
                if ts + series.lost_after < self.lost_due:
                    self.lost_due = ts + series.lost_after
                slot = OFFERED
                totals[T_OFFERED] = totals[T_OFFERED] + 1
            elif kind is _ANSWERED or kind is _ABANDONED:
                # The wait is the source's, or else measured from the arrival seen here.
                arrived = series.waiting.get(cid)
                if arrived is not None:
                    del series.waiting[cid]
                wait = row[WAIT]
                if wait == NO_NUMBER:
                    wait = None if arrived is None else ts - arrived
                if wait is not None and wait < 0:
                    wait = 0.0
                wait_value = wait
                if kind is _ANSWERED:
                    slot = ANSWERED
                    totals[T_ANSWERED] = totals[T_ANSWERED] + 1
                    if wait is not None:
                        if wait <= series.sl_target:
                            slot2 = ANSWERED_WITHIN
                        if wait > series.long_wait:
                            strike = True
                else:
                    _forget(series, contacts, cid)
                    slot = ABANDONED
                    totals[T_ABANDONED] = totals[T_ABANDONED] + 1
                    if wait is not None and wait < short_abandon:
                        slot2 = SHORT_ABANDONED
                        totals[T_SHORT] = totals[T_SHORT] + 1
                    else:
                        strike = True
            elif kind is _RESOLVED:
                _forget(series, contacts, cid)
                slot = RESOLVED
                totals[T_RESOLVED] = totals[T_RESOLVED] + 1
                duration = row[DURATION]
                if duration != NO_NUMBER and duration >= 0:
                    res_value = duration
            elif kind is _ESCALATED:
                if cid in series.waiting:
                    del series.waiting[cid]
                slot = ESCALATED
                totals[T_ESCALATED] = totals[T_ESCALATED] + 1
                strike = True
            elif kind is _TRANSFERRED:
                # The contact leaves this series; an arrival elsewhere (if the source sees one)
                # reopens it.
                _forget(series, contacts, cid)
                slot = TRANSFERRED
                totals[T_TRANSFERRED] = totals[T_TRANSFERRED] + 1
                strike = True
            elif kind is _REOPENED:
                series.open[cid] = stamp
                if ts + series.lost_after < self.lost_due:
                    self.lost_due = ts + series.lost_after
                contacts[cid] = key
                slot = REOPENED
                totals[T_REOPENED] = totals[T_REOPENED] + 1
                strike = True
            elif kind is _FEEDBACK:
                score = row[SCORE]
                if score == NO_NUMBER:
                    slot = SURVEYED  # a survey sent, not (yet) answered
                else:
                    answers = series.answers
                    before = answers.get(cid)
                    if before is not None:
                        if ts < before[0]:
                            continue  # an answer older than the one counted: replaced already
                        # A changed answer replaces the one counted: it leaves its window.
                        del answers[cid]
                        for window in series.direct:
                            self._withdraw(window, before[0], before[1])
                    elif len(answers) >= ANSWERS_MAX:
                        del answers[next(iter(answers))]
                    answers[cid] = (ts, score)
                    feedback = score
                    slot = FEEDBACK_N
                    strike = score <= low_score
            elif kind is _LOST:
                _forget(series, contacts, cid)
                slot = LOST
                totals[T_LOST] = totals[T_LOST] + 1
            elif kind is _REPLIED:
                slot = NEXT_REPLIED
                wait = row[WAIT]
                if wait != NO_NUMBER and wait <= series.next_reply:
                    slot2 = NEXT_REPLY_WITHIN
            elif kind is _PAUSED or kind is _RESUMED:
                _pause(series, cid, ts, kind is _PAUSED)

            wkey = rkey = 0
            if wait_value is not None:
                slot_of = _bucket(_WAIT_EDGES, wait_value)
                series.wait_hist[slot_of] = series.wait_hist[slot_of] + 1
                series.wait_hist_sum += wait_value
                # sketch.bin_of, written out (it runs for most events).
                wkey = _ZERO_BIN if wait_value < _MIN_VALUE else math.ceil(math.log(wait_value) / _LOG_GAMMA)
            if res_value is not None:
                slot_of = _bucket(_RESOLUTION_EDGES, res_value)
                series.res_hist[slot_of] = series.res_hist[slot_of] + 1
                series.res_hist_sum += res_value
                rkey = _ZERO_BIN if res_value < _MIN_VALUE else math.ceil(math.log(res_value) / _LOG_GAMMA)
            if strike:
                customer = row[CUSTOMER_ID]
                if customer:
                    self._strike(customer, ts)
            timed = wait_value is not None and slot == ANSWERED

            for window in series.direct:
                idx = int(ts // window.pane_len)
                panes = window.panes
                if idx == window.head and panes and panes[-1].idx == idx:
                    pane = panes[-1]
                else:
                    found = window.pane_for(ts)
                    if found is None:
                        # Too old for this window: a window nested around it may still hold it.
                        self._add_late(
                            window.outer, ts, slot, slot2, wkey, rkey, wait_value, timed, res_value, feedback
                        )
                        continue
                    pane = found
                window.changes += 1
                total = window.own
                pc = pane.c
                tc = total.c
                if slot >= 0:
                    pc[slot] = pc[slot] + 1
                    tc[slot] = tc[slot] + 1
                if slot2 >= 0:
                    pc[slot2] = pc[slot2] + 1
                    tc[slot2] = tc[slot2] + 1
                if wait_value is not None:
                    bins = pane.wait
                    bins[wkey] = bins.get(wkey, 0) + 1
                    bins = total.wait
                    bins[wkey] = bins.get(wkey, 0) + 1
                    if timed:
                        fixed = _fixed(wait_value)
                        pc[WAIT_SUM] = pc[WAIT_SUM] + fixed
                        tc[WAIT_SUM] = tc[WAIT_SUM] + fixed
                        pc[ANSWERED_TIMED] = pc[ANSWERED_TIMED] + 1
                        tc[ANSWERED_TIMED] = tc[ANSWERED_TIMED] + 1
                if res_value is not None:
                    bins = pane.res
                    bins[rkey] = bins.get(rkey, 0) + 1
                    bins = total.res
                    bins[rkey] = bins.get(rkey, 0) + 1
                if feedback is not None:
                    fixed = _fixed(feedback)
                    pc[FEEDBACK_SUM] = pc[FEEDBACK_SUM] + fixed
                    tc[FEEDBACK_SUM] = tc[FEEDBACK_SUM] + fixed

    def _add_late(
        self,
        window: Window | None,
        ts: float,
        slot: int,
        slot2: int,
        wkey: int,
        rkey: int,
        wait_value: float | None,
        timed: bool,
        res_value: float | None,
        feedback: float | None,
    ) -> None:
        """Count an event too old for the window it was meant for in a nested window around it
        that still spans its time (in that window's pane only: nested windows sum their panes)."""
        pane = None
        while window is not None:
            pane = window.pane_for(ts)
            if pane is not None:
                break
            window = window.outer
        if window is None or pane is None:
            self.late_dropped += 1
            return
        window.changes += 1
        # The window adds its panes up again when next read; a shared pane changes in copies
        # (see Window.take).
        window._fresh = False
        window._pending.clear()
        if pane.shared:
            pane.c, pane.wait, pane.res, pane.shared = list(pane.c), dict(pane.wait), dict(pane.res), False
        c = pane.c
        if slot >= 0:
            c[slot] += 1
        if slot2 >= 0:
            c[slot2] += 1
        if wait_value is not None:
            pane.wait[wkey] = pane.wait.get(wkey, 0) + 1
            if timed:
                c[WAIT_SUM] += _fixed(wait_value)
                c[ANSWERED_TIMED] += 1
        if res_value is not None:
            pane.res[rkey] = pane.res.get(rkey, 0) + 1
        if feedback is not None:
            c[FEEDBACK_SUM] += _fixed(feedback)

    def _withdraw(self, window: Window | None, ts: float, score: float) -> None:
        """Take a survey answer counted at ``ts`` out of the pane that holds it (nothing when it has
        left every window): the way :meth:`_add_late` counts one in, the other way."""
        pane = None
        while window is not None:
            key = int(ts // window.base)
            for p in reversed(window.panes):  # the pane that holds it, never a new one
                if p.idx <= key:
                    pane = p if p.idx == key else None
                    break
            if pane is not None:
                break
            window = window.outer
        if window is None or pane is None:
            return
        fixed = _fixed(score)
        window.changes += 1
        if window.inner is None:  # its running sums are kept as events come
            own = window.own.c
            own[FEEDBACK_N] -= 1
            own[FEEDBACK_SUM] -= fixed
        else:  # it adds its panes up again when next read
            window._fresh = False
            window._pending.clear()
        if pane.shared:
            pane.c, pane.wait, pane.res, pane.shared = list(pane.c), dict(pane.wait), dict(pane.res), False
        c = pane.c
        c[FEEDBACK_N] -= 1
        c[FEEDBACK_SUM] -= fixed

    def _strike(self, customer: str, ts: float) -> None:
        self._strike_log.append((ts, customer))
        n = self.strikes.get(customer, 0) + 1
        self.strikes[customer] = n
        if n == self.strike_limit:
            self.struck += 1

    # ------------------------------------------------------------------ time

    def advance(self, now: float, only_due: bool = False) -> list[ContactEvent]:
        """Move time to ``now``: panes leave windows, strikes age, contacts time out.

        With ``only_due``, only the series with a pane due to leave a window by ``now`` (as
        :meth:`schedule` noted) are moved; a series left behind has nothing to expire, and it is
        caught up (its windows' edges moved) when an event next comes for it, so every pane leaves
        at the same moment either way. Series that changed are on :attr:`touched`.

        Args:
            now: engine time (the later of this and the newest event is used).
            only_due: move only the series with something due (each must have been scheduled
                since it last changed), not every series.

        Returns:
            One ``lost`` event per contact closed for want of a terminal event (when enabled); the
            caller stores them and they are already counted here.
        """
        now = max(now, self.watermark)
        self.advanced_to = now
        touched = self.touched
        if not only_due:
            for series in self.series.values():
                changes = [w.changes for w in series.windows]
                for window in series.windows:
                    window.advance(now)
                series.advanced_to = now
                if not series.touched and changes != [w.changes for w in series.windows]:
                    series.touched = True
                    touched.append(series)
        else:
            # The series that changed since the last tick have not been scheduled yet: move them.
            # (Window.advance, written out: most windows' edges stay in their pane.)
            for series in touched:
                for window in series.windows:
                    idx = int(now // window.base) // window.ratio
                    if idx > window.head:
                        window.head = idx
                        window.expire(idx)
                series.advanced_to = now
            due = self._due
            all_series = self.series
            while due and due[0][0] <= now:
                at, _, key = heapq.heappop(due)
                series = all_series[key]
                if series.due_at != at:
                    continue  # rescheduled since
                series.due_at = math.inf
                for window in series.windows:
                    idx = int(now // window.base) // window.ratio
                    if idx > window.head:
                        window.head = idx
                        window.expire(idx)
                series.advanced_to = now
                if not series.touched:
                    series.touched = True
                    touched.append(series)
        while self._strike_log and self._strike_log[0][0] <= now - STRIKE_WINDOW:
            _, customer = self._strike_log.popleft()
            n = self.strikes[customer]
            if n == self.strike_limit:
                self.struck -= 1
            if n <= 1:
                del self.strikes[customer]
            else:
                self.strikes[customer] = n - 1
        lost: list[ContactEvent] = []
        if self.time_out_lost and now >= self._next_lost_scan:
            self._next_lost_scan = now + self._lost_scan_every
            # No contact is due before the soonest seen: a scan would find nothing.
            if now >= self.lost_due:
                lost = self._time_out(now)
        return lost

    def _time_out(self, now: float) -> list[ContactEvent]:
        """Close as lost the contacts open or waiting for their series' ``lost_after`` or longer."""
        lost: list[ContactEvent] = []
        soonest = math.inf
        for series in list(self.series.values()):
            limit = now - series.lost_after
            oldest = math.inf
            stale = [cid for cid, t in series.open.items() if t <= limit]
            stale += [cid for cid, t in series.waiting.items() if t <= limit and cid not in series.open]
            for cid in stale:
                _, channel, queue = series.key
                ev = ContactEvent(
                    ts=now,
                    kind=EventKind.LOST,
                    contact_id=cid,
                    channel=channel,
                    queue=queue,
                    source="engine",
                    reason="no terminal event",
                )
                self.add_one(ev, into=series)
                lost.append(ev)
            for t in series.open.values():
                if t < oldest:
                    oldest = t
            for t in series.waiting.values():
                if t < oldest:
                    oldest = t
            if oldest + series.lost_after < soonest:
                soonest = oldest + series.lost_after
        self.lost_due = soonest
        return lost

    def _catch_up(self, series: Series) -> None:
        """Move a series' window edges to :attr:`advanced_to` (nothing of it is due to expire)."""
        now = self.advanced_to
        for window in series.windows:
            window.advance(now)
        series.advanced_to = now

    def take_touched(self) -> list[Series]:
        """Return the series that changed since the last call (and forget them)."""
        out = self.touched
        for series in out:
            series.touched = False
        self.touched = []
        return out

    def schedule(self, series: Series) -> None:
        """Note when a pane of ``series`` next leaves one of its windows (after it changed)."""
        at = math.inf
        for window in series.windows:
            panes = window.panes
            if panes:
                # The oldest pane leaves once the window's head reaches its index + n_panes.
                head = (panes[0].idx // window.ratio + window.n_panes) * window.ratio
                t = head * window.base
                if t < at:
                    at = t
        if at != math.inf:
            # A hair early: float rounding can only make the advance find nothing yet, and the
            # series is then scheduled again.
            at -= 1e-6
        if at == series.due_at:
            return
        series.due_at = at
        if at != math.inf:
            self._due_seq += 1
            heapq.heappush(self._due, (at, self._due_seq, series.key))

    def leaders(self, limit: int) -> list[tuple[str, int]]:
        """Return the customers with the most strikes in the last 24 h, most first."""
        return heapq.nlargest(limit, self.strikes.items(), key=lambda kv: (kv[1], kv[0]))


# ---------------------------------------------------------------------- measures


WAIT_QUANTILES: Final = frozenset({"wait_p50", "wait_p90", "wait_p99"})
RESOLUTION_QUANTILES: Final = frozenset({"resolution_p50", "resolution_p90"})
_WAIT_QS: Final = (0.5, 0.9, 0.99)
_RESOLUTION_QS: Final = (0.5, 0.9)


def window_measures(
    total: Pane,
    formula: str,
    only: frozenset[str] | None = None,
    memo: tuple[sketch.Memo, sketch.Memo] | None = None,
    fresh: bool = False,
) -> dict[str, float | None]:
    """Compute every windowed measure from a window's running total.

    Args:
        total: the window's counters and sketches.
        formula: the service-level formula name (cxmon.measures.SERVICE_LEVEL_FORMULAS).
        only: when given, the percentiles are worked out only if one of them is in it (the rest
            are None): a backfill's tick judges a few measures of the longer windows.
        memo: the window's last wait and resolution percentiles, given again for the same bins.
        fresh: ``total`` was made for this reading (a nested window's): nobody changes its
            sketches afterwards, so the memo keeps them rather than a copy.

    Returns:
        measure name → value, None where the measure has no data.
    """
    c = total.c
    offered, answered, within = c[OFFERED], c[ANSWERED], c[ANSWERED_WITHIN]
    abandoned, short = c[ABANDONED], c[SHORT_ABANDONED]
    sl_den = service_level_denominator(formula, answered, abandoned, short)
    ab_den = abandon_rate_denominator(answered, abandoned, short)
    p50 = p90 = p99 = r50 = r90 = None
    if only is None or not only.isdisjoint(WAIT_QUANTILES):
        if memo is None:
            p50, p90, p99 = sketch.quantiles(total.wait, _WAIT_QS)
        else:
            p50, p90, p99 = memo[0].quantiles(total.wait, _WAIT_QS, fresh)
    if only is None or not only.isdisjoint(RESOLUTION_QUANTILES):
        if memo is None:
            r50, r90 = sketch.quantiles(total.res, _RESOLUTION_QS)
        else:
            r50, r90 = memo[1].quantiles(total.res, _RESOLUTION_QS, fresh)
    resolved = c[RESOLVED]
    fn = c[FEEDBACK_N]
    # The counters are ints (see _ZERO); the figures give counts out as floats, as they always
    # have (a share of two ints is the same float as the share of the same two floats).
    return {
        "offered": float(offered),
        "answered": float(answered),
        "abandoned": float(abandoned),
        "short_abandoned": float(short),
        "lost": float(c[LOST]),
        "service_level": within / sl_den if sl_den > 0 else None,
        "asa": c[WAIT_SUM] / FIXED / c[ANSWERED_TIMED] if c[ANSWERED_TIMED] > 0 else None,
        "wait_p50": p50,
        "wait_p90": p90,
        "wait_p99": p99,
        "abandon_rate": (abandoned - short) / ab_den if ab_den > 0 else None,
        "resolution_p50": r50,
        "resolution_p90": r90,
        "escalations": float(c[ESCALATED]),
        "escalation_rate": c[ESCALATED] / answered if answered > 0 else None,
        "transfers": float(c[TRANSFERRED]),
        "reopen_rate": c[REOPENED] / resolved if resolved > 0 else None,
        "csat": c[FEEDBACK_SUM] / FIXED / fn if fn > 0 else None,
        "response_rate": min(1.0, fn / c[SURVEYED]) if c[SURVEYED] > 0 else None,
        "resolved": float(resolved),
        "feedback": float(fn),
        "surveys": float(c[SURVEYED]),
        "next_reply_in_target": c[NEXT_REPLY_WITHIN] / c[NEXT_REPLIED] if c[NEXT_REPLIED] > 0 else None,
        "next_replies": float(c[NEXT_REPLIED]),
    }


def _pause(series: Series, cid: str, ts: float, pausing: bool) -> None:
    """Start (``pausing``) or end a pause of an open contact: the paused time is kept in business
    seconds of the step's calendar (all of them without one)."""
    opened = series.open.get(cid)
    if opened is None:
        return
    entry = series.paused.get(cid)
    held, since = (entry[1], entry[2]) if entry is not None and entry[0] == opened else (0.0, None)
    if pausing:
        if since is None:
            since = ts
    elif since is not None:
        calendar = series.step.calendar if series.step is not None else None
        held += calendar.between(since, ts) if calendar is not None else max(0.0, ts - since)
        since = None
    series.paused[cid] = (opened, held, since)


@functools.lru_cache(maxsize=100_000)
def _due(calendar: Calendar, opened: float, age: float) -> float | None:
    """When a contact opened at ``opened`` has been open ``age`` seconds of business time."""
    return calendar.add(opened, age)


def _longest_wait(
    waiting: dict[str, float],
    paused: dict[str, tuple[float, float, float | None]],
    calendar: Calendar | None,
    now: float,
) -> tuple[float | None, int]:
    """The longest wait of the contacts in queue and how many they are, timed as the step times
    its waits: in business time of its calendar (wall clock without one), paused time left out.
    A contact paused now waits on the customer, not in the queue: it is neither."""
    first = math.inf  # the earliest arrival of those never paused: the longest of them
    longest: float | None = None
    queued = 0
    for cid, arrived in waiting.items():
        entry = paused.get(cid)
        if entry is None:
            queued += 1
            if arrived < first:
                first = arrived
            continue
        held, since = entry[1], entry[2]
        if since is not None and since <= now:
            continue
        queued += 1
        wait = (calendar.between(arrived, now) if calendar is not None else now - arrived) - held
        if longest is None or wait > longest:
            longest = wait
    if first != math.inf:
        wait = calendar.between(first, now) if calendar is not None else now - first
        if longest is None or wait > longest:
            longest = wait
    return longest, queued


def instant_measures(series: Series, now: float) -> dict[str, float | None]:
    """Compute the measures of "now" for a series: queue, longest wait, staffing, backlog."""
    waiting = series.waiting
    staffed, available = series.agents_staffed, series.agents_available
    occupancy = None
    if staffed and available is not None:
        occupancy = max(0.0, min(1.0, (staffed - available) / staffed))
    open_ = series.open
    paused = series.paused
    if paused:  # entries of contacts closed (or reopened) since are left over: forget them
        for cid in [c for c, e in paused.items() if open_.get(c) != e[0]]:
            del paused[cid]
    age = series.backlog_age
    calendar = series.step.calendar if series.step is not None else None
    longest: float | None
    if not waiting:
        longest, queued = None, 0
    elif calendar is None and not paused:
        longest, queued = now - min(waiting.values()), len(waiting)
    else:
        longest, queued = _longest_wait(waiting, paused, calendar, now)
    if calendar is None:
        aged_limit = now - age
        aged = sum(1 for t in open_.values() if t <= aged_limit)
    else:  # open longer than the target in business time: past the due time the calendar gives
        aged = sum(1 for t in open_.values() if now >= (_due(calendar, t, age) or math.inf))
    for opened, held, since in paused.values():
        # Paused time does not count: due that much later, and a pause going on stops the clock.
        at = now if since is None else min(since, now)
        due: float | None
        if calendar is None:
            was, due = opened <= now - age, opened + age + held
        else:
            was, due = now >= (_due(calendar, opened, age) or math.inf), _due(calendar, opened, age + held)
        aged += int(at >= (math.inf if due is None else due)) - int(was)
    return {
        # A source that counts the queue (Genesys observations) knows contacts it never reported.
        "waiting_now": float(queued if series.contacts_waiting is None else max(0, series.contacts_waiting)),
        "longest_wait_now": max(0.0, longest) if longest is not None else None,
        "agents_staffed": None if staffed is None else float(staffed),
        "agents_available": None if available is None else float(available),
        "occupancy": occupancy,
        "backlog": float(len(open_)),
        "aged_backlog": float(aged),
    }


__all__: Sequence[str] = [
    "Aggregator",
    "Pane",
    "Series",
    "Window",
    "instant_measures",
    "window_measures",
]
