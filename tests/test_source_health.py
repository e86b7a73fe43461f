"""Source health as the engine judges it: starting is not stale, death is restarted and shown, bad
timestamps never reach the engine, and a failing tick is a health failure on every surface."""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from collectors.base import Sink, Source
from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.engine import supervision as engine_module
from cxmon.engine.sinks import SourceSink
from cxmon.events import ContactEvent, EventKind
from cxmon.http_server import start_http
from cxmon.snapshot import Snapshot, State
from tests.helpers import one_step_config

T0 = 1_000_000.0


def arrival(ts: float, cid: str = "c") -> ContactEvent:
    return ContactEvent(ts=ts, kind=EventKind.ARRIVED, contact_id=cid, channel="voice", queue="q1")


async def until(cond: Callable[[], object], tries: int = 200) -> None:
    """Wait (bounded) until ``cond()`` is true."""
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


class LateSource:
    """Says its first word only when told to (a feed that takes a moment to connect)."""

    name = "pbx"
    type = "test"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.events: list[ContactEvent] = []

    async def run(self, sink: Sink) -> None:
        await self.go.wait()
        sink.set_up(True)
        await sink.emit(self.events)
        await asyncio.Event().wait()


async def test_a_source_that_has_not_spoken_yet_is_not_stale_until_stale_after() -> None:
    """Right after start a source has said nothing: no STALE, no transition; after stale_after it is."""
    now = [T0]
    source = LateSource()
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        await asyncio.sleep(0)
        first = engine._tick(now[0] + 1.0)
        assert first.steps[0].state is State.OK
        assert not first.sources[0].stale
        assert first.transitions == ()
        later = engine._tick(now[0] + 31.0)  # stale_after = 30s
        assert later.steps[0].state is State.STALE
        assert "nothing from pbx yet" in later.steps[0].reason


async def test_a_source_that_starts_late_but_in_time_causes_no_transition() -> None:
    """The start-up race of a live run: ticks before the first event give no OK → STALE → OK noise."""
    now = [T0]
    source = LateSource()
    source.events = [arrival(T0 + 2.0)]
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    seen: list[Snapshot] = []
    engine.add_listener(seen.append)
    async with engine:
        for dt in (0.5, 1.0, 1.5):
            engine._tick(T0 + dt)
        source.go.set()
        await until(lambda: engine.health["pbx"].events_total == 1)
        now[0] = T0 + 3.0
        engine._tick(now[0])
    assert [t for s in seen for t in s.transitions] == []


class NeverConnects:
    """Never connects: down from the start (a PBX whose manager port is firewalled)."""

    name = "ami"
    type = "test"

    async def run(self, sink: Sink) -> None:
        sink.set_up(False)
        await asyncio.Event().wait()


TWO_FEEDS = """
[monitor]
windows = ["60s"]
stale_after = "30s"

[journey]
queues = ["q1", "live1"]

[[journey.steps]]
name = "help"
match = [{ channel = "voice", queue = "q*" }]

[[journey.steps]]
name = "live"
match = [{ channel = "voice", queue = "live*" }]
"""


async def test_a_step_no_source_has_fed_yet_is_stale_while_a_source_is_down() -> None:
    """A step that has had no contacts yet is not known to be fed by the healthy source only: while
    any source is down it is STALE, naming it, never OK (the step the down PBX would feed); a step
    fed by the healthy source stays OK."""
    now = [T0]
    pbx = LateSource()
    pbx.events = [arrival(T0 + 1.0)]
    pbx.go.set()
    sources: list[Source] = [pbx, NeverConnects()]
    engine = Engine(loads(TWO_FEEDS, "<two-feeds>"), store=False, sources=sources, clock=lambda: now[0])
    health = engine.health
    async with engine:
        await until(lambda: health["ami"].down and health["pbx"].events_total == 1)
        now[0] = T0 + 2.0
        snap = engine._tick(now[0])
    states = {step.name: (step.state, step.reason) for step in snap.steps}
    assert states["help"][0] is State.OK
    assert states["live"][0] is State.STALE and "ami is down" in states["live"][1]


