"""The ``[forecast]`` config table: which queues are forecast, over what spans, and baseline settings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cxmon.forecast.change import BREAKING_SCORE, BREAKING_TOLERANCE, SCORE
from cxmon.units import parse_duration, parse_ratio

BREACH_CHANCE = 0.01
"""The chance of a breach within the horizon that turns a share WATCH (``[forecast] breach_chance``;
0: not asked): set on the quiet runs of the warning-lead benchmark (README)."""


@dataclass(frozen=True, slots=True)
class ForecastOptions:
    """Validated ``[forecast]`` settings."""

    enabled: bool = True
    channels: tuple[str, ...] = ("voice", "chat")
    """Channels whose queues get an Erlang forecast (queues where contacts wait for an agent)."""
    arrival_span: float = 300.0
    """Seconds the live arrival rate is measured over."""
    handle_span: float = 1800.0
    """Seconds the handle time and patience are estimated over."""
    min_abandons: int = 5
    """Abandons within ``handle_span`` before patience is estimated and Erlang A used (else Erlang C)."""
    agents: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Queue → agents, for queues whose source sends no staffing events."""
    rise_score: float = SCORE
    """Log-likelihood ratio a rise in the arrivals needs before the forecast projects at the rate
    since it began (see :mod:`cxmon.forecast.change`): lower warns of surges sooner and raises more
    false alarms."""
    breaking_score: float = BREAKING_SCORE
    """Log-likelihood ratio the arrivals since a change point need, at the rate the queue breaches at
    against the usual rate, before the forecast projects at the rate since (see
    :func:`cxmon.forecast.change.breaking`); 0 asks nothing."""
    breaking_tolerance: float = BREAKING_TOLERANCE
    """How much above the hour's arrival rate the usual rate of that test is taken to be."""
    breach_chance: float = BREACH_CHANCE
    """A service level (or other share) whose chance of a breach within the detector's horizon is
    at least this turns WATCH (see :attr:`cxmon.forecast.breach.Projection.chance`); 0: not asked."""
    baseline_weeks: int = 4
    """Weeks of history a baseline is learned from."""
    baseline_min_weeks: int = 2
    """Weeks with data for an hour of the week before its baseline gives verdicts (cold start)."""
    baseline_quantile: float = 0.95
    """"Worse than usual" is past this quantile of the same hour of the week."""
    profile_days: int = 28
    """Days of stored arrivals each queue's arrival profile (its usual shape over the day, see
    :mod:`cxmon.forecast.profile`) is learned from at start; 0: no profiles."""
    profile_min_days: int = 5
    """Days with arrivals a queue needs before it has a profile (until then, a flat usual rate)."""
    profile_interval: float = 900.0
    """Seconds per interval of a profile (a divisor of a day, at least a minute)."""


_KEYS = (
    "enabled",
    "channels",
    "arrival_span",
    "handle_span",
    "min_abandons",
    "agents",
    "rise_score",
    "breaking_score",
    "breaking_tolerance",
    "breach_chance",
    "baseline_weeks",
    "baseline_min_weeks",
    "baseline_quantile",
    "profile_days",
    "profile_min_days",
    "profile_interval",
)


def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(value)
    return value


def _span(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 60.0:
        raise ValueError(value)
    return seconds


def parse_forecast(raw: object, path: str = "forecast") -> tuple[ForecastOptions, list[str]]:
    """Validate a ``[forecast]`` table.

    Args:
        raw: the table (None when the config has none).
        path: its key path, for problems.

    Returns:
        The options (the defaults where a key is missing or wrong) and every problem, each with its
        key path.
    """
    if raw is None:
        return ForecastOptions(), []
    if not isinstance(raw, dict):
        return ForecastOptions(), [f"{path}: expected a table, got {type(raw).__name__}"]
    problems: list[str] = []
    out: dict[str, Any] = {}

    def take(key: str, conv: Any, expected: str) -> None:
        if key not in raw:
            return
        try:
            out[key] = conv(raw[key])
        except (ValueError, TypeError):
            problems.append(f"{path}.{key}: expected {expected}, got {raw[key]!r}")

    def enabled(v: Any) -> bool:
        if not isinstance(v, bool):
            raise ValueError(v)
        return v

    def channels(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(c, str) and c for c in v):
            raise ValueError(v)
        return tuple(v)

    def agents(v: Any) -> Mapping[str, int]:
        if not isinstance(v, dict):
            raise ValueError(v)
        return MappingProxyType({str(k): _whole(n, 0) for k, n in v.items()})

    def positive(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise ValueError(v)
        return float(v)

    def not_negative(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
            raise ValueError(v)
        return float(v)

    def tolerance(v: Any) -> float:
        q = parse_ratio(v)
        if not 0.0 <= q < 1.0:
            raise ValueError(v)
        return q

    def interval(v: Any) -> float:
        seconds = parse_duration(v)
        if seconds < 60.0 or 86400.0 % seconds:
            raise ValueError(v)
        return seconds

    def quantile(v: Any) -> float:
        q = parse_ratio(v)
        if not 0.5 <= q < 1.0:
            raise ValueError(v)
        return q

    take("enabled", enabled, "true or false")
    take("channels", channels, 'a list of channel names like ["voice", "chat"]')
    take("arrival_span", _span, 'a duration of at least a minute like "5m"')
    take("handle_span", _span, 'a duration of at least a minute like "30m"')
    take("min_abandons", lambda v: _whole(v, 1), "a whole number ≥ 1")
    take("agents", agents, "a table of queue = agents, like { billing = 50 }")
    take("rise_score", positive, "a number > 0 like 14")
    take("breaking_score", not_negative, "a number ≥ 0 like 10 (0: off)")
    take("breaking_tolerance", tolerance, 'a share from 0 % to below 100 %, like "10%"')
    take("breach_chance", tolerance, 'a share from 0 % (off) to below 100 %, like "30%"')
    take("baseline_weeks", lambda v: _whole(v, 1), "a whole number ≥ 1")
    take("baseline_min_weeks", lambda v: _whole(v, 1), "a whole number ≥ 1")
    take("baseline_quantile", quantile, 'a share from 50 % to below 100 %, like "95%"')
    take("profile_days", lambda v: _whole(v, 0), "a whole number ≥ 0 (0: no profiles)")
    take("profile_min_days", lambda v: _whole(v, 1), "a whole number ≥ 1")
    take("profile_interval", interval, 'a duration of at least a minute that divides a day, like "15m"')
    for key in raw:
        if key not in _KEYS:
            problems.append(f"{path}.{key}: unknown key")
    options = ForecastOptions(**out)
    if options.baseline_min_weeks > options.baseline_weeks:
        problems.append(f"{path}.baseline_min_weeks: must not exceed baseline_weeks")
    if options.profile_days and options.profile_min_days > options.profile_days:
        problems.append(f"{path}.profile_min_days: must not exceed profile_days")
    return options, problems
