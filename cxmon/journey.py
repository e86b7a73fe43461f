"""The journey: steps, the channel/queue patterns that put contacts into them, and their thresholds."""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass

from cxmon.business_time import Calendar, parse_calendar
from cxmon.measures import MEASURES, bad_direction, parse_value
from cxmon.units import format_duration, parse_duration
from cxmon.validation import Problems, Section, boolean, integer, positive_duration, string

_IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""What a step name may be: it is written into PromQL, YAML and Go templates as it is."""


@dataclass(frozen=True, slots=True)
class MatchRule:
    """Channel and queue glob patterns (fnmatch) that put a contact into a step."""

    channel: str = "*"
    queue: str = "*"

    def matches(self, channel: str, queue: str) -> bool:
        """Return whether a contact on ``channel``/``queue`` matches this rule."""
        return fnmatch.fnmatchcase(channel, self.channel) and fnmatch.fnmatchcase(queue, self.queue)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A pot-hole rule for one measure of a step (DESIGN.md, "Pot holes")."""

    measure: str
    window: float
    """Window length in seconds (one of the monitor's windows; ignored for instant measures)."""
    breach: float
    warn: float | None
    direction: str
    """``above`` (bad when high) or ``below`` (bad when low); by default the measure's bad direction."""
    for_: float
    """Seconds the breach must hold before the step is a pot hole."""
    clear: float
    """Value the measure must get back past to leave a pot hole (hysteresis)."""
    channel: str = "*"
    """Glob: only series on matching channels are held to this threshold."""
    min_volume: int = 0
    """Contacts (answered + abandoned, or offered) the window needs before the rule is judged."""

    def worse(self, value: float, limit: float) -> bool:
        """Return whether ``value`` is past ``limit`` in the bad direction."""
        return value > limit if self.direction == "above" else value < limit


@dataclass(frozen=True, slots=True)
class Step:
    """A journey step: which contacts belong to it and what counts as a pot hole."""

    name: str
    label: str
    match: tuple[MatchRule, ...]
    thresholds: tuple[Threshold, ...]
    service_level_target: float
    """T in "answered within T", seconds."""
    long_wait: float
    """A wait longer than this is a strike against the customer."""
    backlog_age: float
    """Open contacts older than this count in aged_backlog."""
    moment_of_truth: bool = False
    headline: str = "wait_p90"
    """The measure the dashboard shows for the step when nothing is breached."""
    calendar: Calendar | None = None
    """Business hours the step's ticket clocks run in (None: every second counts)."""
    next_reply: float | None = None
    """Target for an agent's reply to the customer's next message (tickets), in business time."""
    lost_after: float = 4 * 3600.0
    """A contact of the step with no terminal event after this long (wall clock) is closed as lost:
    the step's own ``lost_after``, else :func:`default_lost_after`."""


def default_lost_after(backlog_age: float, calendar: Calendar | None, monitor_lost_after: float) -> float:
    """How long a contact of a step that counts its aged backlog stays open before it is given up as lost.

    Twice the longest wall-clock time its ``backlog_age`` (the resolution target) takes, and never
    less than ``[monitor] lost_after``: a ticket that reaches the line stays in ``aged_backlog`` at
    least as long again as it took to get there, so a threshold on it can hold for its ``for`` and
    a manager sees the ticket for days, and a source that dropped its closing event still has its
    tickets given up in the end. In a calendar's business time the age is taken at its slowest (from
    the close of a working week), so that every ticket, whenever it opened, ages before it is lost.
    """
    span = calendar.wall_span(backlog_age) if calendar is not None else None
    longest = span[1] if span is not None else backlog_age
    return max(monitor_lost_after, 2 * longest)


