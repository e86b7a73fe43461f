"""The exposition: Prometheus metric families from a Snapshot, as text or as a prometheus-client Collector.

Two writers produce the same samples (a test holds them equal): :func:`render` writes the text format
straight from the snapshot, and :class:`SnapshotCollector` hands the families to prometheus-client
(the reference, about ten times slower at thousands of series).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from cxmon import __version__
from cxmon.catalogue import (
    ALERT_SINKS,
    INSTANT_METRICS,
    OUTCOMES,
    SERIES_LABELS,
    TOTAL_COUNTERS,
    WINDOW_METRICS,
    metric_for,
)
from cxmon.config import OTHER, Config
from cxmon.forecast.metrics import GAUGES as FORECAST_GAUGES
from cxmon.forecast.metrics import breach_etas
from cxmon.label_bounds import LabelBounds, bounded_rows
from cxmon.metric_text import Family, add_histogram, escape
from cxmon.serving_metrics import HttpCounts, serving_families
from cxmon.snapshot import AlertStatus, Snapshot, State
from cxmon.units import format_window

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the text exposition."""


def _families(snap: Snapshot, config: Config, bounds: LabelBounds, text: bool) -> list[Family]:
    build = Family(
        text,
        "cxmon_build_info",
        "gauge",
        "cxmon version and the service-level formula in use (always 1).",
        ("version", "service_level_formula"),
    )
    build.add((__version__, snap.service_level_formula), 1.0)
    ts = Family(
        text,
        "cxmon_snapshot_timestamp_seconds",
        "gauge",
        "Engine clock (source time) of the exported snapshot.",
    )
    ts.add((), snap.ts, "")
    events = Family(text, "cxmon_events", "counter", "Events taken in by the engine.")
    events.add((), float(snap.events_total), "")
    strikes = Family(
        text,
        "cxmon_strike_customers",
        "gauge",
        f"Customers with at least {config.monitor.strikes} bad experiences in the last 24 hours.",
    )
    strikes.add((), float(snap.strikes), "")
    healthy = Family(
        text,
        "cxmon_engine_healthy",
        "gauge",
        "1 while the engine's ticks succeed; 0 when the last tick failed (the figures are frozen).",
    )
    healthy.add((), 0.0 if snap.tick_error else 1.0, "")
    return [
        build,
        ts,
        events,
        strikes,
        healthy,
        *_store_families(snap, text),
        *_step_families(snap, bounds, text),
        *_series_families(snap, bounds, text),
        *_forecast_families(snap, bounds, text),
        *_baseline_families(snap, bounds, text),
        *_collector_families(snap, bounds, text),
        *_alert_families(snap.alerts, text),
    ]


def _store_families(snap: Snapshot, text: bool) -> list[Family]:
    if snap.store is None:
        return []
    held = Family(
        text,
        "cxmon_store_backpressure",
        "gauge",
        "1 while history commits fail and the sources are held back until the database has room.",
    )
    held.add((), 1.0 if snap.store.backpressure else 0.0, "")
    pending = Family(text, "cxmon_store_pending_rows", "gauge", "Rows waiting for a history commit.")
    pending.add((), float(snap.store.pending_rows), "")
    failing = Family(
        text,
        "cxmon_store_commit_failures",
        "gauge",
        "Failed history commits since the last one that succeeded (0 when commits work).",
    )
    failing.add((), float(snap.store.commit_failures), "")
    return [held, pending, failing]


def _step_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[Family]:
    state = Family(
        text,
        "cxmon_step_state",
        "gauge",
        "Current state of a journey step: 1 for its state, 0 for the others.",
        ("step", "state"),
    )
    code = Family(
        text,
        "cxmon_step_state_code",
        "gauge",
        "Current state of a journey step as a number: 0 ok, 1 watch, 2 pothole, 3 stale.",
        ("step",),
    )
    acked = Family(
        text,
        "cxmon_step_acknowledged",
        "gauge",
        "1 while the step's pot hole is acknowledged (repeat alerts silenced), else 0.",
        ("step",),
    )
    worst: dict[str, tuple[State, bool]] = {}
    for step in snap.steps:
        name = bounds.step(step.name)
        is_acked = step.ack is not None and step.ack.until > snap.ts
        prev = worst.get(name)
        if prev is None or step.state.severity > prev[0].severity:
            worst[name] = (step.state, is_acked or (prev is not None and prev[1]))
    for name, (st, is_acked) in worst.items():
        for s in State:
            state.add((name, s.value), 1.0 if s is st else 0.0)
        code.add((name,), float(st.code))
        acked.add((name,), 1.0 if is_acked else 0.0)
    return [state, code, acked]