class FailingSource:
    """Dies ``failures`` times (as a source hit by a bug or a broken peer would), then works."""

    name = "ami"
    type = "test"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.resume = asyncio.Event()

    async def run(self, sink: Sink) -> None:
        self.runs += 1
        sink.set_up(True)
        if self.runs <= self.failures:
            raise ValueError("Separator is not found, and chunk exceed the limit")
        await self.resume.wait()
        await sink.emit([arrival(T0 + 1.0, f"c{self.runs}")])
        await asyncio.Event().wait()


class DownSource:
    """A live feed that says it is down (its file is not there) and waits for it for ever."""

    name = "pbx"
    type = "test"

    async def run(self, sink: Sink) -> None:
        sink.error("/var/log/asterisk/queue_log", "file not found: waiting for it")
        sink.set_up(False)
        await asyncio.Event().wait()


@pytest.mark.parametrize("stopped", [False, True], ids=["closed", "run-stopped"])
@pytest.mark.parametrize("down", [True, False], ids=["down", "up"])
async def test_shutting_down_keeps_each_step_as_its_source_left_it(down: bool, stopped: bool) -> None:
    """The last picture published as the monitor shuts down (closed, or its run stopped first, as
    `--duration` and Ctrl-C do) keeps a down source's steps STALE (it used to turn them OK, with an
    OK transition that resolved their alert); a source that was up leaves its steps as they were."""
    now = [T0]
    source: DownSource | LateSource = DownSource() if down else LateSource()
    if isinstance(source, LateSource):
        source.events = [arrival(T0)]
        source.go.set()
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        running = asyncio.create_task(engine.run()) if stopped else None
        await until(lambda: engine.health["pbx"].down if down else engine.health["pbx"].events_total == 1)
        before = engine._tick(now[0])
        now[0] = T0 + 1.0
        if running is not None:
            engine.stop()
            await running
    last = engine.latest
    assert last.ts == T0 + 1.0 and last.version > before.version
    assert [s.state for s in last.steps] == [s.state for s in before.steps]
    assert last.steps[0].state is (State.STALE if down else State.OK)
    assert not [t for t in last.transitions if t.ts > before.ts]


async def test_a_live_source_that_dies_is_restarted_and_shown_down_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A source whose run raises is started again after a backoff, and is STALE ("down") until then."""
    monkeypatch.setattr(engine_module, "RESTART_BACKOFF", (0.05, 0.2))
    now = [T0]
    source = FailingSource(failures=2)
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        await until(lambda: engine.health["ami"].errors_total >= 1)
        down = engine._tick(now[0])
        assert down.sources[0].stale and not down.sources[0].up
        assert down.steps[0].state is State.STALE
        assert "ami is down" in down.steps[0].reason
        await until(lambda: source.runs == 3)
        source.resume.set()
        await until(lambda: engine.health["ami"].events_total == 1)
        now[0] = T0 + engine.config.monitor.recover_after  # back since T0: recovered now
        back = engine._tick(now[0])
        assert not back.sources[0].stale
        assert back.steps[0].state is State.OK
        assert engine.health["ami"].restarts == 2
        assert not engine._source_tasks["ami"].done()


async def test_a_backfill_whose_source_dies_is_marked_failed() -> None:
    """An import's source that raises is not restarted: it is marked failed, so the run cannot pass."""
    source = FailingSource(failures=1)
    engine = Engine(one_step_config(), store=False, sources=[source], clock="events")
    async with engine:
        await engine.run()
    health = engine.health["ami"]
    assert health.failed and health.finished
    assert source.runs == 1
    assert "source stopped" in (health.last_error or "")


