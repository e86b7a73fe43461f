"""The engine: one bounded queue from the sources, one consumer, a ticker that publishes Snapshots.

The Engine owns the queue, its consumer, every task and the shutdown; it places the ticks (the
wall's, a simulator's clock, or the data's own in a backfill, batch by batch) and keeps what a
published snapshot carries beside the figures (transitions, acknowledgements, purges). The sinks
sources talk to and the snapshot subscriptions are in :mod:`cxmon.engine.sinks`, source health in
:mod:`cxmon.engine.health`, the tick in :mod:`cxmon.engine.tick`, snapshot assembly in
:mod:`cxmon.engine.assembly`. (Over 500 lines: the life cycle, the batch path and the tick
placement all act on the same queue, tasks and clock.)

Sources put batches on a bounded ``asyncio.Queue`` (a full queue makes them wait: back-pressure).
One consumer task feeds each batch to the aggregator and the store. Every tick (``monitor.tick`` of
engine time) the aggregator's figures and the detector's verdicts become an immutable Snapshot,
handed to listeners (exporter, alert dispatcher) and subscribers (TUI, hub). Engine time follows the
simulator's clock when it drives the run, the events themselves for backfills, and the wall otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import marshal
import math
import random
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import accumulate
from typing import Any, Literal

from collectors.base import Offset, Source
from collectors.registry import create_source
from cxmon.config import OTHER, Config
from cxmon.detector import Detector
from cxmon.engine.health import SourceHealth, SourcesHealth
from cxmon.engine.sinks import SourceSink, Subscription
from cxmon.engine.tick import TickPath
from cxmon.events import ContactEvent
from cxmon.forecast.live import Forecaster
from cxmon.rows import TS
from cxmon.snapshot import (
    EMPTY_SNAPSHOT,
    Ack,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
    Transition,
    frozen,
)
from cxmon.store import Store
from cxmon.windows import Aggregator

log = logging.getLogger(__name__)

EVENT_TICK_MIN = 5.0
"""Ticks are at least this far apart in engine time when a simulator runs as fast as it can."""
BACKFILL_TICK = 60.0
"""Tick spacing of backfills (``clock="events"``): a minute of history at a time, like the minute figures."""
BACKFILL_GC_THRESHOLDS = (20_000, 20, 100)
"""Cyclic GC thresholds while a backfill runs (restored after)."""
RESTART_BACKOFF = (1.0, 30.0)
"""First and longest wait before a live source that died is started again (doubling, with jitter)."""
QUEUE_CATCH_UP = 1.0
"""Seconds a tick on a source's accelerated clock waits at most for the batches already queued."""
RECENT_TRANSITIONS = 200

ClockArg = Callable[[], float] | Literal["events"] | None


