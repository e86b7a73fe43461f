"""The projection from the queue's state: exits against a brute-force simulation; time to breach."""

from __future__ import annotations

import copy
import dataclasses
import heapq
import itertools
import math
import pickle
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon.forecast import Workload, evaluate
from cxmon.forecast.breach import Projection
from cxmon.forecast.transient import Exits, ExitSteps, QueueState, project, window_share
from cxmon.hub import codec

TARGET = 20.0
SHORT = 5.0


@dataclass
class Tally:
    """Exits counted by the simulation over the horizon."""

    within: float = 0.0
    answered: float = 0.0
    abandoned: float = 0.0
    short: float = 0.0


def simulate(state: QueueState, horizon: float, rng: random.Random) -> Tally:
    """One run of the M/M/N+M queue from ``state``: every agent busy (exponential handle times are
    memoryless, so the time left of each call in hand is a fresh one), the contacts in queue in
    arrival order, Poisson arrivals, exponential patience; exits counted until ``horizon``.

    Written from the queue's definition, not from the code under test.
    """
    mu = 1.0 / state.aht
    theta = 1.0 / state.patience if state.patience else 0.0
    busy = state.agents
    events: list[tuple[float, int, str, int]] = []
    seq = 0
    for _ in range(busy):
        heapq.heappush(events, (rng.expovariate(mu), seq, "end", -1))
        seq += 1
    arrived: dict[int, float] = {}
    queue: list[int] = []
    for i, wait in enumerate(state.waits):  # longest first = front of the queue
        arrived[i] = -wait
        queue.append(i)
        if theta:
            heapq.heappush(events, (rng.expovariate(theta), seq, "leave", i))
            seq += 1
    next_id = len(state.waits)
    if state.arrival_rate > 0:
        heapq.heappush(events, (rng.expovariate(state.arrival_rate), seq, "arrive", -1))
        seq += 1
    tally = Tally()
    while events:
        t, _, what, who = heapq.heappop(events)
        if t > horizon:
            break
        if what == "arrive":
            heapq.heappush(events, (t + rng.expovariate(state.arrival_rate), seq, "arrive", -1))
            seq += 1
            if busy < state.agents and not queue:
                busy += 1
                tally.answered += 1
                tally.within += 1
                heapq.heappush(events, (t + rng.expovariate(mu), seq, "end", -1))
                seq += 1
                continue
            arrived[next_id] = t
            queue.append(next_id)
            if theta:
                heapq.heappush(events, (t + rng.expovariate(theta), seq + 1, "leave", next_id))
            seq += 2
            next_id += 1
        elif what == "leave":
            if who in queue:
                queue.remove(who)
                tally.abandoned += 1
                if t - arrived[who] < SHORT:
                    tally.short += 1
        else:
            busy -= 1
            if queue:
                who = queue.pop(0)
                busy += 1
                tally.answered += 1
                if t - arrived[who] <= TARGET:
                    tally.within += 1
                heapq.heappush(events, (t + rng.expovariate(mu), seq, "end", -1))
                seq += 1
    return tally


def mean_of(state: QueueState, horizon: float, runs: int, seed: int) -> tuple[Tally, Tally]:
    """Mean and standard error of the simulated exits over ``runs`` runs."""
    rng = random.Random(seed)
    tallies = [simulate(state, horizon, rng) for _ in range(runs)]
    mean, se = Tally(), Tally()
    for name in ("within", "answered", "abandoned", "short"):
        values = [getattr(x, name) for x in tallies]
        m = sum(values) / runs
        var = sum((v - m) ** 2 for v in values) / (runs - 1)
        setattr(mean, name, m)
        setattr(se, name, math.sqrt(var / runs))
    return mean, se


def at(exits: tuple[Exits, ...], seconds: float) -> Exits:
    return next(e for e in exits if abs(e.at - seconds) < 1e-6)


LONG_QUEUE = QueueState(
    waits=tuple(float(w) for w in range(60, 0, -3)),  # 20 in queue, longest 60 s
    agents=50,
    aht=240.0,
    patience=120.0,
    arrival_rate=0.0,
    settled=0.0,
)
SHORT_QUEUE = QueueState(
    waits=(40.0, 32.0, 25.0, 18.0, 12.0, 8.0, 4.0, 1.0),
    agents=30,
    aht=180.0,
    patience=None,
    arrival_rate=0.0,
    settled=0.0,
)
STRAGGLING = QueueState(
    waits=(19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0, 1.0),
    agents=14,
    aht=180.0,
    patience=90.0,
    arrival_rate=0.0,
    settled=0.0,
)


