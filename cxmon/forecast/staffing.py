"""Staffing: the model that fits a workload (Erlang A when contacts abandon, else C) and the agents needed."""

from __future__ import annotations

import math

from cxmon.forecast.erlang_a import erlang_a, erlang_a_wait_exceeds
from cxmon.forecast.erlang_c import erlang_c, erlang_c_wait_exceeds
from cxmon.forecast.figures import QueueFigures, Workload

MAX_AGENTS = 1_000_000


def evaluate(work: Workload, agents: int, target: float, asa: bool = True) -> QueueFigures:
    """Return the figures for ``agents`` on ``work``: Erlang A when it gives a patience, else Erlang C.

    Args:
        work: arrival rate, handle time and (optionally) mean patience.
        agents: agents handling the queue.
        target: the service-level target, seconds.
        asa: False leaves Erlang A's ASA out (None): its series is most of the model's work.
    """
    if work.patience is not None:
        return erlang_a(work, agents, target, asa)
    return erlang_c(work, agents, target)


def wait_exceeds(work: Workload, agents: int, seconds: float) -> float | None:
    """Return P(wait > ``seconds``) for an arrival under the model :func:`evaluate` picks (None: no
    steady state)."""
    if work.patience is not None:
        return erlang_a_wait_exceeds(work, agents, seconds)
    return erlang_c_wait_exceeds(work, agents, seconds)


def wait_quantile(work: Workload, agents: int, q: float) -> float | None:
    """Return the wait that a share ``q`` of arrivals wait at most (0 when that many never wait).

    Found by bisection to a tenth of a second; None when the model has no steady state.
    """
    tail = 1.0 - q
    first = wait_exceeds(work, agents, 0.0)
    if first is None:
        return None
    if first <= tail:
        return 0.0
    high = max(1.0, work.aht)
    while (wait_exceeds(work, agents, high) or 0.0) > tail:
        high *= 2.0
        if high > 1e9:
            return None
    low = 0.0
    while high - low > 0.1:
        middle = (low + high) / 2.0
        if (wait_exceeds(work, agents, middle) or 0.0) > tail:
            low = middle
        else:
            high = middle
    return high


def meets(figures: QueueFigures, goal: float) -> bool:
    """Whether the figures reach a service-level ``goal`` (a share of all arrivals)."""
    return figures.service_level is not None and figures.service_level >= goal


def agents_needed(work: Workload, target: float, goal: float) -> int:
    """Return the fewest agents whose service level (answered within ``target``) reaches ``goal``.

    The service level grows with every agent added, so the answer is found by doubling, then
    bisecting.

    Args:
        work: the workload.
        target: the service-level target, seconds.
        goal: the share of all arrivals to answer within ``target``, 0 < goal < 1.

    Raises:
        ValueError: ``goal`` outside (0, 1), or no agent count up to MAX_AGENTS reaches it.
    """
    if not 0.0 < goal < 1.0:
        raise ValueError(f"goal must be between 0 and 1 (exclusive), got {goal}")
    if work.arrival_rate <= 0:
        return 0
    low = max(0, math.floor(work.load) - 1) if work.patience is None else 0
    if meets(evaluate(work, low, target), goal):
        return low
    # Invariant: ``low`` misses the goal and ``high`` reaches it.
    step = max(1, math.ceil(math.sqrt(work.load)))
    high = low + step
    while not meets(evaluate(work, high, target), goal):
        low = high
        step *= 2
        high = low + step
        if high > MAX_AGENTS:
            raise ValueError(f"no number of agents up to {MAX_AGENTS:,} reaches the goal")
    while high - low > 1:
        middle = (low + high) // 2
        if meets(evaluate(work, middle, target), goal):
            high = middle
        else:
            low = middle
    return high


def table_range(work: Workload, target: float, *, ceiling: float = 0.995, rows: int = 40) -> range:
    """The agent counts worth a planner's table: from just under the load to where the service level
    reaches ``ceiling`` (at most ``rows`` lines)."""
    # Erlang C has no answer at or below the load; Erlang A does, and overload is worth showing.
    first = math.floor(work.load) + 1 if work.patience is None else max(1, math.floor(work.load * 0.8))
    last = first
    while last - first < rows - 1 and not meets(evaluate(work, last, target), ceiling):
        last += 1
    return range(first, last + 1)
