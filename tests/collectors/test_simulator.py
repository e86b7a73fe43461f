"""Tests for the built-in simulator: determinism, event sanity, incidents, pacing, CLI and validation."""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import json
import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from collectors.base import Offset
from collectors.simulator import SimOptions, SimulatorSource, parse_options, simulate_events
from collectors.simulator.options import parse_start
from cxmon.config import Config, default_config_path, load
from cxmon.events import ContactEvent, EventKind
from cxmon.rows import Row, decode_rows
from cxmon.snapshot import State

START = parse_start("2026-01-05T08:00:00Z")
MINUTE = 60.0


def default_options() -> tuple[Config, SimOptions]:
    config = load(default_config_path())
    cc = next(c for c in config.collectors if c.type == "simulator")
    options, problems = parse_options(cc.options, cc.path)
    assert options is not None, problems
    return config, options


def run_sim(options: SimOptions, minutes: float, *, incidents: bool | None = None) -> list[ContactEvent]:
    return list(simulate_events(options, START, START + minutes * MINUTE, incidents=incidents))


class RecordingSink:
    """A Sink that keeps each batch with the source's clock at the moment it arrived."""

    def __init__(self, source: SimulatorSource) -> None:
        self.source = source
        self.batches: list[tuple[float, list[ContactEvent]]] = []
        self.up: list[bool] = []

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        self.batches.append((self.source.clock(), list(events)))

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        await self.emit(decode_rows(rows), offset)

    def error(self, where: str, msg: str) -> None:
        raise AssertionError(f"{where}: {msg}")

    def set_up(self, up: bool) -> None:
        self.up.append(up)

    async def load_offset(self) -> Offset | None:
        return None

    @property
    def events(self) -> list[ContactEvent]:
        return [e for _, batch in self.batches for e in batch]


def exits(events: Sequence[ContactEvent], queue: str, a: float, b: float) -> list[ContactEvent]:
    kinds = (EventKind.ANSWERED, EventKind.ABANDONED)
    return [e for e in events if e.queue == queue and e.kind in kinds and a <= e.ts < b]


def service_level(
    events: Sequence[ContactEvent], queue: str, a: float, b: float, target: float = 20.0
) -> float:
    """Answered within ``target`` ÷ (answered + abandoned − abandoned under 5 s), as the default formula."""
    rows = exits(events, queue, a, b)
    within = sum(1 for e in rows if e.kind is EventKind.ANSWERED and (e.wait or 0.0) <= target)
    short = sum(1 for e in rows if e.kind is EventKind.ABANDONED and (e.wait or 0.0) < 5.0)
    denom = len(rows) - short
    assert denom >= 10, f"too few contacts in {queue} between {a} and {b} to judge"
    return within / denom


# --------------------------------------------------------------------------- determinism


def test_same_seed_and_start_give_identical_events() -> None:
    """Two runs with the same options (seed included) and start produce exactly the same events."""
    _, options = default_options()
    assert run_sim(options, 20) == run_sim(options, 20)


def test_different_seed_gives_different_events() -> None:
    """Changing only the seed changes the events."""
    _, options = default_options()
    assert run_sim(options, 20) != run_sim(replace(options, seed=options.seed + 1), 20)


# --------------------------------------------------------------------------- a long run


@pytest.fixture(scope="module")
def long_run() -> list[ContactEvent]:
    """Six simulated hours of the default config, incident included."""
    _, options = default_options()
    return run_sim(options, 6 * 60)


def test_timestamps_never_decrease(long_run: list[ContactEvent]) -> None:
    """Events come out in time order, all within the requested span."""
    stamps = [e.ts for e in long_run]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START and stamps[-1] <= START + 6 * 3600


def test_exits_follow_their_arrival_with_the_wait_between_them(long_run: list[ContactEvent]) -> None:
    """Every answered/abandoned has an earlier arrived in the same queue; wait ≥ 0 equals the gap."""
    arrived: dict[tuple[str, str], float] = {}
    checked = 0
    for e in long_run:
        if e.kind is EventKind.ARRIVED:
            arrived[(e.contact_id, e.queue)] = e.ts
        elif e.kind in (EventKind.ANSWERED, EventKind.ABANDONED):
            since = arrived.pop((e.contact_id, e.queue))
            assert e.wait is not None and e.wait >= 0
            assert math.isclose(e.wait, e.ts - since, abs_tol=1e-6)
            checked += 1
    assert checked > 5000