def _series_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[Family]:
    rows = bounded_rows(snap, bounds)
    labels = SERIES_LABELS

    contacts = Family(
        text, "cxmon_contacts", "counter", "Contacts since start, by outcome.", (*labels, "outcome")
    )
    counters = {
        key: Family(text, name, "counter", help_, labels) for key, (name, help_) in TOTAL_COUNTERS.items()
    }
    wait = Family(
        text,
        "cxmon_wait_seconds",
        "histogram",
        "Wait in queue of contacts that left it (answered or abandoned).",
        labels,
    )
    resolution = Family(
        text,
        "cxmon_resolution_seconds",
        "histogram",
        "Handle or resolution time of resolved contacts.",
        labels,
    )
    instant = [(m, Family(text, ref.name, "gauge", ref.help, labels)) for m, ref in INSTANT_METRICS.items()]
    windowed: dict[str, Family] = {}
    for ref in WINDOW_METRICS.values():
        if ref.name not in windowed:
            windowed[ref.name] = Family(text, ref.name, "gauge", ref.help, (*labels, "window", *ref.labels))
    # Per measure: its family, the extra label values and their rendered text, computed once.
    per_measure = [
        (
            m,
            windowed[ref.name],
            tuple(ref.labels.values()),
            "".join(f',{k}="{v}"' for k, v in ref.labels.items()),
        )
        for m, ref in WINDOW_METRICS.items()
    ]
    outcome_text = [(o, f',outcome="{o}"') for o in OUTCOMES]
    window_names: dict[float, str] = {}

    contacts_add = contacts.samples.append
    counter_adds = [(key, fam.samples.append) for key, fam in counters.items()]
    instant_adds = [(m, fam.samples.append) for m, fam in instant]
    measure_adds = [(m, fam.samples.append, extra, extra_text) for m, fam, extra, extra_text in per_measure]
    for row in rows:
        lv = row.labels
        ltext = f'step="{escape(lv[0])}",channel="{escape(lv[1])}",queue="{escape(lv[2])}"'
        totals = row.totals
        for outcome, otext in outcome_text:
            contacts_add(("", (*lv, outcome), ltext + otext, float(totals.get(outcome, 0))))
        for key, add in counter_adds:
            add(("", lv, ltext, float(totals.get(key, 0))))
        add_histogram(wait, lv, ltext, row.wait)
        add_histogram(resolution, lv, ltext, row.resolution)
        for m, add in instant_adds:
            value = row.instant.get(m)
            if value is not None and value == value:
                add(("", lv, ltext, float(value)))
        for w, figures in row.windows.items():
            wname = window_names.get(w)
            if wname is None:
                wname = window_names[w] = format_window(w)
            wvalues = (*lv, wname)
            wtext = f'{ltext},window="{wname}"'
            for m, add, extra, extra_text in measure_adds:
                value = figures.get(m)
                if value is not None and value == value:  # None and NaN mean "no data": no sample
                    add(("", (*wvalues, *extra), wtext + extra_text, float(value)))

    return [contacts, *counters.values(), wait, resolution, *(f for _, f in instant), *windowed.values()]


def _forecast_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[Family]:
    """The staffing forecast of every voice and chat series (cxmon.forecast.metrics)."""
    fams = [
        (g, Family(text, g.name, "gauge", g.help, (*SERIES_LABELS, *(("model",) if g.with_model else ()))))
        for g in FORECAST_GAUGES
    ]
    eta = Family(
        text,
        "cxmon_forecast_breach_eta_seconds",
        "gauge",
        "Seconds until a threshold's measure is projected to cross its breach (only where one is).",
        (*SERIES_LABELS, "measure", "window"),
    )
    seen: set[tuple[str, str, str]] = set()
    for s in snap.series:
        f = s.forecast
        labels = bounds.series(s)
        if f is None or labels in seen:
            continue  # several series folded into "other" export the first one's forecast
        seen.add(labels)
        for g, fam in fams:
            value = g.read(f)
            if value is not None and math.isfinite(value):
                fam.add((*labels, f.model or "") if g.with_model else labels, value)
        values = {(p.measure, p.window): s.value(p.measure, p.window) for p in f.projections}
        for measure, window, seconds in breach_etas(f, values):
            eta.add((*labels, measure, format_window(window)), seconds)
    return [*(fam for _, fam in fams), eta]


