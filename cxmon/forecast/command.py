"""``cxmon staffing``: the Erlang C/A calculator for a person planning a shift."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cxmon.forecast.figures import QueueFigures, Workload
from cxmon.forecast.staffing import MAX_AGENTS, agents_needed, evaluate, table_range
from cxmon.units import format_duration, parse_duration


class ArgumentProblem(ValueError):
    """A bad ``cxmon staffing`` argument: the message names the option and what it expected."""


def add_staffing_parser(sub: Any) -> None:
    """Add ``staffing`` to the ``cxmon`` subcommands."""
    p = sub.add_parser(
        "staffing",
        help="Erlang C/A calculator: service level, ASA, abandonment and agents needed",
        description="Projected service level, waiting, abandonment, ASA and occupancy for a queue "
        "(Erlang C; Erlang A when --patience is given), and the agents needed for a goal.",
    )
    p.add_argument("--arrivals", metavar="N/DURATION", help="contacts per period, e.g. 100/30m (required)")
    p.add_argument("--aht", metavar="DURATION", help="average handle time, e.g. 180s (required)")
    p.add_argument("--target", metavar="DURATION", help="service-level target, e.g. 20s (required)")
    p.add_argument("--agents", metavar="N", help="agents staffed (without it: a table of agent counts)")
    p.add_argument("--patience", metavar="DURATION", help="mean patience, e.g. 2m: use Erlang A")
    p.add_argument("--goal", metavar="SHARE", help="service-level goal, e.g. 80%%: agents needed for it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=staffing_command)


def _duration(option: str, text: str | None, *, positive: bool, example: str) -> float:
    if text is None:
        raise ArgumentProblem(f"{option} is required (a duration like {example})")
    try:
        seconds = float(text) if _is_number(text) else parse_duration(text)
    except ValueError:
        raise ArgumentProblem(f"{option}: expected a duration like {example}, got {text!r}") from None
    if seconds < 0 or (positive and seconds == 0):
        raise ArgumentProblem(f"{option}: must be {'above' if positive else 'at least'} 0, got {text!r}")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_arrivals(text: str | None) -> tuple[float, float]:
    """Return (contacts, period seconds) for ``"100/30m"`` (``"200/h"`` means per hour).

    Raises:
        ArgumentProblem: not a count over a duration.
    """
    expected = "contacts per period like 100/30m"
    if text is None:
        raise ArgumentProblem(f"--arrivals is required ({expected})")
    count_text, slash, period_text = text.partition("/")
    try:
        if not slash:
            raise ValueError(text)
        count = float(count_text)
        period_text = period_text.strip()
        period = parse_duration(period_text if period_text[:1].isdigit() else "1" + period_text)
    except ValueError:
        raise ArgumentProblem(f"--arrivals: expected {expected}, got {text!r}") from None
    if count < 0 or count != count or count == float("inf"):
        raise ArgumentProblem(f"--arrivals: the count must be a number ≥ 0, got {text!r}")
    if period <= 0:
        raise ArgumentProblem(f"--arrivals: the period must be above 0, got {text!r}")
    return count, period


def parse_goal(text: str) -> float:
    """Return the share for ``"80%"`` or ``"0.8"`` (strictly between 0 and 1).

    Raises:
        ArgumentProblem: not a share strictly between 0 and 1.
    """
    try:
        value = float(text[:-1]) / 100.0 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise ArgumentProblem(f"--goal: expected a share like 80% or 0.8, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise ArgumentProblem(f"--goal: must be above 0 % and below 100 %, got {text!r}")
    return value


def parse_agents(text: str) -> int:
    """Return the agent count for ``"14"``.

    Raises:
        ArgumentProblem: not a whole number from 1 to MAX_AGENTS.
    """
    expected = f"expected a whole number from 1 to {MAX_AGENTS:,}"
    try:
        agents = int(text)
    except ValueError:
        raise ArgumentProblem(f"--agents: {expected}, got {text!r}") from None
    if not 1 <= agents <= MAX_AGENTS:
        raise ArgumentProblem(f"--agents: {expected}, got {text!r}")
    return agents


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _model_name(work: Workload) -> str:
    return "Erlang A (M/M/N+M)" if work.patience is not None else "Erlang C (M/M/N)"


def _header(work: Workload, count: float, period: float, target: float) -> str:
    patience = "" if work.patience is None else f", patience {format_duration(work.patience)}"
    return (
        f"{_model_name(work)}: {count:g} contacts / {format_duration(period)} "
        f"({work.load:.2f} Erlangs), AHT {format_duration(work.aht)}{patience}, "
        f"target {format_duration(target)}"
    )


def _goal_text(goal: float, target: float) -> str:
    return f"{goal * 100:g}/{target:g}"


def _one(figures: QueueFigures, needed: int | None, goal: float | None) -> list[str]:
    lines = [f"  agents                 {figures.agents}"]
    if not figures.stable:
        lines.append(
            f"  no steady state: {figures.load:.2f} Erlangs on {figures.agents} agents, the queue grows "
            "without bound (give --patience for Erlang A)"
        )
    else:
        lines += [
            f"  probability of waiting {_pct(figures.p_wait)}",
            f"  abandon                {_pct(figures.p_abandon)}",
            f"  service level          {_pct(figures.service_level)} answered within "
            f"{format_duration(figures.target)}",
            f"  ASA (answered)         {_seconds(figures.asa)}",
            f"  occupancy              {_pct(figures.occupancy)}",
        ]
    if needed is not None and goal is not None:
        lines.append(f"  agents needed for {_goal_text(goal, figures.target)}: {needed}")
    return lines


def _table(rows: list[QueueFigures], needed: int | None) -> list[str]:
    out = [f"  {'agents':>6}  {'P(wait)':>8}  {'abandon':>8}  {'service':>8}  {'ASA':>9}  {'occupancy':>9}"]
    for f in rows:
        mark = "  ← goal" if needed == f.agents else ""
        out.append(
            f"  {f.agents:>6}  {_pct(f.p_wait):>8}  {_pct(f.p_abandon):>8}  {_pct(f.service_level):>8}"
            f"  {_seconds(f.asa):>9}  {_pct(f.occupancy):>9}{mark}"
        )
    return out


def staffing_command(args: argparse.Namespace) -> int:
    """Run ``cxmon staffing``; return the exit code (2 with one line on stderr for a bad argument)."""
    try:
        count, period = parse_arrivals(args.arrivals)
        aht = _duration("--aht", args.aht, positive=True, example="180s")
        target = _duration("--target", args.target, positive=False, example="20s")
        patience = (
            None
            if args.patience is None
            else _duration("--patience", args.patience, positive=True, example="2m")
        )
        agents = None if args.agents is None else parse_agents(args.agents)
        goal = None if args.goal is None else parse_goal(args.goal)
        work = Workload(count / period, aht, patience)
        if work.load > MAX_AGENTS and (agents is None or goal is not None):
            # Every agent count worth a look is above the load: beyond what is computed.
            raise ArgumentProblem(
                f"--arrivals: {args.arrivals} over an AHT of {format_duration(aht)} is a load of "
                f"{work.load:,.0f} Erlangs, which needs more than {MAX_AGENTS:,} agents"
            )
        return _print_figures(args, work, count, period, target, agents, goal)
    except ValueError as exc:
        print(f"cxmon staffing: {exc}", file=sys.stderr)
        return 2
    except ArithmeticError as exc:
        # A series that does not converge (Erlang A far past its load with a long patience).
        print(f"cxmon staffing: these figures cannot be computed ({exc})", file=sys.stderr)
        return 2


def _print_figures(
    args: argparse.Namespace,
    work: Workload,
    count: float,
    period: float,
    target: float,
    agents: int | None,
    goal: float | None,
) -> int:
    """Compute and print the figures (a table without ``agents``); return the exit code.

    Raises:
        ValueError: no agent count up to MAX_AGENTS reaches ``goal``.
        ArithmeticError: a figure's series does not converge.
    """
    needed = None if goal is None else agents_needed(work, target, goal)
    if agents is not None:
        figures = evaluate(work, agents, target)
        if args.json:
            doc = figures.as_dict()
            if needed is not None:
                doc["agents_needed"] = needed
            print(json.dumps(doc))
        else:
            print("\n".join([_header(work, count, period, target), *_one(figures, needed, goal)]))
        return 0

    rows = [evaluate(work, n, target) for n in table_range(work, target)]
    if needed is not None and needed > rows[-1].agents:
        rows.append(evaluate(work, needed, target))
    if args.json:
        table: dict[str, object] = {
            "model": rows[0].model,
            "load_erlangs": work.load,
            "target_seconds": target,
            "rows": [f.as_dict() for f in rows],
        }
        if needed is not None:
            table["agents_needed"] = needed
        print(json.dumps(table))
        return 0
    lines = [_header(work, count, period, target), *_table(rows, needed)]
    if needed is not None and goal is not None:
        lines.append(f"  agents needed for {_goal_text(goal, target)}: {needed}")
    print("\n".join(lines))
    return 0
