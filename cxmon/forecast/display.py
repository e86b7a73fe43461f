"""How a forecast reads to people: the matrix's staffing cell and the detail pane's lines (no textual)."""

from __future__ import annotations

from collections.abc import Sequence

from cxmon.forecast.result import Forecast
from cxmon.measures import MEASURES, format_value
from cxmon.units import format_duration

MODEL_NAME = {"erlang_c": "Erlang C", "erlang_a": "Erlang A"}


def staffing_cell(forecasts: Sequence[Forecast | None]) -> tuple[str, str]:
    """The matrix cell for one queue or a channel's queues together, and its verdict.

    ``"3 short of 80/20"`` (``breach``: agents needed beyond those staffed, for the threshold
    that needs them: ``"3 short of abandon rate 8%"``; ``"needs 3 more"`` when several thresholds
    do, see :meth:`Forecast.short_for`), ``"14, 12 needed"``
    (``ok``: staffed, then needed), ``"learning"`` while warming up, ``"—"`` without a forecast.

    Returns:
        (text, verdict) with verdict ``breach``, ``ok`` or ``""``.
    """
    known = [f for f in forecasts if f is not None and f.figures is not None and f.agents is not None]
    if not known:
        notes = {f.note for f in forecasts if f is not None}
        return ("learning", "") if "warming up" in notes else ("—", "")
    needed = [f for f in known if f.agents_needed is not None]
    if not needed:
        return (str(sum(f.agents or 0 for f in known)), "")
    short_ones = [f for f in needed if (f.agents_needed or 0) > (f.agents or 0)]
    short = sum((f.agents_needed or 0) - (f.agents or 0) for f in short_ones)
    if short > 0:
        # Named only when every short queue is short for the same threshold.
        names = {f.short_for() for f in short_ones}
        hold = names.pop() if len(names) == 1 else None
        return (f"needs {short} more", "breach") if hold is None else (f"{short} short of {hold}", "breach")
    staffed = sum(f.agents or 0 for f in needed)
    return f"{staffed}, {sum(f.agents_needed or 0 for f in needed)} needed", "ok"


def forecast_lines(forecast: Forecast | None) -> list[str]:
    """The detail pane's staffing lines for one series (empty without a forecast)."""
    if forecast is None:
        return []
    if forecast.figures is None or forecast.agents is None:
        return [f"Staffing forecast: {forecast.note or 'none'}"]
    f = forecast.figures
    model = MODEL_NAME.get(f.model, f.model)
    rate = "—" if forecast.arrival_rate is None else f"{forecast.arrival_rate * 3600:.0f}/h"
    patience = "" if forecast.patience is None else f", patience {format_duration(forecast.patience)}"
    configured = forecast.agents_from != "staffing"
    summary = forecast.summary()
    # "50 agents, 38 needed" already names the agents staffed; "needs 3 more agents…" does not.
    if summary.startswith("needs "):
        summary += f" · {forecast.agents} agents" + (" (configured)" if configured else "")
    elif configured:
        summary += " (agents configured)"
    lines = [
        f"Staffing forecast ({model}): {summary} · arrivals {rate} · AHT {format_duration(forecast.aht)}"
        f"{patience}",
    ]
    if f.stable:
        lines.append(
            f"  projected: service level {format_value('service_level', f.service_level)} in "
            f"{format_duration(f.target)} · waits {format_value('service_level', f.p_wait)} · abandons "
            f"{format_value('service_level', f.p_abandon)} · ASA {format_duration(f.asa)} · "
            f"occupancy {format_value('service_level', f.occupancy)}"
        )
    else:
        lines.append("  projected: more work than agents — the queue grows without bound (Erlang C)")
    for p in forecast.projections:
        if p.breaches:
            label = MEASURES[p.measure].label
            heading = format_value(p.measure, p.heading) if abs(p.heading) != float("inf") else "∞"
            lines.append(f"  {label} heading for {heading} (breach {format_value(p.measure, p.breach)})")
    return lines