def _baseline_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[Family]:
    """What is usual at this hour of the week, per judged measure (cxmon.forecast.usual): one family
    per measure's gauge, ``cxmon_baseline_`` before its name, with ``window`` and ``percentile`` (the
    median is 50; the limit past which a value is worse than usual 95, or 5 where low is bad). The
    label is not ``quantile``: Prometheus keeps that name for summaries.

    # HELP cxmon_baseline_wait_p90_seconds Usual at this hour of the week (median, and …
    # TYPE cxmon_baseline_wait_p90_seconds gauge
    cxmon_baseline_wait_p90_seconds{step="enquire",…,window="5m",percentile="50"} 31.0
    cxmon_baseline_wait_p90_seconds{step="enquire",…,window="5m",percentile="95"} 44.0
    """
    fams: dict[str, Family] = {}
    seen: set[tuple[str, ...]] = set()
    for f in snap.baselines:
        ref = metric_for(f.measure)
        name = "cxmon_baseline_" + ref.name.removeprefix("cxmon_")
        fam = fams.get(name)
        if fam is None:
            fam = fams[name] = Family(
                text,
                name,
                "gauge",
                f"Usual at this hour of the week (median, and the limit past which it is worse than "
                f"usual), from earlier weeks: {ref.help}",
                (*SERIES_LABELS, *ref.labels, "window", "percentile"),
            )
        labels = (
            bounds.step(f.step),
            f.channel if f.channel in bounds.channels else OTHER,
            f.queue if f.queue in bounds.queues else OTHER,
            *ref.labels.values(),
            format_window(f.window),
        )
        if (name, *labels) in seen:
            continue  # several series folded into "other" export the first one's baseline
        seen.add((name, *labels))
        fam.add((*labels, "50"), f.median)
        fam.add((*labels, f"{f.limit_quantile * 100:g}"), f.limit)
    return list(fams.values())


def _collector_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[Family]:
    lab = ("collector",)
    up = Family(text, "cxmon_collector_up", "gauge", "1 when the collector is connected/reading.", lab)
    stale = Family(
        text,
        "cxmon_collector_stale",
        "gauge",
        "1 when the collector is down, silent for too long, or back from an outage too recently.",
        lab,
    )
    events = Family(text, "cxmon_collector_events", "counter", "Events taken from the collector.", lab)
    errors = Family(text, "cxmon_collector_errors", "counter", "Bad input or failures in the collector.", lab)
    last = Family(
        text,
        "cxmon_collector_last_event_timestamp_seconds",
        "gauge",
        "Source-clock time of the collector's newest event or heartbeat.",
        lab,
    )
    merged: dict[str, list[float]] = {}
    for src in snap.sources:
        name = bounds.collector(src.name)
        agg = merged.setdefault(name, [0.0, 1.0, 0.0, 0.0, -math.inf])
        agg[0] = max(agg[0], 1.0 if src.up else 0.0)
        agg[1] = min(agg[1], 1.0 if src.stale else 0.0)
        agg[2] += src.events_total
        agg[3] += src.errors_total
        if src.last_event_ts is not None:
            agg[4] = max(agg[4], src.last_event_ts)
    for name, (u, s, ev, er, ts) in merged.items():
        up.add((name,), u)
        stale.add((name,), s)
        events.add((name,), ev)
        errors.add((name,), er)
        if ts > -math.inf:
            last.add((name,), ts)
    return [up, stale, events, errors, last]


def _alert_families(status: AlertStatus | None, text: bool) -> list[Family]:
    lab = ("sink",)
    sent = Family(text, "cxmon_alert_notifications", "counter", "Notifications delivered by the sink.", lab)
    failed = Family(
        text, "cxmon_alert_sink_failures", "counter", "Failed delivery attempts (each retry).", lab
    )
    dropped = Family(text, "cxmon_alert_dropped", "counter", "Notifications dropped: sink queue full.", lab)
    queued = Family(text, "cxmon_alert_queue_length", "gauge", "Notifications waiting for the sink.", lab)
    for st in status.sinks if status is not None else ():
        if st.name not in ALERT_SINKS:
            continue
        sent.add((st.name,), float(st.sent))
        failed.add((st.name,), float(st.failures))
        dropped.add((st.name,), float(st.dropped))
        queued.add((st.name,), float(st.queued))
    return [sent, failed, dropped, queued]


