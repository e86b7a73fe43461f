"""Time to breach: where a threshold's measure is heading under the model, and how soon it gets there."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from cxmon.forecast.transient import ExitSteps, window_share
from cxmon.measures import MEASURES, format_value
from cxmon.noise import chance_reached, window_breach_chance
from cxmon.units import format_duration

Steady = Callable[[str], Any]
"""Works out one of a projection's ``projected``, ``sure``, ``exits`` and ``risk``, named (see
:meth:`Projection.deferred`)."""

_DEFERRED = ("projected", "sure", "exits", "risk")


@dataclass(frozen=True, slots=True)
class Projection:
    """What the model says about one threshold of a series.

    ``projected``, ``sure`` and ``exits`` may be worked out when first read, each on its own
    (:meth:`deferred`): a backfill's forecast is read every minute for its figures and the agents
    needed, but its projections only where the detector asks how soon a window breaches (a few in
    a hundred for a service level), and then only ``sure`` (``projected`` is shown, where ``sure``
    does not breach, as where the measure is heading).
    """

    measure: str
    window: float
    breach: float
    direction: str
    """``above`` or ``below``, as the threshold's."""
    projected: float
    """The measure's steady-state value under the present arrivals, handle time and agents
    (±inf when the queue grows without bound)."""
    sure: float
    """The same at the arrival rate the span supports with confidence (see live.SURE), or at the rate
    since the arrivals surely rose (cxmon.forecast.change), moved by one
    standard error of the window's value towards the breach for shares (a window of a few dozen
    contacts strays that far from the steady state as a matter of course)."""
    agents: int
    agents_needed: int | None
    """The fewest agents that keep the projection on the right side of ``breach`` (None: unknown)."""
    model: str
    computed: float = 0.0
    """Engine time it was worked out at (the next one comes RECOMPUTE_EVERY later)."""
    waits: tuple[float, ...] = ()
    """How long each contact in queue had waited then, seconds, longest first."""
    exits: ExitSteps | None = None
    """Where those contacts and the next arrivals take the window (cxmon.forecast.transient):
    expected exits after each step, worked out as they are read (:meth:`eta` reads up to the first
    step past the breach); None when nobody waited or the measure is not a service level."""
    outcomes: float = 0.0
    """The contacts the window's service level counted then (its denominator)."""
    formula: str = "excl_short_abandons"
    """The service-level formula the window's value is worked out with."""
    rests_on: str = ""
    """What the confident arrival rate rests on, when it is more than the usual rate ("arrivals
    1.7× usual since 10:42"): said in the reason."""
    risk: tuple[float, float] = (0.0, 0.0)
    """The chance that the window's share is past ``breach`` at any one moment, and how fast the
    chance that it has been grows with the time looked ahead, per second
    (:func:`cxmon.noise.window_breach_outlook`: each contact to come meeting the mark as the model
    says at the confident arrival rate); (0, 0) for a measure that is not a share, or when not
    asked."""
    chance_level: float = 0.0
    """A chance of a breach within :attr:`horizon` (:attr:`chance`) at least this is WATCH (0: not
    asked)."""
    horizon: float = 0.0
    """Seconds ahead :attr:`chance` looks."""
    _steady: Steady | None = field(default=None, init=False, repr=False, compare=False)
    """Works out the deferred fields, until they are (see :meth:`deferred`)."""

    _needed: Callable[[], int | None] | None = field(default=None, init=False, repr=False, compare=False)
    """Works out ``agents_needed``, until it is (see :meth:`deferred`)."""

    @classmethod
    def deferred(
        cls, steady: Steady, needed: Callable[[], int | None] | None = None, **known: Any
    ) -> Projection:
        """A projection whose ``projected``, ``sure`` and ``exits`` are each worked out by
        ``steady`` (called with the field's name) when first read, and ``agents_needed`` by
        ``needed`` (when given) when it is first read; every other field is given in ``known`` (or
        keeps its default).

        Reading any field, comparing, hashing, copying, pickling or encoding it for the hub gives
        what the projection built with those values given would give: ``steady`` and ``needed``
        must give the same values whenever they are called (the model's figures do). Two threads
        reading one at once may both work them out; either's values are kept.
        """
        made = object.__new__(cls)
        # A forecast makes one per threshold: the setter is looked up once, each field once.
        set_field = object.__setattr__
        set_field(made, "_needed", needed)
        for name, default in _GIVEN_NEEDED if needed is None else _GIVEN:
            value = known.pop(name, default)
            if value is MISSING:
                raise TypeError(f"Projection.deferred needs {name}")
            set_field(made, name, value)
        if known:
            raise TypeError(f"Projection.deferred: unknown or deferred fields {sorted(known)}")
        set_field(made, "_steady", steady)
        return made

    if not TYPE_CHECKING:  # mypy would take every attribute of a class with __getattr__ for Any

        def __getattr__(self, name: str) -> Any:
            # Called only when a slot was unset: a deferred field not worked out yet. Another
            # thread may have worked it out since (the fields are set before the work is let go):
            # then it is read as it is now.
            if name == "agents_needed":
                needed = object.__getattribute__(self, "_needed")
                if needed is None:
                    return object.__getattribute__(self, name)
                object.__setattr__(self, name, needed())
                object.__setattr__(self, "_needed", None)
                return object.__getattribute__(self, name)
            if name not in _DEFERRED:
                raise AttributeError(name)
            steady = object.__getattribute__(self, "_steady")
            if steady is None:
                return object.__getattribute__(self, name)
            object.__setattr__(self, name, steady(name))
            if all(map(self.worked_out, _DEFERRED)):
                object.__setattr__(self, "_steady", None)  # let the work (and what it holds) go
            return object.__getattribute__(self, name)

    def worked_out(self, name: str) -> bool:
        """Whether the field ``name`` has its value (a deferred one is worked out when read)."""
        if name == "agents_needed":
            return self._needed is None
        if name not in _DEFERRED:
            return True
        try:
            object.__getattribute__(self, name)
        except AttributeError:
            return False
        return True

    def __reduce__(self) -> tuple[type[Projection], tuple[Any, ...]]:
        # Copied and pickled with its deferred fields worked out (``steady`` may be a closure).
        return Projection, tuple(getattr(self, f.name) for f in fields(self) if f.init)

    def worse(self, value: float, limit: float) -> bool:
        """Whether ``value`` is past ``limit`` in the bad direction."""
        return value > limit if self.direction == "above" else value < limit

    @property
    def chance(self) -> float:
        """The chance that the window's share is past ``breach`` at some moment within
        :attr:`horizon` (see :attr:`risk`)."""
        return window_breach_chance(*self.risk, self.horizon)

    def _chance_eta(self) -> float | None:
        """How soon the chance of a breach reaches :attr:`chance_level`, when it does within the
        horizon; None otherwise (or when not asked)."""
        if self.chance_level <= 0.0:
            return None
        at = chance_reached(*self.risk, self.chance_level)
        return at if at is not None and at <= self.horizon else None

    @property
    def heading(self) -> float:
        """The projection that breaches (the confident one before the measured one), else ``projected``."""
        return self.sure if self.worse(self.sure, self.breach) else self.projected

    @property
    def breaches(self) -> bool:
        """Whether the model projects the measure past ``breach`` surely: even at the confident
        arrival rate. The measured rate alone is not enough, even with contacts waiting: a burst of
        a few minutes is noise on the arrivals, and the contacts it leaves waiting are the queue's
        state, which :attr:`exits` projects."""
        return self.worse(self.sure, self.breach)

    def crossing(self, value: float | None) -> float | None:
        """Seconds until the window's value is projected to cross ``breach``; None when no breach
        is projected.

        The sooner of two views. From the queue's state (:attr:`exits`): the first step at which the
        window, its present contacts leaving evenly and the projected exits coming in, is past
        ``breach``. From the steady state (when :attr:`breaches`): the window of length W fills with
        contacts served under the projected conditions while the older ones leave it, so its value
        moves from ``value`` to ``projected`` in about W: the breach comes after the share
        (value − breach) / (value − projected) of W. Already past: 0. No value yet: half a window.
        """
        soon = self._state_eta(value)
        steady = self._steady_eta(value)
        if soon is None or (steady is not None and steady < soon):
            return steady
        return soon

    def eta(self, value: float | None) -> float | None:
        """Seconds until the rule should be WATCH for this projection; None when nothing says so.

        The projected crossing (:meth:`crossing`), or, sooner or where none is projected, how soon
        the chance of a breach within the horizon (:attr:`chance`) reaches :attr:`chance_level`,
        when it does within the horizon.
        """
        soon = self.crossing(value)
        if soon == 0.0:
            return soon
        risk = self._chance_eta()
        if soon is None or (risk is not None and risk < soon):
            return risk
        return soon

    def _state_eta(self, value: float | None) -> float | None:
        if self.exits is None:
            return None
        for step in self.exits:
            share = window_share(value, self.outcomes, self.window, step, self.formula)
            if share is not None and self.worse(share, self.breach):
                return step.at
        return None

    def _steady_eta(self, value: float | None) -> float | None:
        if not self.breaches:
            return None
        if value is None:
            return self.window / 2.0
        if value == self.breach or self.worse(value, self.breach):
            return 0.0
        heading = self.heading
        if math.isinf(heading):
            return 0.0 if self.direction == "below" else self.window * 0.5
        share = (value - self.breach) / (value - heading)
        return self.window * min(1.0, max(0.0, share))

    def reason(self, eta: float, crossing: float | None = None) -> str:
        """The WATCH reason: "service level projected below 80% in ~6m: 9 waiting, longest 45s, 14
        agents, need 17" (who was waiting when it was worked out, when anyone was).

        Args:
            eta: what :meth:`eta` gave (how soon the rule is WATCH).
            crossing: what :meth:`crossing` gave, where the caller has it: the time named. A steady
                state past the breach is a certain chance of one too, so ``eta`` is 0 while the
                window itself takes a while to cross.
        """
        label = MEASURES[self.measure].label
        where = "below" if self.direction == "below" else "above"
        named = eta if crossing is None else crossing
        when = "now" if named < 1.0 else f"in ~{format_duration(named)}"
        limit = format_value(self.measure, self.breach)
        text = f"{label} projected {where} {limit} {when}: "
        if not self.breaches and eta == self._chance_eta():
            within = format_duration(self.horizon)
            text = f"{label} {limit} at risk: {_odds(self.chance)} chance of a breach within {within}, "
        if self.waits:
            text += f"{len(self.waits)} waiting, longest {format_duration(self.waits[0])}, "
        text += f"{self.agents} agents"
        if self.agents_needed is not None and self.agents_needed > self.agents:
            text += f", need {self.agents_needed}"
        if self.rests_on:
            text += f"; {self.rests_on}"
        return text


def _odds(chance: float) -> str:
    """A chance as a floor manager says it: "1 in 3" (to the nearest whole "in"), or a percentage
    above one half."""
    if chance > 0.5:
        return f"{100.0 * chance:.0f} %"
    return f"1 in {max(2, round(1.0 / chance)) if chance > 0 else 0}"


_GIVEN_NEEDED: tuple[tuple[str, Any], ...] = tuple(
    (f.name, f.default) for f in fields(Projection) if f.init and f.name not in _DEFERRED
)
"""The fields :meth:`Projection.deferred` is given, with their defaults, when it is given the
agents needed ..."""
_GIVEN = tuple(item for item in _GIVEN_NEEDED if item[0] != "agents_needed")
"""... and when it defers them too."""
