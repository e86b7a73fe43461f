"""Simulator options: the ``[[collectors]]`` table of type "simulator", validated into dataclasses."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cxmon.units import parse_duration, parse_ratio

# cxmon.validation's section reader reports unknown keys with a did-you-mean and every bad value with
# its key path; the simulator's tables follow the config's rules, so it reuses the reader, not a copy.
from cxmon.validation import Problems, Section, boolean, integer, positive_duration, string

HANDLE_DISTS = ("lognormal", "exponential")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One simulated queue and the agent pool that serves it."""

    name: str
    channel: str
    """voice, chat, email, … ("email" behaves like a ticket queue: no abandonment, slow resolution)."""
    agents: int
    """Agents staffed when no incident is running."""
    arrivals_per_hour: float
    """Mean rate of new contacts; the intraday profile swings around it."""
    handle_mean: float
    """Mean agent time per contact, seconds (for email: time to write the first reply)."""
    handle_sigma: float = 0.5
    """Shape of the lognormal handle time (sigma of the underlying normal)."""
    handle_dist: str = "lognormal"
    """``lognormal`` or ``exponential`` (the latter for queueing-theory checks)."""
    patience_mean: float | None = None
    """Mean of the exponential patience, seconds; None means nobody abandons."""
    escalate: float = 0.0
    escalate_to: str | None = None
    transfer: float = 0.0
    transfer_to: str | None = None
    feedback: float = 0.0
    """Chance that a resolved contact answers the survey."""
    resolution_mean: float = 3600.0
    """Email only: mean time from first reply to resolution, seconds (exponential)."""
    reopen: float = 0.0
    """Email only: chance that a resolved ticket is reopened."""
    profile_amplitude: float = 0.15
    """Relative swing of the hourly arrival profile (0.15 = ±15 %)."""

    @property
    def is_email(self) -> bool:
        """Whether contacts in this queue are tickets (first reply, then resolution later)."""
        return self.channel == "email"


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """A scripted disturbance on one queue."""

    queue: str
    at: float
    """Seconds after the simulation start."""
    duration: float
    agents_factor: float = 1.0
    """Multiplier on the staffed agents while it lasts (0.5: half the agents leave)."""
    arrivals_factor: float = 1.0
    """Multiplier on the arrival rate while it lasts (a surge)."""


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Everything the simulation model needs."""

    queues: tuple[QueueSpec, ...]
    incidents: tuple[IncidentSpec, ...] = ()
    seed: int = 1
    speed: float | None = 1.0
    """Simulated seconds per wall second; None means as fast as possible ("max")."""
    start: float | None = None
    """Epoch seconds the simulation starts at; None means wall-clock now when the run starts."""
    customers: int = 1000
    duration: float | None = None
    """Simulated seconds to run for; None means until cancelled."""
    incidents_enabled: bool = True

    def queue(self, name: str) -> QueueSpec:
        """Return the queue called ``name``.

        Raises:
            KeyError: no such queue.
        """
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)


# --------------------------------------------------------------------------- converters


def _number(minimum: float, *, strict: bool = False, below: float | None = None) -> Any:
    def conv(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(value)
        number = float(value)
        if number < minimum or (strict and number == minimum) or (below is not None and number >= below):
            raise ValueError(value)
        return number

    return conv


def _any_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


def _speed(value: Any) -> float | None:
    if value == "max":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(value)
    return float(value)


def parse_start(value: Any) -> float:
    """Return epoch seconds for an ISO 8601 time (``"2026-01-05T08:00:00Z"``) or a TOML datetime.

    A time without an offset is taken as UTC.

    Raises:
        ValueError: not a time.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.strip())
    else:
        raise ValueError(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _duration_or_none(value: Any) -> float | None:
    return positive_duration(value)


# --------------------------------------------------------------------------- validation

_QUEUE_DURATION = 'a duration like "4m"'
_RATIO = 'a ratio like 0.05 or "5%"'


def _queue(data: object, path: str, problems: Problems) -> tuple[QueueSpec | None, Section]:
    sec = Section(data, path, problems)
    before = len(problems.items)
    name = sec.get("name", string, "", "a queue name", required=True)
    channel = sec.get("channel", string, "voice", "a channel name", required=True)
    email = channel == "email"
    agents = sec.get("agents", integer(0), 0, "a whole number ≥ 0", required=True)
    rate = sec.get("arrivals_per_hour", _number(0.0), 0.0, "a number ≥ 0")
    handle_mean = sec.get("handle_mean", positive_duration, 60.0, _QUEUE_DURATION, required=True)
    handle_sigma = sec.get("handle_sigma", _number(0.0, below=3.0), 0.5, "a number from 0 to 3")
    handle_dist = sec.get("handle_dist", string, "lognormal", '"lognormal" or "exponential"')
    if handle_dist not in HANDLE_DISTS:
        problems.add(sec.key("handle_dist"), f'expected "lognormal" or "exponential", got {handle_dist!r}')
    patience = sec.get("patience_mean", _duration_or_none, None, _QUEUE_DURATION)
    if email and "patience_mean" in sec.data:
        problems.add(sec.key("patience_mean"), "email contacts do not abandon; leave it out")
    escalate = sec.get("escalate", parse_ratio, 0.0, _RATIO)
    escalate_to = sec.get("escalate_to", string, None, "a queue name")
    transfer = sec.get("transfer", parse_ratio, 0.0, _RATIO)
    transfer_to = sec.get("transfer_to", string, None, "a queue name")
    if escalate > 0 and escalate_to is None and "escalate_to" not in sec.data:
        problems.add(sec.key("escalate_to"), "required when escalate is above 0")
    if transfer > 0 and transfer_to is None and "transfer_to" not in sec.data:
        problems.add(sec.key("transfer_to"), "required when transfer is above 0")
    if escalate + transfer > 1.0:
        total = escalate + transfer
        problems.add(sec.key("transfer"), f"escalate + transfer must not exceed 1, got {total:g}")
    feedback = sec.get("feedback", parse_ratio, 0.0, _RATIO)
    resolution_mean = sec.get("resolution_mean", positive_duration, 3600.0, _QUEUE_DURATION)
    reopen = sec.get("reopen", parse_ratio, 0.0, _RATIO)
    for key in ("resolution_mean", "reopen"):
        if not email and key in sec.data:
            problems.add(sec.key(key), 'applies to email queues only (channel = "email")')
    if email and (escalate > 0 or transfer > 0):
        key = "escalate" if escalate > 0 else "transfer"
        problems.add(sec.key(key), "email queues do not escalate or transfer")
    amplitude = sec.get("profile_amplitude", _number(0.0, below=1.0), 0.15, "a number from 0 to below 1")
    if len(problems.items) > before:
        return None, sec
    return (
        QueueSpec(
            name=name,
            channel=channel,
            agents=agents,
            arrivals_per_hour=rate,
            handle_mean=handle_mean,
            handle_sigma=handle_sigma,
            handle_dist=handle_dist,
            patience_mean=patience,
            escalate=escalate,
            escalate_to=escalate_to,
            transfer=transfer,
            transfer_to=transfer_to,
            feedback=feedback,
            resolution_mean=resolution_mean,
            reopen=reopen,
            profile_amplitude=amplitude,
        ),
        sec,
    )


def _incident(data: object, path: str, problems: Problems) -> tuple[IncidentSpec | None, Section]:
    sec = Section(data, path, problems)
    before = len(problems.items)
    queue = sec.get("queue", string, "", "a queue name", required=True)
    at = sec.get("at", parse_duration, 0.0, 'a duration like "3m"', required=True)
    duration = sec.get("duration", positive_duration, 60.0, 'a duration like "10m"', required=True)
    agents_factor = sec.get("agents_factor", _number(0.0), 1.0, "a number ≥ 0")
    arrivals_factor = sec.get("arrivals_factor", _number(0.0, strict=True), 1.0, "a number > 0")
    if "agents_factor" not in sec.data and "arrivals_factor" not in sec.data:
        problems.add(path, "set agents_factor and/or arrivals_factor")
    if len(problems.items) > before:
        return None, sec
    return IncidentSpec(queue, at, duration, agents_factor, arrivals_factor), sec


def _check_queue_ref(sec: Section, key: str, names: list[str], own: str | None, problems: Problems) -> None:
    value = sec.data.get(key)
    if not isinstance(value, str) or not value:
        return
    if value not in names:
        hint = difflib.get_close_matches(value, names, n=1)
        problems.add(
            sec.key(key),
            f"no queue named {value!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; configured: {', '.join(names)}",
        )
    elif value == own:
        problems.add(sec.key(key), "must name another queue")


def parse_options(options: Mapping[str, Any], path: str) -> tuple[SimOptions | None, list[str]]:
    """Validate a simulator collector table.

    Args:
        options: the table without ``type`` and ``name``.
        path: its key path, e.g. ``collectors[0]``.

    Returns:
        The options (None when there are problems) and every problem found, each with its key path.
    """
    problems = Problems()
    top = Section(dict(options), path, problems)
    seed = top.get("seed", _any_int, 1, "a whole number")
    default_speed: float | None = 1.0
    speed = top.get("speed", _speed, default_speed, 'a number > 0 or "max"')
    start = top.get("start", parse_start, None, 'an ISO 8601 time like "2026-01-05T08:00:00Z"')
    customers = top.get("customers", integer(1), 1000, "a whole number ≥ 1")
    duration = top.get("duration", _duration_or_none, None, 'a duration like "30m"')
    incidents_enabled = top.get("incidents_enabled", boolean, True, "true or false")

    queues: list[QueueSpec] = []
    sections: list[Section] = []
    raw_queues = top.raw("queues")
    if not isinstance(raw_queues, list) or not raw_queues:
        problems.add(top.key("queues"), "expected at least one [[collectors.queues]] table")
        raw_queues = []
    names: list[str] = []
    for i, item in enumerate(raw_queues):
        spec, sec = _queue(item, f"{top.key('queues')}[{i}]", problems)
        sections.append(sec)
        name = sec.data.get("name")
        if isinstance(name, str) and name:
            if name in names:
                problems.add(sec.key("name"), f"queue name {name!r} is used twice")
            names.append(name)
        if spec is not None:
            queues.append(spec)
    for sec in sections:
        own = sec.data.get("name")
        for key in ("escalate_to", "transfer_to"):
            _check_queue_ref(sec, key, names, own if isinstance(own, str) else None, problems)
        sec.finish()

    incidents: list[IncidentSpec] = []
    raw_incidents = top.raw("incidents")
    if raw_incidents is not None and not isinstance(raw_incidents, list):
        problems.add(top.key("incidents"), "expected a list of [[collectors.incidents]] tables")
        raw_incidents = []
    for i, item in enumerate(raw_incidents or []):
        inc, sec = _incident(item, f"{top.key('incidents')}[{i}]", problems)
        _check_queue_ref(sec, "queue", names, None, problems)
        sec.finish()
        if inc is not None:
            incidents.append(inc)
    top.finish()

    if problems.items:
        return None, problems.items
    return (
        SimOptions(
            queues=tuple(queues),
            incidents=tuple(incidents),
            seed=seed,
            speed=speed,
            start=start,
            customers=customers,
            duration=duration,
            incidents_enabled=incidents_enabled,
        ),
        [],
    )