@pytest.mark.parametrize("state", [LONG_QUEUE, SHORT_QUEUE, STRAGGLING], ids=["long", "short", "straggling"])
@pytest.mark.parametrize("horizon", [30.0, 60.0, 180.0])
def test_exits_of_the_contacts_in_queue_match_a_simulation_of_the_queue(
    state: QueueState, horizon: float
) -> None:
    """The projected answers within the target, answers and abandons of the contacts in queue after
    half a minute, one and three minutes are those of 4,000 simulated runs of the M/M/N+M queue from
    the same state, within 3 standard errors and a tenth of the contacts in queue (the projection
    moves expected amounts, so it answers the last of a queue a little early)."""
    exits = at(project(state, TARGET, SHORT, horizon), horizon)
    mean, se = mean_of(state, horizon, 4000, seed=11)
    for name in ("within", "answered", "abandoned", "short"):
        got, want, err = getattr(exits, name), getattr(mean, name), getattr(se, name)
        assert abs(got - want) <= 3 * err + 0.1 * len(state.waits), (name, got, want, err)


@pytest.mark.parametrize("state", [LONG_QUEUE, SHORT_QUEUE, STRAGGLING], ids=["long", "short", "straggling"])
@pytest.mark.parametrize("load", [0.5, 1.0, 1.2])
def test_with_arrivals_the_share_answered_in_time_is_close_to_a_simulation(
    state: QueueState, load: float
) -> None:
    """With arrivals at half, all and 1.2 times what the agents can take (those finding an agent free
    fare as Erlang A/C says), three minutes on: answers and abandons are those of 2,000 simulated runs
    within 3 standard errors and 10 %, and the share answered within the target is at most 0.16 below
    the simulation's and 0.08 above it (expected amounts miss the queue emptying now and then)."""
    rate = load * state.agents / state.aht
    settled = evaluate(Workload(rate, state.aht, state.patience), state.agents, TARGET).service_level
    state = dataclasses.replace(state, arrival_rate=rate, settled=settled or 0.0)
    exits = at(project(state, TARGET, SHORT, 180.0), 180.0)
    mean, se = mean_of(state, 180.0, 2000, seed=5)
    for name in ("answered", "abandoned"):
        got, want, err = getattr(exits, name), getattr(mean, name), getattr(se, name)
        assert abs(got - want) <= 3 * err + 0.1 * want, (name, got, want, err)
    share = exits.within / exits.denominator("excl_short_abandons")
    simulated = mean.within / (mean.answered + mean.abandoned - mean.short)
    assert -0.16 <= share - simulated <= 0.08


def test_arrivals_to_an_empty_queue_fare_as_the_steady_state_says() -> None:
    """Nobody in queue, 3 arrivals a minute for 14 agents who finish 4.7 calls a minute, of which the
    steady state answers 90 % in time: after two minutes, 6 answers of which 5.4 within the target."""
    exits = at(project(QueueState((), 14, 180.0, None, 0.05, 0.9), TARGET, SHORT, 120.0), 120.0)
    assert exits.answered == pytest.approx(6.0)
    assert exits.within == pytest.approx(5.4)


def test_contacts_past_the_target_are_late_answers_for_certain() -> None:
    """Ten contacts that have waited 30 s or more, 14 agents, nobody arriving or leaving: every one is a
    late answer, they come at 14 ÷ 180 s a second, and nothing else exits."""
    state = QueueState(tuple(30.0 + i for i in range(10)), 14, 180.0, None, 0.0, 1.0)
    exits = project(state, TARGET, SHORT, 300.0)
    assert at(exits, 60.0).answered == pytest.approx(60.0 * 14 / 180.0)
    assert at(exits, 300.0).answered == pytest.approx(10.0)
    assert all(e.within == 0.0 and e.abandoned == 0.0 for e in exits)


def sl_projection(
    state: QueueState,
    *,
    outcomes: float,
    projected: float = 0.95,
    exits: ExitSteps | None = None,
    breach: float = 0.8,
) -> Projection:
    return Projection(
        measure="service_level",
        window=300.0,
        breach=breach,
        direction="below",
        projected=projected,
        sure=projected,
        agents=state.agents,
        agents_needed=None,
        model="erlang_c",
        waits=state.waits,
        exits=ExitSteps(state, TARGET, SHORT, 300.0) if exits is None else exits,
        outcomes=outcomes,
    )


def test_late_answers_to_come_bring_the_breach_forward() -> None:
    """A 5-minute window at 90 % of 40 contacts, 10 contacts waiting past the target on 14 agents (180 s
    calls) and nobody else coming: the window keeps 36·(1 − t/300) good of 40·(1 − t/300) and gains
    14t/180 late answers, so it crosses 80 % at t = 4·300·180 / (0.8·14·300 + 4·180) ≈ 53.4 s.
    The steady state alone (95 %) projects no breach."""
    state = QueueState(tuple(30.0 + i for i in range(10)), 14, 180.0, None, 0.0, 1.0)
    p = sl_projection(state, outcomes=40.0)
    crossing = 4 * 300 * 180 / (0.8 * 14 * 300 + 4 * 180)
    eta = p.eta(0.9)
    assert eta is not None and crossing <= eta < crossing + 5.0
    assert not p.breaches


def test_a_short_wait_in_a_well_staffed_queue_projects_nothing() -> None:
    """Two contacts waiting 3 s for one of 50 agents, arrivals well within capacity: no breach."""
    state = QueueState((3.0, 1.0), 50, 240.0, 120.0, 8 / 60, 1.0)
    assert sl_projection(state, outcomes=40.0).eta(0.95) is None


