"""Forecast: a queue's staffing forecast as of one tick, as the snapshot carries it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxmon.config import Threshold
from cxmon.forecast.breach import Projection
from cxmon.forecast.figures import QueueFigures


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
        """One line: "needs 3 more agents to hold 80/20", or "14 agents, 12 needed"."""
        if self.figures is None or self.agents is None:
            return self.note or "no forecast"
        if self.agents_needed is None:
            return f"{self.agents} agents"
        more = self.agents_needed - self.agents
        hold = f"{self.goal * 100:.0f}/{self.target:g}" if self.goal is not None else "its thresholds"
        if more > 0:
            return f"needs {more} more agent{'s' if more > 1 else ''} to hold {hold}"
        return f"{self.agents} agents, {self.agents_needed} needed"

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
