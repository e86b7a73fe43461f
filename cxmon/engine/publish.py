"""Publication: a tick's Snapshot stamped with its version and the engine's own figures, kept as the
latest and handed to listeners (called at once) and subscribers (newest-only streams)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from cxmon.snapshot import (
    EMPTY_SNAPSHOT,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
    Transition,
)

if TYPE_CHECKING:
    from cxmon.engine.core import Engine

log = logging.getLogger("cxmon.engine.core")

RECENT_TRANSITIONS = 200
"""Transitions every snapshot carries (the newest), so a reader that skipped snapshots misses none."""


class Publisher:
    """Makes, keeps and hands out the engine's Snapshots."""

    def __init__(self, engine: Engine) -> None:
        """Publish ``engine``'s snapshots (its config, sources' health, acknowledgements, store)."""
        self.engine = engine
        self.latest: Snapshot = EMPTY_SNAPSHOT
        self.listeners: list[Callable[[Snapshot], None]] = []
        self.subs: set[Subscription] = set()
        self.version = 0
        self.tick_failures = 0
        """Ticks that raised (each published as a failed snapshot)."""
        self._recent: deque[Transition] = deque(maxlen=RECENT_TRANSITIONS)
        self._recent_tuple: tuple[Transition, ...] = ()

    @property
    def watched(self) -> bool:
        """Whether anyone listens or subscribes."""
        return bool(self.listeners or self.subs)

    def keep(self, transitions: list[Transition]) -> None:
        """Keep a tick's transitions among the recent ones every snapshot carries."""
        if transitions:
            self._recent.extend(transitions)
            self._recent_tuple = tuple(self._recent)

    def snapshot(
        self,
        now: float,
        steps: tuple[StepStatus, ...],
        series: tuple[SeriesFigures, ...],
        sources: tuple[SourceStatus, ...],
        transitions: tuple[Transition, ...],
    ) -> Snapshot:
        """Make, keep and hand out the Snapshot of a tick."""
        engine = self.engine
        health = engine.health.values()
        self.version += 1
        snap = Snapshot(
            version=self.version,
            ts=now,
            windows=engine.config.monitor.windows,
            service_level_formula=engine.config.monitor.service_level_formula,
            steps=steps,
            series=series,
            sources=sources,
            transitions=transitions,
            recent_transitions=self._recent_tuple,
            strikes=engine.aggregator.struck,
            events_total=sum(h.events_total for h in health),
            events_per_second=sum(h.rate_events for h in health),
            errors_total=sum(h.errors_total for h in health),
            stale=(bool(sources) and all(s.stale for s in sources)) or not sources,
            acks=engine._acks.all(),
            store=None if engine.store is None else engine.store.status(),
            alerts=None if engine.alert_status is None else engine.alert_status(),
            imports=None if engine.import_status is None else engine.import_status(),
            baseline=engine.baseline_status,
            baselines=engine.detector.baselines.figures(now),
        )
        self.publish(snap)
        return snap

    def failed(self, exc: Exception) -> Snapshot:
        """A tick that fails is a health failure on every surface, not a log line: publish the last
        figures marked as such (every step STALE, ``tick_error`` set), so nothing frozen says "ok"."""
        self.tick_failures += 1
        why = f"engine tick failed: {exc!r}"
        log.error("%s", why, exc_info=exc)
        self.engine.errors.append(f"[engine] {why}")
        last = self.latest
        self.version += 1
        snap = replace(
            last,
            version=self.version,
            steps=tuple(
                replace(s, state=State.STALE, reason=why) if s.state is not State.STALE else s
                for s in last.steps
            ),
            transitions=(),
            stale=True,
            tick_error=why,
        )
        self.publish(snap)
        return snap

    def publish(self, snap: Snapshot) -> None:
        """Keep ``snap`` as the latest; call every listener with it and offer it to every subscriber."""
        self.latest = snap
        for fn in self.listeners:
            try:
                fn(snap)
            except Exception:
                log.exception("snapshot listener failed")
        for sub in self.subs:
            sub._offer(snap)

    def subscribe(self) -> Subscription:
        """Return a newest-only stream of snapshots."""
        sub = Subscription(self)
        self.subs.add(sub)
        return sub

    def close(self) -> None:
        """End every subscriber's stream."""
        for sub in list(self.subs):
            sub.close()


class Subscription:
    """Newest-only snapshot stream: a slow reader skips snapshots, it never holds the engine up."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._latest: Snapshot | None = None
        self._event = asyncio.Event()
        self.closed = False

    def _offer(self, snap: Snapshot) -> None:
        self._latest = snap
        self._event.set()

    def close(self) -> None:
        """Stop the stream; the iterator ends."""
        self.closed = True
        self._event.set()
        self._publisher.subs.discard(self)

    def __aiter__(self) -> AsyncIterator[Snapshot]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Snapshot]:
        if self._publisher.latest.version:
            yield self._publisher.latest
        while not self.closed:
            await self._event.wait()
            self._event.clear()
            snap, self._latest = self._latest, None
            if snap is not None and not self.closed:
                yield snap
