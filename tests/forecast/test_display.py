"""The staffing forecast as the detail pane reads it."""

from __future__ import annotations

from cxmon.forecast.breach import Projection
from cxmon.forecast.display import forecast_lines, staffing_cell
from cxmon.forecast.erlang_a import erlang_a
from cxmon.forecast.figures import Workload
from cxmon.forecast.result import Forecast


def forecast(
    agents: int,
    needed: int,
    agents_from: str = "staffing",
    projections: tuple[Projection, ...] = (),
) -> Forecast:
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
        projections=projections,
    )


def projection(measure: str, breach: float, needed: int, agents: int = 25) -> Projection:
    """A 15-minute threshold's projection that needs ``needed`` agents."""
    direction = "below" if measure == "service_level" else "above"
    return Projection(measure, 900.0, breach, direction, 0.0, 0.0, agents, needed, "erlang_a")


def short_by_abandons() -> Forecast:
    """25 agents: 80/20 needs 26, an abandon rate under 8% needs 28."""
    return forecast(
        25, 28, projections=(projection("service_level", 0.8, 26), projection("abandon_rate", 0.08, 28))
    )


def test_a_staffed_queue_names_its_agents_once() -> None:
    """Staffed beyond need, the line says "50 agents, 38 needed" and not "· 50 agents" again after it."""
    head = forecast_lines(forecast(50, 38))[0]
    assert head.startswith("Staffing forecast (Erlang A): 50 agents, 38 needed · arrivals 428/h"), head
    assert head.count("50 agents") == 1, head


def test_a_short_queue_says_how_many_more_and_how_many_it_has() -> None:
    """Short of agents, the line says how many more the goal needs, then the agents staffed."""
    head = forecast_lines(forecast(25, 26, projections=(projection("service_level", 0.8, 26),)))[0]
    assert head.startswith("Staffing forecast (Erlang A): needs 1 more agent to hold 80/20 · 25 agents · "), (
        head
    )


def test_the_staffing_cell_names_the_threshold_that_needs_the_agents() -> None:
    """Short of agents for the abandon rate (80/20 would need fewer), the matrix cell says so, not
    "short of 80/20"."""
    assert staffing_cell([short_by_abandons()]) == ("3 short of abandon rate 8%", "breach")


def test_the_detail_line_names_the_same_threshold_as_the_cell() -> None:
    """The detail pane's staffing line names the threshold the matrix cell names."""
    head = forecast_lines(short_by_abandons())[0]
    assert head.startswith(
        "Staffing forecast (Erlang A): needs 3 more agents to hold abandon rate 8% · 25 agents"
    ), head


def test_several_thresholds_needing_the_agents_read_neutrally() -> None:
    """When two thresholds each need all the agents short, neither is named: "needs 3 more"."""
    both = forecast(
        25, 28, projections=(projection("service_level", 0.8, 28), projection("wait_p90", 120.0, 28))
    )
    assert staffing_cell([both]) == ("needs 3 more", "breach")
    assert forecast_lines(both)[0].startswith(
        "Staffing forecast (Erlang A): needs 3 more agents · 25 agents"
    ), forecast_lines(both)[0]


def test_a_channel_of_queues_short_for_one_threshold_names_it() -> None:
    """A channel row whose queues are each short for 80/20 alone adds them up and names 80/20."""
    a = forecast(
        25, 27, projections=(projection("service_level", 0.8, 27), projection("abandon_rate", 0.08, 20))
    )
    b = forecast(25, 26, projections=(projection("service_level", 0.8, 26),))
    assert staffing_cell([a, b]) == ("3 short of 80/20", "breach")
    assert staffing_cell([a, short_by_abandons()]) == ("needs 5 more", "breach")