class FinishingReader:
    """A backfill's reader: hands over ``batches`` batches at once (they wait on the engine's queue),
    says its input is done (down), and ends only once the engine has taken them all in, as a reader
    process whose exit the engine waits for does."""

    name = "reader"
    type = "test"

    def __init__(self, batches: int, engine: list[Engine]) -> None:
        self.batches = batches
        self.engine = engine
        self.down_while_queued: int | None = None

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        for b in range(self.batches):
            # A minute a batch: the engine ticks through each of them.
            await sink.emit([arrival(T0 + 60.0 * b + i, f"c{b}-{i}") for i in range(5)])
        queue = self.engine[0]._queue
        self.down_while_queued = queue.qsize()
        sink.set_up(False)
        await until(lambda: queue.qsize() == 0 and queue._unfinished_tasks == 0)  # type: ignore[attr-defined]


async def test_a_backfill_reader_that_finished_first_does_not_make_the_queued_history_stale() -> None:
    """Batches a reader handed over before it said it was done are history like any other: the engine
    takes them in with the source up (no STALE step, no transition), and only then is it down."""
    holder: list[Engine] = []
    source = FinishingReader(10, holder)
    engine = Engine(one_step_config(), store=False, sources=[source], clock="events")
    holder.append(engine)
    seen: list[Snapshot] = []
    engine.add_listener(seen.append)
    async with engine:
        await engine.run()
    assert source.down_while_queued == 10  # the race this is about: all ten still queued
    assert engine.health["reader"].events_total == 50
    assert len(seen) > 10  # the engine ticked through the queued batches
    assert [t for s in seen for t in s.transitions if State.STALE in (t.from_state, t.to_state)] == []
    assert all(s.steps[0].state is not State.STALE for s in seen)
    assert engine.health["reader"].down


async def test_a_source_flapping_while_its_batches_wait_keeps_one_word_per_batch() -> None:
    """A source that says up and down many times while the engine is behind keeps, per batch handed
    over, only its last word (what is held stays as short as the queue), and that word counts."""
    engine = Engine(one_step_config(), store=False, sources=[LateSource()], clock=lambda: T0)
    sink = SourceSink(engine, LateSource())
    await sink.emit([arrival(T0 - 2.0, "a")])
    for i in range(1000):
        sink.set_up(i % 2 == 0)
    await sink.emit([arrival(T0 - 1.0, "b")])
    sink.set_up(True)
    assert len(sink._said) == 2
    sink.batch_done()
    assert sink.health.down  # the last word after the first batch: down (i = 999)
    sink.batch_done()
    assert sink.health.up and not sink.health.down


async def test_a_source_that_goes_down_with_nothing_queued_is_down_at_once() -> None:
    """With every batch it sent taken in, a source that loses its input is down (and stale) at once."""
    now = [T0]
    source = LateSource()
    source.events = [arrival(T0 - 1.0)]
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        source.go.set()
        await until(lambda: engine.health["pbx"].events_total == 1)
        engine._sinks["pbx"].set_up(False)
        assert engine.health["pbx"].down
        assert engine._tick(now[0]).steps[0].state is State.STALE


class FlappingSource:
    """Comes up and goes down when told to, as an AMI server that accepts the login and then drops
    every session does (each ``flap`` is one short session)."""

    name = "ami"
    type = "test"

    def __init__(self) -> None:
        self.sink: Sink | None = None

    async def run(self, sink: Sink) -> None:
        self.sink = sink
        sink.set_up(False)
        await asyncio.Event().wait()

    async def session(self, ts: float) -> None:
        assert self.sink is not None
        self.sink.set_up(True)
        await self.sink.emit([arrival(ts, f"c{ts}")])