def test_no_agent_serves_two_contacts_at_once(long_run: list[ContactEvent]) -> None:
    """An answer only happens while fewer contacts are in service than agents logged in (voice, chat)."""
    busy: dict[str, int] = defaultdict(int)
    staffed: dict[str, int] = {}
    answers = 0
    for e in long_run:
        if e.channel in ("email", "survey", ""):
            continue
        if e.kind is EventKind.STAFFING:
            staffed[e.queue] = e.agents_staffed or 0
            assert busy[e.queue] <= staffed[e.queue]
        elif e.kind is EventKind.ANSWERED:
            assert busy[e.queue] < staffed[e.queue], f"{e.queue} answers with every agent busy at {e.ts}"
            busy[e.queue] += 1
            answers += 1
        elif e.kind in (EventKind.RESOLVED, EventKind.ESCALATED, EventKind.TRANSFERRED):
            busy[e.queue] -= 1
    assert answers > 5000


def test_customers_recur_across_channels(long_run: list[ContactEvent]) -> None:
    """Customers come back: many customer ids appear on more than one channel."""
    channels: dict[str, set[str]] = defaultdict(set)
    for e in long_run:
        if e.kind is EventKind.ARRIVED:
            assert e.customer_id
            channels[e.customer_id].add(e.channel)
    assert sum(1 for seen in channels.values() if len(seen) >= 2) > 500


def test_escalated_contacts_arrive_in_the_target_queue(long_run: list[ContactEvent]) -> None:
    """An escalation names its target and the same contact then arrives there at the same instant."""
    arrivals = {(e.contact_id, e.queue, e.ts) for e in long_run if e.kind is EventKind.ARRIVED}
    moves = [e for e in long_run if e.kind in (EventKind.ESCALATED, EventKind.TRANSFERRED)]
    assert any(e.kind is EventKind.ESCALATED for e in moves)
    assert any(e.kind is EventKind.TRANSFERRED for e in moves)
    for e in moves:
        assert e.target and e.target != e.queue and e.reason == e.target
        assert (e.contact_id, e.target, e.ts) in arrivals


def test_feedback_is_a_survey_score_after_resolution(long_run: list[ContactEvent]) -> None:
    """Feedback comes on channel "survey", scores 1–5, in the queue that resolved the contact."""
    resolved = {(e.contact_id, e.queue): e.ts for e in long_run if e.kind is EventKind.RESOLVED}
    feedback = [e for e in long_run if e.kind is EventKind.FEEDBACK]
    assert len(feedback) > 1000
    for e in feedback:
        assert e.channel == "survey" and e.score in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert resolved[(e.contact_id, e.queue)] <= e.ts


def test_email_tickets_never_abandon_and_resolve_from_arrival(long_run: list[ContactEvent]) -> None:
    """Email contacts are answered after a wait, resolved later with duration counted from arrival."""
    email = [e for e in long_run if e.channel == "email"]
    arrived = {e.contact_id: e.ts for e in email if e.kind is EventKind.ARRIVED}
    assert not any(e.kind is EventKind.ABANDONED for e in email)
    first_resolutions = 0
    reopened: set[str] = set()
    for e in email:
        if e.kind is EventKind.REOPENED:
            reopened.add(e.contact_id)
        elif e.kind is EventKind.RESOLVED and e.contact_id not in reopened:
            assert e.duration == pytest.approx(e.ts - arrived[e.contact_id], abs=1e-6)
            first_resolutions += 1
    waits = [e.wait for e in email if e.kind is EventKind.ANSWERED]
    assert first_resolutions > 50 and min(w or 0.0 for w in waits) > 0


def test_heartbeats_and_staffing_keep_a_quiet_source_alive(long_run: list[ContactEvent]) -> None:
    """A heartbeat every 10 s and a staffing event per queue every minute, from the first instant."""
    beats = [e.ts - START for e in long_run if e.kind is EventKind.HEARTBEAT]
    assert beats[:3] == [0.0, 10.0, 20.0] and len(beats) == 6 * 360 + 1
    billing = [e for e in long_run if e.kind is EventKind.STAFFING and e.queue == "billing"]
    assert billing[0].ts == START
    assert all(b.ts - a.ts <= MINUTE for a, b in itertools.pairwise(billing))


