"""Erlang A (M/M/N+M: exponential patience): waiting, abandonment, service level, ASA, occupancy.

The queue is the birth–death chain with births λ and deaths min(n, N)·μ + max(n − N, 0)·θ (μ = 1/AHT,
θ = 1/patience). With a = Nμ/θ and x = λ/θ, the states above N carry the weights
t_j = x^j / ((a+1)…(a+j)), whose sums have closed forms in the incomplete gamma function:

- S = Σ t_j = a·eˣ·x^−a·γ(a, x): the queue's share relative to the Erlang B state N;
- R = Σ t_j·a/(a+j+1) = a·eˣ·x^−(a+1)·γ(a+1, x): of those, answered (a contact with j ahead is
  answered with probability a/(a+j+1): each move up the queue races its own patience);
- answered within T (the offered wait with j ahead is a sum of exponentials with rates Nμ + iθ,
  whose density sums over j to an integral of e^{xu}(1−u)^a): R·(1 − P(a+1, x·e^{−θT}) / P(a+1, x));
- still waiting after t (offered wait longer than t, and patience too): S·e^{−θt}·P(a, x·e^{−θt}) / P(a, x).

Everything is carried in logarithms, so neither large N nor heavy overload (x ≫ a) overflows; unlike
Erlang C, every load has an answer.
"""

from __future__ import annotations

import math

from cxmon.forecast.erlang_c import erlang_b
from cxmon.forecast.figures import QueueFigures, Workload
from cxmon.forecast.gamma import log_gamma_p

_TAIL = 40.0
"""Stop a series once its terms are e^−40 below its largest (far under double precision)."""
_MAX_TERMS = 10_000_000


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def _log_answered_wait(a: float, x: float) -> float:
    """log Σ_j t_j · a/(a+j+1) · Σ_{i=1..j+1} 1/(a+i): the answered contacts' waits, in units of 1/θ.

    Given j ahead, an answered contact spends a mean 1/(θ(a+i+1)) at each place i = j … 0 of the queue.
    """
    log_x = math.log(x)
    log_t = 0.0
    harmonic = 1.0 / (a + 1.0)
    best = -math.inf
    total = -math.inf
    for j in range(_MAX_TERMS):
        if j:
            log_t += log_x - math.log(a + j)
            harmonic += 1.0 / (a + j + 1.0)
        term = log_t + math.log(a / (a + j + 1.0)) + math.log(harmonic)
        total = _logaddexp(total, term)
        best = max(best, term)
        # Past the peak (x < a + j) the terms fall at least geometrically.
        if j > x - a and term < best - _TAIL:
            return total
    raise ArithmeticError(f"answered-wait series did not converge (a={a}, x={x})")


def erlang_a(work: Workload, agents: int, target: float, asa: bool = True) -> QueueFigures:
    """Erlang A figures for ``agents`` on ``work`` (which must give a patience).

    Args:
        work: arrival rate, handle time and mean patience (exponential).
        agents: agents handling the queue (0 allowed: everyone abandons).
        target: the service-level target, seconds.
        asa: False leaves ``asa`` out (None): its series is most of the work, and a search for
            the agents a service level or abandon rate needs does not read it.

    Returns:
        The figures (never None, except ``asa`` when nobody is answered or it was left out).

    Raises:
        ValueError: the workload has no patience, or a figure is not positive where it must be.
    """
    if work.patience is None or work.patience <= 0:
        raise ValueError("Erlang A needs a mean patience > 0")
    if work.aht <= 0 or work.arrival_rate < 0 or agents < 0 or target < 0:
        raise ValueError("Erlang A needs aht > 0, arrival rate ≥ 0, agents ≥ 0 and target ≥ 0")
    load = work.load
    if work.arrival_rate == 0:
        return QueueFigures("erlang_a", agents, load, target, 0.0, 0.0, 1.0, 0.0, 0.0)
    if agents == 0:
        return QueueFigures("erlang_a", agents, load, target, 1.0, 1.0, 0.0, None, None)
    theta = 1.0 / work.patience
    a = agents / work.aht / theta
    x = work.arrival_rate / theta
    blocking = erlang_b(agents, load)
    if blocking == 0.0:
        # Every agent busy is rarer than the smallest float: nobody waits.
        return QueueFigures("erlang_a", agents, load, target, 0.0, 0.0, 1.0, 0.0, load / agents)
    log_b = math.log(blocking)
    log_free = math.log1p(-blocking)  # the Erlang B states below N, relative weight
    log_x = math.log(x)
    log_s = math.log(a) + x - a * log_x + math.lgamma(a) + log_gamma_p(a, x)
    log_p_full = log_gamma_p(a + 1.0, x)
    log_r = math.log(a) + x - (a + 1.0) * log_x + math.lgamma(a + 1.0) + log_p_full
    log_z = _logaddexp(log_free, log_b + log_s)

    p_wait = math.exp(log_b + log_s - log_z)
    p_abandon = p_wait * -math.expm1(min(0.0, log_r - log_s))
    p_free = math.exp(log_free - log_z)
    answered_queued = math.exp(log_b + log_r - log_z)
    later = math.exp(log_gamma_p(a + 1.0, x * math.exp(-theta * target)) - log_p_full) if target else 1.0
    service_level = p_free + answered_queued * (1.0 - later)

    mean_wait: float | None = None
    if asa:
        log_answered = _logaddexp(log_free, log_b + log_r)
        mean_wait = math.exp(log_b + _log_answered_wait(a, x) - log_answered) / theta
    occupancy = min(1.0, load * (1.0 - p_abandon) / agents)
    return QueueFigures(
        "erlang_a",
        agents,
        load,
        target,
        min(1.0, p_wait),
        max(0.0, min(1.0, p_abandon)),
        max(0.0, min(1.0, service_level)),
        mean_wait,
        occupancy,
    )


def erlang_a_wait_exceeds(work: Workload, agents: int, seconds: float) -> float:
    """Return P(wait > ``seconds``) for an arrival: it finds every agent busy, and neither an agent
    nor its own patience has ended the wait by then (the wait of every contact that leaves the queue).

    Raises:
        ValueError: the workload has no patience.
    """
    if work.patience is None or work.patience <= 0:
        raise ValueError("Erlang A needs a mean patience > 0")
    if work.arrival_rate <= 0:
        return 0.0
    if agents == 0:
        return math.exp(-seconds / work.patience)
    theta = 1.0 / work.patience
    a = agents / work.aht / theta
    x = work.arrival_rate / theta
    blocking = erlang_b(agents, work.load)
    if blocking == 0.0:
        return 0.0
    log_b = math.log(blocking)
    log_s = math.log(a) + x - a * math.log(x) + math.lgamma(a) + log_gamma_p(a, x)
    log_z = _logaddexp(math.log1p(-blocking), log_b + log_s)
    decay = math.exp(-theta * seconds)
    later = log_gamma_p(a, x * decay) - log_gamma_p(a, x) if seconds else 0.0
    return math.exp(log_b + log_s - log_z - theta * seconds + later)
