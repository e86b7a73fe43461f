"""The engine: one bounded queue from the sources, one consumer, every task owned, a clean shutdown.

The Engine owns the queue, its consumer, every task and the shutdown, and wires the parts that
each hold one concept: engine time and tick placement (:mod:`cxmon.engine.clock`), the sink each
source talks to (:mod:`cxmon.engine.sinks`), source supervision and restarts
(:mod:`cxmon.engine.supervision`), source health (:mod:`cxmon.engine.health`), the tick
(:mod:`cxmon.engine.tick`), snapshot assembly (:mod:`cxmon.engine.assembly`), publication
(:mod:`cxmon.engine.publish`), acknowledgements (:mod:`cxmon.engine.acks`), and purges and GC
tuning (:mod:`cxmon.engine.retention`).

Sources put batches on a bounded ``asyncio.Queue`` (a full queue makes them wait: back-pressure).
One consumer task feeds each batch to the aggregator and the store. Every tick (``monitor.tick`` of
engine time) the aggregator's figures and the detector's verdicts become an immutable Snapshot,
handed to listeners (exporter, alert dispatcher) and subscribers (TUI, hub).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal

from collectors.base import Offset, Source
from collectors.registry import create_source
from cxmon.config import OTHER, Config
from cxmon.detector import Detector
from cxmon.engine.acks import Acknowledgements
from cxmon.engine.clock import QUEUE_CATCH_UP, ClockArg, EngineClock
from cxmon.engine.health import SourceHealth, SourcesHealth
from cxmon.engine.profiles import ProfileLearner
from cxmon.engine.publish import Publisher, Subscription
from cxmon.engine.retention import Purger, backfill_gc
from cxmon.engine.sinks import SourceSink
from cxmon.engine.supervision import supervise
from cxmon.engine.tick import TickPath
from cxmon.engine.warm import Resumed, resumed_backfill_end, warm
from cxmon.events import ContactEvent
from cxmon.forecast.live import Forecaster
from cxmon.rows import TS, heartbeats, without_heartbeats
from cxmon.snapshot import (
    Ack,
    AlertStatus,
    BaselineStatus,
    ImportStatus,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    StepStatus,
    Transition,
)
from cxmon.source_lock import SourceLocks
from cxmon.store import Store
from cxmon.windows import Aggregator

log = logging.getLogger(__name__)


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
        self.alert_status: Callable[[], AlertStatus] | None = None
        """Asked at each snapshot for the alert sinks' status (set by the alert dispatcher)."""
        self.import_status: Callable[[], ImportStatus] | None = None
        """Asked at each snapshot for a backfill's progress (set by ``cxmon import``)."""
        self.baseline_status: BaselineStatus | None = None
        """How far the baselines have learned (brought up to date with each minute's figures)."""
        # (source, events, offset, None), or (source, store rows, offset, the rows marshalled)
        self._queue: asyncio.Queue[tuple[str, Sequence[Any], Offset | None, bytes | None]] = asyncio.Queue(
            maxsize=config.monitor.queue_size
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._down_at_stop: list[SourceHealth] | None = None
        """The sources that were down as the engine began to stop (None: it has not)."""
        self._sinks: dict[str, SourceSink] = {}
        self._stop = asyncio.Event()
        self._started = False
        self._closed = False
        self._acks = Acknowledgements()
        self._publisher = Publisher(self)
        self._locks = None if self.store is None else SourceLocks(self.store.path)
        """The lock of each source in the database: one process at a time feeds a source into it."""
        self._purger = None if self.store is None else Purger(self.store, config.store.retention, self._tasks)
        self.clock = EngineClock(config, clock, self.sources, lambda: self.aggregator.watermark, duration)
        self.paced = self.clock.paced
        self._event_clock = self.clock.event_clock
        self._profiles = (
            None
            if self.store is None
            else ProfileLearner(
                self.store.path, self.forecaster, config.forecast, not self._event_clock, self._tasks
            )
        )
        self._restart = not self._event_clock if restart_sources is None else restart_sources
        self._health = SourcesHealth(
            self.health,
            config.monitor.stale_after,
            self._event_clock,
            self.paced,
            config.monitor.recover_after,
        )
        self._ticks = TickPath(self, every=recompute == "all")
        self.clock.quiet_until = self._ticks.quiet_until
        self.warming = False
        """The engine is reading its history back as it starts (:mod:`cxmon.engine.warm`)."""
        self.resumed: Resumed | None = None
        """What a live engine took up from its history as it started (None: it did not)."""

    # ------------------------------------------------------------------ public API

    @property
    def latest(self) -> Snapshot:
        """The newest published Snapshot."""
        return self._publisher.latest

    @property
    def tick_failures(self) -> int:
        """Ticks that raised (each published as a failed snapshot)."""
        return self._publisher.tick_failures

    @property
    def _tick_every(self) -> float:
        return self.clock.every

    def now(self) -> float:
        """Engine time (epoch seconds)."""
        return self.clock.now()

    def clock_limit(self, source: Source) -> float:
        """The newest timestamp ``source`` may send (see :meth:`EngineClock.limit`)."""
        return self.clock.limit(source)

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        """Call ``fn`` with every new snapshot, synchronously, on the engine's loop (keep it cheap)."""
        self._publisher.listeners.append(fn)

    def subscribe(self) -> Subscription:
        """Return a newest-only stream of snapshots."""
        return self._publisher.subscribe()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to return; leaving the ``async with`` block flushes everything."""
        self._stop.set()

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Acknowledge a step's pot hole: stored, shown, and it silences repeat alerts until ``until``.

        Raises:
            KeyError: no such step.
            ValueError: ``until`` is not after now, or further on than an acknowledgement may last.
        """
        self.config.step(step)
        ack = self._acks.add(step, who, note, self.now(), until)
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

    def claim_sources(self) -> None:
        """Take the lock of each source in the database (:mod:`cxmon.source_lock`), if not held yet.

        :meth:`start` does it before it reads anything; a command calls it sooner to stop before it
        binds its ports. The locks are let go by :meth:`aclose` (or :meth:`release_sources`).

        Raises:
            StartupError: another process feeds one of the sources into this database.
        """
        if self.store is None or self._locks is None or self._locks.fds:
            return
        # A second process feeding one of these sources into this database would start from the
        # same stored offset and store every event again.
        self._locks.take(s.name for s in self.sources)
        self.store.keep_fds = self._locks.fds  # held until its writer process has committed

    def release_sources(self) -> None:
        """Let go of the sources' locks (nothing when none are held)."""
        if self._locks is not None:
            self._locks.release()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the store and start the consumer, the ticker and one task per source."""
        if self._started:
            return
        self.claim_sources()
        self._started = True
        try:
            await self._start()
        except BaseException:
            self.release_sources()
            raise

    async def _start(self) -> None:
        if self.store is not None:
            # What is usual is learned from the history already stored (a thread: sqlite3, read only).
            await asyncio.to_thread(self.detector.baselines.load, self.store.path)
            if self._profiles is not None:
                await self._profiles.start(self.now())
            await self.store.open()
            if self.paced and not self._event_clock and not self.clock.source_clock:
                self.resumed = await warm(self, self.store)
            elif self._event_clock:
                until = await resumed_backfill_end(self, self.store)
                if until is not None:
                    self.resumed = await warm(self, self.store, until)
        self._tasks.append(asyncio.create_task(self._consume(), name="engine-consumer"))
        started = self.now()
        for source in self.sources:
            health = self.health[source.name]
            health.started_at = started
            sink = self._sinks[source.name] = SourceSink(self, source)
            task = asyncio.create_task(
                supervise(source, sink, health, restart=self._restart, settle=self._settle),
                name=f"source-{source.name}",
            )
            self._source_tasks[source.name] = task
        if self.paced:
            self._tasks.append(asyncio.create_task(self._ticker(), name="engine-ticker"))

    async def run(self, duration: float | None = None) -> None:
        """Run until :meth:`stop`, until every source has finished, or for ``duration`` of engine time."""
        if not self._started:
            await self.start()
        self.clock.run_for(duration)
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wait_stop(), name="engine-stop")]
        if self._source_tasks:
            waiters.append(asyncio.create_task(self._sources_done(), name="engine-sources-done"))
        try:
            with backfill_gc(self._event_clock):
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._note_down_sources()  # before the waiter on the sources is cancelled, and they with it
            for w in waiters:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w

    def _note_down_sources(self) -> None:
        """Note, once, which sources are down as the engine begins to stop.

        Those stay down in the last picture, and so do those back from an outage for less than
        ``recover_after``. Stopping a source makes it finished (and a source may say down on its
        way out, which is no outage), and a finished source is never stale: its steps would turn
        OK, and their alert resolve, on the way out.
        """
        if self._down_at_stop is None:
            now = self.now()
            recovering = self._health.recovering
            self._down_at_stop = [
                h for h in self.health.values() if (h.down or recovering(h, now)) and not h.finished
            ]

    async def _wait_stop(self) -> None:
        await self._stop.wait()

    async def _sources_done(self) -> None:
        await asyncio.gather(*self._source_tasks.values(), return_exceptions=True)
        if self.store is not None:
            self.store.sources_finished()
        await self._queue.join()

    async def _settle(self) -> None:
        """Wait until what the sources handed over is processed and stored."""
        await self._queue.join()
        if self.store is not None:
            await self.store.flush()

    async def aclose(self) -> None:
        """Stop the sources, drain what they sent, publish a last snapshot and flush the store."""
        if self._closed or not self._started:
            return
        self._closed = True
        self._note_down_sources()
        for task in self._source_tasks.values():
            task.cancel()
        await asyncio.gather(*self._source_tasks.values(), return_exceptions=True)
        for h in self._down_at_stop or ():
            h.finished = False
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
            self._publisher.failed(exc)
        self._publisher.close()
        if self.store is not None:
            try:
                await self.store.close()
            finally:
                self.release_sources()
        for name, sink in self._sinks.items():
            log.info("source %s: %d events emitted", name, sink.emitted)

    # ------------------------------------------------------------------ the queue's consumer

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
                sink = self._sinks.get(name)
                if sink is not None:
                    sink.batch_done()
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
            # Data drives time: tick at every tick boundary the batch crosses.
            batch = items
            cut = self.clock.place(
                stamps,
                lambda i, j: add(batch[i:j], name),
                self._tick_auto,
                None if health is None else health.heard,
            )
            if cut is not None:
                # The run asked for this much time: what lies beyond it is not part of the run.
                items, stamps = items[:cut], stamps[:cut]
                offset = None  # the source's offset covers events this run leaves out
                if encoded is not None:
                    encoded = marshal.dumps(list(items))
                if not self._stop.is_set():
                    self.clock.catch_up(self.clock.end, self._tick_auto)
                    self.stop()
        if health is not None and items:
            health.heard(max(stamps))
            health.up = health.up or not health.finished
        if heartbeats(items, as_rows):
            # A heartbeat says the source is alive and moves time on: it is neither an event to
            # count nor one to store (a paced import stored its quiet stretches' beats as events).
            items = without_heartbeats(items, as_rows)
            if encoded is not None:
                encoded = marshal.dumps(list(items))
        if health is not None:
            health.events_total += len(items)
        if self.store is not None and (items or offset is not None):
            if encoded is not None:
                await self.store.add_encoded(encoded, len(items), name, offset)
            else:
                await self.store.add(items, source=name, offset=offset)

    async def _ticker(self) -> None:
        interval = self.config.monitor.tick
        while True:
            await asyncio.sleep(interval)
            if self.clock.source_clock and self._queue.qsize():
                # A source that owns the clock has moved it past the batches still queued: on a
                # busy loop those can hold minutes of accelerated time, and ticking before they
                # are in would show a source that is talking as silent.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(QUEUE_CATCH_UP):
                        await self._queue.join()
            try:
                self._tick(self.now())
            except Exception as exc:
                self._publisher.failed(exc)
            if self.clock.past_deadline():
                self.stop()

    # ------------------------------------------------------------------ the tick

    def _tick(self, now: float) -> Snapshot:
        """Tick at engine time ``now`` and publish the Snapshot."""
        snap = self._ticks.run(now, publish=True)
        assert snap is not None
        return snap

    def _tick_auto(self, now: float) -> None:
        """Tick at data time: publishing, or not when a backfill has no one watching."""
        self._ticks.run(now, publish=not (self._event_clock and not self._publisher.watched))

    def _finish_tick(self, now: float, transitions: list[Transition]) -> None:
        """Keep a tick's transitions (with the snapshots and in the store); purge when one is due."""
        if self.warming:
            return  # stored when they happened (see cxmon.engine.warm)
        if transitions:
            self._publisher.keep(transitions)
            if self.store is not None:
                self.store.add_transitions(transitions)
        if self._purger is not None:
            self._purger.tick(now)
        if self._profiles is not None:
            self._profiles.tick(now)

    def _snapshot(
        self,
        now: float,
        steps: tuple[StepStatus, ...],
        series: tuple[SeriesFigures, ...],
        sources: tuple[SourceStatus, ...],
        transitions: tuple[Transition, ...],
    ) -> Snapshot:
        """Make, keep and hand out the Snapshot of a tick (see :class:`Publisher`)."""
        return self._publisher.snapshot(now, steps, series, sources, transitions)

    def _source_statuses(self, now: float) -> tuple[SourceStatus, ...]:
        return self._health.statuses(now)

    def _stale_sources(self, now: float) -> tuple[frozenset[str], bool]:
        if self.warming:
            return frozenset(), False  # the history read back: its sources spoke then
        return self._health.stale(now)

    def _stale_reason(self, names: list[str], now: float) -> str:
        return self._health.stale_reason(names, now)


__all__ = ["OTHER", "ClockArg", "Engine", "SourceHealth", "Subscription"]
