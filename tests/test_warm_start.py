"""Warm start: a live engine restarted on its history takes up its windows, verdicts, acknowledgements
and alerts where the history leaves them, instead of starting blank."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.base import Offset, Sink
from cxmon.alerts import AlertDispatcher
from cxmon.config import Config
from cxmon.engine import Engine
from cxmon.engine.acks import MAX_ACK
from cxmon.engine.warm import warm_span
from cxmon.events import ContactEvent, EventKind
from cxmon.exposition import render
from cxmon.snapshot import Ack, Snapshot, State, Transition
from cxmon.store import Store
from tests.helpers import one_step_config

ALERTS = """
[alerts]
log = true
"""


class Listed:
    """A source that emits the events it was given, then ends (the run before a restart)."""

    type = "test"

    def __init__(self, events: Sequence[ContactEvent], name: str = "pbx") -> None:
        self.events = events
        self.name = name

    async def run(self, sink: Sink) -> None:
        for i in range(0, len(self.events), 50):
            await sink.emit(self.events[i : i + 50])


class Quiet:
    """A live source with nothing to say yet (the restarted run's)."""

    type = "test"

    def __init__(self, name: str = "pbx") -> None:
        self.name = name

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        await asyncio.Event().wait()


def calls(
    start: float, end: float, wait: float, queue: str = "q1", source: str = "pbx"
) -> list[ContactEvent]:
    """A call every 10 s from ``start``, each answered after ``wait`` (while that is before ``end``)."""
    out: list[ContactEvent] = []
    t, n = start, 0
    while t + wait < end:
        cid = f"{queue}-{n}"
        where: dict[str, Any] = {"contact_id": cid, "channel": "voice", "queue": queue, "source": source}
        out.append(ContactEvent(ts=t, kind=EventKind.ARRIVED, **where))
        out.append(ContactEvent(ts=t + wait, kind=EventKind.ANSWERED, wait=wait, **where))
        t += 10.0
        n += 1
    return sorted(out, key=lambda e: e.ts)


async def record(config: Config, db: Path, events: Sequence[ContactEvent]) -> Snapshot:
    """Run the history in (a backfill on the events' clock, which stores its transitions) and
    return its last snapshot."""
    engine = Engine(config, db_path=str(db), sources=[Listed(events, events[0].source)], clock="events")
    async with engine:
        await engine.run()
    return engine.latest


async def restart(
    config: Config, db: Path, at: float | None = None, listen: AlertDispatcher | None = None
) -> tuple[Engine, Snapshot]:
    """Start a live engine on ``db`` (the wall clock, or ``at``) and return it with its first snapshot."""
    engine = Engine(
        config, db_path=str(db), sources=[Quiet()], clock=(lambda: at) if at is not None else None
    )
    if listen is not None:
        listen.attach(engine)
    await engine.start()
    snap = engine._tick(engine.now())
    return engine, snap


def stored_transitions(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT step, from_state, to_state FROM transitions ORDER BY id").fetchall()


async def test_a_restart_keeps_an_open_pot_hole_open_and_says_nothing_new(tmp_path: Path) -> None:
    """Ten minutes of 90 s waits (breach 60 s for 30 s) left the step a pot hole: after a restart
    the first snapshot shows it still a pot hole, with no transition published or stored (without a
    warm start it showed OK: empty windows)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    last = await record(config, db, calls(now - 600, now - 1, 90.0))
    assert last.steps[0].state is State.POTHOLE
    before = stored_transitions(db)
    engine, snap = await restart(config, db)
    try:
        assert snap.steps[0].state is State.POTHOLE, snap.steps[0]
        assert snap.transitions == ()
        assert engine.resumed is not None and engine.resumed.events > 0
        assert snap.steps[0].since == next(t.ts for t in reversed(last.recent_transitions))
    finally:
        await engine.aclose()
    assert stored_transitions(db) == before
    with sqlite3.connect(db) as con:  # nothing read back was stored a second time
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(
            calls(now - 600, now - 1, 90.0)
        )


async def test_the_figures_after_a_restart_are_those_before_it(tmp_path: Path) -> None:
    """Every window's figures of the restarted engine's first snapshot, at the time the history
    ends, are those of the engine that recorded it, at its last tick (the reference)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    events = calls(now - 900, now - 3.7, 75.0) + calls(now - 500, now - 3.7, 20.0, queue="q2")
    events.sort(key=lambda e: e.ts)
    last = await record(config, db, events)
    engine, snap = await restart(config, db, at=last.ts + 1e-6)
    try:
        assert {s.key: s.windows for s in snap.series} == {s.key: s.windows for s in last.series}
        assert {s.key: s.state for s in snap.series} == {s.key: s.state for s in last.series}
        assert [s.state for s in snap.steps] == [s.state for s in last.steps]
    finally:
        await engine.aclose()


async def test_the_counters_after_a_restart_count_from_zero(tmp_path: Path) -> None:
    """The contacts read back were counted by the run before: after a restart /metrics counts from
    zero, as any restarted exporter does, and goes on from there (before, the counters began at
    the span's contacts, and Prometheus' rate() over the restart counted them a second time)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 900, now - 1, 20.0))
    engine, snap = await restart(config, db, at=now)
    try:
        assert engine.resumed is not None and engine.resumed.events > 0
        assert snap.series and snap.series[0].windows[300.0]["offered"]  # the windows are warm
        samples = {
            (s.name, s.labels.get("outcome")): s.value
            for f in text_string_to_metric_families(render(snap, config).decode())
            for s in f.samples
            if s.name in ("cxmon_contacts_total", "cxmon_wait_seconds_count")
        }
        assert samples and set(samples.values()) == {0.0}, samples
        new = ContactEvent(ts=now, kind=EventKind.ARRIVED, contact_id="new", channel="voice", queue="q1")
        engine.aggregator.add([new], "pbx")
        after = engine._tick(now + 1.0)
        assert after.series[0].totals["offered"] == 1
    finally:
        await engine.aclose()


def abandons(customer: str, at: Sequence[float]) -> list[ContactEvent]:
    """A call of ``customer`` at each time, abandoned after two minutes (a strike each)."""
    out: list[ContactEvent] = []
    for i, t in enumerate(at):
        where: dict[str, Any] = {"contact_id": f"{customer}-{i}", "channel": "voice", "queue": "q1"}
        out.append(ContactEvent(ts=t, kind=EventKind.ARRIVED, customer_id=customer, source="pbx", **where))
        out.append(
            ContactEvent(ts=t + 120, kind=EventKind.ABANDONED, customer_id=customer, source="pbx", **where)
        )
    return out


async def test_customers_strikes_of_the_last_day_outlive_a_restart(tmp_path: Path) -> None:
    """A customer who abandoned three times 3 to 5 hours ago (before the span the windows read
    back) is still on the strikes list after a restart, with their 3 strikes; one whose strikes
    are older than a day is not (before, a restart emptied the list)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    events = abandons("struck", [now - 5 * 3600, now - 4 * 3600, now - 3 * 3600])
    events += abandons("yesterday", [now - 30 * 3600, now - 29 * 3600, now - 28 * 3600])
    events += calls(now - 600, now - 1, 20.0)
    events.sort(key=lambda e: e.ts)
    await record(config, db, events)
    engine, snap = await restart(config, db, at=now)
    try:
        assert await engine.customer_leaders() == [("struck", 3)]
        assert snap.strikes == 1
        assert engine.resumed is not None and engine.resumed.before == 6  # their three calls
    finally:
        await engine.aclose()


async def test_the_backlog_after_a_restart_holds_contacts_open_since_before_the_span(tmp_path: Path) -> None:
    """Answered calls 20 to 50 minutes old, not yet resolved, are open (the backlog) although they
    came before the span the windows read back: a restart's backlog is the recorded run's (before,
    it held only the span's contacts)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    events = sorted(
        calls(now - 3000, now - 1200, 20.0) + calls(now - 300, now - 1, 20.0, queue="q2"), key=lambda e: e.ts
    )
    last = await record(config, db, events)
    engine, snap = await restart(config, db, at=last.ts + 1e-6)
    try:
        backlog = {s.key: s.instant["backlog"] for s in snap.series}
        assert backlog == {s.key: s.instant["backlog"] for s in last.series}
        assert backlog[("help", "voice", "q1")] == len(calls(now - 3000, now - 1200, 20.0)) / 2
    finally:
        await engine.aclose()


async def test_contacts_the_run_before_closed_as_lost_are_lost_once(tmp_path: Path) -> None:
    """Calls that never ended were closed as lost by the run before, an hour on (stored, as the
    engine's own events): after a restart each window counts each of them once, as that run did
    (not again when the restarted engine times them out itself, at moments of its own)."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    where: dict[str, Any] = {"channel": "voice", "queue": "q2", "source": "pbx"}
    hung = [
        ContactEvent(ts=now - 4200 + 13.0 * i, kind=EventKind.ARRIVED, contact_id=f"hung-{i}", **where)
        for i in range(40)
    ]
    events = sorted(hung + calls(now - 4300, now - 1, 20.0), key=lambda e: e.ts)
    last = await record(config, db, events)
    with sqlite3.connect(db) as con:
        stored_lost = con.execute("SELECT count(*) FROM events WHERE source = 'engine'").fetchone()[0]
    assert stored_lost >= 40  # the hung calls, and the answered ones never resolved
    engine, snap = await restart(config, db, at=last.ts + 1e-6)
    try:
        # q2 holds only the hung calls, every one of them closed by the run before (q1's answered
        # calls stay open, and the restarted engine may close a few more of them at its first tick).
        q2 = next(s for s in snap.series if s.queue == "q2")
        before = next(s for s in last.series if s.queue == "q2")
        assert before.windows[300.0]["lost"] and before.instant["backlog"] == 0
        assert q2.windows == before.windows
        assert q2.instant["backlog"] == 0
    finally:
        await engine.aclose()


async def test_a_step_the_history_left_elsewhere_moves_by_a_stored_transition(tmp_path: Path) -> None:
    """The history's last word for the step was WATCH (a live run that read its backlog all at once
    says so), while its events make a pot hole: the restart goes on from WATCH, and its first tick
    stores and publishes WATCH → POTHOLE, so the history and the alerts follow the screen."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 600, now - 1, 90.0))
    store = await Store(str(db)).open()
    store.add_transitions([Transition(now - 1, "help", "voice", "q1", State.POTHOLE, State.WATCH, "by hand")])
    await store.close()
    engine, snap = await restart(config, db)
    try:
        assert [(t.from_state, t.to_state) for t in snap.transitions] == [(State.WATCH, State.POTHOLE)]
    finally:
        await engine.aclose()
    assert stored_transitions(db)[-1] == ("help", "watch", "pothole")


async def test_a_history_with_no_recent_events_starts_afresh(tmp_path: Path) -> None:
    """Events older than the span a start reads back (an import of last month) leave the restarted
    engine blank, its steps OK, and the history's old pot hole is not taken up."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    old = now - warm_span(config) - 3600
    last = await record(config, db, calls(old - 600, old, 90.0))
    assert last.steps[0].state is State.POTHOLE
    engine, snap = await restart(config, db)
    try:
        assert snap.steps[0].state is State.OK and snap.transitions == ()
        assert engine.resumed is not None and engine.resumed.events == 0 and engine.resumed.transitions == ()
    finally:
        await engine.aclose()


async def test_another_sources_events_are_not_read_back(tmp_path: Path) -> None:
    """Events in the span from a source this engine does not have (a simulator run on the same
    database) are left alone: the restarted engine sees none of them."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 600, now - 1, 90.0, source="sim"))
    engine, snap = await restart(config, db)
    try:
        assert snap.steps[0].state is State.OK
        assert engine.resumed is not None and engine.resumed.events == 0
    finally:
        await engine.aclose()


async def test_an_acknowledgement_in_force_outlives_a_restart(tmp_path: Path) -> None:
    """A pot hole acknowledged until an hour from now is still acknowledged after a restart."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 600, now - 1, 90.0))
    store = await Store(str(db)).open()
    await store.add_ack(
        Ack(step="help", who="dana", note="two agents on their way", ts=now - 10, until=now + 3600)
    )
    await store.close()
    engine, snap = await restart(config, db)
    try:
        ack = snap.steps[0].ack
        assert ack is not None and (ack.who, ack.note) == ("dana", "two agents on their way")
    finally:
        await engine.aclose()


async def test_an_acknowledgement_stored_ending_too_far_on_comes_back_ending_at_the_longest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An acknowledgement stored before the 7-day bound, ending in 1e300, comes back after a restart
    ending 7 days after it was made (a dashboard formatting 1e300 as a time stops), and the log says so."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 600, now - 1, 90.0))
    store = await Store(str(db)).open()
    await store.add_ack(Ack(step="help", who="dana", note="for good", ts=now - 10, until=1e300))
    await store.close()
    caplog.set_level(logging.WARNING, logger="cxmon.engine.warm")
    engine, snap = await restart(config, db)
    try:
        ack = snap.steps[0].ack
        assert ack is not None and (ack.who, ack.until) == ("dana", now - 10 + MAX_ACK)
        assert "the acknowledgement of help by dana was stored ending more than 7d00h after" in caplog.text
    finally:
        await engine.aclose()


async def test_an_acknowledgement_whose_pot_hole_ended_does_not_come_back(tmp_path: Path) -> None:
    """An acknowledgement ends with its pot hole: one made before the step turned OK, though not
    expired, is not taken up for the pot hole that followed."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    store = await Store(str(db)).open()
    await store.add_ack(Ack(step="help", who="dana", note="old", ts=now - 3000, until=now + 3600))
    store.add_transitions([Transition(now - 2900, "help", "voice", "q1", State.POTHOLE, State.OK, "cleared")])
    await store.close()
    await record(config, db, calls(now - 600, now - 1, 90.0))
    engine, snap = await restart(config, db)
    try:
        assert snap.steps[0].state is State.POTHOLE and snap.steps[0].ack is None
    finally:
        await engine.aclose()


async def test_a_restart_neither_stores_nor_learns_the_history_again(tmp_path: Path) -> None:
    """Reading the history back stores no minute figures and teaches the baselines nothing they
    had not learned from the database already."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 3600, now - 1, 90.0))
    earlier = "SELECT * FROM snapshots WHERE minute < ? ORDER BY minute, step, channel, queue"
    before_now = (now // 60 - 1) * 60  # the minutes the restarted engine has no row of its own for
    with sqlite3.connect(db) as con:
        rows = con.execute(earlier, (before_now,)).fetchall()
    assert len(rows) > 50
    engine, _ = await restart(config, db)
    try:
        learned = engine.detector.baselines.minutes
        # (a source of its own: the engine still running holds pbx's lock in this database)
        probe = Engine(config, db_path=str(db), sources=[Quiet("probe")], clock=lambda: now - 7 * 86400)
        await probe.start()  # a start with nothing to read back: what the database alone teaches
        await probe.aclose()
        assert learned == probe.detector.baselines.minutes
    finally:
        await engine.aclose()
    with sqlite3.connect(db) as con:
        assert con.execute(earlier, (before_now,)).fetchall() == rows


async def test_an_alert_firing_before_a_restart_is_taken_up_not_announced_again(tmp_path: Path) -> None:
    """The alert dispatcher of the restarted engine holds the pot hole's alert as firing, with the
    labels it was first sent with (the stored transition's measure), and logs no new transition."""
    config = one_step_config(ALERTS)
    db = tmp_path / "h.db"
    now = time.time()
    first = AlertDispatcher(config)
    recorder = Engine(
        config, db_path=str(db), sources=[Listed(calls(now - 600, now - 1, 90.0))], clock="events"
    )
    first.attach(recorder)
    async with recorder:
        await recorder.run()
    assert list(first.active) == [("CxmonPothole", "help")]
    again = AlertDispatcher(config)
    engine, snap = await restart(config, db, listen=again)
    try:
        assert snap.transitions == ()
        assert list(again.active) == [("CxmonPothole", "help")]
        assert again.active["CxmonPothole", "help"].labels == first.active["CxmonPothole", "help"].labels
        assert again.active["CxmonPothole", "help"].labels["measure"] == "wait_p90"
    finally:
        await engine.aclose()


async def test_a_span_with_too_many_events_reads_back_the_newest_and_says_so(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    """Past the most events a start reads back, it takes the newest of them, oldest first, and
    warns that the windows start later than the span."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    events = calls(now - 600, now - 1, 90.0)
    await record(config, db, events)
    monkeypatch.setattr("cxmon.engine.warm.WARM_MAX_EVENTS", 40)
    engine, _ = await restart(config, db)
    try:
        resumed = engine.resumed
        stamps = sorted(e.ts for e in events)
        newest = [t for t in stamps if t > stamps[-41]]  # at most 40: none that ties with the 41st
        assert resumed is not None and resumed.cut and resumed.events == len(newest)
        assert 30 < len(newest) <= 40 and stamps[-41] < resumed.since <= newest[0]
        assert "the windows start from the newest 40" in caplog.text
    finally:
        await engine.aclose()


class Offsetted(Listed):
    """A file's source: each batch carries the offset after it (an import that can go on later)."""

    async def run(self, sink: Sink) -> None:
        for i in range(0, len(self.events), 50):
            await sink.emit(self.events[i : i + 50], Offset("file", int(self.events[0].ts) + i + 50))


async def import_of(config: Config, db: Path, events: Sequence[ContactEvent]) -> None:
    engine = Engine(config, db_path=str(db), sources=[Offsetted(events)], clock="events")
    async with engine:
        await engine.run()


async def test_an_import_resumed_from_its_offset_judges_as_one_import_does(tmp_path: Path) -> None:
    """An import stopped inside a pot hole and resumed (its source goes on from a stored offset)
    takes the history it stored up again: it stores the transitions one import of everything
    stores, the pot hole entered once (without it, the resumed import entered it again after
    the stop)."""
    config = one_step_config()
    start = 1_700_000_000.0
    events = calls(start, start + 1800, 20.0) + calls(start + 600, start + 1500, 90.0, queue="q2")
    events.sort(key=lambda e: e.ts)
    whole, split = tmp_path / "whole.db", tmp_path / "split.db"
    await import_of(config, whole, events)
    cut = next(i for i, e in enumerate(events) if e.ts > start + 1100)
    await import_of(config, split, events[:cut])
    await import_of(config, split, events[cut:])
    assert any(to == "pothole" for _, _, to in stored_transitions(whole))
    assert stored_transitions(split) == stored_transitions(whole)


async def test_a_start_asked_to_stop_reads_nothing_back(tmp_path: Path) -> None:
    """Asked to stop before it starts (Ctrl-C while a long history is read back), the engine
    leaves the history where it is and starts at once."""
    config = one_step_config()
    db = tmp_path / "h.db"
    now = time.time()
    await record(config, db, calls(now - 600, now - 1, 90.0))
    engine = Engine(config, db_path=str(db), sources=[Quiet()])
    engine.stop()
    await engine.start()
    try:
        assert engine.resumed is not None and engine.resumed.events == 0
    finally:
        await engine.aclose()