class Engine:
    """Collectors → aggregator/store → detector → snapshots, with owned tasks and a clean shutdown."""

    def __init__(
        self,
        config: Config,
        *,
        db_path: str | None = None,
        store: bool = True,
        sources: Sequence[Source] | None = None,
        clock: ClockArg = None,
        duration: float | None = None,
        store_writer: Literal["thread", "process"] = "thread",
        restart_sources: bool | None = None,
        recompute: Literal["changes", "all"] = "changes",
    ) -> None:
        """Build an engine; nothing runs until it is entered (``async with engine:``).

        Args:
            config: the validated configuration.
            db_path: the history database (default: ``[store] path``).
            store: False runs without a database (no history, no offsets).
            sources: the sources to read (default: the config's collectors).
            clock: engine time: a callable, ``"events"`` (the newest event's time: backfills),
                or None (the clock of a simulator/replay source if there is one, else the wall).
            duration: stop after this much engine time (also settable through :meth:`run`).
            store_writer: where the store commits (``"process"`` for backfills: see :class:`Store`).
            restart_sources: start a source that died again, after a backoff (default: a live
                engine does, a backfill does not: its source is marked failed instead).
            recompute: ``"changes"`` looks at each tick only at the series something can have
                changed for; ``"all"`` measures and judges every series at every tick (the same
                outcome at a higher cost: the reference the change-driven path is tested against).
        """
        self.config = config
        self.sources: list[Source] = (
            list(sources) if sources is not None else [create_source(cc, config) for cc in config.collectors]
        )
        self.aggregator = Aggregator(config)
        self.detector = Detector(config)
        self.forecaster = Forecaster(config)
        self.store: Store | None = (
            Store(
                db_path or config.store.path,
                flush_interval=config.store.flush_interval,
                batch_size=config.store.batch_size,
                max_pending=config.store.max_pending,
                writer=store_writer,
                config=config,
            )
            if store
            else None
        )
        self.health: dict[str, SourceHealth] = {
            s.name: SourceHealth(s.name, getattr(s, "type", s.__class__.__name__)) for s in self.sources
        }
        self.errors: deque[str] = deque(maxlen=200)
        self.extra_status: dict[str, Any] = {}
        self.latest: Snapshot = EMPTY_SNAPSHOT
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._subs: set[Subscription] = set()
        # (source, events, offset, None), or (source, store rows, offset, the rows marshalled)
        self._queue: asyncio.Queue[tuple[str, Sequence[Any], Offset | None, bytes | None]] = asyncio.Queue(
            maxsize=config.monitor.queue_size
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._sinks: dict[str, SourceSink] = {}
        self._stop = asyncio.Event()
        self._started = False
        self._closed = False
        self._version = 0
        self.tick_failures = 0
        """Ticks that raised (each published as a failed snapshot)."""
        self._acks: dict[str, Ack] = {}
        self._recent: deque[Transition] = deque(maxlen=RECENT_TRANSITIONS)
        self._recent_tuple: tuple[Transition, ...] = ()
        self._next_purge = 0.0

        # Engine time.
        self._event_clock = clock == "events"
        self.paced = True
        self._source_clock = False
        if callable(clock):
            self._clock: Callable[[], float] = clock
        elif self._event_clock:
            self._clock = lambda: self.aggregator.watermark
            self.paced = False
        else:
            clocked = next((s for s in self.sources if callable(getattr(s, "clock", None))), None)
            if clocked is not None:
                self.paced = bool(getattr(clocked, "paced", True))
                self._source_clock = self.paced
                # Unpaced, the source runs ahead of what has been processed: time is the data's.
                self._clock = clocked.clock if self.paced else (lambda: self.aggregator.watermark)  # type: ignore[attr-defined]
            else:
                self._clock = time.time
        if self.paced:
            self._tick_every = config.monitor.tick
        elif self._event_clock:
            self._tick_every = max(config.monitor.tick, BACKFILL_TICK)
        else:
            self._tick_every = max(config.monitor.tick, EVENT_TICK_MIN)
        self._next_tick: float | None = None
        self._start_time: float | None = None
        self._deadline: float | None = None
        self._duration: float | None = duration
        self._restart = not self._event_clock if restart_sources is None else restart_sources
        self._health = SourcesHealth(self.health, config.monitor.stale_after, self._event_clock, self.paced)
        self._ticks = TickPath(self, every=recompute == "all")

    # ------------------------------------------------------------------ public API

    def now(self) -> float:
        """Engine time (epoch seconds)."""
        return self._clock()

    def clock_limit(self, source: Source) -> float:
        """The newest timestamp ``source`` may send: its clock (or the wall's, or engine time's,
        whichever is ahead) plus ``max_clock_skew``; no limit but finiteness for a backfill, whose
        time is the data's own."""
        if self._event_clock:
            return math.inf
        ahead = max(time.time(), self.now())
        clock = getattr(source, "clock", None)
        if callable(clock):
            ahead = max(ahead, float(clock()))
        return ahead + self.config.monitor.max_clock_skew

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        """Call ``fn`` with every new snapshot, synchronously, on the engine's loop (keep it cheap)."""
        self._listeners.append(fn)

    def subscribe(self) -> Subscription:
        """Return a newest-only stream of snapshots."""
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def stop(self) -> None:
        """Ask :meth:`run` to return; leaving the ``async with`` block flushes everything."""
        self._stop.set()

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Acknowledge a step's pot hole: stored, shown, and it silences repeat alerts until ``until``.

        Raises:
            KeyError: no such step.
        """
        self.config.step(step)
        now = self.now()
        ack = Ack(step=step, who=who, note=note, ts=now, until=until if until is not None else now + 4 * 3600)
        self._acks[step] = ack
        if self.store is not None:
            await self.store.add_ack(ack)
        return ack

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """Return (customer_id, strikes in the last 24 h), most strikes first."""
        return self.aggregator.leaders(limit)

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """Return one customer's events over the last 24 h from the store, oldest first."""
        if self.store is None:
            return []
        await self.store.flush()
        return await self.store.customer_events(customer_id, since=self.now() - 86400.0)

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store and start the consumer, the ticker and one task per source."""
        if self._started:
            return
        self._started = True
        if self.store is not None:
            # What is usual is learned from the history already stored (a thread: sqlite3, read only).
            await asyncio.to_thread(self.detector.baselines.load, self.store.path)
            await self.store.open()
        self._tasks.append(asyncio.create_task(self._consume(), name="engine-consumer"))
        started = self.now()
        for source in self.sources:
            self.health[source.name].started_at = started
            sink = self._sinks[source.name] = SourceSink(self, source)
            task = asyncio.create_task(self._run_source(source, sink), name=f"source-{source.name}")
            self._source_tasks[source.name] = task
        if self.paced:
            self._tasks.append(asyncio.create_task(self._ticker(), name="engine-ticker"))

    async def run(self, duration: float | None = None) -> None:
        """Run until :meth:`stop`, until every source has finished, or for ``duration`` of engine time."""
        if not self._started:
            await self.start()
        if duration is not None:
            self._duration = duration
        if self._duration is not None and self.paced:
            self._deadline = self.now() + self._duration
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wait_stop(), name="engine-stop")]
        if self._source_tasks:
            waiters.append(asyncio.create_task(self._sources_done(), name="engine-sources-done"))
        thresholds = gc.get_threshold()
        if self._event_clock:
            # A backfill allocates a row tuple per event and frees it at once; the default
            # thresholds then spend a tenth of the run in young collections that find nothing.
            gc.set_threshold(*BACKFILL_GC_THRESHOLDS)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gc.set_threshold(*thresholds)
            for w in waiters:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w

    async def _wait_stop(self) -> None:
        await self._stop.wait()

    async def _sources_done(self) -> None:
        await asyncio.gather(*self._source_tasks.values(), return_exceptions=True)
        if self.store is not None:
            self.store.sources_finished()
        await self._queue.join()

    async def aclose(self) -> None:
        """Stop the sources, drain what they sent, publish a last snapshot and flush the store."""
        if self._closed or not self._started:
            return
        self._closed = True
        for task in self._source_tasks.values():
            task.cancel()
        await asyncio.gather(*self._source_tasks.values(), return_exceptions=True)
        if self.store is not None:
            self.store.stop_holding()  # a full disk must not keep the drain below from ending
        # Everything the sources handed over is processed before the consumer stops.
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            self._tick(self.now())
        except Exception as exc:  # the store below is flushed and closed whatever the tick did
            self._tick_failed(exc)
        for sub in list(self._subs):
            sub.close()
        if self.store is not None:
            await self.store.close()
        for name, sink in self._sinks.items():
            log.info("source %s: %d events emitted", name, sink.emitted)

    # ------------------------------------------------------------------ tasks

    async def _run_source(self, source: Source, sink: SourceSink) -> None:
        """Run one source to its end. A live source that dies is started again after a backoff
        (doubling, with jitter), shown down meanwhile; a backfill's source that dies is marked
        failed, so the run that needed it cannot end as a success."""
        health = self.health[source.name]
        backoff = RESTART_BACKOFF[0]
        try:
            while True:
                try:
                    await source.run(sink)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    sink.error(source.name, f"source stopped: {exc!r}")
                    log.error("source %s failed: %r", source.name, exc, exc_info=exc)
                    health.up = False
                    health.down = True
                    if not self._restart:
                        health.failed = True
                        return
                # A source that reads a file or a socket resumes from its stored offset or
                # reconnects; one that cannot will fail again and wait longer. What it handed over
                # is stored first, so it resumes after its last batch, not before it.
                health.restarts += 1
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                await self._queue.join()
                if self.store is not None:
                    await self.store.flush()
                backoff = min(backoff * 2.0, RESTART_BACKOFF[1])
        finally:
            health.up = False
            health.finished = True

    async def _consume(self) -> None:
        queue = self._queue
        while True:
            name, events, offset, rows = await queue.get()
            try:
                await self._process(name, events, offset, rows)
            except Exception:
                log.exception("engine failed on a batch from %s", name)
                self.errors.append(f"[engine] failed on a batch from {name}")
            finally:
                queue.task_done()
            # While the queue stays full, nothing above awaits anything that suspends: let the
            # loop come round after each batch, so the store's flusher (commits run beside the
            # engine) and the sources' relays get their turn rather than waiting for back-pressure.
            await asyncio.sleep(0)

    async def _process(
        self, name: str, items: Sequence[Any], offset: Offset | None, encoded: bytes | None = None
    ) -> None:
        """Aggregate and store one batch: ContactEvents, or store rows when ``encoded`` (their
        marshalled form, from a :class:`~cxmon.ingest.ProcessSource`) is given."""
        agg = self.aggregator
        health = self.health.get(name)
        as_rows = encoded is not None
        add: Callable[[Sequence[Any], str], None] = agg.add_rows if as_rows else agg.add
        stamps = [r[TS] for r in items] if as_rows else [ev.ts for ev in items]
        if self.paced:
            add(items, name)
        elif items:
            # Data drives time: tick at every tick boundary the batch crosses, so the detector sees
            # the history unfold exactly as it would have live. Events between two boundaries go
            # to the aggregator in one call.
            if self._next_tick is None:
                self._next_tick = self._start_time = stamps[0]
            assert self._next_tick is not None and self._start_time is not None
            next_tick = self._next_tick
            limit = self._start_time + self._duration if self._duration is not None else float("inf")
            # Every event before ``i`` is older than the next boundary (and within the limit), so
            # the first event at or past a boundary is where the running maximum first reaches it.
            newest_yet = list(accumulate(stamps, max))
            i, n = 0, len(items)
            while i < n:
                j = min(bisect_left(newest_yet, next_tick, i), bisect_right(newest_yet, limit, i))
                if j > i:
                    add(items[i:j], name)
                if j == n:
                    break
                ts = stamps[j]
                if ts > limit:
                    # The run asked for this much time: what lies beyond it is not part of the run.
                    items, stamps = items[:j], stamps[:j]
                    offset = None  # the source's offset covers events this run leaves out
                    if encoded is not None:
                        encoded = marshal.dumps(list(items))
                    if not self._stop.is_set():
                        self._catch_up(limit)
                        self.stop()
                    break
                if health is not None:
                    # The source is alive up to this event: ticks inside a batch must know.
                    health.last_event_ts = max(health.last_event_ts or ts, ts)
                self._catch_up(ts)
                next_tick = self._next_tick
                i = j
        if health is not None and items:
            health.events_total += len(items)
            newest = max(stamps)
            if health.last_event_ts is None or newest > health.last_event_ts:
                health.last_event_ts = newest
            health.up = health.up or not health.finished
        if self.store is not None:
            if encoded is not None:
                await self.store.add_encoded(encoded, len(items), name, offset)
            else:
                await self.store.add(items, source=name, offset=offset)

    def _catch_up(self, ts: float) -> None:
        assert self._next_tick is not None
        if not math.isfinite(ts):
            return  # never reached past the sinks' checks; a loop to infinity must not be possible
        longest = max(self.config.monitor.windows)
        if ts - self._next_tick > longest + self._tick_every:
            # A long gap in the data: one tick now, then jump to just before the next data.
            self._tick_auto(self._next_tick)
            self._next_tick = ts - longest
        while self._next_tick <= ts:
            self._tick_auto(self._next_tick)
            self._next_tick += self._tick_every

    async def _ticker(self) -> None:
        interval = self.config.monitor.tick
        while True:
            await asyncio.sleep(interval)
            if self._source_clock and self._queue.qsize():
                # A source that owns the clock has moved it past the batches still queued: on a
                # busy loop those can hold minutes of accelerated time, and ticking before they
                # are in would show a source that is talking as silent.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(QUEUE_CATCH_UP):
                        await self._queue.join()
            try:
                self._tick(self.now())
            except Exception as exc:
                self._tick_failed(exc)
            if self._deadline is not None and self.now() >= self._deadline:
                self.stop()

    def _tick_failed(self, exc: Exception) -> None:
        """A tick that fails is a health failure on every surface, not a log line: publish the last
        figures marked as such (every step STALE, ``tick_error`` set), so nothing frozen says "ok"."""
        self.tick_failures += 1
        why = f"engine tick failed: {exc!r}"
        log.error("%s", why, exc_info=exc)
        self.errors.append(f"[engine] {why}")
        last = self.latest
        self._version += 1
        snap = replace(
            last,
            version=self._version,
            steps=tuple(
                replace(s, state=State.STALE, reason=why) if s.state is not State.STALE else s
                for s in last.steps
            ),
            transitions=(),
            stale=True,
            tick_error=why,
        )
        self._publish(snap)

    # ------------------------------------------------------------------ the tick

    def _tick(self, now: float) -> Snapshot:
        """Tick at engine time ``now`` and publish the Snapshot."""
        snap = self._ticks.run(now, publish=True)
        assert snap is not None
        return snap

    def _tick_auto(self, now: float) -> None:
        """Tick at data time: publishing, or not when a backfill has no one watching."""
        self._ticks.run(now, publish=not (self._event_clock and not self._listeners and not self._subs))

    def _finish_tick(self, now: float, transitions: list[Transition]) -> None:
        """Keep a tick's transitions; purge by age once an hour of engine time."""
        if transitions:
            self._recent.extend(transitions)
            self._recent_tuple = tuple(self._recent)
            if self.store is not None:
                self.store.add_transitions(transitions)
        if self.store is not None and now >= self._next_purge:
            self._next_purge = now + 3600.0
            before = now - self.config.store.retention
            if before > 0:  # else nothing is that old (an import keeps everything)
                self._schedule_purge(before)

    def _snapshot(
        self,
        now: float,
        steps: tuple[StepStatus, ...],
        series: tuple[SeriesFigures, ...],
        sources: tuple[SourceStatus, ...],
        transitions: tuple[Transition, ...],
    ) -> Snapshot:
        """Make, keep and hand out the Snapshot of a tick."""
        self._version += 1
        snap = Snapshot(
            version=self._version,
            ts=now,
            windows=self.config.monitor.windows,
            service_level_formula=self.config.monitor.service_level_formula,
            steps=steps,
            series=series,
            sources=sources,
            transitions=transitions,
            recent_transitions=self._recent_tuple,
            strikes=self.aggregator.struck,
            events_total=sum(h.events_total for h in self.health.values()),
            events_per_second=sum(h.rate_events for h in self.health.values()),
            errors_total=sum(h.errors_total for h in self.health.values()),
            stale=(bool(sources) and all(s.stale for s in sources)) or not sources,
            acks=tuple(self._acks.values()),
            store=None if self.store is None else self.store.status(),
            extra=frozen(self.extra_status),
        )
        self._publish(snap)
        return snap

    def _publish(self, snap: Snapshot) -> None:
        self.latest = snap
        for fn in self._listeners:
            try:
                fn(snap)
            except Exception:
                log.exception("snapshot listener failed")
        for sub in self._subs:
            sub._offer(snap)

    def _schedule_purge(self, before: float) -> None:
        store = self.store
        if store is None:
            return

        async def purge() -> None:
            try:
                await store.purge(before)
            except Exception:
                log.exception("retention purge failed")

        task = asyncio.get_running_loop().create_task(purge(), name="store-purge")
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _source_statuses(self, now: float) -> tuple[SourceStatus, ...]:
        return self._health.statuses(now)

    def _stale_sources(self, now: float) -> tuple[frozenset[str], bool]:
        return self._health.stale(now)

    def _stale_reason(self, names: list[str], now: float) -> str:
        return self._health.stale_reason(names, now)


__all__ = ["OTHER", "Engine", "SourceHealth", "Subscription"]
