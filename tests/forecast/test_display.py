"""The staffing forecast as the detail pane reads it."""

from __future__ import annotations

from cxmon.forecast.display import forecast_lines
from cxmon.forecast.erlang_a import erlang_a
from cxmon.forecast.figures import Workload
from cxmon.forecast.result import Forecast


def forecast(agents: int, needed: int, agents_from: str = "staffing") -> Forecast:
    """A voice queue's Erlang A forecast: 428 calls an hour, 3m30s handle time, patience 1m33s."""
    work = Workload(arrival_rate=428 / 3600, aht=210.0, patience=93.0)
    return Forecast(
        ts=0.0,
        arrival_rate=work.arrival_rate,
        sure_rate=work.arrival_rate,
        aht=work.aht,
        patience=work.patience,
        agents=agents,
        agents_from=agents_from,
        target=20.0,
        figures=erlang_a(work, agents, 20.0),
        goal=0.8,
        agents_needed=needed,
    )


def test_a_staffed_queue_names_its_agents_once() -> None:
    """Staffed beyond need, the line says "50 agents, 38 needed" and not "· 50 agents" again after it."""
    head = forecast_lines(forecast(50, 38))[0]
    assert head.startswith("Staffing forecast (Erlang A): 50 agents, 38 needed · arrivals 428/h"), head
    assert head.count("50 agents") == 1, head


def test_a_short_queue_says_how_many_more_and_how_many_it_has() -> None:
    """Short of agents, the line says how many more the goal needs, then the agents staffed."""
    head = forecast_lines(forecast(25, 26))[0]
    assert head.startswith("Staffing forecast (Erlang A): needs 1 more agent to hold 80/20 · 25 agents · "), (
        head
    )
