"""Thresholds against the queueing model: the fewest agents that keep a forecast's thresholds clear of
their breach, the arrival rate at which they breach with the agents there are, and the model's
answers both ask for (cached: one forecast asks about the same workload and agent counts again and
again)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Final

from cxmon.config import Threshold
from cxmon.forecast import staffing
from cxmon.forecast.figures import Workload
from cxmon.forecast.result import Forecast

MAX_AGENTS_SEARCH: Final = 100_000
BREAKING_PRECISION: Final = 0.005
"""Relative precision of the breaking rate's search (:func:`breaking_rate`)."""
BREAKING_CEILING: Final = 8.0
"""The breaking rate is looked for up to this many times the agents' capacity."""
QUANTILES: Final = {"wait_p50": 0.5, "wait_p90": 0.9, "wait_p99": 0.99}
"""The wait percentiles the model projects, and their quantiles."""

# One forecast asks the model about the same workload and agent counts again and again (every
# threshold's search for the agents needed starts from the agents there are): an answer depends on
# nothing else, so each is worked out once.
evaluate = functools.lru_cache(maxsize=4096)(staffing.evaluate)
wait_quantile = functools.lru_cache(maxsize=4096)(staffing.wait_quantile)
wait_exceeds = functools.lru_cache(maxsize=4096)(staffing.wait_exceeds)
abandon_share = functools.lru_cache(maxsize=4096)(staffing.abandon_share)
service_level = functools.lru_cache(maxsize=4096)(staffing.service_level)


def projector(
    measure: str, work: Workload, target: float, model: str, formula: str = "incl_abandons"
) -> Callable[[int], float] | None:
    """The measure's steady-state value as a function of the agents (None: the model says nothing).

    A service level is the share of all arrivals answered within ``target`` (what the window's
    ``incl_abandons`` formula counts, and what the transient projection reads); under
    ``answered_only`` it is the share of the answered ones, as the window's figure is.
    """
    if measure == "service_level":
        if formula == "answered_only" and model == "erlang_a":
            return lambda n: _answered_share(work, n, target)
        return lambda n: _or(service_level(work, n, target), 0.0)
    if measure == "asa":
        return lambda n: _or(evaluate(work, n, target).asa, math.inf)
    if measure == "abandon_rate":
        if model != "erlang_a":
            # Too few abandons to know the patience: Erlang C, where nobody abandons. A queue going
            # bad shows in its service level first; a trend on a handful of abandons is noise.
            return lambda n: 0.0
        return lambda n: _or(abandon_share(work, n), 1.0)
    q = QUANTILES.get(measure)
    if q is not None:
        return lambda n: _or(wait_quantile(work, n, q), math.inf)
    return None


def clear_of(th: Threshold, project: Callable[[int], float], work: Workload) -> Callable[[int], bool]:
    """Whether a number of agents keeps the projection clear of the threshold's breach.

    A wait percentile is clear of its breach exactly when no more than the percentile's tail wait
    longer than the breach: one look at the model's tail there, where finding the percentile itself
    takes a dozen (a search for the agents needed makes several of these)."""
    q = QUANTILES.get(th.measure)
    if q is not None and th.direction == "above":
        tail, breach = 1.0 - q, th.breach

        def clear(n: int) -> bool:
            p = wait_exceeds(work, n, breach)
            return p is not None and p <= tail

        return clear
    return lambda n: not th.worse(project(n), th.breach)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _answered_share(work: Workload, agents: int, target: float) -> float:
    """The share of the answered contacts answered within ``target`` (0 without a steady state)."""
    within = service_level(work, agents, target)
    gone = abandon_share(work, agents)
    if within is None or gone is None or gone >= 1.0:
        return 0.0
    return within / (1.0 - gone)


def fewest(ok: Callable[[int], bool], start: int, guess: int | None = None) -> int | None:
    """The fewest agents for which ``ok`` holds (it must hold for every count above one that passes),
    looked for from ``guess`` first (see :func:`staffing.fewest`)."""
    return staffing.fewest(ok, start, guess, MAX_AGENTS_SEARCH)