class SnapshotCollector(Collector):
    """A prometheus-client Collector over one Snapshot (or whatever ``source`` returns at collect time).

    A scrape never walks raw events: every figure is already in the Snapshot. Sample output::

        # HELP cxmon_contacts_total Contacts since start, by outcome.
        # TYPE cxmon_contacts_total counter
        cxmon_contacts_total{channel="voice",outcome="offered",queue="billing",step="get_help"} 1234.0
        # HELP cxmon_wait_seconds Wait in queue of contacts that left it (answered or abandoned).
        # TYPE cxmon_wait_seconds histogram
        cxmon_wait_seconds_bucket{channel="voice",le="5.0",queue="billing",step="get_help"} 310.0
        # HELP cxmon_step_state Current state of a journey step: 1 for its state, 0 for the others.
        # TYPE cxmon_step_state gauge
        cxmon_step_state{state="pothole",step="get_help"} 1.0
    """

    def __init__(self, source: Snapshot | Callable[[], Snapshot], config: Config) -> None:
        self._source = source
        self._config = config
        self._bounds = LabelBounds(config)

    def collect(self) -> Iterator[Metric]:
        """Yield every cxmon metric family for the current snapshot."""
        snap = self._source() if callable(self._source) else self._source
        for fam in _families(snap, self._config, self._bounds, False):
            yield fam.to_metric()


def render_chunks(
    snapshot: Snapshot,
    config: Config,
    published: float | None = None,
    http: HttpCounts | None = None,
    more: Sequence[bytes] = (),
) -> list[bytes]:
    """Return the text exposition of ``snapshot`` as byte chunks (see :func:`render`), then ``more``."""
    out: list[bytes] = []
    for fam in _families(snapshot, config, LabelBounds(config), True):
        out.extend(fam.chunks())
    for fam in serving_families(published, http):
        out.extend(fam.chunks())
    out.extend(more)
    return out


def render(
    snapshot: Snapshot, config: Config, published: float | None = None, http: HttpCounts | None = None
) -> bytes:
    """Return the text exposition of ``snapshot`` (what a scrape of ``/metrics`` serves).

    The families are the ones :class:`SnapshotCollector` yields, written straight to text: the same
    samples as ``generate_latest`` over that collector (a test holds them equal) at a fraction of
    the cost, which matters at thousands of series.

    Args:
        snapshot: the snapshot to export.
        config: gives the bounded label values (config plus ``other``).
        published: wall-clock time the snapshot was published; when given, exported as
            ``cxmon_snapshot_published_timestamp_seconds``.
        http: the serving HTTP server's counts; when given, exported as ``cxmon_http_*``.

    Returns:
        Prometheus text format 0.0.4, UTF-8.
    """
    return b"".join(render_chunks(snapshot, config, published, http))


def render_with_client(snapshot: Snapshot, config: Config) -> bytes:
    """Return the exposition as prometheus-client's ``generate_latest`` writes it (the reference)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, config))
    return generate_latest(registry)


@dataclass(frozen=True, slots=True)
class Payload:
    """One rendered exposition: the text in chunks, and the same gzip-compressed."""

    chunks: tuple[bytes, ...]
    length: int
    gzip: bytes
    version: int

    @property
    def body(self) -> bytes:
        """The whole text (joins the chunks)."""
        return b"".join(self.chunks)


def render_payload(
    snapshot: Snapshot,
    config: Config,
    published: float | None = None,
    http: HttpCounts | None = None,
    more: Sequence[bytes] = (),
) -> Payload:
    """Render and compress ``snapshot`` (run it in a worker thread: zlib lets go of the GIL).

    Args:
        snapshot: the snapshot to export.
        config: gives the bounded label values.
        published: wall-clock time of publication (see :func:`render`).
        http: the HTTP server's counts (see :func:`render`).
        more: exposition text of other parts of the daemon (the hub's counters), added at the end.

    Returns:
        The text in chunks and the same as one gzip member.
    """
    chunks = render_chunks(snapshot, config, published, http, more)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = [comp.compress(c) for c in chunks]
    gz.append(comp.flush())
    return Payload(tuple(chunks), sum(len(c) for c in chunks), b"".join(gz), snapshot.version)
