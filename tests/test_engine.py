"""The engine end to end on the simulator: pot holes form and heal, history is kept, nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from unittest.mock import patch

from collectors.base import Sink
from collectors.simulator import SimulatorSource
from collectors.simulator.model import simulate_events
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.snapshot import Snapshot, State, Transition
from cxmon.stats import compute_stats
from tests.helpers import REPO, SIM_START, SIM_START_TS, one_step_config, sim_config

INCIDENT_AT = 180.0  # default.toml: billing loses half its agents at +3m ...
INCIDENT_END = 780.0  # ... for 10m


async def run_sim(tmp_path: Path, minutes: float, **options: object) -> tuple[Engine, list[Transition]]:
    engine = Engine(sim_config(speed="max", **options), db_path=str(tmp_path / "h.db"))
    seen: list[Transition] = []
    engine.add_listener(lambda snap: seen.extend(snap.transitions))
    async with engine:
        await engine.run(duration=minutes * 60)
    return engine, seen


def path_of(transitions: list[Transition], step: str) -> list[tuple[float, State]]:
    return [(t.ts - SIM_START_TS, t.to_state) for t in transitions if t.step == step]


async def test_incident_forms_a_pothole_that_heals(tmp_path: Path) -> None:
    """The billing incident takes get_help OK → WATCH → POTHOLE → OK at plausible times.

    The incident starts at +3m and ends at +13m. The step must start watching after it starts,
    become a pot hole within the incident (after the 2m `for`), and be OK again within the 30
    minutes. The steps the incident does not touch stay OK throughout; follow_up (the CSAT of
    the affected customers) may be watched as their scores drop, but is never a pot hole.
    """
    _, seen = await run_sim(tmp_path, 30)
    path = path_of(seen, "get_help")
    states = [s for _, s in path]
    assert states[:2] == [State.WATCH, State.POTHOLE], path
    assert states[-1] is State.OK, path
    watch_at, pothole_at = path[0][0], path[1][0]
    assert INCIDENT_AT < watch_at < pothole_at
    assert pothole_at - watch_at >= 120.0  # `for` = 2m
    assert pothole_at < INCIDENT_END
    ok_at = path[-1][0]
    assert INCIDENT_END < ok_at <= 1800.0
    for step in ("enquire", "order", "escalate", "resolve"):
        assert path_of(seen, step) == [], step
    assert State.POTHOLE not in [s for _, s in path_of(seen, "follow_up")]
    assert "service level" in next(
        t.reason for t in seen if t.to_state is State.POTHOLE
    ) or "abandon" in next(t.reason for t in seen if t.to_state is State.POTHOLE)


async def test_without_the_incident_there_is_no_pothole(tmp_path: Path) -> None:
    """The same run with incidents disabled makes no pot hole anywhere."""
    engine, seen = await run_sim(tmp_path, 30, incidents_enabled=False)
    assert [t for t in seen if t.to_state is State.POTHOLE] == []
    assert all(s.state is State.OK for s in engine.latest.steps), engine.latest.steps


async def test_everything_received_is_stored_and_stats_agree(tmp_path: Path) -> None:
    """After a run every event the engine received is in the database, and stats recount them."""
    engine, seen = await run_sim(tmp_path, 20)
    received = engine.latest.events_total
    con = sqlite3.connect(tmp_path / "h.db")
    stored = con.execute("SELECT count(*) FROM events WHERE source = 'sim'").fetchone()[0]
    stored_transitions = con.execute("SELECT count(*) FROM transitions").fetchone()[0]
    con.close()
    assert stored == received
    assert stored_transitions == len(seen)
    doc = await compute_stats(engine.config, str(tmp_path / "h.db"))
    offered = {(s["step"], s["queue"]): s["offered"] for s in doc["series"]}
    sim = engine.sources[0]
    assert isinstance(sim, SimulatorSource)
    expected = sum(
        1
        for e in simulate_events(sim.options, SIM_START_TS, SIM_START_TS + 1200)
        if e.kind is EventKind.ARRIVED and e.queue == "billing"
    )
    assert offered[("get_help", "billing")] == expected
    assert [t["to"] for t in doc["transitions"]] == [t.to_state.value for t in seen]


async def test_acknowledgement_reaches_store_and_snapshot(tmp_path: Path) -> None:
    """An ack is stored, shown on the step's status, and survives until it expires."""
    engine = Engine(sim_config(speed="max", duration="10m"), db_path=str(tmp_path / "h.db"))
    async with engine:
        await engine.run(duration=600)
        ack = await engine.acknowledge("get_help", "dana", "extra agents called in")
        snap = engine._tick(engine.now())
        get_help = snap.step("get_help")
        assert get_help is not None and get_help.ack == ack
        assert engine.store is not None and await engine.store.acks() == [ack]


class QuietSource:
    """A source that sends a few events, then nothing at all (a dead feed)."""

    name = "pbx"
    type = "test"

    def __init__(self, events: Sequence[ContactEvent]) -> None:
        self.events = events

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        await sink.emit(self.events)
        await asyncio.Event().wait()