class ForAll:
    """The search for the agents every threshold of a forecast needs, and what it settled."""

    __slots__ = ("checks", "failed", "needed")

    def __init__(self) -> None:
        self.checks: list[Callable[[int], bool]] = []
        """Whether a number of agents keeps each threshold clear (the one that last failed first)."""
        self.failed: dict[int, Callable[[int], bool]] = {}
        """The check that failed at each count looked at (and was not passed)."""
        self.needed: int | None = None
        """The search's answer, once it has one."""

    def clear(self, n: int) -> bool:
        """Whether ``n`` agents pass every check; the check that last failed is asked first (below
        the answer the threshold that needs the most fails, and the rest need not be asked)."""
        order = self.checks
        for i, check in enumerate(order):
            if not check(n):
                self.failed[n] = check
                if i:
                    order.insert(0, order.pop(i))
                return False
        return True

    def settled(self, check: Callable[[int], bool]) -> int | None:
        """The agents ``check`` alone needs where the search settled it, else None: a check that
        failed one below the answer (where every check passes) needs exactly the answer."""
        needed = self.needed
        if needed is not None and self.failed.get(needed - 1) is check:
            return needed
        return None


def needed_search(
    clear: Callable[[int], bool], agents: int, guess: int | None, for_all: ForAll
) -> Callable[[], int | None]:
    """What works out the agents one threshold needs when it is first read: the search for all of
    them's answer where it settled this one, else a search begun at ``guess``, else at that
    answer."""

    def work_out() -> int | None:
        settled = for_all.settled(clear)
        if settled is not None:
            return settled
        return fewest(clear, agents, for_all.needed if guess is None else guess)

    return work_out


def guess(prior: Forecast | None, th: Threshold, load: float) -> int | None:
    """Where to look first for the agents a threshold needs: the previous forecast's answer for
    it, moved with the load, where it was worked out (it is not worked out for this); None
    without one."""
    before = None if prior is None else prior.projection(th)
    if prior is None or before is None or not before.worked_out("agents_needed"):
        return None
    return _moved(before.agents_needed, prior, load)


def last_needed_all(prior: Forecast | None, load: float) -> int | None:
    """Where to look first for the agents every threshold needs: the previous answer, moved with
    the load; None without one."""
    return None if prior is None else _moved(prior.agents_needed, prior, load)


def _moved(needed: int | None, prior: Forecast, load: float) -> int | None:
    """``needed``, an answer of the ``prior`` forecast, moved from its load to ``load`` (see
    :func:`staffing.staffing_guess`)."""
    if needed is None:
        return None
    if prior.arrival_rate is None or prior.aht is None:
        return needed
    return staffing.staffing_guess(needed, prior.arrival_rate * prior.aht, load)


def breaking_rate(
    thresholds: Sequence[Threshold],
    aht: float,
    patience: float | None,
    agents: int,
    target: float,
    model: str,
    floor: float,
    formula: str = "incl_abandons",
) -> float | None:
    """The queue's breaking rate: the lowest arrival rate (per second, within BREAKING_PRECISION) at
    which a threshold's steady-state value is past its breach with these agents, handle time and
    patience (the rate they can hold, not moved by a window's spread: that is the window's noise,
    not the queue's); ``floor`` when it is already; None when no rate up to BREAKING_CEILING times
    the larger of ``floor`` and the agents' capacity is.

    Args:
        thresholds: the modelled thresholds of the series.
        aht: mean handle time, seconds.
        patience: mean patience, seconds (None: Erlang C).
        agents: the agents there are.
        target: the service level's answer target, seconds.
        model: the model the forecast's figures come from.
        floor: the rate the forecast projects at already.
        formula: the service-level formula the windows are worked out with.
    """

    def breaks(rate: float) -> bool:
        work = Workload(rate, aht, patience)
        for th in thresholds:
            project = projector(th.measure, work, target, model, formula)
            if project is not None and th.worse(project(agents), th.breach):
                return True
        return False

    lo = max(floor, 1e-6)
    if breaks(lo):
        return lo
    hi = max(2.0 * lo, agents / aht)
    ceiling = BREAKING_CEILING * hi
    while not breaks(hi):
        lo, hi = hi, 2.0 * hi
        if hi > ceiling:
            return None
    while hi - lo > BREAKING_PRECISION * lo:
        mid = 0.5 * (lo + hi)
        if breaks(mid):
            hi = mid
        else:
            lo = mid
    return hi
