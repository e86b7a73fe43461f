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

import functools
import math
from typing import Final, NamedTuple

from cxmon.forecast.erlang_c import erlang_b
from cxmon.forecast.figures import QueueFigures, Workload
from cxmon.forecast.gamma import log_gamma_p, log_gamma_p_uncached

_TAIL: Final = 40.0
"""Stop a series once its terms are e^−40 below its largest (far under double precision)."""
_TAIL_SHARE: Final = math.exp(-_TAIL)
_HUGE_BITS: Final = 800
_HUGE: Final = 2.0**_HUGE_BITS
_UNHUGE: Final = 2.0**-_HUGE_BITS
_LN2: Final = math.log(2.0)
_MAX_TERMS: Final = 10_000_000
_MAX_STEPS: Final = 100
"""Newton steps before :func:`erlang_a_wait_crossing` gives up (it takes a handful)."""
_LONGEST: Final = 1e10
"""Seconds past which a crossing is reported as +inf: no wait search looks that far."""


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
    The sum is kept as a plain float divided by 2^k (k grows by 800 whenever the terms pass 2^800,
    an exact scaling), so a term costs a few multiplications rather than a logarithm and an
    exponential; it agrees with the sum of logarithms to about 1e-14 (tests/forecast/test_erlang_a.py
    holds it to 1e-12).
    """
    term_t = 1.0  # t_j, divided by 2^scaled
    harmonic = 1.0 / (a + 1.0)
    total = best = a / (a + 1.0) * harmonic
    scaled = 0
    # Constants bound locally, a + j + 1 worked out once, and the end's bound (best · e^−40)
    # worked out when the best term changes rather than at every term (the same sums and the same
    # comparisons as written out): this series is most of the ASA's work.
    huge, unhuge, tail_share, peak = _HUGE, _UNHUGE, _TAIL_SHARE, x - a
    cutoff = best * tail_share
    for j in range(1, _MAX_TERMS + 1):
        after = a + j
        term_t *= x / after
        after += 1.0
        harmonic += 1.0 / after
        term = term_t * (a / after) * harmonic
        total += term
        if term > best:
            best = term
            if best > huge:
                term_t *= unhuge
                total *= unhuge
                best *= unhuge
                scaled += _HUGE_BITS
            cutoff = best * tail_share
        # Past the peak (x < a + j) the terms fall at least geometrically.
        elif term < cutoff and j > peak:
            return math.log(total) + scaled * _LN2
    raise ArithmeticError(f"answered-wait series did not converge (a={a}, x={x})")


class _Chain(NamedTuple):
    """The chain's weights for one workload and number of agents, in logarithms: what every figure
    and every point of the waiting-time tail share (a tuple: one is made at every look of a search
    for the agents needed)."""

    theta: float
    """1 / patience."""
    a: float
    """Nμ/θ."""
    x: float
    """λ/θ."""
    log_b: float
    """Erlang B: the state N's weight among the states up to N."""
    log_free: float
    """The states below N, relative weight."""
    log_p: float
    """log P(a, x)."""
    log_s: float
    """The queue's share relative to the state N."""
    log_z: float
    """The normalising sum."""


@functools.lru_cache(maxsize=1024)
def _chain(work: Workload, agents: int) -> _Chain | None:
    """The chain's weights for ``agents`` ≥ 1 on ``work`` (arrivals > 0, a patience); None where every
    agent busy is rarer than the smallest float (nobody waits)."""
    assert work.patience is not None
    theta = 1.0 / work.patience
    a = agents / work.aht / theta
    x = work.arrival_rate / theta
    blocking = erlang_b(agents, work.load)
    if blocking == 0.0:
        return None
    log_b = math.log(blocking)
    log_free = math.log1p(-blocking)
    log_p = log_gamma_p(a, x)
    log_s = math.log(a) + x - a * math.log(x) + math.lgamma(a) + log_p
    log_z = _logaddexp(log_free, log_b + log_s)
    return _Chain(theta, a, x, log_b, log_free, log_p, log_s, log_z)


def _log_answered(chain: _Chain) -> tuple[float, float]:
    """(log P(a + 1, x), log R): R the queue's answered share relative to the state N."""
    a, x = chain.a, chain.x
    log_p_full = log_gamma_p(a + 1.0, x)
    return log_p_full, math.log(a) + x - (a + 1.0) * math.log(x) + math.lgamma(a + 1.0) + log_p_full


