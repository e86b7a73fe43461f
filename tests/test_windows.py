"""Rolling windows against a brute-force recomputation from the raw events."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon import sketch
from cxmon.config import Config, default_config_path, load
from cxmon.events import ContactEvent, EventKind
from cxmon.windows import Aggregator, instant_measures, window_measures
from tests.helpers import OfContact, OnQueue, one_step_config

CONFIG = one_step_config()
T0 = 1_767_600_000.0
SL_T = 20.0
SHORT = 5.0


@dataclass
class Contact:
    arrive: float
    outcome: str  # answered, abandoned, waiting
    wait: float
    resolve_after: float | None
    escalate: bool
    transfer: bool
    score: int | None
    queue: str
    reopen: bool = False
    """Reopened after its resolution (and feedback)."""
    lost: bool = False
    """When still waiting: closed by its source as lost after its wait."""


contacts = st.builds(
    Contact,
    arrive=st.floats(0, 900),
    outcome=st.sampled_from(["answered", "answered", "abandoned", "waiting"]),
    wait=st.one_of(st.floats(0, 120), st.integers(0, 40).map(float)),
    resolve_after=st.one_of(st.none(), st.floats(1, 600)),
    escalate=st.booleans(),
    transfer=st.booleans(),
    score=st.one_of(st.none(), st.integers(1, 5)),
    queue=st.sampled_from(["q1", "q2"]),
    reopen=st.booleans(),
    lost=st.booleans(),
)

staffing = st.lists(
    st.tuples(st.floats(0, 900), st.integers(0, 30), st.integers(0, 30), st.sampled_from(["q1", "q2"])),
    max_size=5,
)


def staffing_events(updates: list[tuple[float, int, int, str]]) -> list[ContactEvent]:
    """Agents logged in and available per queue, as a source reports them (no contact)."""
    return [
        ContactEvent(
            ts=T0 + t,
            kind=EventKind.STAFFING,
            contact_id="",
            channel="voice",
            queue=queue,
            agents_staffed=staffed,
            agents_available=min(available, staffed),
        )
        for t, staffed, available, queue in updates
    ]


def events_of(i: int, c: Contact) -> list[ContactEvent]:
    cid = f"c{i}"
    base: OfContact = {"contact_id": cid, "channel": "voice", "queue": c.queue, "customer_id": f"u{i % 7}"}
    out = [ContactEvent(ts=T0 + c.arrive, kind=EventKind.ARRIVED, **base)]
    t = T0 + c.arrive + c.wait
    if c.outcome == "abandoned":
        out.append(ContactEvent(ts=t, kind=EventKind.ABANDONED, wait=c.wait, reason="hangup", **base))
    elif c.outcome == "waiting" and c.lost:
        out.append(ContactEvent(ts=t, kind=EventKind.LOST, reason="gone", **base))
    elif c.outcome == "answered":
        out.append(ContactEvent(ts=t, kind=EventKind.ANSWERED, wait=c.wait, **base))
        if c.resolve_after is not None:
            end = t + c.resolve_after
            if c.escalate:
                out.append(ContactEvent(ts=end, kind=EventKind.ESCALATED, target="tier2", **base))
            elif c.transfer:
                out.append(ContactEvent(ts=end, kind=EventKind.TRANSFERRED, target="q9", **base))
            else:
                out.append(ContactEvent(ts=end, kind=EventKind.RESOLVED, duration=c.resolve_after, **base))
                if c.score is not None:
                    out.append(
                        ContactEvent(ts=end + 1, kind=EventKind.FEEDBACK, score=float(c.score), **base)
                    )
                if c.reopen:
                    out.append(ContactEvent(ts=end + 2, kind=EventKind.REOPENED, **base))
    return out


def brute(
    events: list[ContactEvent], queue: str, length: float, panes: int, now: float
) -> dict[str, float | None]:
    """Recompute a window's measures straight from the definitions in DESIGN.md."""
    mine = [e for e in events if e.queue == queue]
    pane_len = length / panes
    # Engine time is the later of the clock and the newest event of any series.
    head = max([math.floor(now / pane_len)] + [math.floor(e.ts / pane_len) for e in events])
    inside = [e for e in mine if math.floor(e.ts / pane_len) > head - panes]

    def of(kind: EventKind) -> list[ContactEvent]:
        return [e for e in inside if e.kind is kind]

    answered, abandoned = of(EventKind.ANSWERED), of(EventKind.ABANDONED)
    short = [e for e in abandoned if e.wait is not None and e.wait < SHORT]
    within = [e for e in answered if e.wait is not None and e.wait <= SL_T]
    waits = sorted(e.wait for e in answered + abandoned if e.wait is not None)
    resolved = of(EventKind.RESOLVED)
    res = sorted(e.duration for e in resolved if e.duration is not None)
    scores = [e.score for e in of(EventKind.FEEDBACK) if e.score is not None]
    den = len(answered) + len(abandoned) - len(short)

    def wait_of(e: ContactEvent) -> float:
        assert e.wait is not None  # events_of gives every answer its wait
        return e.wait

    def q(vals: list[float], p: float) -> float | None:
        return vals[int(p * (len(vals) - 1))] if vals else None

    return {
        "offered": len(of(EventKind.ARRIVED)),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "short_abandoned": len(short),
        "lost": len(of(EventKind.LOST)),
        "service_level": len(within) / den if den else None,
        "abandon_rate": (len(abandoned) - len(short)) / den if den else None,
        "asa": sum(wait_of(e) for e in answered) / len(answered) if answered else None,
        "wait_p50": q(waits, 0.5),
        "wait_p90": q(waits, 0.9),
        "wait_p99": q(waits, 0.99),
        "resolution_p50": q(res, 0.5),
        "resolution_p90": q(res, 0.9),
        "escalations": len(of(EventKind.ESCALATED)),
        "escalation_rate": len(of(EventKind.ESCALATED)) / len(answered) if answered else None,
        "transfers": len(of(EventKind.TRANSFERRED)),
        "reopen_rate": len(of(EventKind.REOPENED)) / len(resolved) if resolved else None,
        "csat": sum(scores) / len(scores) if scores else None,
    }