async def test_silent_source_turns_its_step_stale_never_ok(tmp_path: Path) -> None:
    """When the source says nothing for longer than stale_after, the step is STALE, not OK."""
    now = [1000.0]
    events = [ContactEvent(ts=1000.0, kind=EventKind.ARRIVED, contact_id="c", channel="voice", queue="q1")]
    engine = Engine(one_step_config(), store=False, sources=[QuietSource(events)], clock=lambda: now[0])
    states: list[Snapshot] = []
    engine.add_listener(states.append)
    async with engine:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if engine.latest.events_total:
                break
        first = engine._tick(now[0])
        assert first.steps[0].state is not State.STALE
        now[0] += 31.0  # stale_after = 30s
        later = engine._tick(now[0])
    assert later.steps[0].state is State.STALE
    assert later.stale
    assert "nothing from pbx for 31s" in later.steps[0].reason
    assert later.sources[0].stale


class FastClockSource:
    """A paced source on an accelerated clock that hands over many minutes at once, as a simulator
    does when a busy loop wakes it late: a batch per 10 simulated seconds, the clock moved after each."""

    name = "sim"
    type = "test"
    paced = True

    def __init__(self, start: float, batches: int) -> None:
        self._now = start
        self.batches = batches

    def clock(self) -> float:
        return self._now

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        for i in range(self.batches):
            ts = self._now + 10.0
            await sink.emit(
                [ContactEvent(ts=ts, kind=EventKind.ARRIVED, contact_id=f"c{i}", channel="voice", queue="q1")]
            )
            self._now = ts
        await asyncio.Event().wait()


async def test_a_clock_source_far_ahead_of_the_queue_is_not_shown_silent(tmp_path: Path) -> None:
    """Ticks on a source's accelerated clock wait for the batches already queued: a source that
    handed over an hour of events in one go is never judged silent against its own clock."""
    source = FastClockSource(1000.0, batches=360)  # an hour of events, 10 s apart; stale_after 30s
    config = one_step_config()
    config = dataclasses.replace(config, monitor=dataclasses.replace(config.monitor, tick=0.001))
    engine = Engine(config, store=False, sources=[source])
    snaps: list[Snapshot] = []
    engine.add_listener(snaps.append)
    async with engine:
        for _ in range(400):
            await asyncio.sleep(0.01)
            if engine.latest.events_total == source.batches and len(snaps) > 3:
                break
    assert engine.latest.events_total == source.batches
    stale = [s for s in snaps if s.stale or any(st.state is State.STALE for st in s.steps)]
    assert not stale, stale[0].steps[0].reason


