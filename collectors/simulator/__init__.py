"""The built-in contact-centre simulator: a seeded discrete-event model behind the Source protocol."""

from __future__ import annotations

from collectors.simulator.command import simulate_command
from collectors.simulator.model import simulate_events
from collectors.simulator.options import IncidentSpec, QueueSpec, SimOptions, parse_options
from collectors.simulator.source import SimulatorSource

__all__ = [
    "IncidentSpec",
    "QueueSpec",
    "SimOptions",
    "SimulatorSource",
    "parse_options",
    "simulate_command",
    "simulate_events",
]