def _wait_abandon(chain: _Chain, log_r: float) -> tuple[float, float]:
    """(P(wait), P(abandon)), before either is kept inside [0, 1]."""
    p_wait = math.exp(chain.log_b + chain.log_s - chain.log_z)
    return p_wait, p_wait * -math.expm1(min(0.0, log_r - chain.log_s))


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
    chain = _chain(work, agents)
    if chain is None:
        # Every agent busy is rarer than the smallest float: nobody waits.
        return QueueFigures("erlang_a", agents, load, target, 0.0, 0.0, 1.0, 0.0, load / agents)
    log_p_full, log_r = _log_answered(chain)
    p_wait, p_abandon = _wait_abandon(chain, log_r)
    service_level = _service_level(chain, log_p_full, log_r, target)

    mean_wait: float | None = None
    if asa:
        log_b, log_free = chain.log_b, chain.log_free
        log_answered = _logaddexp(log_free, log_b + log_r)
        mean_wait = math.exp(log_b + _log_answered_wait(chain.a, chain.x) - log_answered) / chain.theta
    occupancy = min(1.0, load * (1.0 - p_abandon) / agents)
    return QueueFigures(
        "erlang_a",
        agents,
        load,
        target,
        min(1.0, p_wait),
        max(0.0, min(1.0, p_abandon)),
        service_level,
        mean_wait,
        occupancy,
    )


def _service_level(chain: _Chain, log_p_full: float, log_r: float, target: float) -> float:
    """The share answered within ``target`` (kept inside [0, 1]), from :func:`_log_answered`'s
    (log P(a + 1, x), log R)."""
    log_z = chain.log_z
    p_free = math.exp(chain.log_free - log_z)
    answered_queued = math.exp(chain.log_b + log_r - log_z)
    later = (
        math.exp(log_gamma_p(chain.a + 1.0, chain.x * math.exp(-chain.theta * target)) - log_p_full)
        if target
        else 1.0
    )
    return max(0.0, min(1.0, p_free + answered_queued * (1.0 - later)))


def erlang_a_service_level(work: Workload, agents: int, target: float) -> float:
    """Return the service level for ``agents`` on ``work``, as :func:`erlang_a` gives it, without
    the figures it does not need: a search for the agents a service level needs reads nothing else.

    Raises:
        ValueError: the workload has no patience, or a figure is not positive where it must be.
    """
    _check_patience(work)
    if work.aht <= 0 or work.arrival_rate < 0 or agents < 0 or target < 0:
        raise ValueError("Erlang A needs aht > 0, arrival rate ≥ 0, agents ≥ 0 and target ≥ 0")
    if work.arrival_rate == 0:
        return 1.0
    if agents == 0:
        return 0.0
    chain = _chain(work, agents)
    if chain is None:
        return 1.0
    log_p_full, log_r = _log_answered(chain)
    return _service_level(chain, log_p_full, log_r, target)


def erlang_a_abandon(work: Workload, agents: int) -> float:
    """Return P(abandon) for ``agents`` on ``work``, as :func:`erlang_a` gives it, without the
    figures it does not need (the service level's incomplete gamma function, the ASA): a search
    for the agents an abandon rate needs reads nothing else.

    Raises:
        ValueError: the workload has no patience, or a figure is not positive where it must be.
    """
    _check_patience(work)
    if work.aht <= 0 or work.arrival_rate < 0 or agents < 0:
        raise ValueError("Erlang A needs aht > 0, arrival rate ≥ 0 and agents ≥ 0")
    if work.arrival_rate == 0:
        return 0.0
    if agents == 0:
        return 1.0
    chain = _chain(work, agents)
    if chain is None:
        return 0.0
    _, p_abandon = _wait_abandon(chain, _log_answered(chain)[1])
    return max(0.0, min(1.0, p_abandon))


def _check_patience(work: Workload) -> float:
    if work.patience is None or work.patience <= 0:
        raise ValueError("Erlang A needs a mean patience > 0")
    return work.patience


