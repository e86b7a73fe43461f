"""Tests for cxmon.alerts: transitions to a signed webhook, Alertmanager's API and the log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from cxmon.alert_sinks import SIGNATURE_HEADER, post, verify_signature
from cxmon.alerts import AlertDispatcher
from cxmon.config import AlertsConfig, Config, loads
from cxmon.engine import Engine
from cxmon.snapshot import Ack, AlertSinkStatus, AlertStatus, Snapshot, State, StepStatus, Transition
from tests.helpers import TWIN_THRESHOLDS
from tests.integration import sim_config
from tests.metrics_helpers import make_config, make_snapshot

SECRET = "s3cret"
TS = 1_700_000_000.0


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests; ``status`` and ``hang`` set its mood."""

    status: int = 200
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split()
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.hang:
                await asyncio.sleep(3600)
            self.requests.append(Received(method, path, headers, body))
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()

    def bodies(self, path: str) -> list[Any]:
        return [r.json() for r in self.requests if r.path == path]

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``pred()`` holds, polling (bounded: a broken sink fails the test, never hangs it)."""
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.005)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A recording HTTP server on a free loopback port."""
    rec = Receiver()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.port = server.sockets[0].getsockname()[1]
    async with server:
        yield rec
        server.close()


def config_for(rec: Receiver, *, am: bool = True, webhook: bool = True, resend: float = 60.0) -> Config:
    """The test config with alert sinks pointing at ``rec``."""
    base = make_config()
    url = f"http://127.0.0.1:{rec.port}"
    alerts = AlertsConfig(
        alertmanager_url=url if am else None,
        webhook_url=f"{url}/hook" if webhook else None,
        webhook_secret=SECRET,
        resend_interval=resend,
        log=True,
    )
    return replace(base, alerts=alerts)


def pothole(step: str = "get_help", *, ts: float = TS, back: bool = False) -> Transition:
    """A step-level transition into (or, with ``back``, out of) POTHOLE on wait_p90."""
    if back:
        return Transition(ts, step, "", "", State.POTHOLE, State.OK, "wait p90 30s", "wait_p90", 30.0)
    return Transition(
        ts, step, "", "", State.WATCH, State.POTHOLE, "wait p90 70s > 60s for 2m", "wait_p90", 70.0
    )


def snap_with(*transitions: Transition, ts: float = TS, ack: Ack | None = None, version: int = 1) -> Snapshot:
    """A snapshot carrying ``transitions`` (and an optional ack on get_help)."""
    state = State.POTHOLE if any(t.to_state is State.POTHOLE for t in transitions) or ack else State.OK
    steps = (
        StepStatus("get_help", "Help", state, "wait p90 70s > 60s", ts, True, "wait_p90", 70, 0, 3, ack=ack),
    )
    return replace(make_snapshot(steps=steps, ts=ts, version=version), transitions=transitions)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = TS

    def __call__(self) -> float:
        return self.now