def test_window_share_keeps_the_part_of_the_window_still_inside_it() -> None:
    """Half a window on, half its 40 contacts at 90 % remain (18 good of 20), plus 10 late answers:
    18 of 30."""
    exits = Exits(at=150.0, within=0.0, answered=10.0, abandoned=0.0, short=0.0)
    share = window_share(0.9, 40.0, 300.0, exits, "excl_short_abandons")
    assert share == pytest.approx(18.0 / 30.0)


def test_reason_names_who_is_waiting() -> None:
    """The WATCH reason says how many wait, the longest wait and the agents."""
    state = QueueState((45.0, 30.0, 12.0), 14, 180.0, None, 0.0, 1.0)
    p = sl_projection(state, outcomes=40.0)
    assert p.reason(120.0) == "service level projected below 80% in ~2m: 3 waiting, longest 45s, 14 agents"


queue_states = st.builds(
    QueueState,
    waits=st.lists(st.floats(0.0, 240.0), max_size=25).map(lambda w: tuple(sorted(w, reverse=True))),
    agents=st.integers(1, 40),
    aht=st.floats(20.0, 600.0),
    patience=st.none() | st.floats(5.0, 600.0),
    arrival_rate=st.floats(0.0, 1.0),
    settled=st.floats(0.0, 1.0),
)


@given(queue_states, st.sampled_from([60.0, 300.0, 302.5]), st.integers(0, 70))
@settings(max_examples=150, deadline=None)
def test_steps_read_in_parts_are_the_whole_projection(state: QueueState, horizon: float, first: int) -> None:
    """Steps read a few at a time (the first ``first``, then all of them again, then all once more)
    are exactly the steps :func:`project` works out in one go."""
    whole = project(state, TARGET, SHORT, horizon)
    steps = ExitSteps(state, TARGET, SHORT, horizon)
    assert tuple(itertools.islice(steps, first)) == whole[:first]
    assert steps.worked_out == min(first, len(whole))
    assert tuple(steps) == whole
    assert tuple(steps) == whole


@given(
    queue_states,
    st.lists(st.none() | st.floats(0.0, 1.0), min_size=1, max_size=4),
    st.floats(0.0, 80.0),
    st.floats(0.5, 0.95),
)
@settings(max_examples=200, deadline=None)
def test_time_to_breach_from_steps_worked_out_as_read_is_the_full_walks(
    state: QueueState, values: list[float | None], outcomes: float, breach: float
) -> None:
    """A projection whose steps are worked out as they are read gives, value after value, the time
    to breach of the whole walk (its first step whose window is past the breach, or the steady
    state's if sooner), and works out no step past the first breaching one the values asked about."""
    whole = project(state, TARGET, SHORT, 300.0)
    steps = ExitSteps(state, TARGET, SHORT, 300.0)
    lazy = sl_projection(state, outcomes=outcomes, exits=steps, breach=breach)
    steady = dataclasses.replace(lazy, exits=None)
    furthest = 0
    for value in values:
        shares = [window_share(value, outcomes, 300.0, e, "excl_short_abandons") for e in whole]
        crossing = next((i for i, share in enumerate(shares) if share is not None and share < breach), None)
        soon = None if crossing is None else whole[crossing].at
        later = steady.eta(value)
        assert lazy.eta(value) == (later if soon is None or (later is not None and later < soon) else soon)
        furthest = max(furthest, len(whole) if crossing is None else crossing + 1)
        assert steps.worked_out == furthest


def test_steps_are_equal_when_made_from_equal_arguments() -> None:
    """Two step sequences from the same state, target, short abandon and horizon are equal (and hash
    alike) whether or not either has been read; another horizon is another sequence."""
    read = ExitSteps(STRAGGLING, TARGET, SHORT, 300.0)
    tuple(read)
    unread = ExitSteps(STRAGGLING, TARGET, SHORT, 300.0)
    assert read == unread and hash(read) == hash(unread)
    assert read != ExitSteps(STRAGGLING, TARGET, SHORT, 60.0)


def test_steps_cross_the_hub_as_their_arguments() -> None:
    """A projection carrying steps, some already read, comes back from the hub's codec equal, with its
    steps still to work out and the same time to breach."""
    state = QueueState(tuple(30.0 + i for i in range(10)), 14, 180.0, None, 0.0, 1.0)
    sent = sl_projection(state, outcomes=40.0)
    eta = sent.eta(0.9)
    got = codec.decoder(Projection)(codec.loads(codec.dumps(codec.encoder(Projection)(sent))))
    assert got == sent
    assert got.exits is not None and got.exits.worked_out == 0
    assert got.eta(0.9) == eta is not None


def test_steps_pickle_and_copy_as_their_arguments() -> None:
    """Steps already read pickle and deep-copy (a snapshot may be either) as their arguments: equal,
    with none worked out, and the same steps when read."""
    read = ExitSteps(STRAGGLING, TARGET, SHORT, 300.0)
    whole = tuple(read)
    for again in (pickle.loads(pickle.dumps(read)), copy.deepcopy(read)):
        assert again == read and again.worked_out == 0
        assert tuple(again) == whole
