"""Erlang A against a long discrete-event simulation: the simulator's own M/M/N+M queues.

The simulator (collectors/simulator) draws exponential handle times (``handle_dist = "exponential"``)
and exponential patience, answers first come first served, and keeps the agents constant when no
incident runs: an M/M/N+M queue, so its long-run shares must be Erlang A's, under load and in
overload alike. Each tolerance is four batch-means standard errors of the run itself (waits in a
loaded queue are correlated through busy periods, so calls are not independent samples), and each
test checks that this tolerance is tight enough to tell the model from its neighbours.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pytest

from collectors.simulator import QueueSpec, SimOptions, simulate_events
from cxmon.events import EventKind
from cxmon.forecast import QueueFigures, Workload, erlang_a

HOURS = 300.0
BATCHES = 25
TARGET = 20.0


@dataclass(frozen=True)
class Case:
    """One load: arrivals per hour, AHT, mean patience, agents (seconds)."""

    per_hour: float
    aht: float
    patience: float
    agents: int

    @property
    def work(self) -> Workload:
        return Workload(self.per_hour / 3600, self.aht, self.patience)


CASES = {
    "under": Case(200.0, 180.0, 120.0, 12),  # 10 E on 12
    "critical": Case(240.0, 180.0, 120.0, 12),  # 12 E on 12
    "overload": Case(360.0, 180.0, 120.0, 12),  # 18 E on 12: Erlang C has no answer
}


@dataclass(frozen=True)
class Outcome:
    """Per contact: arrival time, whether it waited, was answered, and its wait."""

    arrived: float
    answered: bool
    wait: float


def run(case: Case, seed: int) -> list[Outcome]:
    """Every contact of a long seeded run, in arrival order (those still waiting at the end left out)."""
    queue = QueueSpec(
        name="q",
        channel="voice",
        agents=case.agents,
        arrivals_per_hour=case.per_hour,
        handle_mean=case.aht,
        handle_dist="exponential",
        patience_mean=case.patience,
        profile_amplitude=0.0,
    )
    arrived: dict[str, float] = {}
    out: list[Outcome] = []
    for e in simulate_events(SimOptions(queues=(queue,), seed=seed), 0.0, HOURS * 3600):
        if e.kind is EventKind.ARRIVED:
            arrived[e.contact_id] = e.ts
        elif e.kind in (EventKind.ANSWERED, EventKind.ABANDONED):
            t = arrived.pop(e.contact_id, None)
            if t is not None:
                out.append(Outcome(t, e.kind is EventKind.ANSWERED, e.wait or 0.0))
    out.sort(key=lambda o: o.arrived)
    return out


@pytest.fixture(scope="module", params=list(CASES))
def outcomes(request: pytest.FixtureRequest) -> tuple[Case, list[Outcome]]:
    """One load and its run."""
    case = CASES[request.param]
    return case, run(case, seed=11)


def batch_means(outcomes: list[Outcome], figure: str) -> tuple[float, float]:
    """The run's figure and its batch-means standard error (BATCHES batches by arrival time)."""
    size = len(outcomes) // BATCHES
    values = []
    for b in range(BATCHES):
        values.append(measure(outcomes[b * size : (b + 1) * size], figure))
    return measure(outcomes, figure), statistics.stdev(values) / math.sqrt(BATCHES)


def measure(outcomes: list[Outcome], figure: str) -> float:
    """One figure over a set of contacts (every share of all arrivals)."""
    n = len(outcomes)
    if figure == "p_wait":
        return sum(1 for o in outcomes if not o.answered or o.wait > 0) / n
    if figure == "p_abandon":
        return sum(1 for o in outcomes if not o.answered) / n
    if figure == "service_level":
        return sum(1 for o in outcomes if o.answered and o.wait <= TARGET) / n
    answered = [o.wait for o in outcomes if o.answered]
    return sum(answered) / len(answered)


def model(case: Case, agents: int | None = None) -> QueueFigures:
    """Erlang A for the case (or for the same load on another number of agents)."""
    return erlang_a(case.work, case.agents if agents is None else agents, TARGET)


@pytest.mark.parametrize("figure", ["p_wait", "p_abandon", "service_level", "asa"])
def test_simulated_figure_matches_erlang_a(outcomes: tuple[Case, list[Outcome]], figure: str) -> None:
    """The simulated share (or ASA) is within four batch-means standard errors of Erlang A's, and one
    agent more or less moves Erlang A's figure by more than that tolerance."""
    case, run_outcomes = outcomes
    assert len(run_outcomes) > 0.95 * case.per_hour * HOURS
    value, se = batch_means(run_outcomes, figure)
    key = "asa" if figure == "asa" else figure
    expected = getattr(model(case), key)
    tolerance = 4 * se
    assert value == pytest.approx(expected, abs=tolerance)
    for neighbour in (case.agents - 1, case.agents + 1):
        assert abs(getattr(model(case, neighbour), key) - expected) > tolerance
