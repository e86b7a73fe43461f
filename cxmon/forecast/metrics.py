"""The Prometheus gauges a forecast is exported as: name, help, extra labels and how to read each.

Exported per series (``step``, ``channel``, ``queue``; ``model`` says which model produced the figure):

    # HELP cxmon_forecast_service_level_ratio Projected share of arrivals answered within the step's target.
    # TYPE cxmon_forecast_service_level_ratio gauge
    cxmon_forecast_service_level_ratio{step="get_help",channel="voice",queue="billing",model="erlang_a"} 0.91
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cxmon.forecast.result import Forecast


@dataclass(frozen=True, slots=True)
class Gauge:
    """One forecast gauge."""

    name: str
    help: str
    read: Callable[[Forecast], float | None]
    with_model: bool = True
    """Whether the figure comes from a model (then labelled ``model``)."""


def _figure(name: str) -> Callable[[Forecast], float | None]:
    def read(f: Forecast) -> float | None:
        value = None if f.figures is None else getattr(f.figures, name)
        return None if value is None else float(value)

    return read


GAUGES: tuple[Gauge, ...] = (
    Gauge(
        "cxmon_forecast_service_level_ratio",
        "Projected share of arrivals answered within the step's target.",
        _figure("service_level"),
    ),
    Gauge(
        "cxmon_forecast_wait_probability_ratio", "Projected share of arrivals that wait.", _figure("p_wait")
    ),
    Gauge(
        "cxmon_forecast_abandon_ratio",
        "Projected share of arrivals that abandon before an answer.",
        _figure("p_abandon"),
    ),
    Gauge("cxmon_forecast_asa_seconds", "Projected mean wait of answered contacts.", _figure("asa")),
    Gauge(
        "cxmon_forecast_occupancy_ratio",
        "Projected share of agent time spent handling.",
        _figure("occupancy"),
    ),
    Gauge(
        "cxmon_forecast_agents",
        "Agents the forecast counts (staffing events, else configured).",
        lambda f: None if f.figures is None or f.agents is None else float(f.agents),
        with_model=False,
    ),
    Gauge(
        "cxmon_forecast_agents_needed",
        "Fewest agents that keep every modelled threshold of the step clear of its breach.",
        lambda f: None if f.agents_needed is None else float(f.agents_needed),
    ),
    Gauge(
        "cxmon_forecast_arrivals_per_second",
        "Live arrival rate the forecast uses (over [forecast] arrival_span).",
        lambda f: f.arrival_rate,
        with_model=False,
    ),
)


def breach_etas(
    f: Forecast, values: dict[tuple[str, float], float | None]
) -> Iterator[tuple[str, float, float]]:
    """(measure, window, seconds until breach) for every threshold the model projects past its breach
    (a projected crossing: not a chance of one, which turns a rule WATCH but names no time).

    Args:
        f: the forecast.
        values: (measure, window) → the window's value now.
    """
    for p in f.projections:
        eta = p.crossing(values.get((p.measure, p.window)))
        if eta is not None:
            yield p.measure, p.window, eta