async def test_webhook_gets_a_signed_transition(receiver: Receiver) -> None:
    """A pot-hole transition is POSTed as JSON with an HMAC-SHA256 signature of the body."""
    async with AlertDispatcher(config_for(receiver, am=False)) as disp:
        disp.on_snapshot(snap_with(pothole()))
        await receiver.wait_for(lambda: len(receiver.requests) == 1)
    req = receiver.requests[0]
    assert req.path == "/hook"
    assert verify_signature(SECRET, req.body, req.headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature("wrong", req.body, req.headers[SIGNATURE_HEADER.lower()])
    body = req.json()
    assert (body["type"], body["step"], body["from"], body["to"]) == (
        "transition",
        "get_help",
        "watch",
        "pothole",
    )


async def test_alertmanager_gets_the_alert_with_labels_and_start(receiver: Receiver) -> None:
    """A pot hole is POSTed to /api/v2/alerts with the rules' labels, startsAt and an endsAt ahead."""
    clock = Clock()
    async with AlertDispatcher(config_for(receiver, webhook=False), wall_clock=clock) as disp:
        disp.on_snapshot(snap_with(pothole()))
        await receiver.wait_for(lambda: len(receiver.bodies("/api/v2/alerts")) == 1)
    (alert,) = receiver.bodies("/api/v2/alerts")[0]
    assert alert["labels"] == {
        "alertname": "CxmonPothole",
        "step": "get_help",
        "measure": "wait_p90",
        "window": "5m",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == "get_help: wait p90 70s > 60s for 2m"
    assert alert["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert alert["endsAt"] > alert["startsAt"]


async def test_alertmanager_labels_name_the_threshold_of_the_series_driving_the_step(
    receiver: Receiver,
) -> None:
    """With voice and chat wait p90 thresholds over one window, a pot hole driven by a chat series is
    sent with `channel="chat"`, the labels of the chat threshold's rule, not the voice one's."""
    config = replace(loads(TWIN_THRESHOLDS, "twin.toml"), alerts=config_for(receiver, webhook=False).alerts)
    tr = Transition(
        TS, "help", "chat", "support", State.WATCH, State.POTHOLE, "wait p90 130s > 120s", "wait_p90", 130.0
    )
    async with AlertDispatcher(config) as disp:
        disp.on_snapshot(replace(make_snapshot(ts=TS), transitions=(tr,)))
        await receiver.wait_for(lambda: len(receiver.bodies("/api/v2/alerts")) == 1)
    (alert,) = receiver.bodies("/api/v2/alerts")[0]
    assert alert["labels"] == {
        "alertname": "CxmonPothole",
        "step": "help",
        "measure": "wait_p90",
        "window": "5m",
        "severity": "warning",
        "channel": "chat",
    }


async def test_recovery_resolves_the_alert_with_ends_at_now(receiver: Receiver) -> None:
    """Leaving POTHOLE sends the same alert with endsAt set to the time of recovery."""
    clock = Clock()
    async with AlertDispatcher(config_for(receiver, webhook=False), wall_clock=clock) as disp:
        disp.on_snapshot(snap_with(pothole()))
        clock.now += 300
        disp.on_snapshot(snap_with(pothole(back=True), ts=TS + 300, version=2))
        await receiver.wait_for(lambda: len(receiver.bodies("/api/v2/alerts")) == 2)
        assert disp.active == {}
    resolved = receiver.bodies("/api/v2/alerts")[1][0]
    assert resolved["labels"]["alertname"] == "CxmonPothole"
    assert resolved["endsAt"] == "2023-11-14T22:18:20.000Z"


async def test_firing_alert_is_resent_every_resend_interval(receiver: Receiver) -> None:
    """While firing, the alert goes to Alertmanager again once per resend_interval, not every tick."""
    clock = Clock()
    async with AlertDispatcher(config_for(receiver, webhook=False, resend=60), wall_clock=clock) as disp:
        disp.on_snapshot(snap_with(pothole()))
        await receiver.wait_for(lambda: len(receiver.requests) == 1)
        for i in range(1, 10):  # ticks 10 s apart: 90 s in all
            clock.now += 10
            disp.on_snapshot(snap_with(ts=TS + 10 * i, version=i + 1))
        await receiver.wait_for(lambda: len(receiver.requests) == 2)
        await asyncio.sleep(0.05)
    assert len(receiver.bodies("/api/v2/alerts")) == 2


async def test_acknowledged_pothole_gets_no_reminders_but_a_silence(receiver: Receiver) -> None:
    """An ack stops the webhook's repeat reminders and becomes an Alertmanager silence for the step."""
    clock = Clock()
    ack = Ack("get_help", "ana", "billing outage, on it", TS + 1, TS + 3600)
    async with AlertDispatcher(config_for(receiver, resend=60), wall_clock=clock) as disp:
        disp.on_snapshot(snap_with(pothole()))
        clock.now += 1
        disp.on_snapshot(snap_with(ts=TS + 1, ack=ack, version=2))
        for i in range(2, 6):
            clock.now += 60
            disp.on_snapshot(snap_with(ts=TS + 60 * i, ack=ack, version=i + 1))
        await receiver.wait_for(lambda: bool(receiver.bodies("/api/v2/silences")))
        await asyncio.sleep(0.05)
    hooks = [b["type"] for b in receiver.bodies("/hook")]
    assert hooks == ["transition", "acknowledged"]
    (silence,) = receiver.bodies("/api/v2/silences")
    assert silence["createdBy"] == "ana"
    assert {"name": "step", "value": "get_help", "isRegex": False, "isEqual": True} in silence["matchers"]


async def test_unacknowledged_pothole_gets_reminders(receiver: Receiver) -> None:
    """Without an ack, the webhook gets a reminder per resend_interval while the pot hole lasts."""
    clock = Clock()
    async with AlertDispatcher(config_for(receiver, am=False, resend=60), wall_clock=clock) as disp:
        disp.on_snapshot(snap_with(pothole()))
        for i in range(1, 4):
            clock.now += 60
            disp.on_snapshot(snap_with(ts=TS + 60 * i, version=i + 1))
        await receiver.wait_for(lambda: len(receiver.requests) == 4)
    assert [b["type"] for b in receiver.bodies("/hook")] == ["transition", "reminder", "reminder", "reminder"]


async def test_failing_sink_is_retried_and_failures_counted(receiver: Receiver) -> None:
    """A sink answering 500 is retried with backoff; failures are counted; delivery succeeds later."""
    receiver.status = 500
    disp = AlertDispatcher(config_for(receiver, am=False), retry_initial=0.01, retry_max=0.05)
    async with disp:
        disp.on_snapshot(snap_with(pothole()))
        await receiver.wait_for(lambda: len(receiver.requests) >= 3)
        assert _sink(disp, "webhook").ok is False
        receiver.status = 200
        assert disp.webhook is not None
        await receiver.wait_for(lambda: disp.webhook is not None and disp.webhook.stats.sent == 1)
    status = _sink(disp, "webhook")
    assert status.failures >= 3
    assert (status.sent, status.queued, status.ok) == (1, 0, True)
    assert len({r.body for r in receiver.requests}) == 1  # the same notification each time


async def test_hung_sink_never_blocks_and_its_queue_stays_bounded(receiver: Receiver) -> None:
    """With a sink that never answers, on_snapshot keeps returning and old notifications are dropped."""
    receiver.hang = True
    disp = AlertDispatcher(config_for(receiver, am=False), queue_size=8, timeout=30)
    await disp.start()
    for i in range(100):
        back = i % 2 == 1
        disp.on_snapshot(snap_with(pothole(back=back), ts=TS + i, version=i + 1))
    status = _sink(disp, "webhook")
    await disp.aclose(drain=0)
    assert status.queued == 8
    assert status.dropped == 92


async def test_unreachable_sink_counts_failures(receiver: Receiver) -> None:
    """A refused connection is a counted failure with a readable last_error."""
    cfg = config_for(receiver, am=False)
    cfg = replace(cfg, alerts=replace(cfg.alerts, webhook_url="http://127.0.0.1:1/hook"))
    disp = AlertDispatcher(cfg, retry_initial=0.01, retry_max=0.02)
    async with disp:
        disp.on_snapshot(snap_with(pothole()))
        async with asyncio.timeout(10):
            while _sink(disp, "webhook").failures < 2:
                await asyncio.sleep(0.01)
    assert "cannot connect" in (_sink(disp, "webhook").last_error or "")


async def test_attach_gives_the_engine_the_sinks_status(receiver: Receiver) -> None:
    """attach() registers the listener and gives the engine the sinks' status, as it is when asked."""

    class Feed:
        def __init__(self) -> None:
            self.alert_status: Callable[[], AlertStatus] | None = None
            self.listeners: list[Callable[[Snapshot], None]] = []

        def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
            self.listeners.append(fn)

    feed = Feed()
    disp = AlertDispatcher(config_for(receiver))
    disp.attach(feed)
    assert feed.listeners == [disp.on_snapshot]
    assert feed.alert_status is not None
    assert feed.alert_status().firing == 0
    feed.listeners[0](snap_with(pothole()))
    status = feed.alert_status()
    assert status.firing == 1
    assert [s.name for s in status.sinks] == ["log", "alertmanager", "webhook"]
    webhook = status.sink("webhook")
    assert webhook is not None and webhook.queued == 1  # not started: nothing sent, nothing blocked


async def test_log_sink_logs_transitions(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    """Every step transition is logged; a pot hole at WARNING."""
    disp = AlertDispatcher(config_for(receiver, am=False, webhook=False))
    with caplog.at_level(logging.INFO, logger="cxmon.alerts"):
        disp.on_snapshot(snap_with(pothole()))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "watch → pothole" in record.getMessage()
    assert _sink(disp, "log").sent == 1


async def test_post_reports_http_errors(receiver: Receiver) -> None:
    """post() raises on a non-2xx answer and returns the status on success."""
    assert await post(f"http://127.0.0.1:{receiver.port}/x", b"{}", {}) == 200
    receiver.status = 503
    with pytest.raises(Exception, match="HTTP 503"):
        await post(f"http://127.0.0.1:{receiver.port}/x", b"{}", {})


async def test_real_engine_incident_reaches_the_webhook(receiver: Receiver) -> None:
    """The Engine on the simulator (speed max) turns the scripted billing outage into signed webhook calls."""
    url = f"http://127.0.0.1:{receiver.port}/hook"
    config = sim_config(speed="max", duration="20m", webhook_url=url, webhook_secret=SECRET, log=False)
    engine = Engine(config, store=False)
    disp = AlertDispatcher(config)
    disp.attach(engine)
    async with disp, engine:
        await engine.run()
        await receiver.wait_for(
            lambda: any(b["to"] == "ok" for b in receiver.bodies("/hook") if b["step"] == "get_help")
        )
    get_help = [b for b in receiver.bodies("/hook") if b["step"] == "get_help"]
    assert [b["to"] for b in get_help][:3] == ["watch", "pothole", "watch"]
    pothole = next(b for b in get_help if b["to"] == "pothole")
    assert (pothole["channel"], pothole["queue"]) == ("voice", "billing")  # the series driving it
    assert all(verify_signature(SECRET, r.body, r.headers["x-cxmon-signature"]) for r in receiver.requests)
    assert engine.alert_status is not None and engine.latest.alerts is not None
    webhook = engine.alert_status().sink("webhook")
    assert webhook is not None and webhook.sent == len(receiver.requests)


def _sink(disp: AlertDispatcher, name: str) -> AlertSinkStatus:
    """The dispatcher's status of sink ``name`` (which must exist)."""
    status = disp.status().sink(name)
    assert status is not None, name
    return status