def erlang_a_wait_exceeds(work: Workload, agents: int, seconds: float) -> float:
    """Return P(wait > ``seconds``) for an arrival: it finds every agent busy, and neither an agent
    nor its own patience has ended the wait by then (the wait of every contact that leaves the queue).

    Raises:
        ValueError: the workload has no patience.
    """
    patience = _check_patience(work)
    if work.arrival_rate <= 0:
        return 0.0
    if agents == 0:
        return math.exp(-seconds / patience)
    chain = _chain(work, agents)
    if chain is None:
        return 0.0
    theta, a, x = chain.theta, chain.a, chain.x
    decay = math.exp(-theta * seconds)
    later = log_gamma_p(a, x * decay) - chain.log_p if seconds else 0.0
    return math.exp(chain.log_b + chain.log_s - chain.log_z - theta * seconds + later)


def erlang_a_wait_crossing(
    work: Workload, agents: int, tail: float, width: float
) -> tuple[float, float] | None:
    """Return an interval no wider than ``width`` (seconds) holding the wait t at which
    P(wait > t) (:func:`erlang_a_wait_exceeds`) falls to ``tail``.

    Newton's method on the tail's logarithm, g(t) = log P(wait > t) − log ``tail``: with
    y = x·e^{−θt} and h = y·p(a, y)/P(a, y) (p the gamma density), g′(t) = −θ·(1 + h). The
    logarithm is concave in t (the gamma distribution's log is log-concave), so every tangent lies
    above g — its zero is past the crossing — and every chord between a point before the crossing
    and one past it lies below g — its zero is before the crossing. The interval starts at
    [0, the zero of the tangent at 0 or of the bound P(a, y) ≤ y^a/Γ(a + 1), the nearer], and each
    step evaluates g at its upper end: the tangent there gives the next upper end (Newton's steps
    from above, which shrink quadratically) and the chord to the last point before the crossing the
    next lower end. Each step costs one incomplete gamma function.

    Args:
        work: arrival rate, handle time and mean patience.
        agents: agents handling the queue.
        tail: the share of arrivals still waiting, 0 < tail < 1.
        width: seconds; the interval returned is no wider.

    Returns:
        (low, high), low ≤ crossing ≤ high ((0, 0) when no more than ``tail`` wait at all;
        high +inf when the crossing is past 1e10 s), or None if the steps did not settle (the
        caller then evaluates the tail itself).

    Raises:
        ValueError: the workload has no patience.
    """
    patience = _check_patience(work)
    if work.arrival_rate <= 0:
        return 0.0, 0.0
    if agents == 0:
        # P(wait > t) = e^{−t/patience}.
        crossing = max(0.0, -patience * math.log(tail))
        return crossing, crossing
    chain = _chain(work, agents)
    if chain is None:
        return 0.0, 0.0
    theta, a, x, log_p = chain.theta, chain.a, chain.x, chain.log_p
    base = chain.log_b + chain.log_s - chain.log_z - math.log(tail)
    if base <= 0.0:
        return 0.0, 0.0
    lgamma_a = math.lgamma(a)
    log_x = math.log(x)
    slope = theta * (1.0 + math.exp(a * log_x - x - lgamma_a - log_p))
    bound = (base - log_p + a * log_x - math.lgamma(a + 1.0)) / (theta * (1.0 + a))
    low = 0.0
    before, g_before = 0.0, base  # the last point seen before the crossing
    high = min(base / slope, bound)
    halve = False
    for _ in range(_MAX_STEPS):
        if not high - low > width:  # (not: a NaN ends the search too)
            if low <= high:
                return low, high
            # Rounding in the last chord can put its zero a hair past the tangent's.
            return (high, low) if high < low else None
        t = (low + high) / 2.0 if halve else high
        y = x * math.exp(-theta * t)
        if y <= 0.0:
            # x·e^{−θt} underflowed: nobody waits that long.
            high, halve = t, True
            continue
        log_p_t = log_gamma_p_uncached(a, y)
        g = base - theta * t + (log_p_t - log_p)
        following = t + g / (theta * (1.0 + math.exp(a * math.log(y) - y - lgamma_a - log_p_t)))
        halve = False
        if g > 0.0:
            if t > _LONGEST:
                return _LONGEST, math.inf
            low = before = t
            g_before = g
            high = min(high, following) if t < high else following
        else:
            low = max(low, before + g_before * (t - before) / (g_before - g))
            high = min(t, following)
    return None
