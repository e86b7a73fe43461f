"""Tests for cxmon.exporter: the Snapshot collector, label bounding, rendering and the HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from collections.abc import Callable, Mapping
from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cxmon.config import Config, known_labels, loads
from cxmon.engine import Engine
from cxmon.exporter import (
    CONTENT_TYPE,
    SnapshotCollector,
    exported_names,
    render,
    render_with_client,
    start_exporter,
)
from cxmon.snapshot import (
    RESOLUTION_BUCKETS,
    TOTALS,
    WAIT_BUCKETS,
    Ack,
    Histogram,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
)
from tests.integration import require_binary, sim_config

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
    extra: Mapping[str, object] | None = None,
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
        extra=MappingProxyType(dict(extra or {})),
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


def test_contacts_total_counts_each_outcome() -> None:
    """cxmon_contacts_total carries SeriesFigures.totals under an ``outcome`` label."""
    totals = dict.fromkeys(TOTALS, 0) | {"offered": 40, "answered": 31, "abandoned": 9, "short_abandoned": 2}
    reg = registry_for(make_snapshot((make_series(totals=totals),)), make_config())
    assert reg.get_sample_value("cxmon_contacts_total", {**LABELS, "outcome": "offered"}) == 40
    assert reg.get_sample_value("cxmon_contacts_total", {**LABELS, "outcome": "answered"}) == 31
    assert reg.get_sample_value("cxmon_contacts_total", {**LABELS, "outcome": "short_abandoned"}) == 2
    assert reg.get_sample_value("cxmon_contacts_total", {**LABELS, "outcome": "lost"}) == 0


def test_escalations_and_transfers_are_counters() -> None:
    """Escalated and transferred totals become cxmon_escalations_total and cxmon_transfers_total."""
    totals = dict.fromkeys(TOTALS, 0) | {"escalated": 5, "transferred": 3}
    reg = registry_for(make_snapshot((make_series(totals=totals),)), make_config())
    assert reg.get_sample_value("cxmon_escalations_total", LABELS) == 5
    assert reg.get_sample_value("cxmon_transfers_total", LABELS) == 3


def test_wait_histogram_buckets_are_cumulative() -> None:
    """Per-bucket counts become cumulative ``le`` buckets; +Inf includes the overflow and equals _count."""
    counts = [0] * (len(WAIT_BUCKETS) + 1)
    counts[0], counts[3], counts[-1] = 4, 2, 1  # ≤5 s, ≤30 s, beyond the last bound
    reg = registry_for(make_snapshot((make_series(wait_counts=tuple(counts)),)), make_config())
    assert reg.get_sample_value("cxmon_wait_seconds_bucket", {**LABELS, "le": "5.0"}) == 4
    assert reg.get_sample_value("cxmon_wait_seconds_bucket", {**LABELS, "le": "20.0"}) == 4
    assert reg.get_sample_value("cxmon_wait_seconds_bucket", {**LABELS, "le": "30.0"}) == 6
    assert reg.get_sample_value("cxmon_wait_seconds_bucket", {**LABELS, "le": "86400.0"}) == 6
    assert reg.get_sample_value("cxmon_wait_seconds_bucket", {**LABELS, "le": "+Inf"}) == 7
    assert reg.get_sample_value("cxmon_wait_seconds_count", LABELS) == 7


def test_window_gauges_carry_the_window_label() -> None:
    """Windowed measures are gauges with ``window`` written the way config writes it ("5m")."""
    reg = registry_for(make_snapshot(), make_config())
    assert reg.get_sample_value("cxmon_service_level_ratio", {**LABELS, "window": "5m"}) == 0.75
    assert reg.get_sample_value("cxmon_wait_p90_seconds", {**LABELS, "window": "15m"}) == 42.0
    assert (
        reg.get_sample_value("cxmon_window_contacts", {**LABELS, "window": "5m", "outcome": "abandoned"})
        == 4.0
    )


def test_measure_without_data_has_no_sample() -> None:
    """A measure that is None (no data in the window) is left out rather than exported as 0."""
    figures: dict[str, float | None] = {"offered": 0.0, "service_level": None}
    reg = registry_for(make_snapshot((make_series(windows={300.0: figures}),)), make_config())
    assert reg.get_sample_value("cxmon_service_level_ratio", {**LABELS, "window": "5m"}) is None
    assert (
        reg.get_sample_value("cxmon_window_contacts", {**LABELS, "window": "5m", "outcome": "offered"}) == 0
    )


def test_instant_gauges() -> None:
    """waiting_now and longest_wait_now become cxmon_waiting_contacts and cxmon_longest_wait_seconds."""
    series = make_series(instant={"waiting_now": 7.0, "longest_wait_now": 95.5})
    reg = registry_for(make_snapshot((series,)), make_config())
    assert reg.get_sample_value("cxmon_waiting_contacts", LABELS) == 7
    assert reg.get_sample_value("cxmon_longest_wait_seconds", LABELS) == 95.5


def test_step_state_is_one_for_the_current_state_only() -> None:
    """cxmon_step_state has one sample per state; only the current one is 1; the code gauge agrees."""
    reg = registry_for(make_snapshot(), make_config())
    values = {
        s.value: reg.get_sample_value("cxmon_step_state", {"step": "get_help", "state": s.value})
        for s in State
    }
    assert values == {"ok": 0, "watch": 0, "pothole": 1, "stale": 0}
    assert reg.get_sample_value("cxmon_step_state_code", {"step": "get_help"}) == State.POTHOLE.code


def test_acknowledged_step_is_flagged_until_the_ack_expires() -> None:
    """cxmon_step_acknowledged is 1 while an ack's ``until`` is ahead of the snapshot time."""
    ts = 1_700_000_000.0
    ack = Ack("get_help", "ana", "on it", ts - 10, ts + 600)
    steps = (StepStatus("get_help", "Help", State.POTHOLE, "", ts, True, "wait_p90", 70, 0, 3, ack=ack),)
    assert (
        registry_for(make_snapshot(steps=steps, ts=ts), make_config()).get_sample_value(
            "cxmon_step_acknowledged", {"step": "get_help"}
        )
        == 1
    )
    assert (
        registry_for(make_snapshot(steps=steps, ts=ts + 601), make_config()).get_sample_value(
            "cxmon_step_acknowledged", {"step": "get_help"}
        )
        == 0
    )