QUANTILES = {"wait_p50", "wait_p90", "wait_p99", "resolution_p50", "resolution_p90"}


def assert_close(measure: str, got: float | None, want: float | None) -> None:
    if want is None:
        assert got is None, (measure, got)
        return
    assert got is not None, (measure, want)
    if measure in QUANTILES:
        assert abs(got - want) <= sketch.ALPHA * want + sketch.MIN_VALUE, (measure, got, want)
    else:
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (measure, got, want)


# Window sets: nested (each pane a multiple of the shorter window's: 10 s, 50 s, 150 s), and
# independent (10 s and 11⅔ s panes do not nest), so both ways of keeping windows are checked.
NESTED = dataclasses.replace(
    CONFIG, monitor=dataclasses.replace(CONFIG.monitor, windows=(60.0, 300.0, 900.0))
)
APART = dataclasses.replace(CONFIG, monitor=dataclasses.replace(CONFIG.monitor, windows=(60.0, 70.0, 300.0)))


def test_windows_nest_only_when_their_panes_do() -> None:
    """Windows whose pane lengths are whole multiples nest; others keep every event themselves."""
    nested = Aggregator(NESTED)._windows()
    assert [w.inner is not None for w in nested] == [False, True, True]
    apart = Aggregator(APART)._windows()
    assert [w.inner is not None for w in apart] == [False, False, False]
    assert [w.inner is not None for w in Aggregator(CONFIG)._windows()] == [False, True]