def parse_threshold(
    data: object, path: str, windows: tuple[float, ...], problems: Problems
) -> Threshold | None:
    """Read one ``[[journey.steps.thresholds]]`` table (None when it has a problem, recorded)."""
    sec = Section(data, path, problems)
    before = len(problems.items)
    measure = sec.get("measure", string, "", "a measure name", required=True)
    if measure and measure not in MEASURES:
        hint = difflib.get_close_matches(measure, list(MEASURES), n=1)
        problems.add(
            sec.key("measure"),
            f"unknown measure {measure!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
        )
        measure = ""
    window = sec.get("window", positive_duration, windows[0] if windows else 300.0, 'a duration like "5m"')
    if "window" in sec.data and window not in windows and measure and MEASURES[measure].windowed:
        problems.add(sec.key("window"), f"{sec.data['window']!r} is not one of the monitor's windows")
    # Without a direction, a threshold is breached the way its measure gets worse.
    direction = sec.get("direction", string, str(bad_direction(measure)), '"above" or "below"')
    if direction not in ("above", "below"):
        problems.add(sec.key("direction"), f'expected "above" or "below", got {direction!r}')
    for_ = sec.get("for", parse_duration, 0.0, 'a duration like "2m"')
    channel = sec.get("channel", string, "*", "a channel name or glob")
    min_volume = sec.get("min_volume", integer(0), 0, "a whole number ≥ 0")

    def value(name: str, required: bool) -> float | None:
        sec.known.append(name)
        if name not in sec.data:
            if required:
                problems.add(sec.key(name), "required key is missing")
            return None
        if not measure:
            return None
        try:
            return parse_value(measure, sec.data[name])
        except ValueError as exc:
            problems.add(sec.key(name), str(exc))
            return None

    breach = value("breach", True)
    warn = value("warn", False)
    clear = value("clear", False)
    sec.finish()
    if len(problems.items) > before or breach is None:
        return None
    th = Threshold(
        measure=measure,
        window=window,
        breach=breach,
        warn=warn,
        direction=direction,
        for_=for_,
        clear=breach if clear is None else clear,
        channel=channel,
        min_volume=min_volume,
    )
    if warn is not None and th.worse(warn, breach):
        problems.add(
            sec.key("warn"), f"warn must come before breach ({direction} means worse is {direction})"
        )
    if clear is not None and th.worse(clear, breach):
        problems.add(sec.key("clear"), "clear must be on the good side of breach")
    return th