def test_unknown_queue_is_exported_as_other_and_merged() -> None:
    """Series on queues config does not know share the label ``other``; their counts add up."""
    totals_a = dict.fromkeys(TOTALS, 0) | {"offered": 3}
    totals_b = dict.fromkeys(TOTALS, 0) | {"offered": 4}
    snap = make_snapshot(
        (make_series(queue="pop-up-1", totals=totals_a), make_series(queue="pop-up-2", totals=totals_b))
    )
    reg = registry_for(snap, make_config())
    labels = {**LABELS, "queue": "other", "outcome": "offered"}
    assert reg.get_sample_value("cxmon_contacts_total", labels) == 7
    assert reg.get_sample_value("cxmon_contacts_total", {**labels, "queue": "pop-up-1"}) is None


def test_merged_service_level_is_weighted_by_its_denominator() -> None:
    """Merging into ``other`` recomputes service level from answered within T over the denominators."""
    busy: dict[str, float | None] = {"answered": 90.0, "abandoned": 10.0, "short_abandoned": 0.0}
    quiet: dict[str, float | None] = {"answered": 10.0, "abandoned": 0.0, "short_abandoned": 0.0}
    snap = make_snapshot(
        (
            make_series(queue="x1", windows={300.0: busy | {"service_level": 0.5, "wait_p90": 30.0}}),
            make_series(queue="x2", windows={300.0: quiet | {"service_level": 1.0, "wait_p90": 90.0}}),
        )
    )
    reg = registry_for(snap, make_config())
    labels = {**LABELS, "queue": "other", "window": "5m"}
    assert reg.get_sample_value("cxmon_service_level_ratio", labels) == pytest.approx(60 / 110)
    assert reg.get_sample_value("cxmon_wait_p90_seconds", labels) == 90.0  # quantiles: the worst