@pytest.mark.parametrize("config", [CONFIG, NESTED, APART], ids=["60s-5m", "nested", "apart"])
@given(
    st.lists(contacts, max_size=60),
    st.lists(st.tuples(st.integers(0, 400), st.floats(0, 8)), max_size=30),
    st.lists(st.integers(0, 400), max_size=5),
    st.floats(0, 1200),
    st.lists(st.integers(0, 400), max_size=4),
    staffing,
)
@settings(max_examples=150, deadline=None)
def test_windows_match_brute_force(
    config: Config,
    cs: list[Contact],
    jitters: list[tuple[int, float]],
    stragglers: list[int],
    extra: float,
    cuts: list[int],
    staff: list[tuple[float, int, int, str]],
) -> None:
    """Every windowed measure equals a brute-force recomputation, whatever the order events arrive in.

    Every kind of event is in the stream (reopened contacts, contacts a source closes as lost,
    staffing reports among them). Events arrive slightly out of order (each swap moves an event a
    few seconds late), and a few arrive long after their time (older than the window by then):
    both must land exactly where the definition puts them. The windows are read at a few points in
    the stream as well as at the end, so running sums brought up to date on reading are checked
    as well as fresh ones.
    """
    contact_events = [e for i, c in enumerate(cs) for e in events_of(i, c)]
    events = sorted(contact_events + staffing_events(staff), key=lambda e: e.ts)
    order = list(events)
    for pos, lateness in jitters:
        if len(order) > 1:
            i = pos % (len(order) - 1)
            if order[i + 1].ts - order[i].ts <= lateness:
                order[i], order[i + 1] = order[i + 1], order[i]
    for pos in stragglers:
        if order:
            order.append(order.pop(pos % len(order)))
    agg = Aggregator(config)
    done = 0
    for cut in sorted(min(c, len(order)) for c in cuts):
        agg.add(order[done:cut])
        done = cut
        if order[:cut]:
            check(agg, config, order[:cut], max(e.ts for e in order[:cut]))
    agg.add(order[done:])
    now = T0 + extra
    agg.advance(now)
    check(agg, config, events, now)


def check(agg: Aggregator, config: Config, events: list[ContactEvent], now: float) -> None:
    agg.advance(now)
    for queue in ("q1", "q2"):
        series = agg.series.get(("help", "voice", queue))
        for length in config.monitor.windows:
            want = brute(events, queue, length, config.monitor.panes, now)
            if series is None:
                assert want["offered"] == 0
                continue
            window = next(w for w in series.windows if w.length == length)
            got = window_measures(window.total, "excl_short_abandons")
            for measure, value in want.items():
                assert_close(measure, got[measure], value)


@given(st.lists(contacts, max_size=60), staffing)
@settings(max_examples=100, deadline=None)
def test_waiting_now_and_totals_match_brute_force(
    cs: list[Contact], staff: list[tuple[float, int, int, str]]
) -> None:
    """Contacts waiting now, the longest wait, the open backlog, the latest staffing report and
    cumulative totals (lost and reopened contacts too) equal a recount of the events."""
    events = sorted(
        [e for i, c in enumerate(cs) for e in events_of(i, c)] + staffing_events(staff), key=lambda e: e.ts
    )
    agg = Aggregator(CONFIG, time_out_lost=False)
    agg.add(events)
    now = T0 + 2000
    for queue in ("q1", "q2"):
        mine = [e for e in events if e.queue == queue]
        left = {
            e.contact_id for e in mine if e.kind in (EventKind.ANSWERED, EventKind.ABANDONED, EventKind.LOST)
        }
        arrivals = {e.contact_id: e.ts for e in mine if e.kind is EventKind.ARRIVED}
        waiting = {cid: t for cid, t in arrivals.items() if cid not in left}
        # Open until resolved, transferred, abandoned or lost; open again when reopened.
        open_now: dict[str, float] = {}
        for e in mine:
            if e.kind in (EventKind.ARRIVED, EventKind.REOPENED):
                open_now[e.contact_id] = e.ts
            elif e.kind in (EventKind.RESOLVED, EventKind.TRANSFERRED, EventKind.ABANDONED, EventKind.LOST):
                open_now.pop(e.contact_id, None)
        staffed = [e for e in mine if e.kind is EventKind.STAFFING]
        series = agg.series.get(("help", "voice", queue))
        if series is None:
            assert not mine
            continue
        inst = instant_measures(series, now)
        assert inst["waiting_now"] == len(waiting)
        assert inst["longest_wait_now"] == (now - min(waiting.values()) if waiting else None)
        assert inst["backlog"] == len(open_now)
        assert inst["agents_staffed"] == (float(staffed[-1].agents_staffed or 0) if staffed else None)
        assert inst["agents_available"] == (float(staffed[-1].agents_available or 0) if staffed else None)
        count = Counter(e.kind for e in mine)
        assert series.totals[0] == len(arrivals)
        assert series.totals[1] == count[EventKind.ANSWERED]
        assert series.totals[2] == count[EventKind.ABANDONED]
        assert series.totals[4] == count[EventKind.LOST]
        assert series.totals[8] == count[EventKind.REOPENED]


