"""Prometheus exporter: a custom Collector over the latest Snapshot, served from cached bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from cxmon import __version__
from cxmon.config import OTHER, Config, known_labels
from cxmon.snapshot import Histogram, SeriesFigures, Snapshot, State
from cxmon.units import format_window

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9464
SERIES_LABELS = ("step", "channel", "queue")
OUTCOMES = ("offered", "answered", "abandoned", "short_abandoned", "lost")
"""Values of the ``outcome`` label of ``cxmon_contacts_total`` and ``cxmon_window_contacts``."""
ALERT_SINKS = ("alertmanager", "webhook", "log")


@dataclass(frozen=True, slots=True)
class MetricRef:
    """Where a measure is exported: the metric name and the labels that pick the measure out."""

    name: str
    labels: Mapping[str, str]
    help: str

    def selector(self, **matchers: str) -> str:
        """Return a PromQL selector, e.g. ``cxmon_window_contacts{outcome="offered",step="x"}``."""
        parts = [f'{k}="{v}"' for k, v in self.labels.items()]
        for key, value in matchers.items():
            op = "=~" if key.endswith("__re") else "="
            parts.append(f'{key.removesuffix("__re")}{op}"{value}"')
        return f"{self.name}{{{','.join(parts)}}}"


def _ref(name: str, help_: str, **labels: str) -> MetricRef:
    return MetricRef(name, MappingProxyType(labels), help_)


WINDOW_METRICS: dict[str, MetricRef] = {
    **{
        o: _ref("cxmon_window_contacts", "Contacts in the rolling window, by outcome.", outcome=o)
        for o in OUTCOMES
    },
    "service_level": _ref(
        "cxmon_service_level_ratio", "Service level in the window (formula in build info)."
    ),
    "asa": _ref("cxmon_asa_seconds", "Average speed of answer in the window."),
    "wait_p50": _ref("cxmon_wait_p50_seconds", "Median wait of contacts that left the queue in the window."),
    "wait_p90": _ref("cxmon_wait_p90_seconds", "90th percentile wait of contacts that left the queue."),
    "wait_p99": _ref("cxmon_wait_p99_seconds", "99th percentile wait of contacts that left the queue."),
    "abandon_rate": _ref("cxmon_abandon_ratio", "Abandoned (less short abandons) over contacts that left."),
    "resolution_p50": _ref("cxmon_resolution_p50_seconds", "Median resolution time in the window."),
    "resolution_p90": _ref("cxmon_resolution_p90_seconds", "90th percentile resolution time in the window."),
    "escalations": _ref("cxmon_window_escalations", "Escalated contacts in the rolling window."),
    "escalation_rate": _ref("cxmon_escalation_ratio", "Escalations over answered contacts in the window."),
    "transfers": _ref("cxmon_window_transfers", "Transferred contacts in the rolling window."),
    "reopen_rate": _ref("cxmon_reopen_ratio", "Reopened over resolved contacts in the window."),
    "csat": _ref("cxmon_csat_score", "Mean feedback score (1-5) in the window."),
    "response_rate": _ref("cxmon_survey_response_ratio", "Surveys answered over surveys sent in the window."),
    "resolved": _ref("cxmon_window_resolutions", "Resolved contacts in the rolling window."),
    "feedback": _ref("cxmon_window_feedback_responses", "Feedback scores received in the rolling window."),
}
"""Windowed measure (plus the resolved and feedback volumes thresholds need) → its gauge."""

INSTANT_METRICS: dict[str, MetricRef] = {
    "waiting_now": _ref("cxmon_waiting_contacts", "Contacts waiting in queue now."),
    "longest_wait_now": _ref("cxmon_longest_wait_seconds", "Longest current wait in queue."),
    "agents_staffed": _ref("cxmon_agents_staffed", "Agents logged in."),
    "agents_available": _ref("cxmon_agents_available", "Agents ready to take a contact."),
    "occupancy": _ref("cxmon_occupancy_ratio", "Share of staffed agents busy with contacts."),
    "backlog": _ref("cxmon_backlog_contacts", "Open contacts (tickets, emails) now."),
    "aged_backlog": _ref("cxmon_aged_backlog_contacts", "Open contacts older than the step's target."),
}
"""Instant measure → its gauge (labels step, channel, queue)."""

TOTAL_COUNTERS: dict[str, tuple[str, str]] = {
    "escalated": ("cxmon_escalations", "Escalated contacts since start."),
    "transferred": ("cxmon_transfers", "Transferred contacts since start."),
    "resolved": ("cxmon_resolutions", "Resolved contacts since start."),
    "reopened": ("cxmon_reopens", "Reopened contacts since start."),
}
"""SeriesFigures.totals key → counter family name (rendered with ``_total``) and help."""


def metric_for(measure: str) -> MetricRef:
    """Return where ``measure`` is exported (rules and dashboards use this, so they cannot drift).

    Raises:
        KeyError: not a known measure.
    """
    if measure in WINDOW_METRICS:
        return WINDOW_METRICS[measure]
    return INSTANT_METRICS[measure]


# --------------------------------------------------------------------------- label bounding


class LabelBounds:
    """Maps step, channel, queue and collector values onto the bounded set from config plus ``other``."""

    def __init__(self, config: Config) -> None:
        channels, queues = known_labels(config)
        self.steps = frozenset(s.name for s in config.steps) | {OTHER}
        self.channels = channels
        self.queues = queues
        self.collectors = frozenset(c.name for c in config.collectors) | {OTHER}

    def step(self, value: str) -> str:
        """Return ``value`` if config knows the step, else ``other``."""
        return value if value in self.steps else OTHER

    def series(self, s: SeriesFigures) -> tuple[str, str, str]:
        """Return the bounded (step, channel, queue) labels of a series."""
        return (
            s.step if s.step in self.steps else OTHER,
            s.channel if s.channel in self.channels else OTHER,
            s.queue if s.queue in self.queues else OTHER,
        )

    def collector(self, value: str) -> str:
        """Return ``value`` if config names that collector, else ``other``."""
        return value if value in self.collectors else OTHER


# --------------------------------------------------------------------------- merging series into "other"

_SUM_MEASURES = frozenset({*OUTCOMES, "escalations", "transfers", "resolved", "feedback", "surveys"})
_MAX_MEASURES = frozenset({"wait_p50", "wait_p90", "wait_p99", "resolution_p50", "resolution_p90"})


def _weight(measure: str, figures: Mapping[str, float | None], formula: str) -> float:
    def g(name: str) -> float:
        return figures.get(name) or 0.0

    if measure == "service_level":
        if formula == "incl_abandons":
            return g("answered") + g("abandoned")
        if formula == "answered_only":
            return g("answered")
        return g("answered") + g("abandoned") - g("short_abandoned")
    if measure == "abandon_rate":
        return g("answered") + g("abandoned") - g("short_abandoned")
    if measure in ("asa", "escalation_rate"):
        return g("answered")
    if measure == "reopen_rate":
        return g("resolved")
    if measure == "csat":
        return g("feedback")
    if measure == "response_rate":
        return g("surveys")
    return g("offered")


def _merge_figures(
    items: list[Mapping[str, float | None]], formula: str, instant: bool = False
) -> dict[str, float | None]:
    """Merge measures of series that share bounded labels.

    Counts add up; ratios and means are weighted by their denominators (exact when the figures
    are exact); quantiles take the worst (largest), since they cannot be merged from values.
    """
    out: dict[str, float | None] = {}
    names = {n for f in items for n in f}
    for name in names:
        values = [(f.get(name), f) for f in items]
        present = [(v, f) for v, f in values if v is not None]
        if not present:
            out[name] = None
        elif name in _SUM_MEASURES or (instant and name not in ("longest_wait_now", "occupancy")):
            out[name] = float(sum(v for v, _ in present))
        elif name in _MAX_MEASURES or name == "longest_wait_now":
            out[name] = max(v for v, _ in present)
        else:
            weights = [
                (v, (f.get("agents_staffed") or 0.0) if instant else _weight(name, f, formula))
                for v, f in present
            ]
            total = sum(w for _, w in weights)
            if total > 0:
                out[name] = sum(v * w for v, w in weights) / total
            else:
                out[name] = sum(v for v, _ in weights) / len(weights)
    return out


def _merge_hist(hists: list[Histogram]) -> Histogram:
    first = hists[0]
    counts = [0] * len(first.counts)
    for h in hists:
        for i, c in enumerate(h.counts):
            counts[i] += c
    return Histogram(
        bounds=first.bounds,
        counts=tuple(counts),
        total=sum(h.total for h in hists),
        count=sum(h.count for h in hists),
    )


@dataclass(frozen=True, slots=True)
class _Row:
    """One exported series: bounded labels and its (possibly merged) figures."""

    labels: tuple[str, str, str]
    windows: Mapping[float, Mapping[str, float | None]]
    instant: Mapping[str, float | None]
    totals: Mapping[str, int]
    wait: Histogram
    resolution: Histogram


def _rows(snapshot: Snapshot, bounds: LabelBounds) -> Iterator[_Row]:
    """Yield one row per bounded label set, merging the series that share one.

    Rows are made one at a time, and only merged groups are collected: at thousands of series a
    render keeps few long-lived objects, so it does not set off full garbage collections.
    """
    keys = [bounds.series(s) for s in snapshot.series]
    seen: set[tuple[str, str, str]] = set()
    shared: dict[tuple[str, str, str], list[SeriesFigures]] = {}
    for key in keys:
        if key in seen:
            shared[key] = []
        seen.add(key)
    for key, s in zip(keys, snapshot.series, strict=True):
        group = shared.get(key)
        if group is None:
            yield _Row(key, s.windows, s.instant, s.totals, s.wait_histogram, s.resolution_histogram)
        else:
            group.append(s)
    formula = snapshot.service_level_formula
    for labels, members in shared.items():
        windows = {
            w: _merge_figures([m.windows[w] for m in members if w in m.windows], formula)
            for w in sorted({w for m in members for w in m.windows})
        }
        totals: dict[str, int] = {}
        for m in members:
            for k, v in m.totals.items():
                totals[k] = totals.get(k, 0) + v
        yield _Row(
            labels,
            windows,
            _merge_figures([m.instant for m in members], formula, instant=True),
            totals,
            _merge_hist([m.wait_histogram for m in members]),
            _merge_hist([m.resolution_histogram for m in members]),
        )


# --------------------------------------------------------------------------- metric families


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _fmt(value: float) -> str:
    text = repr(value)
    return _SPECIAL.get(text, text)


class _Lines:
    """Where a family's samples go when writing text: lines, turned into bytes every few thousand.

    Only short-lived objects are made per sample, and no single join or encode is big: a render in
    a worker thread never holds the GIL for long, so the event loop keeps running.
    """

    __slots__ = ("buf", "chunks", "name")
    FLUSH = 4096

    def __init__(self, name: str, header: str) -> None:
        self.name = name
        self.chunks: list[bytes] = []
        self.buf: list[str] = [header]

    def append(self, sample: tuple[str, tuple[str, ...], str, float]) -> None:
        suffix, _values, text, value = sample
        v = repr(value)
        v = _SPECIAL.get(v, v)
        buf = self.buf
        buf.append(f"{self.name}{suffix}{{{text}}} {v}\n" if text else f"{self.name}{suffix} {v}\n")
        if len(buf) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.chunks.append("".join(self.buf).encode())
            self.buf = []


class _Fam:
    """One metric family, built once from the snapshot and either kept or written as it is built.

    Samples are (name suffix, label values, label text, value); the label text is the rendered
    ``k="v",...`` so no label is formatted twice. With ``text`` they go straight to :class:`_Lines`;
    without, they are kept for :meth:`to_metric` (the prometheus-client Collector path).
    """

    __slots__ = ("help", "kind", "labelnames", "name", "samples")

    def __init__(
        self, text: bool, name: str, kind: str, help_: str, labelnames: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.kind = kind
        self.help = help_
        self.labelnames = labelnames
        self.samples: Any
        if text:
            exposed = self.exposed_name
            escaped = help_.replace("\\", "\\\\").replace("\n", "\\n")
            self.samples = _Lines(exposed, f"# HELP {exposed} {escaped}\n# TYPE {exposed} {kind}\n")
        else:
            self.samples = []

    def add(self, values: tuple[str, ...], value: float, text: str | None = None, suffix: str = "") -> None:
        if text is None:
            text = ",".join(f'{k}="{_esc(v)}"' for k, v in zip(self.labelnames, values, strict=True))
        self.samples.append((suffix, values, text, value))

    @property
    def exposed_name(self) -> str:
        return self.name + "_total" if self.kind == "counter" else self.name

    def to_metric(self) -> Metric:
        """Return the prometheus-client form of this family (built without ``text``)."""
        metric = Metric(self.name, self.help, self.kind)
        names = self.labelnames
        bucket_names = (*names, "le")
        sample_name = self.exposed_name
        for suffix, values, _text, value in self.samples:
            keys = bucket_names if suffix == "_bucket" else names
            metric.add_sample(sample_name + suffix, dict(zip(keys, values, strict=True)), value)
        return metric

    def chunks(self) -> list[bytes]:
        """Return the text of this family (built with ``text``) as byte chunks."""
        lines: _Lines = self.samples
        lines.flush()
        return lines.chunks


_LE_CACHE: dict[tuple[float, ...], tuple[tuple[str, str], ...]] = {}


def _les(bounds: tuple[float, ...]) -> tuple[tuple[str, str], ...]:
    """Return (le value, ``,le="…"`` text) per bucket, +Inf last; cached per bounds tuple."""
    les = _LE_CACHE.get(bounds)
    if les is None:
        names = [str(floatToGoString(b)) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        les = _LE_CACHE[bounds] = tuple((n, f',le="{n}"') for n in names)
    return les


def _add_histogram(fam: _Fam, values: tuple[str, ...], text: str, h: Histogram) -> None:
    # Histogram.counts are per bucket with the +Inf overflow last; Prometheus buckets are cumulative.
    add = fam.samples.append
    les = _les(h.bounds)
    running = 0
    for (le, le_text), count in zip(les, h.counts, strict=False):
        running += count
        add(("_bucket", (*values, le), text + le_text, float(running)))
    add(("_count", values, text, float(running)))
    add(("_sum", values, text, float(h.total)))


def _ok(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _families(snap: Snapshot, config: Config, bounds: LabelBounds, text: bool) -> list[_Fam]:
    build = _Fam(
        text,
        "cxmon_build_info",
        "gauge",
        "cxmon version and the service-level formula in use (always 1).",
        ("version", "service_level_formula"),
    )
    build.add((__version__, snap.service_level_formula), 1.0)
    ts = _Fam(
        text,
        "cxmon_snapshot_timestamp_seconds",
        "gauge",
        "Engine clock (source time) of the exported snapshot.",
    )
    ts.add((), snap.ts, "")
    events = _Fam(text, "cxmon_events", "counter", "Events taken in by the engine.")
    events.add((), float(snap.events_total), "")
    strikes = _Fam(
        text,
        "cxmon_strike_customers",
        "gauge",
        f"Customers with at least {config.monitor.strikes} bad experiences in the last 24 hours.",
    )
    strikes.add((), float(snap.strikes), "")
    healthy = _Fam(
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
        *_collector_families(snap, bounds, text),
        *_alert_families(snap.extra.get("alerts"), text),
    ]


def _store_families(snap: Snapshot, text: bool) -> list[_Fam]:
    if snap.store is None:
        return []
    held = _Fam(
        text,
        "cxmon_store_backpressure",
        "gauge",
        "1 while history commits fail and the sources are held back until the database has room.",
    )
    held.add((), 1.0 if snap.store.backpressure else 0.0, "")
    pending = _Fam(text, "cxmon_store_pending_rows", "gauge", "Rows waiting for a history commit.")
    pending.add((), float(snap.store.pending_rows), "")
    failing = _Fam(
        text,
        "cxmon_store_commit_failures",
        "gauge",
        "Failed history commits since the last one that succeeded (0 when commits work).",
    )
    failing.add((), float(snap.store.commit_failures), "")
    return [held, pending, failing]


def _step_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[_Fam]:
    state = _Fam(
        text,
        "cxmon_step_state",
        "gauge",
        "Current state of a journey step: 1 for its state, 0 for the others.",
        ("step", "state"),
    )
    code = _Fam(
        text,
        "cxmon_step_state_code",
        "gauge",
        "Current state of a journey step as a number: 0 ok, 1 watch, 2 pothole, 3 stale.",
        ("step",),
    )
    acked = _Fam(
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


def _series_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[_Fam]:
    rows = _rows(snap, bounds)
    labels = SERIES_LABELS

    contacts = _Fam(
        text, "cxmon_contacts", "counter", "Contacts since start, by outcome.", (*labels, "outcome")
    )
    counters = {
        key: _Fam(text, name, "counter", help_, labels) for key, (name, help_) in TOTAL_COUNTERS.items()
    }
    wait = _Fam(
        text,
        "cxmon_wait_seconds",
        "histogram",
        "Wait in queue of contacts that left it (answered or abandoned).",
        labels,
    )
    resolution = _Fam(
        text,
        "cxmon_resolution_seconds",
        "histogram",
        "Handle or resolution time of resolved contacts.",
        labels,
    )
    instant = [(m, _Fam(text, ref.name, "gauge", ref.help, labels)) for m, ref in INSTANT_METRICS.items()]
    windowed: dict[str, _Fam] = {}
    for ref in WINDOW_METRICS.values():
        if ref.name not in windowed:
            windowed[ref.name] = _Fam(text, ref.name, "gauge", ref.help, (*labels, "window", *ref.labels))
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
        ltext = f'step="{_esc(lv[0])}",channel="{_esc(lv[1])}",queue="{_esc(lv[2])}"'
        totals = row.totals
        for outcome, otext in outcome_text:
            contacts_add(("", (*lv, outcome), ltext + otext, float(totals.get(outcome, 0))))
        for key, add in counter_adds:
            add(("", lv, ltext, float(totals.get(key, 0))))
        _add_histogram(wait, lv, ltext, row.wait)
        _add_histogram(resolution, lv, ltext, row.resolution)
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


def _collector_families(snap: Snapshot, bounds: LabelBounds, text: bool) -> list[_Fam]:
    lab = ("collector",)
    up = _Fam(text, "cxmon_collector_up", "gauge", "1 when the collector is connected/reading.", lab)
    stale = _Fam(
        text,
        "cxmon_collector_stale",
        "gauge",
        "1 when the collector has been silent for longer than allowed.",
        lab,
    )
    events = _Fam(text, "cxmon_collector_events", "counter", "Events taken from the collector.", lab)
    errors = _Fam(text, "cxmon_collector_errors", "counter", "Bad input or failures in the collector.", lab)
    last = _Fam(
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


def _alert_families(status: Any, text: bool) -> list[_Fam]:
    lab = ("sink",)
    sent = _Fam(text, "cxmon_alert_notifications", "counter", "Notifications delivered by the sink.", lab)
    failed = _Fam(text, "cxmon_alert_sink_failures", "counter", "Failed delivery attempts (each retry).", lab)
    dropped = _Fam(text, "cxmon_alert_dropped", "counter", "Notifications dropped: sink queue full.", lab)
    queued = _Fam(text, "cxmon_alert_queue_length", "gauge", "Notifications waiting for the sink.", lab)
    sinks = status.get("sinks", {}) if isinstance(status, Mapping) else {}
    for name, st in sinks.items():
        if name not in ALERT_SINKS or not isinstance(st, Mapping):
            continue
        sent.add((name,), float(st.get("sent", 0)))
        failed.add((name,), float(st.get("failures", 0)))
        dropped.add((name,), float(st.get("dropped", 0)))
        queued.add((name,), float(st.get("queued", 0)))
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


def render_chunks(snapshot: Snapshot, config: Config) -> list[bytes]:
    """Return the text exposition of ``snapshot`` as byte chunks (see :func:`render`)."""
    out: list[bytes] = []
    for fam in _families(snapshot, config, LabelBounds(config), True):
        out.extend(fam.chunks())
    return out


def render(snapshot: Snapshot, config: Config) -> bytes:
    """Return the text exposition of ``snapshot`` (what a scrape of ``/metrics`` serves).

    The families are the ones :class:`SnapshotCollector` yields, written straight to text: the same
    samples as ``generate_latest`` over that collector (a test holds them equal) at a fraction of
    the cost, which matters at thousands of series.

    Args:
        snapshot: the snapshot to export.
        config: gives the bounded label values (config plus ``other``).

    Returns:
        Prometheus text format 0.0.4, UTF-8.
    """
    return b"".join(render_chunks(snapshot, config))


def render_with_client(snapshot: Snapshot, config: Config) -> bytes:
    """Return the exposition as prometheus-client's ``generate_latest`` writes it (the reference)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, config))
    return generate_latest(registry)