# --------------------------------------------------------------------------- calibration and the incident


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def test_default_config_stays_inside_every_threshold_without_the_incident() -> None:
    """With incidents off, no threshold of default.toml is past warn in the first hour (no false alarm).

    Every minute, the service level, abandon rate, wait p90 and CSAT thresholds of every step are
    computed straight from the events for each queue they apply to, over their window.
    """
    config, options = default_options()
    events = run_sim(options, 60, incidents=False)
    by_queue: dict[tuple[str, str], list[ContactEvent]] = defaultdict(list)
    for e in events:
        by_queue[(e.channel, e.queue)].append(e)
    judged = 0
    for (channel, queue), rows in by_queue.items():
        step = config.step_for(channel, queue)
        if step is None:
            continue
        for th in step.thresholds:
            if not fnmatch.fnmatchcase(channel, th.channel):
                continue
            for minute in range(5, 61):
                end = START + minute * MINUTE
                window = [e for e in rows if end - th.window <= e.ts < end]
                gone = [e for e in window if e.kind in (EventKind.ANSWERED, EventKind.ABANDONED)]
                short = [e for e in gone if e.kind is EventKind.ABANDONED and (e.wait or 0) < 5]
                denom = len(gone) - len(short)
                if th.measure == "csat":
                    scores = [e.score or 0.0 for e in window if e.kind is EventKind.FEEDBACK]
                    volume, value = len(scores), sum(scores) / max(1, len(scores))
                elif th.measure == "wait_p90":
                    volume, value = len(gone), _p90([e.wait or 0.0 for e in gone]) if gone else 0.0
                elif th.measure == "service_level":
                    target = step.service_level_target
                    ok = sum(1 for e in gone if e.kind is EventKind.ANSWERED and (e.wait or 0) <= target)
                    volume, value = denom, ok / max(1, denom)
                elif th.measure == "abandon_rate":
                    ab = sum(1 for e in gone if e.kind is EventKind.ABANDONED) - len(short)
                    volume, value = denom, ab / max(1, denom)
                else:
                    continue
                if volume < max(th.min_volume, 1):
                    continue
                judged += 1
                limit = th.warn if th.warn is not None else th.breach
                assert not th.worse(value, limit), f"{queue} {th.measure}={value:.3g} at +{minute}m"
    assert judged > 500


@pytest.mark.parametrize("seed", [7, 11, 12])
def test_billing_incident_breaks_service_level_then_heals(seed: int) -> None:
    """Half of billing's agents leaving at +3m for 10m sinks its service level far below 80 %.

    The 5 minutes before the incident are above 90 %, the window from +8m to +13m is below 60 %, and
    the window from +20m to +25m (7 minutes after the agents are back) is above 80 % again.
    """
    _, options = default_options()
    events = run_sim(replace(options, seed=seed), 30)
    assert service_level(events, "billing", START, START + 3 * MINUTE) > 0.9
    assert service_level(events, "billing", START + 8 * MINUTE, START + 13 * MINUTE) < 0.6
    assert service_level(events, "billing", START + 20 * MINUTE, START + 25 * MINUTE) > 0.8


@pytest.mark.parametrize("seed", [7, 11, 12])
def test_without_incidents_billing_keeps_its_service_level(seed: int) -> None:
    """With incidents disabled, the same window (+8m to +13m) keeps billing above 90 %."""
    _, options = default_options()
    events = run_sim(replace(options, seed=seed), 15, incidents=False)
    assert service_level(events, "billing", START + 8 * MINUTE, START + 13 * MINUTE) > 0.9


def test_incident_sends_agents_away_only_as_they_finish() -> None:
    """At the incident's start billing's target halves; logged-in agents fall to it one call at a time."""
    _, options = default_options()
    events = run_sim(options, 15)
    staffing = [
        e
        for e in events
        if e.kind is EventKind.STAFFING and e.queue == "billing" and e.ts >= START + 3 * MINUTE
    ]
    logged_in = [e.agents_staffed or 0 for e in staffing if e.ts < START + 13 * MINUTE]
    assert logged_in[0] > 25 and min(logged_in) == 25
    assert all(a - b <= 1 for a, b in itertools.pairwise(logged_in))
    back = [e for e in staffing if e.ts == START + 13 * MINUTE]
    assert back[-1].agents_staffed == 50


# --------------------------------------------------------------------------- the source