def test_unknown_queue_names_share_one_series() -> None:
    """A flood of unconfigured queue names lands in the step's `other` series, not in new series."""
    agg = Aggregator(CONFIG)
    agg.add(
        ContactEvent(ts=T0 + i, kind=EventKind.ARRIVED, contact_id=f"x{i}", channel="voice", queue=f"q-{i}")
        for i in range(5000)
    )
    assert list(agg.series) == [("help", "voice", "other")]
    assert agg.series[("help", "voice", "other")].totals[0] == 5000


def test_contact_without_an_ending_is_counted_lost() -> None:
    """A contact that never gets a terminal event leaves "waiting now" after lost_after, counted as lost."""
    agg = Aggregator(CONFIG)
    agg.add([ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="c", channel="voice", queue="q1")])
    assert agg.advance(T0 + 1800) == []
    lost = agg.advance(T0 + 3601)
    assert [e.contact_id for e in lost] == ["c"]
    series = agg.series[("help", "voice", "q1")]
    assert instant_measures(series, T0 + 3601)["waiting_now"] == 0
    assert series.totals[4] == 1


def test_a_ticket_open_past_monitor_lost_after_stays_in_backlog_and_ages() -> None:
    """In the default config a ticket (email ``tickets``, step ``resolve``, backlog_age 8 h) that is
    answered and not resolved is not closed as lost after ``[monitor] lost_after`` (4 h): at 5 h it
    is in backlog, at 9 h in aged_backlog too; it is given up only after its step's 16 h."""
    agg = Aggregator(load(default_config_path()), time_out_lost=True)
    ticket: OfContact = {"contact_id": "t1", "channel": "email", "queue": "tickets"}
    agg.add(
        [
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, **ticket),
            ContactEvent(ts=T0 + 60, kind=EventKind.ANSWERED, wait=60.0, **ticket),
        ]
    )
    assert agg.advance(T0 + 5 * 3600) == []
    series = agg.series[("resolve", "email", "tickets")]
    assert instant_measures(series, T0 + 5 * 3600)["backlog"] == 1
    assert agg.advance(T0 + 9 * 3600) == []
    assert instant_measures(series, T0 + 8 * 3600 - 1)["aged_backlog"] == 0
    assert instant_measures(series, T0 + 9 * 3600)["aged_backlog"] == 1
    assert agg.advance(T0 + 16 * 3600 - 60) == []
    assert [e.contact_id for e in agg.advance(T0 + 16 * 3600 + 60)] == ["t1"]


def test_a_call_is_lost_after_monitor_lost_after_beside_a_ticket_step() -> None:
    """Voice and chat keep ``[monitor] lost_after``: in the default config, whose ticket step waits
    16 h, a call and a chat with no ending are closed as lost 4 h after they arrived, the ticket
    that arrived with them is not."""
    agg = Aggregator(load(default_config_path()), time_out_lost=True)
    agg.add(
        [
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="v", channel="voice", queue="billing"),
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="c", channel="chat", queue="support"),
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="t", channel="email", queue="tickets"),
        ]
    )
    assert agg.advance(T0 + 4 * 3600 - 60) == []
    lost = agg.advance(T0 + 4 * 3600 + 60)
    assert sorted(e.contact_id for e in lost) == ["c", "v"]
    assert (
        instant_measures(agg.series[("get_help", "voice", "billing")], T0 + 4 * 3600 + 60)["waiting_now"] == 0
    )


def test_strikes_count_customers_with_three_bad_experiences_in_a_day() -> None:
    """Three abandons in a day make a customer count; a day later they no longer do."""
    agg = Aggregator(CONFIG)
    for i in range(3):
        base: OfContact = {"contact_id": f"s{i}", "channel": "voice", "queue": "q1", "customer_id": "alice"}
        agg.add(
            [
                ContactEvent(ts=T0 + i * 100, kind=EventKind.ARRIVED, **base),
                ContactEvent(ts=T0 + i * 100 + 30, kind=EventKind.ABANDONED, wait=30.0, **base),
            ]
        )
    assert agg.struck == 1
    assert agg.leaders(5) == [("alice", 3)]
    agg.advance(T0 + 86_400 + 250)
    assert agg.struck == 0


