"""cxmon's own alerts: detector transitions to Alertmanager, a signed JSON webhook and the log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cxmon.alert_sinks import (
    EVENT_HEADER,
    HTTP_TIMEOUT,
    QUEUE_SIZE,
    SIGNATURE_HEADER,
    HttpSink,
    SinkStats,
    sign,
)
from cxmon.config import Config
from cxmon.rules import POTHOLE_ALERT, STALE_ALERT, pothole_labels, severity, stale_labels, threshold_for
from cxmon.snapshot import AlertSinkStatus, AlertStatus, Snapshot, State, Transition

log = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _annotations(label: str, state: State, tr: Transition) -> dict[str, str]:
    """An alert's summary and description, from the transition that began it."""
    return {
        "summary": f"{label}: {tr.reason}",
        "description": f"cxmon step {tr.step!r} is {state.value.upper()} since "
        f"{_iso(tr.ts)} (engine clock): {tr.reason}",
    }


class EngineLike(Protocol):
    """What :meth:`AlertDispatcher.attach` needs from the engine."""

    alert_status: Callable[[], AlertStatus] | None

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None: ...


@dataclass(slots=True)
class ActiveAlert:
    """An alert that is firing (a step in POTHOLE or STALE)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    """Wall time it started (Alertmanager compares with its own clock)."""
    engine_ts: float
    last_reminder: float = field(default=0.0)


class AlertDispatcher:
    """Turns each snapshot's transitions into notifications, without ever blocking the engine.

    ``on_snapshot`` (an engine listener) only updates state and queues requests; each HTTP sink
    has its own task, bounded queue and retry with backoff. While a step is a pot hole (or STALE)
    its alert is re-sent to Alertmanager every ``alerts.resend_interval`` with an ``endsAt`` a few
    intervals ahead (Prometheus' own practice), so it resolves by itself if cxmon dies; the webhook
    and the log get a reminder at the same interval unless the pot hole is acknowledged. A new
    acknowledgement also becomes an Alertmanager silence for the step until the ack expires.
    """

    def __init__(
        self,
        config: Config,
        *,
        wall_clock: Callable[[], float] = time.time,
        queue_size: int = QUEUE_SIZE,
        timeout: float = HTTP_TIMEOUT,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self.config = config
        self.alerts = config.alerts
        self._wall = wall_clock
        self._steps = {s.name: s for s in config.steps}
        self.active: dict[tuple[str, str], ActiveAlert] = {}
        """(alertname, step) → the alert, while firing."""
        self._acks_seen: dict[str, float] = {}
        self.log_stats = SinkStats()
        self._am_sent = -float("inf")
        self._engine: EngineLike | None = None
        self._resumed = False
        kwargs = {
            "queue_size": queue_size,
            "timeout": timeout,
            "retry_initial": retry_initial,
            "retry_max": retry_max,
        }
        self.alertmanager: HttpSink | None = (
            HttpSink("alertmanager", **kwargs) if self.alerts.alertmanager_url else None  # type: ignore[arg-type]
        )
        self.webhook: HttpSink | None = (
            HttpSink("webhook", **kwargs) if self.alerts.webhook_url else None  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ lifecycle

    def attach(self, engine: EngineLike) -> None:
        """Listen to ``engine``'s snapshots; each snapshot carries :meth:`status` as it is then."""
        engine.alert_status = self.status
        engine.add_listener(self.on_snapshot)
        self._engine = engine

    async def start(self) -> None:
        """Start the sinks' delivery tasks."""
        for sink in self._http_sinks():
            sink.start()

    async def aclose(self, drain: float = 2.0) -> None:
        """Stop the delivery tasks, giving queued notifications up to ``drain`` seconds to go out."""
        for sink in self._http_sinks():
            await sink.aclose(drain)

    async def __aenter__(self) -> AlertDispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _http_sinks(self) -> list[HttpSink]:
        return [s for s in (self.alertmanager, self.webhook) if s is not None]

    # ------------------------------------------------------------------ status

    def status(self) -> AlertStatus:
        """Return the number of firing alerts and each sink's counters, as they are now (frozen)."""
        sinks: list[AlertSinkStatus] = []
        if self.alerts.log:
            sinks.append(self.log_stats.frozen("log", 0))
        for sink in self._http_sinks():
            sinks.append(sink.stats.frozen(sink.name, sink.queued))
        return AlertStatus(firing=len(self.active), sinks=tuple(sinks))

    # ------------------------------------------------------------------ the listener

    def on_snapshot(self, snap: Snapshot) -> None:
        """Handle one tick: transitions, acknowledgements and due re-sends (cheap; never awaits)."""
        now = self._wall()
        if not self._resumed:
            self._resumed = True
            self._resume(now)
        for tr in snap.transitions:  # each is a step's; channel and queue name its driving series
            self._on_transition(tr, snap, now)
        acked = {}
        for step in snap.steps:
            if step.ack is not None and step.ack.until > snap.ts:
                acked[step.name] = step.ack
                if self._acks_seen.get(step.name) != step.ack.ts:
                    self._acks_seen[step.name] = step.ack.ts
                    self._on_ack(step.name, step.ack.who, step.ack.note, step.ack.until - snap.ts, now)
        interval = self.alerts.resend_interval
        if self.active and self.alertmanager is not None and now - self._am_sent >= interval:
            self._send_am(now)
        for (alertname, step_name), alert in self.active.items():
            if step_name in acked or now - alert.last_reminder < interval:
                continue
            alert.last_reminder = now
            self._remind(alertname, step_name, alert, snap)

    def _on_transition(self, tr: Transition, snap: Snapshot, now: float) -> None:
        step = self._steps.get(tr.step)
        label = step.label if step is not None else tr.step
        level = logging.WARNING if tr.to_state in (State.POTHOLE, State.STALE) else logging.INFO
        self._log(level, "%s: %s → %s: %s", label, tr.from_state.value, tr.to_state.value, tr.reason)
        am_changed = False
        for state, alertname in ((State.POTHOLE, POTHOLE_ALERT), (State.STALE, STALE_ALERT)):
            key = (alertname, tr.step)
            if tr.from_state is state and key in self.active:
                alert = self.active.pop(key)
                if self.alertmanager is not None:
                    self._put_am([self._am_alert(alert, ends_at=now)])
                am_changed = True
            if tr.to_state is state:
                labels = self._labels(tr, alertname)
                self.active[key] = ActiveAlert(
                    labels, _annotations(label, state, tr), now, tr.ts, last_reminder=now
                )
                am_changed = True
        if am_changed and self.alertmanager is not None and self.active:
            self._send_am(now)
        if self.webhook is not None:
            payload = {
                "type": "transition",
                **tr.to_dict(),
                "label": label,
                "severity": severity(step) if step is not None else "warning",
                "acknowledged": any(s.name == tr.step and s.ack is not None for s in snap.steps),
            }
            self._put_webhook("transition", payload)

    def _resume(self, now: float) -> None:
        """Take up the alerts the history left firing, as an engine that warmed up found them (a
        restart is not their end: Alertmanager keeps them firing under the same labels, nothing
        is announced again). The snapshot's own transitions then move them on as usual."""
        # An engine that read its history back as it started says what it took up (warm.Resumed).
        resumed = getattr(self._engine, "resumed", None)
        if resumed is None:
            return
        for ack in resumed.acks:
            self._acks_seen[ack.step] = ack.ts  # announced (and silenced) when it was made
        for tr in resumed.transitions:
            for state, alertname in ((State.POTHOLE, POTHOLE_ALERT), (State.STALE, STALE_ALERT)):
                if tr.to_state is state:
                    step = self._steps.get(tr.step)
                    label = step.label if step is not None else tr.step
                    self._log(
                        logging.WARNING, "%s: still %s after a restart: %s", label, state.value, tr.reason
                    )
                    self.active[(alertname, tr.step)] = ActiveAlert(
                        self._labels(tr, alertname),
                        _annotations(label, state, tr),
                        min(tr.ts, now),
                        tr.ts,
                        last_reminder=now,
                    )
        if self.active and self.alertmanager is not None:
            self._send_am(now)

    def _labels(self, tr: Transition, alertname: str) -> dict[str, str]:
        """Labels as `cxmon rules` writes them, so Alertmanager merges both paths' alerts."""
        step = self._steps.get(tr.step)
        if step is None:
            return {"alertname": alertname, "step": tr.step, "severity": "warning"}
        if alertname == STALE_ALERT:
            return stale_labels(step)
        th = threshold_for(step, tr.measure, tr.channel) if tr.measure else None
        if th is None:
            return {"alertname": POTHOLE_ALERT, "step": step.name, "severity": severity(step)}
        return pothole_labels(step, th)

    def _on_ack(self, step: str, who: str, note: str, remaining: float, now: float) -> None:
        self._log(logging.INFO, "%s acknowledged by %s: %s", step, who, note)
        if self.webhook is not None:
            self._put_webhook(
                "acknowledged",
                {
                    "type": "acknowledged",
                    "step": step,
                    "who": who,
                    "note": note,
                    "until": _iso(now + remaining),
                },
            )
        if self.alertmanager is not None:
            silence = {
                "matchers": [
                    {
                        "name": "alertname",
                        "value": f"{POTHOLE_ALERT}|{STALE_ALERT}",
                        "isRegex": True,
                        "isEqual": True,
                    },
                    {"name": "step", "value": step, "isRegex": False, "isEqual": True},
                ],
                "startsAt": _iso(now),
                "endsAt": _iso(now + max(remaining, 1.0)),
                "createdBy": who,
                "comment": note or "acknowledged in cxmon",
            }
            body = json.dumps(silence).encode()
            url = self._am_url("/api/v2/silences")
            self.alertmanager.put(lambda: (url, body, {}))

    def _remind(self, alertname: str, step: str, alert: ActiveAlert, snap: Snapshot) -> None:
        status = next((s for s in snap.steps if s.name == step), None)
        reason = status.reason if status is not None else alert.annotations["summary"]
        self._log(logging.WARNING, "%s still firing for %s: %s", alertname, step, reason)
        if self.webhook is not None:
            self._put_webhook(
                "reminder",
                {
                    "type": "reminder",
                    "alertname": alertname,
                    "step": step,
                    "labels": alert.labels,
                    "reason": reason,
                    "since": alert.engine_ts,
                    "ts": snap.ts,
                },
            )

    # ------------------------------------------------------------------ requests

    def _log(self, level: int, msg: str, *args: object) -> None:
        if self.alerts.log:
            log.log(level, msg, *args)
            self.log_stats.sent += 1

    def _am_url(self, path: str) -> str:
        return (self.alerts.alertmanager_url or "").rstrip("/") + path

    def _am_alert(
        self, alert: ActiveAlert, ends_at: float | None = None
    ) -> Callable[[float], dict[str, Any]]:
        labels, annotations, starts = dict(alert.labels), dict(alert.annotations), alert.starts_at
        resend = self.alerts.resend_interval

        def build(now: float) -> dict[str, Any]:
            # Firing: endsAt a few re-send intervals ahead, so the alert lapses if cxmon stops.
            end = ends_at if ends_at is not None else now + 4 * resend
            return {
                "labels": labels,
                "annotations": annotations,
                "startsAt": _iso(starts),
                "endsAt": _iso(end),
            }

        return build

    def _put_am(self, builders: list[Callable[[float], dict[str, Any]]], coalesce: str = "") -> None:
        assert self.alertmanager is not None
        url = self._am_url("/api/v2/alerts")
        wall = self._wall

        def request() -> tuple[str, bytes, dict[str, str]]:
            now = wall()
            return url, json.dumps([b(now) for b in builders]).encode(), {}

        self.alertmanager.put(request, coalesce)

    def _send_am(self, now: float) -> None:
        self._am_sent = now
        self._put_am([self._am_alert(a) for a in self.active.values()], coalesce="firing")

    def _put_webhook(self, event: str, payload: dict[str, Any]) -> None:
        assert self.webhook is not None
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {SIGNATURE_HEADER: sign(self.alerts.webhook_secret or "", body), EVENT_HEADER: event}
        url = self.alerts.webhook_url or ""
        self.webhook.put(lambda: (url, body, headers))
