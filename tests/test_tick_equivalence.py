"""Ticks that look only at what changed give exactly what recomputing everything at every tick gives.

The engine's change-driven tick path (``recompute="changes"``) is held to its reference
(``recompute="all"``: every series measured and judged at every tick, a backfill's gaps ticked
through) over random streams, sparse
and dense: quiet gaps shorter and longer than the longest window, ``for`` timers that run out
inside quiet stretches, values hovering around the clear line (hysteresis), waits that ramp up
(trend WATCH), contacts left waiting (a threshold on the longest wait; lost contacts), sources
that fall silent, staffing forecasts (agents from staffing events or from config) whose
projections turn rules WATCH and whose figures go into the minute figures, and rules gated by
``min_volume`` (a series resting on too few contacts is not judged again while it stays so; values
that stay the same while the gate lets them through, or while what a share rests on grows, must be
judged again).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collectors.base import Sink
from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.snapshot import Snapshot
from tests.helpers import BatchFeed

T0 = 1_767_600_000.0

CONFIG = loads(
    """
[monitor]
tick = "1s"
windows = ["60s", "5m"]
panes = 6
short_abandon = "5s"
stale_after = "30s"
lost_after = "4m"
trend_horizon = "10m"

[forecast]
agents = { q2 = 3 }

[journey]
channels = ["voice", "chat", "sms"]
queues = ["q1", "q2", "c1", "s1"]