# --------------------------------------------------------------------------- the HTTP server


class EngineLike(Protocol):
    """What the exporter needs from the engine."""

    config: Config

    @property
    def latest(self) -> Snapshot: ...

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None: ...


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
_CHUNK = 1 << 20


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


def render_payload(snapshot: Snapshot, config: Config) -> Payload:
    """Render and compress ``snapshot`` (run it in a worker thread: zlib lets go of the GIL)."""
    chunks = render_chunks(snapshot, config)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = [comp.compress(c) for c in chunks]
    gz.append(comp.flush())
    return Payload(tuple(chunks), sum(len(c) for c in chunks), b"".join(gz), snapshot.version)


class MetricsServer:
    """Serves ``/metrics`` from bytes rendered off the event loop, and ``/healthz``.

    A render runs in a worker thread each time a new snapshot is published; a scrape only writes the
    cached bytes. After a render that took ``t`` seconds the next one waits at least
    ``t * (1 / max_render_share - 1)``, so rendering a huge exposition never takes more than that
    share of a core. Nobody scraping for ``idle_after`` seconds stops the renders until the next scrape.
    """

    def __init__(
        self,
        engine: EngineLike,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        max_render_share: float = 0.25,
        idle_after: float = 300.0,
    ) -> None:
        self._engine = engine
        self._config = engine.config
        self._host = host
        self._port = port
        self._share = max_render_share
        self._idle_after = idle_after
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._rendered = asyncio.Condition()
        self._payload: Payload | None = None
        self._last_scrape = -math.inf
        self._clients: set[asyncio.Task[None]] = set()
        self.renders = 0
        """Renders done so far."""
        self.last_render_seconds = 0.0
        """Wall time the newest render took (in its worker thread)."""

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind the listening socket and start the render task."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=16384)
        self._engine.add_listener(self._on_snapshot)
        self._task = asyncio.create_task(self._render_loop(), name="cxmon-exporter-render")
        log.info("metrics on http://%s:%d/metrics", self._host, self.port)

    async def close(self) -> None:
        """Stop listening, finish open connections and stop the render task."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_snapshot(self, _snap: Snapshot) -> None:
        self._wake.set()

    def _active(self) -> bool:
        return time.monotonic() - self._last_scrape < self._idle_after

    async def _render_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snap = self._engine.latest
            if snap.version == self._version or (not self._active() and self._payload is not None):
                continue
            t0 = time.perf_counter()
            try:
                payload = await asyncio.to_thread(render_payload, snap, self._config)
            except Exception:  # a render bug must not kill the exporter; keep the last good bytes
                log.exception("rendering metrics failed")
                await asyncio.sleep(1.0)
                continue
            took = time.perf_counter() - t0
            self.renders += 1
            self.last_render_seconds = took
            async with self._rendered:
                self._payload = payload
                self._rendered.notify_all()
            await asyncio.sleep(took * (1.0 / self._share - 1.0))

    @property
    def _version(self) -> int:
        return -1 if self._payload is None else self._payload.version

    async def payload(self, timeout: float = 10.0) -> Payload | None:
        """Return what a scrape serves now: cached, or freshly rendered after an idle spell.

        Returns:
            The payload, or None when none could be rendered within ``timeout``.
        """
        was_active = self._active()
        self._last_scrape = time.monotonic()
        if self._payload is not None and was_active:
            return self._payload
        wanted = self._engine.latest.version
        self._wake.set()
        async with self._rendered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rendered.wait_for(lambda: self._version >= wanted), timeout)
        return self._payload

    async def body(self, timeout: float = 10.0) -> bytes | None:
        """Return the uncompressed exposition a scrape serves now (see :meth:`payload`)."""
        payload = await self.payload(timeout)
        return None if payload is None else payload.body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await asyncio.wait_for(self._serve(reader, writer), 30.0)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ValueError:  # a header line over the stream limit
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        parts = request.decode("latin-1").split()
        gzip_ok = False
        while True:  # headers (bounded by the stream limit and the timeout); only Accept-Encoding matters
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "accept-encoding" and "gzip" in value.lower():
                gzip_ok = True
        if len(parts) != 3:
            await _respond(writer, 400, [b"bad request\n"])
            return
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            await _respond(writer, 405, [b"method not allowed\n"])
            return
        head = method == "HEAD"
        if path == "/metrics":
            payload = await self.payload()
            if payload is None:
                await _respond(writer, 503, [b"no snapshot rendered yet\n"], head=head)
            elif gzip_ok:
                await _respond(writer, 200, [payload.gzip], CONTENT_TYPE, head=head, encoding="gzip")
            else:
                await _respond(writer, 200, payload.chunks, CONTENT_TYPE, head=head)
        elif path == "/healthz":
            snap = self._engine.latest
            doc = {
                "status": "failing" if snap.tick_error else "stale" if snap.stale else "ok",
                "tick_error": snap.tick_error,
                "version": snap.version,
                "ts": snap.ts,
                "rendered_version": self._version,
                "last_render_seconds": round(self.last_render_seconds, 6),
            }
            body = json.dumps(doc).encode() + b"\n"
            await _respond(writer, 503 if snap.stale else 200, [body], "application/json", head=head)
        else:
            await _respond(writer, 404, [b"not found: try /metrics or /healthz\n"], head=head)


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    chunks: Iterable[bytes],
    content_type: str = "text/plain; charset=utf-8",
    *,
    head: bool = False,
    encoding: str | None = None,
) -> None:
    chunks = list(chunks)
    length = sum(len(c) for c in chunks)
    header = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {content_type}\r\n"
        + (f"Content-Encoding: {encoding}\r\nVary: Accept-Encoding\r\n" if encoding else "")
        + f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    writer.write(header.encode("latin-1"))
    if not head:
        for chunk in chunks:
            view = memoryview(chunk)
            for i in range(0, len(view), _CHUNK):
                writer.write(view[i : i + _CHUNK])
                await writer.drain()
    await writer.drain()


async def start_exporter(engine: EngineLike, host: str, port: int) -> MetricsServer:
    """Start serving ``/metrics`` and ``/healthz`` for ``engine`` on ``host:port``.

    Args:
        engine: gives ``latest`` (the Snapshot), ``add_listener`` and ``config``.
        host: address to bind (127.0.0.1 unless configured otherwise).
        port: port to bind; 0 picks a free one (see ``.port``).

    Returns:
        The running server; ``await server.close()`` stops it.
    """
    server = MetricsServer(engine, host, port)
    await server.start()
    return server


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