def test_abandon_and_answer_waits_are_classified_and_counted() -> None:
    """An abandon under short_abandon (5 s) is short, no strike; one over it is a strike; a
    negative wait counts as 0; a wait the source leaves out is measured from the arrival seen."""
    from cxmon.snapshot import TOTALS

    agg = Aggregator(CONFIG)
    voice: OnQueue = {"channel": "voice", "queue": "q1", "customer_id": "bob"}
    agg.add(
        [
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="a", **voice),
            ContactEvent(ts=T0 + 2, kind=EventKind.ABANDONED, contact_id="a", wait=2.0, **voice),
            ContactEvent(ts=T0 + 3, kind=EventKind.ARRIVED, contact_id="b", **voice),
            ContactEvent(ts=T0 + 33, kind=EventKind.ABANDONED, contact_id="b", **voice),
            ContactEvent(ts=T0 + 40, kind=EventKind.ANSWERED, contact_id="c", wait=-3.0, **voice),
        ]
    )
    series = agg.series[("help", "voice", "q1")]
    totals = dict(zip(TOTALS, series.totals, strict=True))
    assert (totals["abandoned"], totals["short_abandoned"], totals["answered"]) == (2, 1, 1)
    assert agg.strikes == {"bob": 1}  # the 30 s abandon, not the 2 s one
    assert series.wait_hist_sum == 32.0  # 2 s, 30 s measured from b's arrival, and 0 s
    figures = window_measures(series.windows[-1].total, "excl_short_abandons")
    assert figures["short_abandoned"] == 1
    assert figures["asa"] == 0.0
    assert figures["service_level"] == 0.5  # the answer within target, the long abandon against


def test_window_counts_are_given_out_as_floats() -> None:
    """A window counts in ints, and its figures give every count out as a float: the stored minute
    figures (JSON) read 2.0, not 2, as they always have."""
    import json

    agg = Aggregator(CONFIG)
    voice: OnQueue = {"channel": "voice", "queue": "q1"}
    agg.add(
        [
            ContactEvent(ts=T0, kind=EventKind.ARRIVED, contact_id="a", **voice),
            ContactEvent(ts=T0 + 1, kind=EventKind.ARRIVED, contact_id="b", **voice),
            ContactEvent(ts=T0 + 4, kind=EventKind.ANSWERED, contact_id="a", wait=4.0, **voice),
            ContactEvent(ts=T0 + 9, kind=EventKind.RESOLVED, contact_id="a", duration=5.0, **voice),
        ]
    )
    figures = window_measures(agg.series[("help", "voice", "q1")].windows[0].total, "excl_short_abandons")
    counts: tuple[str, ...] = (
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "lost",
        "escalations",
        "transfers",
    )
    counts += ("resolved", "feedback", "surveys", "next_replies")
    assert {name: figures[name] for name in counts} == dict.fromkeys(counts, 0.0) | {
        "offered": 2.0,
        "answered": 1.0,
        "resolved": 1.0,
    }
    assert all(type(figures[name]) is float for name in counts)
    assert json.dumps({name: figures[name] for name in ("offered", "answered")}) == (
        '{"offered": 2.0, "answered": 1.0}'
    )


def test_windows_read_every_minute_of_a_long_stream_match_brute_force() -> None:
    """Three hours of steady traffic, the windows read every simulated minute (as backfill ticks
    do), each read equal to a brute-force recount: the nested windows' running sums stay exact."""
    import random

    rng = random.Random(11)
    events: list[ContactEvent] = []
    for i in range(3000):
        t = T0 + i * 3.6 + rng.uniform(0, 3)
        c = Contact(
            0.0, rng.choice(["answered", "abandoned"]), rng.uniform(0, 90), None, False, False, None, "q1"
        )
        for ev in events_of(i, c):
            events.append(dataclasses.replace(ev, ts=ev.ts - T0 + t))
    events.sort(key=lambda e: e.ts)
    agg = Aggregator(NESTED)
    done = 0
    lost: list[ContactEvent] = []  # answered contacts never resolved time out after lost_after (1 h)
    for minute in range(1, 181):
        now = T0 + minute * 60
        upto = done
        while upto < len(events) and events[upto].ts < now:
            upto += 1
        agg.add(events[done:upto])
        done = upto
        lost += agg.advance(now)
        check(agg, NESTED, events[:done] + lost, now)
    assert lost


