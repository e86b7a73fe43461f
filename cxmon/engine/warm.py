"""Warm start: a live engine takes up where its history leaves off, so a restart is not a blank.

A live engine keeps its windows, verdicts and ``for`` timers in memory. Without this, a restart
(an upgrade, a reboot, a crash) would show every step OK until the windows filled again, an open
pot hole would be entered again only after its ``for``, and its alert would lapse meanwhile. As
it starts, before its sources, a live engine with a history reads back the stored events of the
span its thresholds look at and ticks through them as it did live, storing nothing and telling no
one; acknowledgements still in force come back too. The day before that span is taken in
first, without ticks, for what lasts longer than a window: customers' strikes (24 h) and the
contacts still open. Its sources then carry on from their stored offsets, so nothing is counted
twice; /metrics' counters start from zero (the run before counted what is read back).

A backfill (``cxmon import``) that goes on from a stored offset warms up the same way, up to the
newest event it stored, so a pot hole open where it stopped is not entered again. Neither a
simulator's nor a replay's engine warms up: their clocks start a run of their own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cxmon.config import Config
from cxmon.engine.acks import MAX_ACK
from cxmon.engine.clock import EngineClock
from cxmon.rows import TS, Row
from cxmon.snapshot import Ack, State, Transition
from cxmon.trend import TREND_SPAN
from cxmon.units import format_duration
from cxmon.windows import STRIKE_WINDOW, Aggregator

if TYPE_CHECKING:
    from cxmon.engine.core import Engine
    from cxmon.store import Store

log = logging.getLogger(__name__)

WARM_MAX_EVENTS = 1_000_000
"""The most stored events a start reads back (the newest): a few seconds of work at most."""
ENGINE_SOURCE = "engine"
"""The source of the events the engine makes itself (contacts closed as lost)."""


@dataclass(frozen=True, slots=True)
class Resumed:
    """What an engine took up from its history as it started."""

    since: float
    """Engine time the events read back begin at."""
    events: int
    """Stored events read back."""
    transitions: tuple[Transition, ...]
    """The stored transitions that left a step other than OK (announced, and alerted on)."""
    acks: tuple[Ack, ...]
    """Acknowledgements still in force, taken up again."""
    cut: bool
    """The span held more than :data:`WARM_MAX_EVENTS`: the oldest were left out."""
    before: int = 0
    """Stored events of the day before the span, taken in for strikes and open contacts."""


def warm_span(config: Config) -> float:
    """Seconds of history a start reads back: the longest window, then the longest ``for`` (or the
    trend's span, if longer) for the verdicts that window's figures led to, and a minute more."""
    longest_for = max((t.for_ for s in config.steps for t in s.thresholds), default=0.0)
    return max(config.monitor.windows) + max(longest_for, TREND_SPAN) + 60.0


async def warm(engine: Engine, store: Store, until: float | None = None) -> Resumed:
    """Bring ``engine`` (started, sources not yet) up to ``until`` from ``store``.

    Args:
        engine: an engine whose consumer and sources have not started.
        store: its open history.
        until: where the history read back ends (default: the engine's clock now; a resumed
            backfill's is where its stored events end).

    Returns:
        What was taken up (see :class:`Resumed`).
    """
    now = engine.now() if until is None else until
    start = now - warm_span(engine.config)
    names = _sources_of(engine)
    since = await store.newest_start(start, now, names, WARM_MAX_EVENTS)
    cut = since > start
    if cut:
        log.warning(
            "warm start: more than %s stored events in the last %s; the windows start from the newest %s"
            " (since %s ago)",
            f"{WARM_MAX_EVENTS:,}",
            format_duration(now - start),
            f"{WARM_MAX_EVENTS:,}",
            format_duration(now - since),
        )
    agg = engine.aggregator
    ticks = engine._ticks
    clock = EngineClock(engine.config, "events", (), lambda: agg.watermark, None)
    clock.every = engine.clock.every  # the live spacing: timers come due when they did live
    clock.quiet_until = ticks.quiet_until

    def tick(t: float) -> None:
        ticks.run(t, publish=False)

    count = before = 0
    engine.warming = True
    engine.store = None  # the events, their minute figures and transitions are stored already
    # The contacts the run before closed as lost are among the events read back, at the moment
    # they were closed: the aggregator closing them again, at its own moments, would count them twice.
    time_out_lost, agg.time_out_lost = agg.time_out_lost, False
    try:
        if not cut:
            before = await _day_before(engine, store, now - STRIKE_WINDOW, since, names)
        async for rows in store.iter_source_rows(since, now, names):
            if engine.stopping:
                break  # asked to stop as it starts (Ctrl-C): what is left would be thrown away
            clock.place([r[TS] for r in rows], functools.partial(_add, agg, rows), tick)
            count += len(rows)
            await asyncio.sleep(0)  # a long span must not hold the loop
        if clock.next_tick is not None:
            clock.catch_up(now, tick)
    finally:
        engine.store = store
        engine.warming = False
        agg.time_out_lost = time_out_lost
    ticks.assembly.count_from_now(agg.series)

    # The history says where each step was left, and that was announced (stored, alerted): the
    # engine goes on from there, and its first live tick moves a step the events put elsewhere
    # as a transition like any other. A history with no events in the span starts afresh.
    detector = engine.detector
    announced: list[Transition] = []
    acks: tuple[Ack, ...] = ()
    if count:
        stored = await store.last_transitions()
        for step in engine.config.steps:
            tr = stored.get(step.name)
            if tr is None:
                detector.step_state[step.name] = State.OK
                continue
            detector.step_state[step.name] = tr.to_state
            detector.step_since[step.name] = tr.ts
            if tr.to_state is not State.OK:
                announced.append(tr)
        acks = await _acks_in_force(store, now, {tr.step for tr in announced})
        for ack in acks:
            engine._acks.restore(ack)
    # The dashboard's event log shows what happened before the restart, as it was stored.
    engine._publisher.keep(await store.transitions(start=start, end=now))
    resumed = Resumed(
        since=since, events=count, transitions=tuple(announced), acks=acks, cut=cut, before=before
    )
    if count:
        derived = {name: state for name, (state, _) in engine._ticks.step_rolled.items()}
        log.info(
            "warm start: %s stored events of the last %s read back (and %s of the day before, for"
            " strikes and open contacts); %s",
            f"{count:,}",
            format_duration(now - since),
            f"{before:,}",
            ", ".join(
                f"{name} {state.value.upper()}" for name, state in derived.items() if state is not State.OK
            )
            or "every step OK",
        )
    return resumed


async def _day_before(engine: Engine, store: Store, start: float, end: float, names: set[str]) -> int:
    """Take in the events of ``[start, end)``, the day before the span a start ticks through, for
    the customers' strikes (bad experiences in 24 h) and the contacts still open: added as they
    came, time moved on with them,
    and nothing judged (at most the newest :data:`WARM_MAX_EVENTS`). Their panes have left every
    window by the span's end, and whether a start takes up the history's states depends on the
    span's events alone. Return how many were taken in."""
    since = await store.newest_start(start, end, names, WARM_MAX_EVENTS)
    if since > start:
        log.info("warm start: strikes are counted from %s before the restart", format_duration(end - since))
    return await take_in(
        engine.aggregator, store.iter_source_rows(since, end, names), lambda: engine.stopping
    )


async def take_in(agg: Aggregator, batches: AsyncIterator[list[Row]], stop: Callable[[], bool]) -> int:
    """Add stored events to ``agg`` as they came, moving its time on with them and judging
    nothing: for what lasts longer than any window (customers' strikes, contacts still open).

    Args:
        agg: the aggregator of an engine whose ticks have not begun.
        batches: the events, oldest first.
        stop: asked before each batch; True ends the reading there.

    Returns:
        How many events were taken in.
    """
    count = 0
    async for rows in batches:
        if stop():
            break
        if not rows:
            continue
        agg.add_rows(rows)
        agg.advance(rows[-1][TS])  # strikes older than a day leave, panes leave their windows
        count += len(rows)
        await asyncio.sleep(0)
    return count


def _sources_of(engine: Engine) -> set[str]:
    """The names of the sources whose stored events are ``engine``'s: its own, and its lost contacts."""
    return {s.name for s in engine.sources} | {ENGINE_SOURCE}


def _add(agg: Aggregator, rows: list[Row], i: int, j: int) -> None:
    agg.add_rows(rows[i:j])


async def resumed_backfill_end(engine: Engine, store: Store) -> float | None:
    """Where a backfill that goes on from a stored offset takes up its history: just past its
    sources' newest stored event (None: it starts afresh, or nothing of it is stored)."""
    for source in engine.sources:
        if await store.load_offset(source.name) is not None:
            newest = await store.newest_ts(_sources_of(engine))
            return None if newest is None else math.nextafter(newest, math.inf)
    return None


async def _acks_in_force(store: Store, now: float, not_ok: set[str]) -> tuple[Ack, ...]:
    """The stored acknowledgements still in force at ``now``: each step's newest, unexpired, of a
    step that is not OK and that did not turn OK since (an acknowledgement ends with its pot hole),
    brought within the bounds an acknowledgement is made in (see :func:`_bounded`; logged)."""
    newest: dict[str, Ack] = {}
    for ack in await store.acks():
        if ack.until > now and ack.step in not_ok:
            newest[ack.step] = ack
    if not newest:
        return ()
    oldest = min(a.ts for a in newest.values())
    for tr in await store.transitions(start=oldest, end=now):
        made = newest.get(tr.step)
        if made is not None and tr.to_state is State.OK and tr.ts >= made.ts:
            del newest[tr.step]
    kept: list[Ack] = []
    for ack in newest.values():
        bounded = _bounded(ack)
        if bounded is None:
            log.warning(
                "warm start: the acknowledgement of %s by %s was stored ending no later than it was made;"
                " dropped",
                ack.step,
                ack.who,
            )
        elif bounded is not ack:
            left = bounded.until - now
            fate = (
                f"taken up ending then, in {format_duration(left)}"
                if left > 0
                else "that has passed: dropped"
            )
            log.warning(
                "warm start: the acknowledgement of %s by %s was stored ending more than %s after it was"
                " made, longer than one may last; %s",
                ack.step,
                ack.who,
                format_duration(MAX_ACK),
                fate,
            )
        if bounded is not None and bounded.until > now:
            kept.append(bounded)
    return tuple(kept)


def _bounded(ack: Ack) -> Ack | None:
    """``ack`` within the bounds an acknowledgement is made in (ending after it was made, at most
    ``MAX_ACK`` on): one stored before those bounds that ends later ends ``MAX_ACK`` after it was
    made; one that ends no later than it was made is None. An end beyond them stored and shown
    again would stop every dashboard that formats it."""
    if not ack.until > ack.ts:
        return None
    if ack.until > ack.ts + MAX_ACK:
        return replace(ack, until=ack.ts + MAX_ACK)
    return ack