[[journey.steps]]
name = "help"
service_level_target = "20s"
long_wait = "60s"
match = [{ channel = "voice", queue = "q*" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "60s"
  warn = "30s"
  breach = "60s"
  clear = "45s"
  for = "30s"
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  direction = "below"
  warn = "85%"
  breach = "70%"
  clear = "80%"
  for = "1m"
  min_volume = 3
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "5m"
  warn = "40s"
  breach = "90s"
  clear = "60s"
  for = "1m"
  min_volume = 4

[[journey.steps]]
name = "chat"
service_level_target = "30s"
match = [{ channel = "chat", queue = "*" }]
  [[journey.steps.thresholds]]
  measure = "longest_wait_now"
  warn = "20s"
  breach = "40s"
  clear = "30s"
  for = "20s"
  [[journey.steps.thresholds]]
  measure = "abandon_rate"
  window = "60s"
  warn = "10%"
  breach = "30%"
  clear = "20%"
  for = "10s"

[[journey.steps]]
name = "texts"
service_level_target = "30s"
match = [{ channel = "sms", queue = "*" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "5m"
  warn = "1s"
  breach = "10s"
  clear = "5s"
  for = "1m"
  min_volume = 4
""",
    "<equivalence>",
)

ROUTES = [("voice", "q1"), ("voice", "q2"), ("chat", "c1"), ("email", "x"), ("sms", "s1")]


@dataclass(frozen=True)
class Burst:
    """Contacts on one route after a gap: spaced evenly, waits ramping, one fate."""

    gap: float
    n: int
    spacing: float
    route: int
    wait: float
    ramp: float
    fate: str
    source: str
    staffed: int
    """Agents a staffing event at the start of the burst reports (0: no staffing event)."""


bursts = st.builds(
    Burst,
    # Shorter and longer than the longest window (5m), and long enough for everything to empty.
    gap=st.one_of(st.floats(0, 40), st.floats(40, 290), st.floats(310, 1200), st.floats(3600, 9000)),
    n=st.integers(1, 25),
    spacing=st.sampled_from([0.5, 3.0, 12.0, 45.0]),
    route=st.integers(0, len(ROUTES) - 1),
    wait=st.floats(0, 120),
    ramp=st.floats(-4, 8),
    fate=st.sampled_from(["answered", "abandoned", "waiting", "mixed"]),
    source=st.sampled_from(["a", "b"]),
    staffed=st.sampled_from([0, 0, 1, 2, 6]),
)


def events_of(plan: Sequence[Burst]) -> list[tuple[str, ContactEvent]]:
    """(source, event) for every contact of the plan, in time order."""
    out: list[tuple[float, int, str, ContactEvent]] = []
    t = T0
    seq = 0

    def put(source: str, ev: ContactEvent) -> None:
        nonlocal seq
        seq += 1
        out.append((ev.ts, seq, source, ev))

    for b, burst in enumerate(plan):
        t += burst.gap
        channel, queue = ROUTES[burst.route]
        if burst.staffed:
            staffing = ContactEvent(
                ts=t,
                kind=EventKind.STAFFING,
                contact_id="",
                channel=channel,
                queue=queue,
                agents_staffed=burst.staffed,
                agents_available=burst.staffed // 2,
            )
            put(burst.source, staffing)
        for i in range(burst.n):
            at = t + i * burst.spacing
            wait = max(0.0, burst.wait + burst.ramp * i)
            cid = f"c{b}.{i}"
            base: dict[str, Any] = {"contact_id": cid, "channel": channel, "queue": queue}
            base["customer_id"] = f"u{(b + i) % 5}"
            fate = burst.fate if burst.fate != "mixed" else ("answered", "abandoned", "waiting")[i % 3]
            put(burst.source, ContactEvent(ts=at, kind=EventKind.ARRIVED, **base))
            if fate == "answered":
                put(burst.source, ContactEvent(ts=at + wait, kind=EventKind.ANSWERED, wait=wait, **base))
                if i % 2 == 0:
                    end = at + wait + 30.0 + i
                    put(
                        burst.source, ContactEvent(ts=end, kind=EventKind.RESOLVED, duration=30.0 + i, **base)
                    )
                    put(
                        burst.source,
                        ContactEvent(ts=end + 1, kind=EventKind.FEEDBACK, score=float(1 + i % 5), **base),
                    )
                    if i % 4 == 0:
                        put(burst.source, ContactEvent(ts=end + 5, kind=EventKind.REOPENED, **base))
            elif fate == "abandoned":
                put(
                    burst.source,
                    ContactEvent(ts=at + wait, kind=EventKind.ABANDONED, wait=wait, reason="hangup", **base),
                )
        t += burst.n * burst.spacing
    out.sort(key=lambda x: (x[0], x[1]))
    return [(source, ev) for _, _, source, ev in out]


async def backfill(
    db: Path, events: Sequence[ContactEvent], recompute: Literal["changes", "all"]
) -> Snapshot:
    engine = Engine(
        CONFIG,
        db_path=str(db),
        sources=[BatchFeed(events)],
        clock="events",
        recompute=recompute,
    )
    if recompute == "all":
        # The reference ticks through every gap too, where the change-driven path leaves out the
        # quiet ticks of a long one.
        engine.clock.quiet_until = None
    async with engine:
        await engine.run()
    return engine.latest


def stored(db: Path) -> tuple[list[Any], list[Any], list[Any]]:
    con = sqlite3.connect(db)
    try:
        transitions = con.execute("SELECT * FROM transitions ORDER BY id").fetchall()
        minutes = con.execute("SELECT * FROM snapshots ORDER BY minute, step, channel, queue").fetchall()
        lost = con.execute(
            "SELECT ts, contact_id, queue FROM events WHERE kind = 'lost' ORDER BY ts, contact_id"
        ).fetchall()
    finally:
        con.close()
    return transitions, minutes, lost


def comparable(snap: Snapshot) -> tuple[Any, ...]:
    """Everything in a snapshot but the wall-clock rates."""
    return (
        snap.version,
        snap.ts,
        snap.steps,
        snap.series,
        tuple((s.name, s.stale, s.up, s.events_total, s.last_event_ts) for s in snap.sources),
        snap.transitions,
        snap.recent_transitions,
        snap.strikes,
        snap.stale,
        snap.events_total,
    )


@given(st.lists(bursts, min_size=1, max_size=14))
# A forecast that comes due in a minute whose windows did not change (it once left the minute rows
# of the two paths one row apart).
@example(
    plan=[
        Burst(gap=0.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0),
        Burst(gap=0.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0),
        Burst(gap=0.0, n=2, spacing=0.5, route=0, wait=17.0, ramp=8.0, fate="mixed", source="b", staffed=6),
        Burst(
            gap=40.0, n=5, spacing=0.5, route=0, wait=1.0, ramp=4.0, fate="answered", source="a", staffed=0
        ),
        Burst(
            gap=40.0, n=12, spacing=0.5, route=0, wait=2.0, ramp=8.0, fate="answered", source="b", staffed=6
        ),
        Burst(
            gap=1021.0, n=3, spacing=45.0, route=0, wait=61.0, ramp=8.0, fate="mixed", source="b", staffed=2
        ),
        Burst(gap=40.0, n=2, spacing=0.5, route=2, wait=18.0, ramp=8.0, fate="mixed", source="b", staffed=6),
    ]
)
# A series judged on too few contacts is left unjudged while its windows change and it stays so
# (arrivals nobody answered); an answer that gives it a wait past `warn` must be judged again.
@example(
    plan=[
        Burst(gap=0.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0),
        Burst(
            gap=120.0, n=2, spacing=3.0, route=0, wait=0.0, ramp=0.0, fate="waiting", source="a", staffed=0
        ),
        Burst(
            gap=40.0, n=1, spacing=0.5, route=0, wait=40.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
    ]
)
# The 5m wait p90 rests on fewer than its min_volume (4) contacts, then on exactly 4: judged past
# `warn` then (not left as "too few contacts").
@example(
    plan=[
        Burst(
            gap=0.0, n=3, spacing=3.0, route=0, wait=50.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
        Burst(
            gap=100.0, n=1, spacing=0.5, route=0, wait=50.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
    ]
)
# The shortest window's running sum of waits, kept by adding and taking away panes at moments that
# differ between the two paths, once made a 5-minute ASA a rounding apart (sums are now exact).
@example(
    plan=[
        Burst(gap=0.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0)
    ]
    * 7
    + [
        Burst(gap=0.0, n=n, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0)
        for n in (9, 9, 12)
    ]
    + [
        Burst(gap=5.0, n=9, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0),
        Burst(
            gap=23.0, n=14, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
        Burst(
            gap=0.0, n=1, spacing=0.5, route=0, wait=37.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
        Burst(
            gap=0.0,
            n=9,
            spacing=0.5,
            route=1,
            wait=0.0,
            ramp=1.3138265647606477,
            fate="answered",
            source="a",
            staffed=0,
        ),
    ]
)
# A nested window read at different ticks by the two paths: its sum of waits (the ASA) once came out
# a rounding apart, from replaying the panes in and out in a different order.
@example(
    plan=[
        Burst(
            gap=0.0,
            n=9,
            spacing=0.5,
            route=0,
            wait=16.028563070062226,
            ramp=-0.08976244999024185,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=14,
            spacing=0.5,
            route=0,
            wait=7.027825472742666e-92,
            ramp=-2.824769233474847,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=4,
            spacing=0.5,
            route=0,
            wait=1e-300,
            ramp=-1.2908991388678083e-219,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=40.0,
            n=1,
            spacing=0.5,
            route=0,
            wait=6.103515625e-05,
            ramp=3.6942020282536525,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=13,
            spacing=0.5,
            route=0,
            wait=91.16408595070402,
            ramp=4.795647738072089,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=20,
            spacing=0.5,
            route=0,
            wait=12.12968542415051,
            ramp=1.5329495009213849e-251,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=10,
            spacing=0.5,
            route=0,
            wait=0.3168520270527964,
            ramp=0.15,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=10,
            spacing=0.5,
            route=0,
            wait=0.3168520270527964,
            ramp=0.15,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=13.364074414474906,
            n=15,
            spacing=45.0,
            route=3,
            wait=1.3880609961264552e-290,
            ramp=5.773096641854693,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=2.915491748537557e-236,
            n=11,
            spacing=0.5,
            route=0,
            wait=47.388220298608196,
            ramp=-3.0,
            fate="answered",
            source="a",
            staffed=0,
        ),
        Burst(
            gap=0.0,
            n=14,
            spacing=12.0,
            route=1,
            wait=7.027825472742666e-92,
            ramp=-2.824769233474847,
            fate="waiting",
            source="a",
            staffed=2,
        ),
    ]
)
# Short abandons (waits of 2 s, under `short_abandon`) on sms: the 5m wait p90 rests on 3 contacts,
# then on 4 (its min_volume) with the same value: let through by the gate now, it must be judged
# (WATCH) though no value it reads changed.
@example(
    plan=[
        Burst(
            gap=0.0, n=3, spacing=0.5, route=4, wait=2.0, ramp=0.0, fate="abandoned", source="a", staffed=0
        ),
        Burst(
            gap=60.0, n=1, spacing=0.5, route=4, wait=2.0, ramp=0.0, fate="abandoned", source="a", staffed=0
        ),
        Burst(
            gap=600.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0
        ),
    ]
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_backfill_judges_like_recomputing_everything(tmp_path: Path, plan: list[Burst]) -> None:
    """An unwatched backfill stores the same transitions (times, reasons), minute figures and lost
    contacts, and ends on the same snapshot, as one that measures and judges every series at
    every tick."""
    events = [ev for _, ev in events_of(plan)]
    case = Path(tempfile.mkdtemp(dir=tmp_path))
    fast = await backfill(case / "changes.db", events, "changes")
    full = await backfill(case / "all.db", events, "all")
    assert stored(case / "changes.db") == stored(case / "all.db")
    assert comparable(fast) == comparable(full)


class _Silent:
    """A source the test feeds by hand (through the engine's own batch path)."""

    type = "test"

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, sink: Sink) -> None:  # pragma: no cover - never started
        raise AssertionError("fed by hand")


@given(st.lists(bursts, min_size=1, max_size=10), st.sampled_from([1.0, 5.0, 13.0]))
@example(
    # A contact waits on q2 past a forecast with no event: the next forecast projects a breach from
    # it, and the series must be judged again then (the verdict moves with nothing else changing).
    plan=[
        Burst(33.8, 23, 0.5, 0, 0.0, 1.53, "answered", "a", 0),
        Burst(15.6, 13, 0.5, 1, 54.0, -1.78, "answered", "a", 0),
        Burst(31.9, 2, 0.5, 0, 80.9, 7.36, "answered", "a", 0),
        Burst(600.0, 5, 0.5, 1, 0.0, -1.83, "mixed", "a", 0),
        Burst(0.0, 7, 0.5, 0, 0.0, 0.24, "answered", "a", 0),
        Burst(0.0, 13, 0.5, 0, 96.5, 0.68, "answered", "a", 0),
        Burst(8.0, 25, 0.5, 0, 0.0, 0.0, "answered", "a", 0),
        Burst(0.0, 12, 0.5, 0, 66.5, 5.09, "answered", "a", 0),
        Burst(0.0, 9, 0.5, 0, 66.4, 6.0, "answered", "a", 0),
    ],
    every=1.0,
)
# Three abandons on chat: an abandon rate past its breach on too few contacts to be beyond noise is
# held as WATCH, and must still become a pot hole when it has lasted `for` (once looked at too late).
@example(
    plan=[
        Burst(gap=0.0, n=1, spacing=0.5, route=0, wait=0.0, ramp=0.0, fate="answered", source="a", staffed=0)
    ]
    * 3
    + [
        Burst(gap=0.0, n=3, spacing=0.5, route=2, wait=0.0, ramp=3.0, fate="abandoned", source="a", staffed=0)
    ],
    every=1.0,
)
# A 5m service level of 75 % over 20 contacts (within its noise: OK), then 75 % over 40 (beyond
# it: WATCH) from one tick to the next, every wait the same: the series must be judged again though
# no value changed, for what the share rests on did.
@example(
    plan=[
        Burst(8.0, 15, 0.5, 0, 19.0, 0.0, "answered", "a", 0),
        Burst(0.0, 5, 0.5, 0, 19.0, 0.0, "abandoned", "a", 0),
        Burst(3.0, 15, 0.5, 0, 19.0, 0.0, "answered", "a", 0),
        Burst(0.0, 5, 0.5, 0, 19.0, 0.0, "abandoned", "a", 0),
    ],
    every=13.0,
)
# A service level past breach over 5 contacts, held back within its noise while the series is OK,
# until the first forecast's projection raises the series: a series already raised holds nothing
# back, so the next tick judges the breach itself (the tick looking only at changes once left the
# projection's reason standing).
@example(
    plan=[
        Burst(0.0, 14, 0.5, 1, 74.78197373655004, 0.0, "mixed", "a", 0),
        Burst(169.83225086493363, 6, 45.0, 0, 53.22135927619383, 0.0, "answered", "a", 0),
        Burst(100.0, 7, 0.5, 1, 15.526224559938763, -1.3797821220654738, "mixed", "a", 2),
        Burst(17.543513223073607, 14, 12.0, 0, 2.5, 3.475677742995547, "waiting", "a", 0),
        Burst(986.7780451239975, 15, 45.0, 1, 15.37329857276688, -3.736465094452825, "waiting", "a", 1),
        Burst(33.58049913590979, 7, 3.0, 1, 0.0, 0.7555532803165654, "mixed", "b", 6),
        Burst(3600.0, 18, 45.0, 2, 101.96450227263139, 1e-09, "abandoned", "b", 2),
        Burst(0.3333333333333333, 15, 12.0, 3, 4.811069060537313, 0.0, "abandoned", "b", 6),
        Burst(38.29747699606425, 1, 3.0, 3, 87.12431329746579, 6.024926168211351, "answered", "a", 2),
        Burst(3600.0, 6, 0.5, 0, 53.91721146963876, 2.0451314299714696, "mixed", "b", 2),
    ],
    every=1.0,
)
@settings(max_examples=30, deadline=None)
async def test_live_snapshots_equal_recomputing_everything(plan: list[Burst], every: float) -> None:
    """Live, with two sources that fall silent in turn, every snapshot (figures, states, reasons,
    transitions) equals the one a tick recomputing every series makes."""
    timeline = events_of(plan)
    now = [T0]
    engines = [
        Engine(
            CONFIG,
            store=False,
            sources=[_Silent("a"), _Silent("b")],
            clock=lambda: now[0],
            recompute=recompute,
        )
        for recompute in ("changes", "all")
    ]
    end = (timeline[-1][1].ts if timeline else T0) + 900.0
    i = 0
    t = T0
    while t <= end:
        now[0] = t
        batch: dict[str, list[ContactEvent]] = {}
        while i < len(timeline) and timeline[i][1].ts <= t:
            source, ev = timeline[i]
            batch.setdefault(source, []).append(ev)
            i += 1
        snaps = []
        for engine in engines:
            for source, evs in batch.items():
                await engine._process(source, evs, None)
            snaps.append(comparable(engine._tick(t)))
        assert snaps[0] == snaps[1], t - T0
        t += every