async def test_paced_run_follows_an_accelerated_clock() -> None:
    """At speed 600 events arrive in several batches; clock() only grows, and only past events that
    were handed over: while a batch is emitted, the clock still stands before all of it."""
    _, options = default_options()
    source = SimulatorSource("sim", replace(options, speed=600.0, start=START, duration=300.0))
    assert source.paced
    sink = RecordingSink(source)
    await source.run(sink)
    clocks = [clock for clock, _ in sink.batches]
    assert len(sink.batches) >= 2
    assert clocks == sorted(clocks) and clocks[0] >= START and source.clock() == START + 300.0
    for clock, batch in sink.batches:
        assert all(e.ts >= clock for e in batch)
    assert sink.events == run_sim(options, 5)
    assert sink.up == [True, False]


async def test_max_speed_run_emits_the_model_in_batches_of_a_thousand() -> None:
    """At "max" the source hands over the generator's events in order, ≤ 1,000 per batch."""
    _, options = default_options()
    source = SimulatorSource("sim", replace(options, speed=None, start=START, duration=3600.0))
    assert not source.paced
    sink = RecordingSink(source)
    await source.run(sink)
    assert sink.events == run_sim(options, 60)
    assert max(len(batch) for _, batch in sink.batches) == 1000
    assert all(batch[-1].ts <= clock for clock, batch in sink.batches)
    assert source.clock() == START + 3600.0


async def test_unbounded_run_stops_when_cancelled() -> None:
    """Without duration the source runs until cancelled, then reports itself down."""
    _, options = default_options()
    source = SimulatorSource("sim", replace(options, speed=None, start=START, duration=None))
    sink = RecordingSink(source)
    task = asyncio.create_task(source.run(sink))
    while len(sink.batches) < 3:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.up == [True, False]


def test_from_config_builds_the_default_simulator() -> None:
    """The default config's collector becomes a SimulatorSource named after it."""
    config, _ = default_options()
    cc = next(c for c in config.collectors if c.type == "simulator")
    source = SimulatorSource.from_config(cc, config)
    assert source.name == cc.name and source.type == "simulator"
    assert [q.name for q in source.options.queues][:2] == ["presales", "sales"]


# --------------------------------------------------------------------------- end to end through the engine


async def _engine_states(
    tmp_path: Path, minutes: float, *, incidents: bool
) -> list[tuple[float, dict[str, tuple[State, str]]]]:
    """Run the real Engine on the simulator at "max"; return each tick's step states and reasons."""
    from cxmon.engine import Engine

    config, options = default_options()
    options = replace(
        options, speed=None, start=START, duration=minutes * MINUTE, incidents_enabled=incidents
    )
    ticks: list[tuple[float, dict[str, tuple[State, str]]]] = []
    engine = Engine(config, db_path=str(tmp_path / "sim.db"), sources=[SimulatorSource("sim", options)])
    engine.add_listener(
        lambda snap: ticks.append((snap.ts, {s.name: (s.state, s.reason) for s in snap.steps}))
    )
    async with engine:
        await engine.run()
    assert engine.latest.ts == pytest.approx(START + minutes * MINUTE, abs=engine.config.monitor.tick)
    return ticks


async def test_engine_finds_the_billing_pothole_and_sees_it_heal(tmp_path: Path) -> None:
    """Through the real Engine, "get help" becomes a pot hole on billing during the incident, then OK."""
    ticks = await _engine_states(tmp_path, 30, incidents=True)
    holes = [(ts, steps["get_help"][1]) for ts, steps in ticks if steps["get_help"][0] is State.POTHOLE]
    assert holes, "the incident never made get_help a pot hole"
    assert START + 3 * MINUTE < holes[0][0] < START + 10 * MINUTE
    assert all("billing" in reason for _, reason in holes)
    assert ticks[-1][1]["get_help"][0] is State.OK
    assert holes[-1][0] < START + 25 * MINUTE


async def test_engine_sees_no_pothole_without_the_incident(tmp_path: Path) -> None:
    """Through the real Engine, with incidents disabled no step is a pot hole in the first 30 minutes."""
    ticks = await _engine_states(tmp_path, 30, incidents=False)
    assert len(ticks) > 100
    assert not [
        (ts, name) for ts, steps in ticks for name, (state, _) in steps.items() if state is State.POTHOLE
    ]


# --------------------------------------------------------------------------- validation