def cxmon(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxmon", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def write_config(tmp_path: Path, speed: str) -> Path:
    text = (REPO / "config" / "default.toml").read_text()
    text = text.replace("speed = 10 ", f"speed = {speed} ").replace(
        "seed = 7", f'seed = 7\nstart = "{SIM_START}"'
    )
    text = text.replace('listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')
    # serve starts the hub: any free port, so runs beside other cxmon daemons cannot collide
    text = text.replace('listen = "127.0.0.1:8765"', 'listen = "127.0.0.1:0"')
    path = tmp_path / "cxmon.toml"
    path.write_text(text)
    return path


def test_headless_run_on_the_fast_clock_exits_zero_with_everything_stored(tmp_path: Path) -> None:
    """`cxmon run --headless --speed max --duration 30m` runs 30 simulated minutes and stores them."""
    db = tmp_path / "h.db"
    res = cxmon(
        "run",
        "--headless",
        "--speed",
        "max",
        "--duration",
        "30m",
        "--db",
        str(db),
        "--config",
        str(write_config(tmp_path, "10")),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "get_help" in res.stdout
    con = sqlite3.connect(db)
    _, hi = con.execute("SELECT min(ts), max(ts) FROM events WHERE source = 'sim'").fetchone()
    con.close()
    assert hi - SIM_START_TS <= 1800.0 and hi - SIM_START_TS > 1700.0
    stats = cxmon(
        "stats", "--db", str(db), "--json", "--config", str(write_config(tmp_path, "10")), timeout=120
    )
    assert stats.returncode == 0, stats.stderr
    doc = json.loads(stats.stdout)
    keys = {
        "step",
        "channel",
        "queue",
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "service_level",
        "asa_seconds",
        "wait_p50_seconds",
        "wait_p90_seconds",
        "wait_p99_seconds",
        "abandon_rate",
        "resolution_p50_seconds",
        "resolution_p90_seconds",
        "escalated",
        "transferred",
    }
    assert doc["series"] and all(keys <= set(s) for s in doc["series"])
    assert {"ts", "step", "from", "to", "reason"} <= set(doc["transitions"][0])
    assert doc["transitions"][0]["ts"].endswith("Z")


def test_sigterm_flushes_every_event_the_collector_emitted(tmp_path: Path) -> None:
    """SIGTERM to a running `cxmon serve` stores every event the simulator had emitted, none missing.

    The simulator is deterministic, so the stored events must be exactly the first N events it
    generates for the same options: a gap anywhere (a batch lost at shutdown) breaks the equality.
    """
    db = tmp_path / "h.db"
    config = write_config(tmp_path, "600")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxmon", "serve", "--config", str(config), "--db", str(db)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists():
                con = sqlite3.connect(db)
                try:
                    n = con.execute("SELECT count(*) FROM events").fetchone()[0]
                except sqlite3.OperationalError:
                    n = 0
                con.close()
                if n > 2000:
                    break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    said = re.search(r"source sim: (\d+) events emitted", err)
    assert said is not None, err
    emitted = int(said.group(1))
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT ts, kind, contact_id, queue FROM events WHERE source = 'sim' ORDER BY id"
    ).fetchall()
    con.close()
    assert len(rows) > 2000
    assert len(rows) == emitted
    from cxmon.config import load

    source = SimulatorSource.from_config(load(config).collectors[0], load(config))
    last = rows[-1][0]
    expected = [
        (e.ts, e.kind.value, e.contact_id, e.queue)
        for e in simulate_events(source.options, SIM_START_TS, last + 1, source="sim")
        if e.kind is not EventKind.HEARTBEAT  # alive, not an event: neither stored nor counted
    ]
    assert rows == expected[: len(rows)]
    # What was stored is a whole prefix: nothing emitted before the last stored event is missing.
    assert all(row[0] > last for row in expected[len(rows) :])


async def test_backfill_light_ticks_judge_exactly_like_full_ticks(tmp_path: Path) -> None:
    """An unwatched backfill ticks lightly; its transitions and minute figures equal a watched one's."""
    from collectors.jsonl import JsonlFileSource

    config = sim_config(speed="max")
    source = SimulatorSource.from_config(config.collectors[0], config)
    path = tmp_path / "events.jsonl"
    with path.open("w") as fh:
        for ev in simulate_events(source.options, SIM_START_TS, SIM_START_TS + 1800, source="sim"):
            fh.write(json.dumps(ev.to_dict()) + "\n")

    async def backfill(db: Path, watched: bool) -> int:
        engine = Engine(config, db_path=str(db), sources=[JsonlFileSource("feed", str(path))], clock="events")
        published: list[int] = []
        if watched:
            engine.add_listener(lambda snap: published.append(snap.version))
        async with engine:
            await engine.run()
        return len(published)

    assert await backfill(tmp_path / "light.db", watched=False) == 0
    assert await backfill(tmp_path / "full.db", watched=True) > 10

    def rows(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        con = sqlite3.connect(db)
        t = con.execute(
            "SELECT ts, step, from_state, to_state, reason FROM transitions ORDER BY id"
        ).fetchall()
        m = con.execute("SELECT * FROM snapshots ORDER BY minute, step, channel, queue").fetchall()
        con.close()
        return t, m

    light, full = rows(tmp_path / "light.db"), rows(tmp_path / "full.db")
    assert any(to == "pothole" for _, _, _, to, _ in light[0])
    assert light == full


class _Feed:
    """A finite source: one arrival a minute on q1 from ``start`` for ``hours``."""

    name = "feed"
    type = "test"

    def __init__(self, start: float, hours: float) -> None:
        self.start, self.hours = start, hours

    async def run(self, sink: Sink) -> None:
        n = int(self.hours * 60)
        events = [
            ContactEvent(
                ts=self.start + 60.0 * i,
                kind=EventKind.ARRIVED,
                contact_id=f"c{i}",
                channel="voice",
                queue="q1",
            )
            for i in range(n)
        ]
        for i in range(0, n, 50):
            await sink.emit(events[i : i + 50])


async def backfill_purges(tmp_path: Path, retention: str) -> tuple[int, int]:
    """Backfill 3 hours of history with ``retention``; return (purges started, arrivals kept)."""
    engine = Engine(
        one_step_config(f'\n[store]\nretention = "{retention}"\n'),
        db_path=str(tmp_path / "h.db"),
        sources=[_Feed(SIM_START_TS, 3)],
        clock="events",
    )
    purges = 0
    # The store is opened with the engine, and its purges are counted until the engine has closed.
    with contextlib.ExitStack() as patches:
        async with engine:
            assert engine.store is not None
            real_purge = engine.store.purge

            async def counted(before: float) -> int:
                nonlocal purges
                purges += 1
                return await real_purge(before)

            patches.enter_context(patch.object(engine.store, "purge", counted))
            await engine.run()
    con = sqlite3.connect(tmp_path / "h.db")
    kept = con.execute("SELECT count(*) FROM events WHERE kind = 'arrived'").fetchone()[0]
    con.close()
    return purges, kept


async def test_backfill_purges_by_retention_and_never_when_it_reaches_past_the_epoch(tmp_path: Path) -> None:
    """A backfill purges once an hour of its data's time; a retention longer than the epoch's age
    (what `cxmon import` uses: it keeps everything) never starts a purge at all.

    Each purge of a backfill waits for the writer's commit: an import of a week of history used to
    start one per hour of it for nothing.
    """
    purges, _ = await backfill_purges(tmp_path / "a", "1h")
    assert purges >= 2
    purges, kept = await backfill_purges(tmp_path / "b", "36500d")
    assert purges == 0
    assert kept == 180