def test_flood_of_new_queue_names_cannot_grow_the_series_count() -> None:
    """A thousand unknown queues export exactly as many series as one unknown queue does."""
    config = make_config()
    one = render(make_snapshot((make_series(), make_series(queue="new-0"))), config)
    flood = tuple(make_series(queue=f"new-{i}", channel=f"ch-{i % 7}", step=f"s{i}") for i in range(1000))
    many = render(make_snapshot((make_series(), *flood)), config)
    count = len([ln for ln in one.splitlines() if not ln.startswith(b"#")])
    assert len([ln for ln in many.splitlines() if not ln.startswith(b"#")]) == count


def test_collector_health_metrics() -> None:
    """Each source gives cxmon_collector_up, events/errors totals and its last-event timestamp."""
    src = SourceStatus("sim", "simulator", True, False, 120, 2, 1_700_000_000.5, 3.0, 0.0)
    config = make_config(CONFIG_TOML)
    reg = registry_for(make_snapshot(sources=(src,)), config)
    # "sim" is not a configured collector in this config, so it is bounded to "other".
    labels = {"collector": "other"}
    assert reg.get_sample_value("cxmon_collector_up", labels) == 1
    assert reg.get_sample_value("cxmon_collector_events_total", labels) == 120
    assert reg.get_sample_value("cxmon_collector_errors_total", labels) == 2
    assert reg.get_sample_value("cxmon_collector_last_event_timestamp_seconds", labels) == 1_700_000_000.5


def test_alert_sink_status_is_exported() -> None:
    """Snapshot.extra["alerts"] sink counters become cxmon_alert_* metrics per sink."""
    extra = {"alerts": {"sinks": {"webhook": {"sent": 4, "failures": 3, "dropped": 1, "queued": 2}}}}
    reg = registry_for(make_snapshot(extra=extra), make_config())
    assert reg.get_sample_value("cxmon_alert_sink_failures_total", {"sink": "webhook"}) == 3
    assert reg.get_sample_value("cxmon_alert_notifications_total", {"sink": "webhook"}) == 4
    assert reg.get_sample_value("cxmon_alert_dropped_total", {"sink": "webhook"}) == 1


def test_build_info() -> None:
    """cxmon_build_info is 1 with the version and the service-level formula."""
    reg = registry_for(make_snapshot(), make_config())
    assert (
        reg.get_sample_value(
            "cxmon_build_info", {"version": "0.1.0", "service_level_formula": "excl_short_abandons"}
        )
        == 1
    )


def test_render_writes_the_same_samples_as_prometheus_client() -> None:
    """The fast writer and generate_latest over the collector give the same samples, labels and values."""
    config = make_config()
    snap = make_snapshot(
        (make_series(), make_series("get_help", "chat", "billing"), make_series(queue='we"ird\\q')),
        sources=(SourceStatus("sim", "simulator", True, False, 1, 0, None, 0.0, 0.0),),
        extra={"alerts": {"sinks": {"log": {"sent": 1}}}},
    )
    fast, reference = render(snap, config), render_with_client(snap, config)
    assert samples(fast) == samples(reference)
    assert [ln for ln in fast.splitlines() if ln.startswith(b"#")] == [
        ln for ln in reference.splitlines() if ln.startswith(b"#")
    ]


def test_promtool_check_metrics_reports_nothing() -> None:
    """`promtool check metrics` finds no problem in a rendered exposition."""
    promtool = require_binary("promtool")
    body = render(make_snapshot((make_series(), make_series(queue="x"))), make_config())
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, b"")


# --------------------------------------------------------------------------- the server


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


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Do one HTTP/1.1 request on 127.0.0.1 with a plain socket; return status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_server_serves_the_latest_snapshot() -> None:
    """GET /metrics on a real socket returns the rendered snapshot with the text-format content type."""
    config = make_config()
    feed = SnapshotFeed(config, make_snapshot())
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        status, headers, body = await http_get(server.port, "/metrics")
    finally:
        await server.close()
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    assert int(headers["content-length"]) == len(body)
    assert body == render(feed.latest, config)


