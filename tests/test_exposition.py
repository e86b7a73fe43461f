"""Tests for cxmon.exposition and cxmon.label_bounds: the families a Snapshot becomes, and their text."""

from __future__ import annotations

import subprocess

import pytest

from cxmon.exposition import render, render_with_client
from cxmon.snapshot import (
    TOTALS,
    WAIT_BUCKETS,
    Ack,
    AlertSinkStatus,
    AlertStatus,
    SourceStatus,
    State,
    StepStatus,
)
from tests.integration import require_binary
from tests.metrics_helpers import (
    CONFIG_TOML,
    LABELS,
    make_config,
    make_series,
    make_snapshot,
    registry_for,
    samples,
)


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


def test_an_hour_window_is_spelled_60m_as_config_writes_it() -> None:
    """A 60-minute window is labelled ``60m`` (config/default.toml's spelling), never ``1h``."""
    figures: dict[str, float | None] = {"offered": 7.0}
    reg = registry_for(make_snapshot((make_series(windows={3600.0: figures}),)), make_config())
    labels = {**LABELS, "outcome": "offered"}
    assert reg.get_sample_value("cxmon_window_contacts", {**labels, "window": "60m"}) == 7.0
    assert reg.get_sample_value("cxmon_window_contacts", {**labels, "window": "1h"}) is None


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
    """Snapshot.alerts sink counters become cxmon_alert_* metrics per sink."""
    alerts = AlertStatus(1, (AlertSinkStatus("webhook", sent=4, failures=3, dropped=1, queued=2),))
    reg = registry_for(make_snapshot(alerts=alerts), make_config())
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
        alerts=AlertStatus(0, (AlertSinkStatus("log", sent=1),)),
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
