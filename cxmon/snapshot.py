"""Snapshot: the immutable, versioned picture of the road that every consumer renders from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cxmon.forecast.result import Forecast
from cxmon.forecast.usual import UsualFigure

# Histogram bucket upper bounds (seconds) chosen for contact-centre waits: seconds for voice and chat,
# hours for email backlogs. Resolution times reach days.
WAIT_BUCKETS: tuple[float, ...] = (
    5,
    10,
    20,
    30,
    45,
    60,
    90,
    120,
    180,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
)
RESOLUTION_BUCKETS: tuple[float, ...] = (
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    172800,
    604800,
)
# Cumulative counters each series carries for Prometheus `_total` metrics.
TOTALS: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "lost",
    "escalated",
    "transferred",
    "resolved",
    "reopened",
)


class State(StrEnum):
    """Pot-hole state of a series or a step (DESIGN.md)."""

    OK = "ok"
    WATCH = "watch"
    POTHOLE = "pothole"
    STALE = "stale"

    @property
    def severity(self) -> int:
        """Rank for "worst wins": OK < WATCH < STALE < POTHOLE."""
        return _SEVERITY[self]

    @property
    def code(self) -> int:
        """Numeric code exported to Prometheus: 0 OK, 1 WATCH, 2 POTHOLE, 3 STALE."""
        return _CODE[self]


_SEVERITY = {State.OK: 0, State.WATCH: 1, State.STALE: 2, State.POTHOLE: 3}
_CODE = {State.OK: 0, State.WATCH: 1, State.POTHOLE: 2, State.STALE: 3}

SeriesKey = tuple[str, str, str]
"""(step, channel, queue)."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram: counts per bucket upper bound (not cumulative across buckets)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    """len(bounds) + 1 counts; the last one is the +Inf overflow."""
    total: float
    count: int


@dataclass(frozen=True, slots=True)
class SeriesFigures:
    """Figures for one series (step, channel, queue)."""

    step: str
    channel: str
    queue: str
    windows: MappingProxyType[float, MappingProxyType[str, float | None]]
    """Window length (seconds) → measure name → value (None where there is no data)."""
    instant: MappingProxyType[str, float | None]
    """waiting_now, longest_wait_now, agents_staffed, agents_available, occupancy, backlog, aged_backlog."""
    totals: MappingProxyType[str, int]
    """Cumulative counts since start (names in TOTALS)."""
    wait_histogram: Histogram
    resolution_histogram: Histogram
    state: State
    reason: str
    history: tuple[tuple[float, MappingProxyType[str, float | None]], ...] = ()
    """Per-minute points (minute start, figures of the shortest window) for the last hour."""
    forecast: Forecast | None = None
    """The queue's staffing forecast (voice and chat queues; None elsewhere)."""

    @property
    def key(self) -> SeriesKey:
        """(step, channel, queue)."""
        return (self.step, self.channel, self.queue)

    def value(self, measure: str, window: float | None = None) -> float | None:
        """Return ``measure`` for ``window`` (instant measures ignore the window)."""
        if measure in self.instant:
            return self.instant[measure]
        figures = self.windows.get(window if window is not None else min(self.windows))
        return None if figures is None else figures.get(measure)


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement of a pot hole: silences repeat alerts until ``until``, not the display."""

    step: str
    who: str
    note: str
    ts: float
    until: float


@dataclass(frozen=True, slots=True)
class StepStatus:
    """A journey step rolled up from its series: the worst state wins."""

    name: str
    label: str
    state: State
    reason: str
    since: float
    """When the step entered its current state (engine clock)."""
    moment_of_truth: bool
    headline_measure: str
    headline_value: float | None
    trend: float
    """Slope of the headline measure, units per minute (0 when flat or unknown)."""
    affected: int
    """Contacts affected: waiting now plus offered in the shortest window."""
    ack: Ack | None = None
    headline_window: float = 0.0
    """The window ``headline_value`` is measured over, in seconds (the step's threshold on the
    headline measure, else the shortest window); 0 for a figure of the moment (waiting now)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state of a step; ``channel``/``queue`` name the series driving it (empty: none does)."""

    ts: float
    step: str
    channel: str
    queue: str
    from_state: State
    to_state: State
    reason: str
    measure: str = ""
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "ts": self.ts,
            "step": self.step,
            "channel": self.channel,
            "queue": self.queue,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason,
            "measure": self.measure,
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Health of one collector."""

    name: str
    type: str
    up: bool
    stale: bool
    events_total: int
    errors_total: int
    last_event_ts: float | None
    """Source-clock time of the newest event or heartbeat."""
    events_per_second: float
    errors_per_second: float
    last_error: str | None = None
    finished: bool = False
    """The source came to the end of its input without failing (a replay at its range's end, an
    import at its file's end): it is done, not down."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Health of the history database's writes."""

    pending_rows: int
    """Rows waiting for a commit."""
    backpressure: bool
    """Commits are failing (a full disk) and the pending rows reached their bound: the engine stops
    taking batches, so the sources stop reading until the database has room again."""
    commit_failures: int = 0
    """Commits that failed since the last one that succeeded."""
    last_error: str | None = None
    """Why the last commit failed (None once a commit succeeds)."""