async def test_server_follows_new_snapshots() -> None:
    """A snapshot published after the first scrape shows up in a later scrape."""
    config = make_config()
    feed = SnapshotFeed(config, make_snapshot(version=1))
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        await http_get(server.port, "/metrics")
        totals = dict.fromkeys(TOTALS, 0) | {"offered": 999}
        feed.publish(make_snapshot((make_series(totals=totals),), version=2))
        body = b""
        for _ in range(200):  # bounded: the render runs in a worker thread
            _, _, body = await http_get(server.port, "/metrics")
            if b"999.0" in body:
                break
            await asyncio.sleep(0.01)
    finally:
        await server.close()
    offered = ("cxmon_contacts_total", tuple(sorted({**LABELS, "outcome": "offered"}.items())), 999.0)
    assert offered in samples(body)


async def test_healthz_reports_the_snapshot_version() -> None:
    """GET /healthz answers 200 with JSON naming the snapshot version."""
    feed = SnapshotFeed(make_config(), make_snapshot(version=42))
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        status, _, body = await http_get(server.port, "/healthz")
    finally:
        await server.close()
    assert status == 200
    assert json.loads(body)["version"] == 42


async def test_healthz_is_503_when_everything_is_stale() -> None:
    """A snapshot marked stale (every source silent) makes /healthz answer 503."""
    feed = SnapshotFeed(make_config(), make_snapshot(stale=True))
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        status, _, body = await http_get(server.port, "/healthz")
    finally:
        await server.close()
    assert (status, json.loads(body)["status"]) == (503, "stale")


async def test_unknown_path_is_404_and_post_is_405() -> None:
    """Only /metrics and /healthz exist, and only for GET and HEAD."""
    feed = SnapshotFeed(make_config(), make_snapshot())
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        missing, _, _ = await http_get(server.port, "/nope")
        post, _, _ = await http_get(server.port, "/metrics", method="POST")
        head, headers, body = await http_get(server.port, "/metrics", method="HEAD")
    finally:
        await server.close()
    assert (missing, post, head, body) == (404, 405, 200, b"")
    assert int(headers["content-length"]) > 0


async def test_live_scrape_passes_promtool() -> None:
    """`promtool check metrics` reports nothing on bytes scraped from the running server."""
    promtool = require_binary("promtool")
    feed = SnapshotFeed(make_config(), make_snapshot())
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        _, _, body = await http_get(server.port, "/metrics")
    finally:
        await server.close()
    proc = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=-1, stdout=-1, stderr=-2)
    out, _ = await asyncio.wait_for(proc.communicate(body), 30)
    assert (proc.returncode, out) == (0, b"")
    assert "cxmon_wait_seconds_bucket" in exported_names(body)


async def test_gzip_scrape_decompresses_to_the_same_bytes() -> None:
    """With Accept-Encoding: gzip the server sends the cached gzip body of the same exposition."""
    feed = SnapshotFeed(make_config(), make_snapshot())
    server = await start_exporter(feed, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await writer.wait_closed()
    finally:
        await server.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    assert gzip.decompress(body) == render(feed.latest, make_config())


async def test_real_engine_on_the_simulator_exports_a_clean_exposition() -> None:
    """The Engine on the simulator (speed max) serves /metrics that promtool accepts, with bounded labels."""
    promtool = require_binary("promtool")
    config = sim_config(speed="max", duration="20m")
    async with Engine(config, store=False) as engine:
        server = await start_exporter(engine, "127.0.0.1", 0)
        try:
            await engine.run()
            _, _, body = await http_get(server.port, "/metrics")
            snap = engine.latest
        finally:
            await server.close()
    proc = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=-1, stdout=-1, stderr=-2)
    out, _ = await asyncio.wait_for(proc.communicate(body), 30)
    assert (proc.returncode, out) == (0, b"")
    steps, queues = {s.name for s in config.steps} | {"other"}, known_labels(config)[1]
    exported = [s for s in samples(body) if s[0] == "cxmon_contacts_total"]
    assert exported
    assert all(dict(labels)["step"] in steps and dict(labels)["queue"] in queues for _, labels, _ in exported)
    offered = sum(v for _, labels, v in exported if dict(labels)["outcome"] == "offered")
    assert offered == sum(s.totals["offered"] for s in snap.series) > 0