async def test_a_flapping_source_keeps_its_step_stale_without_a_transition_per_session() -> None:
    """A source that comes back and drops again within recover_after keeps its step STALE: one
    STALE transition for the outage, not an OK and a STALE (an alert pair) per short session."""
    now = [T0]
    source = FlappingSource()
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    hold = engine.config.monitor.recover_after
    assert hold > 10.0
    async with engine:
        await until(lambda: source.sink is not None)
        await source.session(T0)  # the first session after the start: a start, not a recovery
        await until(lambda: engine.health["ami"].events_total == 1)
        assert engine._tick(now[0]).steps[0].state is State.OK
        states = []
        for i in range(1, 6):
            source.sink.set_up(False)  # type: ignore[union-attr]
            now[0] = T0 + 10.0 * i - 5.0
            states.append(engine._tick(now[0]).steps[0].state)
            await source.session(now[0] + 1.0)
            await until(lambda i=i: engine.health["ami"].events_total == i + 1)  # type: ignore[misc]
            now[0] += 2.0
            snap = engine._tick(now[0])
            states.append(snap.steps[0].state)
            assert snap.sources[0].up and snap.sources[0].stale
            assert "ami is back for 2s" in snap.steps[0].reason
    assert states == [State.STALE] * 10
    moves = [t.to_state for t in engine.latest.recent_transitions]
    assert moves == [State.STALE]


async def test_a_source_that_stays_back_for_recover_after_is_ok_again() -> None:
    """A source that came back after an outage turns its step OK once it has stayed up for
    recover_after (the bound on how long a true recovery stays STALE), and not before."""
    now = [T0]
    source = FlappingSource()
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    hold = engine.config.monitor.recover_after
    async with engine:
        await until(lambda: source.sink is not None)
        await source.session(T0)
        await until(lambda: engine.health["ami"].events_total == 1)
        source.sink.set_up(False)  # type: ignore[union-attr]
        now[0] = T0 + 5.0
        assert engine._tick(now[0]).steps[0].state is State.STALE
        await source.session(now[0])
        await until(lambda: engine.health["ami"].events_total == 2)
        now[0] = T0 + 5.0 + hold - 1.0
        assert engine._tick(now[0]).steps[0].state is State.STALE
        now[0] = T0 + 5.0 + hold
        back = engine._tick(now[0])
    assert back.steps[0].state is State.OK and not back.sources[0].stale
    assert [t.to_state for t in engine.latest.recent_transitions] == [State.STALE, State.OK]


class StampSource:
    """Sends one batch mixing good events with stamps no clock can have."""

    name = "feed"
    type = "test"

    def __init__(self, stamps: list[float]) -> None:
        self.stamps = stamps

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        await sink.emit([arrival(ts, f"c{i}") for i, ts in enumerate(self.stamps)])
        await asyncio.Event().wait()


async def test_non_finite_and_far_future_stamps_are_rejected_and_counted_and_never_move_time() -> None:
    """nan, inf, a negative and a stamp far past the clock are each an error; the good events count."""
    now = [T0]
    bad = [math.nan, math.inf, -5.0, 9_999_999_999.0]
    source = StampSource([T0 - 2.0, *bad, T0 - 1.0])
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        await until(lambda: engine.health["feed"].events_total == 2)
        snap = engine._tick(now[0])
    assert engine.health["feed"].errors_total == len(bad)
    assert engine.aggregator.watermark <= T0
    assert snap.tick_error is None
    offered = {s.queue: s.windows[60.0]["offered"] for s in snap.series}
    assert offered == {"q1": 2}
    assert any("ahead of the source's clock" in e for e in engine.errors)
    assert any("not a finite time" in e for e in engine.errors)


async def test_stamps_within_the_skew_are_taken() -> None:
    """An event a little ahead of the clock (inside max_clock_skew) is not an error."""
    now = [T0]
    source = StampSource([T0 + 60.0])
    engine = Engine(one_step_config(), store=False, sources=[source], clock=lambda: now[0])
    async with engine:
        await until(lambda: engine.health["feed"].events_total == 1)
    assert engine.health["feed"].errors_total == 0


