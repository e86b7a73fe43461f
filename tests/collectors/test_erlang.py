"""The simulator against queueing theory: an M/M/N queue must match the Erlang C formula."""

from __future__ import annotations

import math

import pytest

from collectors.simulator import QueueSpec, SimOptions, simulate_events
from cxmon.events import EventKind

ARRIVALS_PER_HOUR = 120.0
HANDLE_MEAN = 240.0
AGENTS = 10
"""λ = 120/h, 4-minute mean handle: A = 8 Erlangs on 10 agents, ρ = 0.8."""
HOURS = 1250.0
"""About 150,000 calls."""
TARGET = 20.0


def erlang_c(agents: int, load: float) -> float:
    """Probability that a call waits in M/M/N, via the Erlang B recursion (no factorials, no overflow).

    B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)); C = N·B / (N − A·(1 − B)).
    """
    if load >= agents:
        return 1.0
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return agents * b / (agents - load * (1.0 - b))


def erlang_service_level(agents: int, load: float, handle: float, target: float) -> float:
    """P(wait ≤ target) = 1 − C·exp(−(N − A)·target / handle)."""
    return 1.0 - erlang_c(agents, load) * math.exp(-(agents - load) * target / handle)


def erlang_asa(agents: int, load: float, handle: float) -> float:
    """Mean wait of all calls = C·handle / (N − A)."""
    return erlang_c(agents, load) * handle / (agents - load)


@pytest.fixture(scope="module")
def waits() -> list[float]:
    """Waits of every answered call of a long seeded M/M/N run (exponential handle, nobody abandons)."""
    queue = QueueSpec(
        name="mmn",
        channel="voice",
        agents=AGENTS,
        arrivals_per_hour=ARRIVALS_PER_HOUR,
        handle_mean=HANDLE_MEAN,
        handle_dist="exponential",
        profile_amplitude=0.0,
    )
    options = SimOptions(queues=(queue,), seed=1)
    return [
        e.wait or 0.0 for e in simulate_events(options, 0.0, HOURS * 3600) if e.kind is EventKind.ANSWERED
    ]


LOAD = ARRIVALS_PER_HOUR * HANDLE_MEAN / 3600


def test_erlang_c_recursion_matches_the_textbook_sum() -> None:
    """The stable recursion equals the factorial formula where that one can still be computed."""
    for agents, load in [(1, 0.5), (2, 1.5), (10, 8.0), (20, 17.5)]:
        head = sum(load**k / math.factorial(k) for k in range(agents))
        tail = load**agents / math.factorial(agents) * agents / (agents - load)
        assert erlang_c(agents, load) == pytest.approx(tail / (head + tail), rel=1e-12)
    assert 0.0 < erlang_c(500, 480.0) < 1.0  # the factorial form overflows here; the recursion does not


def test_long_run_offers_enough_calls(waits: list[float]) -> None:
    """The run answers about 150,000 calls (at least 145,000), the sample the tolerances assume."""
    assert len(waits) >= 145_000


def test_probability_of_waiting_matches_erlang_c(waits: list[float]) -> None:
    """The share of calls that wait at all is Erlang C's C(10, 8) = 0.409, within ±0.03 absolute.

    Tolerance: batch means (25 batches) of this run put the standard error near 0.007 — waits in a
    loaded queue are strongly correlated through busy periods, so 150,000 calls are worth far fewer
    independent ones — and ±0.03 is about four standard errors. One agent more or less moves C by
    more than 0.16, so the check still tells a right model from a wrong one.
    """
    share = sum(1 for w in waits if w > 0) / len(waits)
    assert share == pytest.approx(erlang_c(AGENTS, LOAD), abs=0.03)


def test_service_level_matches_erlang_c(waits: list[float]) -> None:
    """Answered within 20 s matches 1 − C·e^{−(N−A)T/h} = 0.654, within ±0.03 absolute.

    Tolerance: the batch-means standard error of this figure is about 0.007, so ±0.03 is about four of
    them; with one agent more or less the formula gives 0.81 or 0.40.
    """
    within = sum(1 for w in waits if w <= TARGET) / len(waits)
    assert within == pytest.approx(erlang_service_level(AGENTS, LOAD, HANDLE_MEAN, TARGET), abs=0.03)


def test_average_speed_of_answer_matches_erlang_c(waits: list[float]) -> None:
    """The mean wait matches C·h/(N−A) = 49.1 s, within ±20 %.

    Tolerance: the mean wait is the noisiest figure (long busy periods dominate it); batch means give
    a standard error near 2.4 s (5 %), so ±20 % is about four of them. One agent more or less gives
    19.6 s or 157 s, far outside it.
    """
    asa = sum(waits) / len(waits)
    assert asa == pytest.approx(erlang_asa(AGENTS, LOAD, HANDLE_MEAN), rel=0.20)