def test_validate_lists_every_problem_with_its_key_path() -> None:
    """Each bad option is reported once with its full key path; unknown keys get a did-you-mean."""
    problems = SimulatorSource.validate(
        {
            "sede": 3,
            "speed": 0,
            "start": "yesterday",
            "queues": [
                {"name": "a", "channel": "voice", "agents": 2, "handle_mean": "x", "escalate": 0.1,
                 "escalate_to": "tier3"},
                {"name": "b", "channel": "email", "agents": 1, "handle_mean": "1m", "patience_mean": "1m",
                 "handle_dist": "gamma"},
            ],
            "incidents": [{"queue": "a", "at": "1m", "duration": "2m", "agent_factor": 0.5}],
        },
        "collectors[0]",
    )  # fmt: skip
    assert sorted(problems) == sorted(
        [
            "collectors[0].sede: unknown key (did you mean 'seed'?)",
            'collectors[0].speed: expected a number > 0 or "max", got 0',
            "collectors[0].start: expected an ISO 8601 time like \"2026-01-05T08:00:00Z\", got 'yesterday'",
            "collectors[0].queues[0].handle_mean: expected a duration like \"4m\", got 'x'",
            "collectors[0].queues[0].escalate_to: no queue named 'tier3'; configured: a, b",
            "collectors[0].queues[1].patience_mean: email contacts do not abandon; leave it out",
            'collectors[0].queues[1].handle_dist: expected "lognormal" or "exponential", got \'gamma\'',
            "collectors[0].incidents[0]: set agents_factor and/or arrivals_factor",
            "collectors[0].incidents[0].agent_factor: unknown key (did you mean 'agents_factor'?)",
        ]
    )


def test_default_config_options_are_valid() -> None:
    """default.toml's simulator table passes validation."""
    config = load(default_config_path())
    for cc in config.collectors:
        assert SimulatorSource.validate(cc.options, cc.path) == []


# --------------------------------------------------------------------------- the command line


def _cxmon(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxmon", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_simulate_command_writes_the_same_parseable_file_twice(tmp_path: Path) -> None:
    """`cxmon simulate --minutes 5 --seed 7 --out f.jsonl` writes ContactEvent lines, identical each run."""
    first = _cxmon("simulate", "--minutes", "5", "--seed", "7", "--out", "a.jsonl", cwd=tmp_path)
    second = _cxmon("simulate", "--minutes", "5", "--seed", "7", "--out", "b.jsonl", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    text = (tmp_path / "a.jsonl").read_text()
    assert text == (tmp_path / "b.jsonl").read_text()
    events = [ContactEvent.from_dict(json.loads(line)) for line in text.splitlines()]
    assert len(events) > 100 and {e.kind for e in events} >= {EventKind.ARRIVED, EventKind.ANSWERED}
    assert all(START <= e.ts <= START + 300 for e in events)
    assert f"{len(events)} events" in first.stderr


def test_simulate_command_seed_changes_the_output(tmp_path: Path) -> None:
    """A different --seed gives a different file."""
    _cxmon("simulate", "--minutes", "2", "--seed", "7", "--out", "a.jsonl", cwd=tmp_path)
    _cxmon("simulate", "--minutes", "2", "--seed", "8", "--out", "b.jsonl", cwd=tmp_path)
    assert (tmp_path / "a.jsonl").read_text() != (tmp_path / "b.jsonl").read_text()


def test_check_lists_every_simulator_problem_and_exits_2(tmp_path: Path) -> None:
    """`cxmon check` on a config with bad simulator options prints each with its key path, exit 2."""
    text = default_config_path().read_text()
    text = text.replace(
        'handle_mean = "4m"\n  patience_mean = "2m"', 'handle_mean = "x"\n  patience_mean = "2m"'
    )
    text = text.replace("seed = 7", "seed = 7\nspede = 3")
    text = text.replace('escalate_to = "manager"', 'escalate_to = "manger"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    result = _cxmon("check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "collectors[0].spede: unknown key (did you mean 'speed'?)" in lines
    assert "collectors[0].queues[3].handle_mean: expected a duration like \"4m\", got 'x'" in lines
    assert any(
        line.startswith("collectors[0].queues[6].escalate_to: no queue named 'manger'") for line in lines
    )
    assert lines[-1] == f"{bad}: 3 problem(s)"


def test_simulate_command_rejects_a_bad_config(tmp_path: Path) -> None:
    """`cxmon simulate` with an invalid config prints the problems and exits 2, writing nothing."""
    bad = tmp_path / "bad.toml"
    bad.write_text(default_config_path().read_text().replace("speed = 10", 'speed = "fast"'))
    result = _cxmon("simulate", "--config", str(bad), "--out", "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "collectors[0].speed: expected a number > 0 or \"max\", got 'fast'" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()