def parse_step(
    data: object,
    path: str,
    windows: tuple[float, ...],
    problems: Problems,
    monitor_lost_after: float = 4 * 3600.0,
) -> Step | None:
    """Read one ``[[journey.steps]]`` table (None when it has a problem, recorded).

    ``monitor_lost_after`` is ``[monitor] lost_after``: the step's when it neither sets its own nor
    counts an aged backlog (see :func:`default_lost_after`).
    """
    sec = Section(data, path, problems)
    before = len(problems.items)
    name = sec.get("name", string, "", "a step name", required=True)
    if name and not _IDENTIFIER.fullmatch(name):
        # it is a label value in rules, dashboards and alerts: a quote or brace would break them
        problems.add(
            sec.key("name"),
            f'expected an identifier (letters, digits, "_", "-", "."), like "get_help", got {name!r}',
        )
    label = sec.get("label", string, name, "a label")
    mot = sec.get("moment_of_truth", boolean, False, "true or false")
    target = sec.get("service_level_target", positive_duration, 20.0, 'a duration like "20s"')
    backlog_age = sec.get("backlog_age", positive_duration, 86400.0, 'a duration like "4h"')
    calendar_problems: list[str] = []
    calendar = parse_calendar(sec.raw("calendar"), sec.key("calendar"), calendar_problems)
    problems.items.extend(calendar_problems)
    targets = Section(sec.raw("targets") or {}, sec.key("targets"), problems)
    # Ticket targets: first reply is the service level's T, resolution the backlog's age limit.
    target = targets.get("first_reply", positive_duration, target, 'a duration like "4h"')
    next_reply = targets.get("next_reply", positive_duration, None, 'a duration like "8h"')
    backlog_age = targets.get("resolution", positive_duration, backlog_age, 'a duration like "3d"')
    own_age = "backlog_age" in sec.data or "resolution" in targets.data
    targets.finish()
    own_lost_after = sec.get("lost_after", positive_duration, None, 'a duration like "3d"')
    # After the targets: a ticket step's first-reply T, not the 20 s default, sets what a long wait is.
    long_wait = sec.get("long_wait", positive_duration, max(target * 3, 60.0), 'a duration like "2m"')
    headline = sec.get("headline", string, "", "a measure name")
    if headline and headline not in MEASURES:
        problems.add(sec.key("headline"), f"unknown measure {headline!r}")
    rules: list[MatchRule] = []
    raw_match = sec.raw("match")
    if raw_match is None:
        problems.add(sec.key("match"), "required key is missing")
    elif not isinstance(raw_match, list):
        problems.add(sec.key("match"), "expected a list of {channel, queue} tables")
    elif not raw_match:
        # a step no contact can enter: every threshold of it would stay silent
        problems.add(sec.key("match"), "expected at least one {channel, queue} table, got []")
    else:
        for i, item in enumerate(raw_match):
            rsec = Section(item, f"{sec.key('match')}[{i}]", problems)
            channel = rsec.get("channel", string, "*", "a channel glob")
            queue = rsec.get("queue", string, "*", "a queue glob")
            rsec.finish()
            rules.append(MatchRule(channel, queue))
    thresholds: list[Threshold] = []
    raw_th = sec.raw("thresholds")
    if raw_th is not None and not isinstance(raw_th, list):
        # recorded, and then not iterated: a scalar here is not a list of thresholds
        problems.add(sec.key("thresholds"), f"expected a list of tables, got {raw_th!r}")
        raw_th = []
    # The channels the step's contacts can have, when every match rule names one outright.
    literal = [r.channel for r in rules]
    known = None if any(c in ch for ch in literal for c in "*?[") else sorted(set(literal))
    seen: dict[tuple[str, float | None, str], int] = {}
    for i, item in enumerate(raw_th or []):
        th = parse_threshold(item, f"{sec.key('thresholds')}[{i}]", windows, problems)
        if th is not None:
            if known and not any(fnmatch.fnmatchcase(ch, th.channel) for ch in known):
                # a threshold no series of the step can meet would never judge anything, silently
                problems.add(
                    f"{sec.key('thresholds')}[{i}].channel",
                    f"{th.channel!r} matches none of the step's channels ({', '.join(known)})",
                )
                continue
            # Two rules on one figure of one channel pattern would judge it twice, and their alerts
            # (labelled by step, measure, window and channel) could not be told apart.
            same = (th.measure, th.window if MEASURES[th.measure].windowed else None, th.channel)
            if same in seen:
                problems.add(
                    f"{sec.key('thresholds')}[{i}]",
                    f"the same measure, window and channel as thresholds[{seen[same]}] "
                    "(one threshold per figure: give them different channels, or keep one)",
                )
                continue
            seen[same] = i
            thresholds.append(th)
    sec.finish()
    # A step counts its aged backlog when it sets the age (backlog_age, targets.resolution) or judges
    # it: its contacts must outlive that age before they are given up as lost.
    aged = own_age or any(th.measure == "aged_backlog" for th in thresholds)
    lost_after = monitor_lost_after
    if own_lost_after is not None:
        lost_after = own_lost_after
    elif aged:
        lost_after = default_lost_after(backlog_age, calendar, monitor_lost_after)
    if aged and not len(problems.items) > before:
        span = calendar.wall_span(backlog_age) if calendar is not None else None
        shortest = span[0] if span is not None else backlog_age
        if lost_after <= shortest:
            where = "backlog_age" if calendar is None else "backlog_age in the step's business hours"
            problems.add(
                sec.key("lost_after"),
                f"{format_duration(lost_after)} is not longer than {where} ({format_duration(shortest)}):"
                " a contact would be closed as lost before aged_backlog could count it (leave it out"
                f" for {format_duration(default_lost_after(backlog_age, calendar, monitor_lost_after))},"
                " or make it longer)",
            )
    if len(problems.items) > before:
        return None
    return Step(
        name=name,
        label=label,
        match=tuple(rules),
        thresholds=tuple(thresholds),
        service_level_target=target,
        long_wait=long_wait,
        backlog_age=backlog_age,
        moment_of_truth=mot,
        headline=headline or (thresholds[0].measure if thresholds else "wait_p90"),
        calendar=calendar,
        next_reply=next_reply,
        lost_after=lost_after,
    )
