"""Measure semantics in one place: bad direction, combining queues, service-level denominator, volume."""

from __future__ import annotations

import dataclasses

from hypothesis import assume, given
from hypothesis import strategies as st

from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.label_bounds import _merge_figures
from cxmon.measures import MEASURES, bad_direction, combine, denominator, volume
from cxmon.tui.format import MATRIX_MEASURES
from cxmon.tui.widgets.step_matrix import matrix_rows
from cxmon.windows import Aggregator, window_measures
from tests.helpers import ONE_STEP, one_step_config

FORMULAS = ("excl_short_abandons", "incl_abandons", "answered_only")


def test_every_measure_says_which_way_is_worse() -> None:
    """Service level, CSAT, the survey response rate, next replies in target and the agent counts are
    bad when low; waits, rates and counts of trouble when high."""
    low = {name for name in MEASURES if bad_direction(name) == "below"}
    assert low == {
        "service_level",
        "csat",
        "response_rate",
        "next_reply_in_target",
        "agents_staffed",
        "agents_available",
    }


def test_a_threshold_without_direction_is_breached_the_way_its_measure_gets_worse() -> None:
    """`direction` left out: a service-level threshold is breached below it, a wait above it."""
    cfg = loads(
        ONE_STEP
        + """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "60s"
  breach = "80%"
"""
    )
    wait, sl = cfg.steps[0].thresholds
    assert (wait.direction, sl.direction) == ("above", "below")


COUNTS = st.integers(0, 50)


@st.composite
def queue_events(draw: st.DrawFn) -> list[ContactEvent]:
    """One queue's answered and abandoned calls in a minute, with waits around the target."""
    out = []
    queue = draw(st.sampled_from(["q1", "q2"]))
    for i, wait in enumerate(draw(st.lists(st.floats(0, 120), max_size=30))):
        kind = draw(st.sampled_from([EventKind.ANSWERED, EventKind.ABANDONED]))
        out.append(ContactEvent(1000.0 + i, kind, f"{queue}-{i}", "voice", queue, wait=wait))
    return out


@given(st.lists(queue_events(), min_size=1, max_size=3), st.sampled_from(FORMULAS))
def test_combining_queues_gives_the_figure_of_their_contacts_together(
    batches: list[list[ContactEvent]], formula: str
) -> None:
    """Counts and rates combined over queues equal what the aggregator computes when every
    contact is counted in one series (the reference), for every service-level formula."""
    cfg = one_step_config()
    cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, service_level_formula=formula))
    per_queue = Aggregator(cfg)
    together = Aggregator(cfg)
    events = [ev for batch in batches for ev in batch]
    assume(events)
    per_queue.add(events)
    together.add([dataclasses.replace(ev, queue="q1") for ev in events])
    members = [window_measures(s.windows[0].total, formula) for s in per_queue.series.values()]
    (whole,) = [window_measures(s.windows[0].total, formula) for s in together.series.values()]
    for name in ("answered", "abandoned", "short_abandoned", "service_level", "abandon_rate"):
        got, want = combine(name, members, formula), whole[name]
        assert (got is None) == (want is None), name
        if want is not None and got is not None:
            assert abs(got - want) < 1e-9, name


def test_percentiles_take_the_worst_queue() -> None:
    """A wait percentile cannot be merged from values: the worst queue's stands for the channel."""
    assert combine("wait_p90", [{"wait_p90": 12.0}, {"wait_p90": 95.0}, {"wait_p90": None}], "x") == 95.0
    assert combine("wait_p90", [{"wait_p90": None}], "x") is None


def test_service_level_denominator_follows_the_formula() -> None:
    """answered + abandoned − short abandoned, answered + abandoned, or answered alone."""
    f = {"answered": 10.0, "abandoned": 4.0, "short_abandoned": 1.0}
    assert [denominator("service_level", f, x) for x in FORMULAS] == [13.0, 14.0, 10.0]


def test_volume_is_what_the_value_rests_on() -> None:
    """CSAT rests on feedback responses, resolution times on resolved contacts, counts on the
    offered contacts, the rest on those that left the queue."""
    f = {"offered": 9.0, "answered": 5.0, "abandoned": 2.0, "resolved": 3.0, "feedback": 4.0}
    assert [volume(m, f) for m in ("csat", "resolution_p90", "escalations", "wait_p90")] == [4, 3, 9, 7]


def test_dashboard_channel_row_and_prometheus_merge_agree() -> None:
    """The dashboard's channel row and a merged Prometheus series combine the same queues the same
    way: service level over two queues is their contacts' service level, not the worst queue's."""
    cfg = one_step_config()
    engine = Engine(cfg, store=False, sources=[], clock=lambda: 1030.0)
    # q1: 10 answered in 5 s; q2: 10 answered in 100 s (all late)
    evs = [ContactEvent(1000.0 + i, EventKind.ANSWERED, f"a{i}", "voice", "q1", wait=5.0) for i in range(10)]
    evs += [
        ContactEvent(1000.0 + i, EventKind.ANSWERED, f"b{i}", "voice", "q2", wait=100.0) for i in range(10)
    ]
    engine.aggregator.add(evs)
    snap = engine._tick(1030.0)
    rows = matrix_rows(snap, cfg, 60.0)
    (channel_row,) = [r for r in rows if r.queue is None]
    sl_column = MATRIX_MEASURES.index("service_level")
    assert channel_row.values[sl_column] == 0.5
    merged = _merge_figures([s.windows[60.0] for s in snap.series], snap.service_level_formula)
    assert merged["service_level"] == 0.5
