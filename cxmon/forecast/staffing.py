"""Staffing: the model that fits a workload (Erlang A when contacts abandon, else C) and the agents needed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from cxmon.forecast.erlang_a import (
    erlang_a,
    erlang_a_abandon,
    erlang_a_service_level,
    erlang_a_wait_crossing,
    erlang_a_wait_exceeds,
)
from cxmon.forecast.erlang_c import erlang_c, erlang_c_wait, erlang_c_wait_crossing, erlang_c_wait_exceeds
from cxmon.forecast.figures import QueueFigures, Workload

MAX_AGENTS: Final = 1_000_000


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


def service_level(work: Workload, agents: int, target: float) -> float | None:
    """Return the share answered within ``target``, exactly as :func:`evaluate` gives it (None: no
    steady state), without the model's other figures."""
    if work.patience is not None:
        return erlang_a_service_level(work, agents, target)
    return erlang_c(work, agents, target).service_level


def abandon_share(work: Workload, agents: int) -> float | None:
    """Return the share of arrivals that abandon, exactly as :func:`evaluate` gives it (None: no
    steady state), without the model's other figures."""
    if work.patience is not None:
        return erlang_a_abandon(work, agents)
    return None if erlang_c_wait(agents, work.load) is None else 0.0


def wait_exceeds(work: Workload, agents: int, seconds: float) -> float | None:
    """Return P(wait > ``seconds``) for an arrival under the model :func:`evaluate` picks (None: no
    steady state)."""
    if work.patience is not None:
        return erlang_a_wait_exceeds(work, agents, seconds)
    return erlang_c_wait_exceeds(work, agents, seconds)


QUANTILE_RESOLUTION: Final = 0.1
"""Seconds: a wait percentile is the end of the bisection's last interval no wider than this."""
_WIDTH: Final = 1e-3
"""Seconds: how closely the crossing is pinned down before the bisection is played out (a step's
middle inside the interval, rare at this width, is decided by the tail itself)."""
_NEAR: Final = 1e-6
"""Share of the crossing (of a second below one second) added to each side of the interval it lies
in: rounding in the tail's evaluation moves its crossing by far less."""


def wait_crossing(work: Workload, agents: int, tail: float) -> tuple[float, float] | None:
    """Return an interval no wider than a millisecond holding the wait at which P(wait > t) falls to
    ``tail`` under the model :func:`evaluate` picks, worked out directly (Erlang C in closed form,
    Erlang A by Newton's method); None when there is none (Erlang C without a steady state, or
    Newton's steps did not settle)."""
    if work.patience is not None:
        return erlang_a_wait_crossing(work, agents, tail, _WIDTH)
    crossing = erlang_c_wait_crossing(work, agents, tail)
    return None if crossing is None else (crossing, crossing)


def wait_quantile(work: Workload, agents: int, q: float) -> float | None:
    """Return the wait that a share ``q`` of arrivals wait at most (0 when that many never wait).

    It is the answer of a bisection on P(wait > t): from 0 and the first of max(1, AHT)·2ᵏ where
    the tail is down to 1 − ``q``, halved until the interval is no wider than a tenth of a second,
    and its upper end returned (None past 1e9 s). The crossing is worked out first
    (:func:`wait_crossing`) and each step of the bisection decided by which side of it the step's
    middle lies — the decision the tail gives, as the tail falls as the wait grows — so the tail
    itself is evaluated only at a middle that falls in the crossing's interval. The answer is the
    bisection's own, to the last bit.

    Args:
        work: the workload.
        agents: agents handling the queue.
        q: the share, 0 < q < 1 (0.9 for the p90 wait).

    Returns:
        Seconds, or None when the model has no steady state.
    """
    tail = 1.0 - q
    first = wait_exceeds(work, agents, 0.0)
    if first is None:
        return None
    if first <= tail:
        return 0.0
    crossing = wait_crossing(work, agents, tail)
    if crossing is None:
        before = after = math.nan  # every step looks at the tail
    else:
        before = crossing[0] - _NEAR * max(1.0, crossing[0])
        after = crossing[1] + _NEAR * max(1.0, crossing[1])
    # Each step asks whether more than ``tail`` of arrivals wait longer than its wait: yes before the
    # interval, no after it, and inside it (or with no interval: NaN) the tail says. The loops are
    # written out: a call per step would cost as much as the rest of the step.
    high = max(1.0, work.aht)
    while high < before or (not high > after and (wait_exceeds(work, agents, high) or 0.0) > tail):
        high *= 2.0
        if high > 1e9:
            return None
    low = 0.0
    while high - low > QUANTILE_RESOLUTION:
        middle = (low + high) / 2.0
        if middle < before or (not middle > after and (wait_exceeds(work, agents, middle) or 0.0) > tail):
            low = middle
        else:
            high = middle
    return high


def fewest(
    ok: Callable[[int], bool], start: int, guess: int | None = None, limit: int = 100_000
) -> int | None:
    """Return the fewest agents (≥ 0) for which ``ok`` holds, or None where there is none that
    counting up from ``start`` finds (it looks at start + 1, then start + 3, start + 7, … up to
    ``limit``).

    ``ok`` must hold for every count above one that passes, so the answer does not depend on where
    the search begins: it begins at ``guess`` (the last answer for the same question, usually right
    or one off: two looks), else at ``start``, and gallops away from it by doubling steps, then
    bisects.

    Args:
        ok: whether a number of agents is enough.
        start: the agents there are.
        guess: where to look first (None: ``start``).
        limit: the highest count looked at above ``start + 1``.
    """
    # The last count the upward search from ``start`` would look at: an answer above it is None.
    ceiling, step = start + 1, 1
    while ceiling + 2 * step <= limit:
        step *= 2
        ceiling += step
    first = start if guess is None else min(max(guess, 0), ceiling)
    # Steps of 1, 1, 2, 4, …: a guess one too high is then settled in three looks, not four.
    looks = 0
    if ok(first):
        high, step = first, 1
        while high - step >= 0 and ok(high - step):
            high -= step
            looks += 1
            if looks > 1:
                step *= 2
        low = max(-1, high - step)
    else:
        low, step = first, 1
        high = first + 1
        while True:
            if high >= ceiling:
                high = ceiling
                if high <= low or not ok(high):
                    return None
                break
            if ok(high):
                break
            low = high
            looks += 1
            if looks > 1:
                step *= 2
            high = low + step
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle
    return max(high, 0)


def staffing_guess(needed: int, load_then: float, load: float) -> int:
    """Where the agents a goal needs are likely to be now, from what they were at another load:
    square-root staffing, N = A + β·√A, with β kept from the earlier answer (the goal, handle time
    and patience change slowly; the load is what moves).

    Args:
        needed: the agents needed at ``load_then``.
        load_then: the load then, Erlangs.
        load: the load now, Erlangs.
    """
    if load_then <= 0 or load <= 0:
        return needed
    estimate = load + (needed - load_then) / math.sqrt(load_then) * math.sqrt(load)
    return round(estimate) if math.isfinite(estimate) else needed


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