async def test_a_failing_tick_is_published_as_a_failure_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ticks raise, the snapshot says so (every step STALE), /healthz is 503 and the metric is 0;
    when they work again, all is well again; closing still flushes the store.

    The tick is made to fail at the engine's own entry to it: the tick path's parts are compiled
    (cxmon/compiled.py), and a compiled object's methods cannot be replaced."""
    now = [T0]
    source = StampSource([T0 - 1.0])
    engine = Engine(one_step_config(), db_path=str(tmp_path / "h.db"), sources=[source], clock=lambda: now[0])
    async with engine:
        await until(lambda: engine.health["feed"].events_total == 1)
        engine._tick(now[0])
        server = await start_http(engine, "127.0.0.1", 0)
        try:
            broken = RuntimeError("boom")

            def fail(_now: float) -> Snapshot:
                raise broken

            monkeypatch.setattr(engine, "_tick", fail)
            await until(lambda: engine.latest.tick_error is not None)
            snap = engine.latest
            assert snap.stale and all(s.state is State.STALE for s in snap.steps)
            assert "engine tick failed" in snap.steps[0].reason
            status, doc = await asyncio.to_thread(_get_json, server.port, "/healthz")
            assert status == 503 and doc["status"] == "failing"
            await until(lambda: server.exporter._version >= engine.latest.version)
            _, metrics = await asyncio.to_thread(_get, server.port, "/metrics")
            assert "cxmon_engine_healthy 0.0" in metrics
            monkeypatch.undo()
            await until(lambda: engine.latest.tick_error is None)
            status, doc = await asyncio.to_thread(_get_json, server.port, "/healthz")
            assert status == 200 and doc["status"] == "ok"
            monkeypatch.setattr(engine, "_tick", fail)
        finally:
            await server.aclose()
    # The last tick on close failed too; the event was stored all the same.
    assert engine.latest.tick_error is not None
    assert engine.store is not None
    import sqlite3

    with sqlite3.connect(tmp_path / "h.db") as db:
        assert db.execute("select count(*) from events").fetchone()[0] == 1


def _get(port: int, path: str) -> tuple[int, str]:
    """The status and body of a GET on the local server (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    """The status and JSON object of a GET on the local server."""
    status, body = _get(port, path)
    doc: dict[str, object] = json.loads(body)
    return status, doc


async def test_a_step_headline_is_its_configured_measure_whatever_breaches() -> None:
    """get_help's headline stays service level through the incident; the reason names what breaches."""
    from tests.helpers import sim_config

    engine = Engine(sim_config(speed="max"), store=False)
    seen: list[tuple[str, State, str]] = []

    def note(snap: Snapshot) -> None:
        step = snap.step("get_help")
        assert step is not None
        seen.append((step.headline_measure, step.state, step.reason))

    engine.add_listener(note)
    async with engine:
        await engine.run(duration=15 * 60)
    assert {measure for measure, _, _ in seen} == {"service_level"}
    bad = [reason for _, state, reason in seen if state in (State.WATCH, State.POTHOLE)]
    assert bad, "the incident must make get_help WATCH or POTHOLE"
    assert any("abandon" in r or "wait" in r for r in bad), bad


async def test_a_backfill_rejects_non_finite_stamps_and_numbers_and_finishes() -> None:
    """In a backfill (no clock but the data's) inf and nan stamps, and a wait that is not finite,
    are rejected and counted; the engine finishes instead of ticking towards infinity."""
    events = [
        arrival(T0, "a"),
        arrival(math.inf, "b"),
        arrival(math.nan, "c"),
        ContactEvent(
            ts=T0 + 1.0, kind=EventKind.ANSWERED, contact_id="a", channel="voice", queue="q1", wait=math.inf
        ),
        arrival(T0 + 2.0, "d"),
    ]

    class Finite:
        name, type = "file", "test"

        async def run(self, sink: Sink) -> None:
            await sink.emit(events)

    engine = Engine(one_step_config(), store=False, sources=[Finite()], clock="events")
    async with engine:
        await asyncio.wait_for(engine.run(), timeout=60)
    assert engine.health["file"].events_total == 2
    assert engine.health["file"].errors_total == 3
    assert engine.aggregator.watermark == T0 + 2.0
