"""Erlang C (M/M/N, nobody abandons): probability of waiting, service level, ASA and occupancy."""

from __future__ import annotations

import functools
import math
from typing import Final

from cxmon.forecast.figures import QueueFigures, Workload

_RUN_MAX: Final = 10_000
"""Agent counts up to this have their Erlang B values kept (see :func:`_erlang_b_run`)."""


@functools.lru_cache(maxsize=64)
def _erlang_b_run(load: float) -> list[float]:
    """B(0), B(1), … for one load, as far as they have been asked for (extended by :func:`erlang_b`).

    A forecast asks for one load at many agent counts (every step of a search for the agents needed,
    every figure): the recursion is run once for the largest, and the rest are read off it.
    """
    return [1.0]


def erlang_b(agents: int, load: float) -> float:
    """Return the Erlang B blocking probability B(N, A) by its recursion (no factorials, no overflow).

    B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)). It underflows to 0 only where the true value is
    below the smallest float.

    Args:
        agents: N ≥ 0.
        load: A ≥ 0, Erlangs.
    """
    if not 0 <= agents <= _RUN_MAX:
        b = 1.0
        for k in range(1, agents + 1):
            ab = load * b
            b = ab / (k + ab)
        return b
    run = _erlang_b_run(load)
    if agents >= len(run):
        b = run[-1]
        for k in range(len(run), agents + 1):
            ab = load * b
            b = ab / (k + ab)
            run.append(b)
    return run[agents]


def erlang_c_wait(agents: int, load: float) -> float | None:
    """Return C(N, A), the probability that an arrival waits, or None when A ≥ N (no steady state).

    C = N·B / (N − A·(1 − B)), with B the Erlang B probability.
    """
    if load <= 0:
        return 0.0
    if load >= agents:
        return None
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


def erlang_c(work: Workload, agents: int, target: float) -> QueueFigures:
    """Erlang C figures for ``agents`` on ``work`` (its patience is ignored: nobody abandons).

    Args:
        work: arrival rate and handle time.
        agents: agents handling the queue.
        target: the service-level target, seconds.

    Returns:
        The figures; all but ``occupancy`` and ``p_abandon`` are None when the load is at or above
        the agents, and ``occupancy`` is then 1.
    """
    load = work.load
    c = erlang_c_wait(agents, load)
    if c is None:
        return QueueFigures("erlang_c", agents, load, target, None, None, None, None, 1.0 if agents else None)
    if load <= 0:
        return QueueFigures("erlang_c", agents, load, target, 0.0, 0.0, 1.0, 0.0, 0.0)
    spare = agents - load
    service_level = 1.0 - c * math.exp(-spare * target / work.aht)
    asa = c * work.aht / spare
    return QueueFigures("erlang_c", agents, load, target, c, 0.0, service_level, asa, load / agents)


def erlang_c_wait_exceeds(work: Workload, agents: int, seconds: float) -> float | None:
    """Return P(wait > ``seconds``) for an arrival: C·e^{−(N − A)·t / AHT}; None when A ≥ N."""
    c = erlang_c_wait(agents, work.load)
    if c is None:
        return None
    return c * math.exp(-(agents - work.load) * seconds / work.aht)


def erlang_c_wait_crossing(work: Workload, agents: int, tail: float) -> float | None:
    """Return the wait t at which P(wait > t) falls to ``tail``: AHT·ln(C/tail) / (N − A), the
    inverse of :func:`erlang_c_wait_exceeds` (0 when C ≤ ``tail``; None when A ≥ N)."""
    c = erlang_c_wait(agents, work.load)
    if c is None:
        return None
    if c <= tail:
        return 0.0
    return work.aht * math.log(c / tail) / (agents - work.load)