@dataclass(frozen=True, slots=True)
class AlertSinkStatus:
    """Delivery counters of one of cxmon's alert sinks (``log``, ``alertmanager``, ``webhook``)."""

    name: str
    sent: int = 0
    """Notifications delivered."""
    failures: int = 0
    """Failed delivery attempts (each retry counts)."""
    dropped: int = 0
    """Notifications dropped because the sink's queue was full."""
    queued: int = 0
    """Notifications waiting for the sink."""
    ok: bool = True
    """The last delivery attempt succeeded (or none was made yet)."""
    last_error: str | None = None
    """Why the last attempt failed."""


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """cxmon's own alerting as of a snapshot: the alerts firing and each sink's counters."""

    firing: int = 0
    """Alerts firing (steps in POTHOLE or STALE)."""
    sinks: tuple[AlertSinkStatus, ...] = ()

    @property
    def failures(self) -> int:
        """Failed delivery attempts of every sink."""
        return sum(s.failures for s in self.sinks)

    @property
    def ok(self) -> bool:
        """Every sink's last attempt succeeded."""
        return all(s.ok for s in self.sinks)

    @property
    def last_error(self) -> str | None:
        """The last error of a sink that is failing now ("webhook: …"), or None."""
        return next((f"{s.name}: {s.last_error}" for s in self.sinks if not s.ok and s.last_error), None)

    def sink(self, name: str) -> AlertSinkStatus | None:
        """The sink called ``name``, or None."""
        return next((s for s in self.sinks if s.name == name), None)


@dataclass(frozen=True, slots=True)
class ImportStatus:
    """A backfill's progress (``cxmon import``) as of a snapshot."""

    source: str
    done: int = 0
    """Bytes (or records) read so far."""
    total: int = 0
    """Bytes (or records) to read."""
    lines: int = 0
    """Lines (or records) read so far."""
    counts: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """The source's own counters (bad lines, verbs seen, rotations…), nested names joined by dots."""


@dataclass(frozen=True, slots=True)
class BaselineStatus:
    """How far the hour-of-week baselines have learned from the history."""

    weeks: int
    """Past weeks (of the last ``baseline_weeks``) with figures."""
    min_weeks: int
    """Weeks needed before the baselines give verdicts."""

    @property
    def ready(self) -> bool:
        """The baselines give verdicts."""
        return self.weeks >= self.min_weeks

    def __str__(self) -> str:
        """ "learning (1 of 2 weeks of history)", or "ready (3 weeks of history)"."""
        if not self.ready:
            return f"learning ({self.weeks} of {self.min_weeks} weeks of history)"
        return f"ready ({self.weeks} weeks of history)"


@dataclass(frozen=True, slots=True)
class HubLink:
    """A watcher's connection to one daemon's hub."""

    url: str
    state: str
    """``connecting``, ``live`` or ``disconnected``."""
    since: float | None = None
    """Wall time the connection entered its state."""
    retry_at: float | None = None
    """Wall time of the next attempt to connect (while disconnected)."""
    error: str | None = None
    """Why the connection was lost."""
    site: str = ""
    """The site's name on a dashboard of several sites ("" for a single hub)."""
    heard: float | None = None
    """Wall time the last snapshot came from the hub (None before the first)."""


@dataclass(frozen=True, slots=True)
class HubStatus:
    """A watcher's connections to the hubs it shows (set by the watcher, never sent by a hub)."""

    links: tuple[HubLink, ...] = ()

    @property
    def live(self) -> int:
        """Hubs connected."""
        return sum(1 for link in self.links if link.state == "live")

    @property
    def state(self) -> str:
        """``live`` when every hub is, else ``disconnected``."""
        return "live" if self.links and self.live == len(self.links) else "disconnected"

    @property
    def sites(self) -> bool:
        """The dashboard shows several sites (each link names its site)."""
        return any(link.site for link in self.links)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a consumer needs, as of one tick. Never changes after publication: every field
    is a frozen dataclass, a tuple or a read-only mapping of its own, nothing a live object shares."""

    version: int
    ts: float
    """Engine clock (source time) of this tick."""
    windows: tuple[float, ...]
    service_level_formula: str
    steps: tuple[StepStatus, ...]
    series: tuple[SeriesFigures, ...]
    sources: tuple[SourceStatus, ...]
    transitions: tuple[Transition, ...] = ()
    """Transitions that happened in this tick."""
    recent_transitions: tuple[Transition, ...] = ()
    """The last transitions (up to 200), oldest first: a reader that skipped snapshots misses none."""
    strikes: int = 0
    """Customers with at least the configured number of bad experiences in 24 h."""
    events_total: int = 0
    events_per_second: float = 0.0
    errors_total: int = 0
    stale: bool = False
    """True when every source is stale: nothing shown may be taken as current."""
    acks: tuple[Ack, ...] = ()
    tick_error: str | None = None
    """Set when the engine's last tick failed: every figure here is from an earlier tick, every
    step is shown STALE, and health checks fail until a tick succeeds again."""
    store: StoreStatus | None = None
    """The history database's write health (None when running without one)."""
    alerts: AlertStatus | None = None
    """cxmon's own alert sinks (None when no dispatcher is attached)."""
    imports: ImportStatus | None = None
    """A backfill's progress (None unless the engine runs one)."""
    baseline: BaselineStatus | None = None
    """How far the hour-of-week baselines have learned (None until the first minute figures)."""
    hub: HubStatus | None = None
    """A watcher's hub connections (None in the daemon and in-process)."""
    baselines: tuple[UsualFigure, ...] = ()
    """The ready hour-of-week baselines of this hour (judged measures per series and window)."""

    def step(self, name: str) -> StepStatus | None:
        """Return the step called ``name``, or None."""
        for step in self.steps:
            if step.name == name:
                return step
        return None

    def series_of(self, step: str) -> tuple[SeriesFigures, ...]:
        """Return the series under ``step``."""
        return tuple(s for s in self.series if s.step == step)


EMPTY_SNAPSHOT = Snapshot(
    version=0,
    ts=0.0,
    windows=(300.0, 900.0, 3600.0),
    service_level_formula="excl_short_abandons",
    steps=(),
    series=(),
    sources=(),
)