def test_wait_and_duration_histograms_bucket_as_bisect_left_does() -> None:
    """Each answered wait and each resolution time is counted in the histogram bucket
    ``bisect.bisect_left`` gives over the bucket edges (values on, just under and just over every
    edge, past the last one, and zero)."""
    import bisect

    from cxmon.snapshot import RESOLUTION_BUCKETS, WAIT_BUCKETS

    values = [0.0, 1e9]
    for edge in (*WAIT_BUCKETS, *RESOLUTION_BUCKETS):
        values += [float(edge), math.nextafter(edge, -math.inf), math.nextafter(edge, math.inf)]
    agg = Aggregator(CONFIG)
    voice: OnQueue = {"channel": "voice", "queue": "q1"}
    events = []
    for i, value in enumerate(values):
        cid = f"c{i}"
        events += [
            ContactEvent(ts=T0 + i, kind=EventKind.ANSWERED, contact_id=cid, wait=value, **voice),
            ContactEvent(ts=T0 + i, kind=EventKind.RESOLVED, contact_id=cid, duration=value, **voice),
        ]
    agg.add(events)
    series = agg.series[("help", "voice", "q1")]
    wait_reference = Counter(bisect.bisect_left(WAIT_BUCKETS, v) for v in values)
    res_reference = Counter(bisect.bisect_left(RESOLUTION_BUCKETS, v) for v in values)
    assert series.wait_hist == [wait_reference[i] for i in range(len(WAIT_BUCKETS) + 1)]
    assert series.res_hist == [res_reference[i] for i in range(len(RESOLUTION_BUCKETS) + 1)]


@pytest.mark.parametrize("changed_after", [5.0, 100.0])
def test_a_changed_survey_answer_replaces_the_one_counted(changed_after: float) -> None:
    """A survey sent, answered 5, then changed to 1 (in the same pane, or once the first answer has
    left the 60 s window for the 5 m one): every window counts one answer to one survey, the latest."""
    agg = Aggregator(CONFIG)
    base: dict[str, Any] = {"contact_id": "c1", "channel": "voice", "queue": "q1", "source": "s"}
    agg.add(
        [
            ContactEvent(ts=1000.0, kind=EventKind.FEEDBACK, **base),
            ContactEvent(ts=1001.0, kind=EventKind.FEEDBACK, score=5.0, **base),
            ContactEvent(ts=1001.0 + changed_after, kind=EventKind.FEEDBACK, score=1.0, **base),
        ]
    )
    [series] = agg.series.values()
    for window in series.windows:
        figures = window_measures(window.total, "excl_short_abandons")
        assert (figures["feedback"], figures["csat"]) == (1, 1.0)
    figures = window_measures(series.windows[-1].total, "excl_short_abandons")
    assert (figures["surveys"], figures["response_rate"]) == (1, 1.0)


def test_an_answer_older_than_the_one_counted_does_not_replace_it() -> None:
    """A survey's answer that arrives after a later answer to it (out of order) is not counted."""
    agg = Aggregator(CONFIG)
    base: dict[str, Any] = {"contact_id": "c1", "channel": "voice", "queue": "q1", "source": "s"}
    agg.add([ContactEvent(ts=1010.0, kind=EventKind.FEEDBACK, score=1.0, **base)])
    agg.add([ContactEvent(ts=1005.0, kind=EventKind.FEEDBACK, score=5.0, **base)])
    [series] = agg.series.values()
    figures = window_measures(series.windows[-1].total, "excl_short_abandons")
    assert (figures["feedback"], figures["csat"]) == (1, 1.0)
