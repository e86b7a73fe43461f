"""Where the contacts waiting now take a window's service level: a projection from the queue's state.

The steady-state models say where a queue settles; a window's service level moves first with the
contacts already in queue. While anyone waits every agent is busy, so answers come as a Poisson stream
of N ÷ handle time a second and go to the longest-waiting contact first, and each waiting contact
leaves at 1 ÷ patience a second (Erlang A's exponential patience). Followed in small steps as expected
amounts (the fluid limit of the M/M/N+M queue), with the gamma-distributed time to each contact's
answer for who is answered within the target, this says how many answers in time, late answers and
abandons each coming minute brings: those who have waited past the target already are late answers or
abandons for certain, and arrivals join the back of the queue while there is one. Arrivals that find
an agent free fare as the steady state says.

Expected amounts leave out the queue's chance of emptying now and then: near what the agents can take,
the projection's share answered in time runs up to about a tenth below a simulation's (it warns a
little early), and a draining queue's a little above (tests/forecast/test_transient.py measures both).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cxmon.forecast.gamma import log_gamma_p_uncached
from cxmon.measures import service_level_denominator

STEP = 5.0
"""Seconds per step of the projection."""


@dataclass(frozen=True, slots=True)
class Exits:
    """Expected exits from the queue from the projection's start until ``at`` seconds later."""

    at: float
    within: float
    """Answered within the target."""
    answered: float
    abandoned: float
    short: float
    """Abandoned quicker than ``short_abandon`` (part of ``abandoned``)."""

    def denominator(self, formula: str) -> float:
        """What the answers within the target are divided by under a service-level formula."""
        return service_level_denominator(formula, self.answered, self.abandoned, self.short)


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue as the projection starts from it."""

    waits: tuple[float, ...]
    """How long each contact in queue has waited so far, seconds, longest first."""
    agents: int
    aht: float
    patience: float | None
    """Mean patience, seconds (None: nobody abandons)."""
    arrival_rate: float
    """Contacts per second arriving from now on."""
    settled: float
    """Share answered within the target of the arrivals that find an agent free (the steady
    state's)."""


def project(state: QueueState, target: float, short_abandon: float, horizon: float) -> tuple[Exits, ...]:
    """Expected exits from ``state`` after each STEP up to ``horizon`` seconds (cumulative).

    Args:
        state: the contacts waiting now, the agents, handle time, patience and arrival rate.
        target: the service-level target, seconds.
        short_abandon: abandons quicker than this are short ones.
        horizon: seconds to project.

    Returns:
        One :class:`Exits` per step, in time order.
    """
    return tuple(_walk(state, target, short_abandon, horizon))


@dataclass(frozen=True, slots=True)
class ExitSteps:
    """:func:`project`'s steps, each worked out when it is first read and kept.

    A projection from the queue's state is read only where someone asks how soon its window
    breaches, and only up to the first step past the breach: a backfill works out a forecast a
    minute per queue and reads hardly any of them. Iterating gives the steps :func:`project` gives,
    in order; a second iteration replays the kept steps and goes on from the last. Its fields are
    :func:`project`'s arguments, so two made from the same ones are equal whatever has been read,
    and the hub sends the arguments, not the steps. Several threads may read one (the exporter
    renders off the event loop): the walk is advanced under a lock.
    """

    state: QueueState
    target: float
    short_abandon: float
    horizon: float
    _kept: list[Exits] = field(default_factory=list, init=False, repr=False, compare=False)
    _walk: list[Iterator[Exits]] = field(default_factory=list, init=False, repr=False, compare=False)
    """The walk once begun (a list so the frozen dataclass can start it)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __reduce__(self) -> tuple[type[ExitSteps], tuple[QueueState, float, float, float]]:
        # Pickled and copied as its arguments: the steps are worked out again as read.
        return ExitSteps, (self.state, self.target, self.short_abandon, self.horizon)

    @property
    def worked_out(self) -> int:
        """How many steps have been worked out so far."""
        return len(self._kept)

    def __iter__(self) -> Iterator[Exits]:
        kept = self._kept
        i = 0
        while True:
            if i < len(kept):
                yield kept[i]
                i += 1
                continue
            with self._lock:
                if i < len(kept):  # another reader worked it out meanwhile
                    continue
                if not self._walk:
                    self._walk.append(_walk(self.state, self.target, self.short_abandon, self.horizon))
                step = next(self._walk[0], None)
                if step is None:
                    return
                kept.append(step)


def _walk(state: QueueState, target: float, short_abandon: float, horizon: float) -> Iterator[Exits]:
    """The steps of :func:`project`, one at a time."""
    capacity = state.agents / state.aht if state.aht > 0 else 0.0
    leave = 1.0 / state.patience if state.patience else 0.0
    # The queue as cohorts, front first: [age, amount, age when it joined the projection, answers
    # from the queue by then, the answer it waits for counted from then (0: not reached yet), the
    # share of it answered in time (worked out once, when it reaches the front)].
    queue = [[w, 1.0, w, 0.0, 0.0, 0.0] for w in sorted(state.waits, reverse=True)]
    from_queue = within = answered = abandoned = short = 0.0
    t = 0.0
    while t < horizon - 1e-9:
        dt = min(STEP, horizon - t)
        if leave:
            kept = math.exp(-leave * dt)
            for cohort in queue:
                gone = cohort[1] * (1.0 - kept)
                cohort[1] -= gone
                abandoned += gone
                # Leaving part way through the step: short if it had not waited short_abandon by then.
                if cohort[0] + dt / 2.0 < short_abandon:
                    short += gone
        served = capacity * dt
        while queue and served > 0.0:
            cohort = queue[0]
            take = min(served, cohort[1])
            cohort[1] -= take
            served -= take
            if cohort[4] == 0.0:
                cohort[4] = from_queue - cohort[3] + 1.0  # the answers before it since, and its own
                cohort[5] = _on_time(cohort[2], cohort[4], capacity, target)
            within += take * cohort[5]
            from_queue += take
            answered += take
            if cohort[1] <= 1e-12:
                queue.pop(0)
        for cohort in queue:
            cohort[0] += dt
        # Arrivals: agents left free this step take them at once (they fare as the steady state
        # says); the rest join the back of the queue, half a step in on average.
        coming = state.arrival_rate * dt
        at_once = min(coming, served)
        answered += at_once
        within += at_once * state.settled
        if coming - at_once > 1e-12:
            queue.append([dt / 2.0, coming - at_once, 0.0, from_queue, 0.0, 0.0])
        t += dt
        yield Exits(t, within, answered, abandoned, short)


def _on_time(waited: float, answers: float, capacity: float, target: float) -> float:
    """The share of contacts that had waited ``waited`` when they joined the projection and are
    answered at the ``answers``-th answer from the queue after that that are answered within
    ``target``.

    Every agent is busy while anyone waits, so answers come as a Poisson stream of ``capacity`` a
    second and the time to that answer is gamma distributed: the share is P(answers, capacity ×
    (target − waited)). Past the target already: none.
    """
    left = target - waited
    if left <= 0.0 or capacity <= 0.0:
        return 0.0
    # Uncached: these arguments seldom come twice, and the cache serves the steady-state models.
    return math.exp(log_gamma_p_uncached(answers, capacity * left))


def window_share(
    value: float | None, outcomes: float, window: float, exits: Exits, formula: str
) -> float | None:
    """A service-level window's value ``exits.at`` seconds on: the part of its present ``outcomes``
    still inside it (they leave evenly), plus the projected exits.

    Args:
        value: the window's service level now (None: no figure).
        outcomes: the contacts its denominator counts now.
        window: the window's length, seconds.
        exits: the projected exits until then.
        formula: the service-level formula in use.
    """
    kept = max(0.0, 1.0 - exits.at / window) * (outcomes if value is not None else 0.0)
    good = (value or 0.0) * kept + exits.within
    total = kept + exits.denominator(formula)
    return good / total if total > 0 else None


def waits_of(arrivals: Sequence[float], now: float) -> tuple[float, ...]:
    """Waits so far of contacts that arrived at ``arrivals``, longest first."""
    return tuple(sorted((max(0.0, now - a) for a in arrivals), reverse=True))
