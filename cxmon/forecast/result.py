"""Forecast: a queue's staffing forecast as of one tick, as the snapshot carries it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxmon.config import Threshold
from cxmon.forecast.breach import Projection
from cxmon.forecast.figures import QueueFigures
from cxmon.measures import MEASURES, format_value


@dataclass(frozen=True, slots=True)
class Forecast:
    """A queue's staffing forecast as of one tick."""

    ts: float
    arrival_rate: float | None
    """Contacts per second over the arrival span."""
    sure_rate: float | None
    """The rate the confident projections use (see cxmon.forecast.live.SURE)."""
    aht: float | None
    patience: float | None
    """Mean patience, seconds (None: too few abandons; Erlang C)."""
    agents: int | None
    agents_from: str
    """``staffing`` (events) or ``config``."""
    target: float
    figures: QueueFigures | None
    projections: tuple[Projection, ...] = ()
    goal: float | None = None
    """The service-level breach line the step holds (e.g. 0.8), if it has one."""
    agents_needed: int | None = None
    """The fewest agents that keep every modelled threshold clear of its breach."""
    note: str = ""
    """Why there is no forecast yet ("warming up", "no staffing figures"), else empty."""

    @property
    def model(self) -> str | None:
        """``erlang_c``, ``erlang_a`` or None."""
        return None if self.figures is None else self.figures.model

    def projection(self, th: Threshold) -> Projection | None:
        """The model's projection for a threshold (None: the model does not cover its measure)."""
        for p in self.projections:
            if p.measure == th.measure and p.window == th.window and p.breach == th.breach:
                return p
        return None

    def summary(self) -> str:
        """One line: "needs 3 more agents to hold 80/20" (naming the threshold that needs them, see
        :meth:`short_for`; "needs 3 more agents" when several do), or "14 agents, 12 needed"."""
        if self.figures is None or self.agents is None:
            return self.note or "no forecast"
        if self.agents_needed is None:
            return f"{self.agents} agents"
        more = self.agents_needed - self.agents
        if more > 0:
            hold = self.short_for()
            return f"needs {more} more agent{'s' if more > 1 else ''}" + (
                "" if hold is None else f" to hold {hold}"
            )
        return f"{self.agents} agents, {self.agents_needed} needed"

    def short_for(self) -> str | None:
        """The threshold the agents needed beyond those staffed are for, named as the floor reads
        it ("80/20", "abandon rate 8%", "wait p90 2m"): the one threshold that needs all of them.
        None when staffed enough, when several thresholds need that many, or when none is known to.
        """
        if self.agents is None or self.agents_needed is None or self.agents_needed <= self.agents:
            return None
        names = {self.threshold_name(p) for p in self.projections if p.agents_needed == self.agents_needed}
        return names.pop() if len(names) == 1 else None

    def threshold_name(self, p: Projection) -> str:
        """A threshold as the floor names it: a service level as goal/target ("80/20"), any other
        measure by its label and breach ("abandon rate 8%")."""
        if p.measure == "service_level":
            return f"{p.breach * 100:.0f}/{self.target:g}"
        return f"{MEASURES[p.measure].label} {format_value(p.measure, p.breach)}"

    def minute_figures(self) -> dict[str, float]:
        """The figures stored with the minute figures (``forecast_*`` keys)."""
        out: dict[str, float] = {}
        f = self.figures
        if f is None:
            return out
        for name, value in (
            ("forecast_service_level", f.service_level),
            ("forecast_p_abandon", f.p_abandon),
            ("forecast_asa", f.asa),
            ("forecast_occupancy", f.occupancy),
            ("forecast_arrival_rate", self.arrival_rate),
            ("forecast_aht", self.aht),
            ("forecast_agents", None if self.agents is None else float(self.agents)),
            ("forecast_agents_needed", None if self.agents_needed is None else float(self.agents_needed)),
        ):
            if value is not None and math.isfinite(value):
                out[name] = value
        return out
