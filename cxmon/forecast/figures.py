"""What a queueing model says about one queue: the figures every model returns, and the load it was given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Model = Literal["erlang_c", "erlang_a"]


@dataclass(frozen=True, slots=True)
class Workload:
    """The traffic offered to a queue."""

    arrival_rate: float
    """Contacts per second."""
    aht: float
    """Average handle time, seconds."""
    patience: float | None = None
    """Mean patience (exponential), seconds; None when nobody abandons (Erlang C)."""

    @property
    def load(self) -> float:
        """Offered load in Erlangs (arrival rate × handle time)."""
        return self.arrival_rate * self.aht


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """A model's steady-state figures for one queue and one number of agents.

    Every share is of all arrivals. ``None`` means the model has no answer (Erlang C with the load at
    or above the agents: the queue grows without bound).
    """

    model: str
    """``erlang_c`` or ``erlang_a`` (a :data:`Model`)."""
    agents: int
    load: float
    """Offered load, Erlangs."""
    target: float
    """The service-level target, seconds."""
    p_wait: float | None
    """Arrivals that find every agent busy."""
    p_abandon: float | None
    """Arrivals that leave before an answer."""
    service_level: float | None
    """Arrivals answered within ``target``."""
    asa: float | None
    """Mean wait of answered contacts, seconds."""
    occupancy: float | None
    """Share of the agents' time spent handling contacts."""

    @property
    def stable(self) -> bool:
        """Whether the model has a steady state for this load."""
        return self.service_level is not None

    def as_dict(self) -> dict[str, object]:
        """JSON form (the keys of ``cxmon staffing --json``)."""
        return {
            "model": self.model,
            "agents": self.agents,
            "load_erlangs": self.load,
            "target_seconds": self.target,
            "p_wait": self.p_wait,
            "p_abandon": self.p_abandon,
            "service_level": self.service_level,
            "asa_seconds": self.asa,
            "occupancy": self.occupancy,
        }
