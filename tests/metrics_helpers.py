"""Snapshots, configs and engines built by hand for the metric tests, and test-only exposition parsers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cxmon.config import Config, loads
from cxmon.exposition import SnapshotCollector
from cxmon.snapshot import (
    RESOLUTION_BUCKETS,
    TOTALS,
    WAIT_BUCKETS,
    AlertStatus,
    Histogram,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
)

CONFIG_TOML = """
[monitor]
windows = ["5m", "15m"]

[journey]
channels = ["voice", "chat"]
queues = ["sales", "billing"]

[[journey.steps]]
name = "order"
match = [{ channel = "voice", queue = "sales" }]
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  channel = "voice"
  warn = "85%"
  breach = "80%"
  clear = "83%"
  direction = "below"
  for = "2m"
  min_volume = 10

[[journey.steps]]
name = "get_help"
match = [{ channel = "voice", queue = "billing" }, { channel = "chat", queue = "*" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "5m"
  warn = "45s"
  breach = "60s"
  clear = "50s"
  for = "2m"
"""


def make_config(text: str = CONFIG_TOML) -> Config:
    """Return a config with two steps and no collectors."""
    return loads(text)


def make_series(
    step: str = "order",
    channel: str = "voice",
    queue: str = "sales",
    *,
    totals: Mapping[str, int] | None = None,
    windows: Mapping[float, Mapping[str, float | None]] | None = None,
    instant: Mapping[str, float | None] | None = None,
    wait_counts: tuple[int, ...] | None = None,
    state: State = State.OK,
) -> SeriesFigures:
    """Return one SeriesFigures with sensible figures, any of them overridable."""
    figures = {
        "offered": 20.0,
        "answered": 16.0,
        "abandoned": 4.0,
        "short_abandoned": 1.0,
        "lost": 0.0,
        "service_level": 0.75,
        "asa": 12.0,
        "wait_p50": 10.0,
        "wait_p90": 42.0,
        "wait_p99": 80.0,
        "abandon_rate": 0.2,
    }
    if windows is None:
        windows = {300.0: figures, 900.0: figures}
    counts = wait_counts if wait_counts is not None else tuple(1 for _ in range(len(WAIT_BUCKETS) + 1))
    return SeriesFigures(
        step=step,
        channel=channel,
        queue=queue,
        windows=MappingProxyType({w: MappingProxyType(dict(f)) for w, f in windows.items()}),
        instant=MappingProxyType(dict(instant or {"waiting_now": 3.0, "longest_wait_now": 50.0})),
        totals=MappingProxyType(dict(totals or dict.fromkeys(TOTALS, 10))),
        wait_histogram=Histogram(WAIT_BUCKETS, counts, float(sum(counts)) * 7.0, sum(counts)),
        resolution_histogram=Histogram(
            RESOLUTION_BUCKETS, tuple(0 for _ in range(len(RESOLUTION_BUCKETS) + 1)), 0.0, 0
        ),
        state=state,
        reason="",
    )


def make_snapshot(
    series: tuple[SeriesFigures, ...] = (),
    *,
    version: int = 1,
    ts: float = 1_700_000_000.0,
    steps: tuple[StepStatus, ...] | None = None,
    sources: tuple[SourceStatus, ...] = (),
    alerts: AlertStatus | None = None,
    stale: bool = False,
) -> Snapshot:
    """Return a Snapshot built by hand (two default steps unless ``steps`` is given)."""
    if steps is None:
        steps = (
            StepStatus("order", "Order", State.OK, "", ts, True, "service_level", 0.9, 0.0, 0),
            StepStatus(
                "get_help", "Help", State.POTHOLE, "wait p90 70s > 60s", ts, True, "wait_p90", 70, 0, 3
            ),
        )
    return Snapshot(
        version=version,
        ts=ts,
        windows=(300.0, 900.0),
        service_level_formula="excl_short_abandons",
        steps=steps,
        series=series or (make_series(),),
        sources=sources,
        alerts=alerts,
        stale=stale,
    )


def registry_for(snap: Snapshot, config: Config) -> CollectorRegistry:
    """Return a fresh registry holding only a SnapshotCollector over ``snap``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap, config))
    return registry


def samples(exposition: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Parse a text exposition into a set of (name, sorted labels, value)."""
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for fam in text_string_to_metric_families(exposition.decode())
        for s in fam.samples
    }


LABELS = {"step": "order", "channel": "voice", "queue": "sales"}


class SnapshotFeed:
    """The two things the exporter needs from an engine, driven by hand: ``latest`` and listeners."""

    def __init__(self, config: Config, snap: Snapshot) -> None:
        self.config = config
        self.latest = snap
        self._listeners: list[Callable[[Snapshot], None]] = []

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        self._listeners.append(fn)

    def publish(self, snap: Snapshot) -> None:
        self.latest = snap
        for fn in self._listeners:
            fn(snap)


def exported_names(exposition: bytes | str) -> set[str]:
    """Return every sample name in a text exposition (``_bucket``/``_sum``/``_count`` included)."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    names = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def family_names(exposition: bytes | str) -> Iterable[str]:
    """Return the metric family names declared by ``# TYPE`` lines."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
