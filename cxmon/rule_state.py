"""One threshold's state on one series, the verdicts it gives, and the texts its reasons reuse.

The detector (:mod:`cxmon.detector`) judges; what it keeps per rule between judgements is here: the
rule's state machine's fields, its threshold's figures read once (:class:`Line`), its last verdict
(returned again when the next would equal it) and the texts of its last value, worded once.
"""

from __future__ import annotations

import fnmatch
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from cxmon.config import Threshold
from cxmon.forecast.live import MODELLED
from cxmon.measures import MEASURES, format_value
from cxmon.reason_text import label_of, shown_limit, versus
from cxmon.snapshot import State
from cxmon.units import format_duration


@dataclass(slots=True)
class RuleState:
    """State of one threshold on one series."""

    state: State = State.OK
    breach_since: float | None = None
    warn_since: float | None = None
    """Since when the value has been past ``warn`` (or ``breach``) without a break."""
    calm_since: float | None = None
    reason: str = ""
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))
    value: float | None = None
    """The value last judged."""
    n: float | None = None
    """What that value rests on (a share's or score's denominator), when known."""
    judged_at: float | None = None
    """When it was last judged."""
    due: float = math.inf
    """When judging it again with the same value can next give another verdict (a ``for`` timer,
    the trend moving); inf when only a new value can."""
    every: bool = False
    """Its verdict changes with every tick while it lasts (a pot hole's "for 3m05s")."""
    calm: bool = False
    """Its last verdict came from a trend that projects no breach (OK, or WATCH recovering)."""
    awaits_forecast: bool = False
    """The staffing model covers its measure but had no projection yet: the verdict can change when
    the forecast is next worked out (``due`` is then)."""
    held: bool = False
    """Its last judgement held a figure past ``warn`` back within its noise, which only a series not
    yet raised does: the verdict can change once the series is raised."""
    line: Line | None = None
    """Its threshold's figures as judging reads them (worked out once, not at every judgement)."""
    verdict: Verdict | None = None
    """The verdict last returned: returned again when the next one would equal it."""
    shown_for: float = math.nan
    """The value the texts below show (nan: none yet)."""
    fmt: str = ""
    """``format_value`` of :attr:`shown_for` ("" until a reason needs it)."""
    plain: str = ""
    """``"{label} {fmt}"`` of :attr:`shown_for`, the reason of a plain OK ("" until needed)."""
    versus_breach: str = ""
    """:attr:`shown_for` against the breach line, ``"wait p90 1m01s > 1m"`` ("" until needed)."""
    versus_warn: str = ""
    """:attr:`shown_for` against the warn line ("" until needed)."""


class Verdict:
    """A state with its reason, and the figures behind it (immutable; equal when its fields are).

    A plain class rather than a dataclass: compiled, it is built without going through Python's
    ``__init__`` slot, and one is built at most judgements.
    """

    __slots__ = ("badness", "measure", "reason", "state", "value")

    def __init__(
        self, state: State, reason: str, measure: str = "", value: float | None = None, badness: float = 0.0
    ) -> None:
        """A verdict of ``state`` for ``reason`` (``badness``: how far past its limit, relative, to
        rank verdicts of the same state)."""
        self.state: Final = state
        self.reason: Final = reason
        self.measure: Final = measure
        self.value: Final = value
        self.badness: Final = badness

    def _fields(self) -> tuple[State, str, str, float | None, float]:
        return self.state, self.reason, self.measure, self.value, self.badness

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self._fields() != other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Verdict(state={self.state!r}, reason={self.reason!r}, measure={self.measure!r},"
            f" value={self.value!r}, badness={self.badness!r})"
        )


class Line:
    """A threshold's figures as judging reads them: a Threshold is a Python object (each attribute
    read a lookup), and the lines it shows are the same in every reason, so they are read and
    formatted once per rule."""

    def __init__(self, th: Threshold) -> None:
        """Read ``th`` and its measure."""
        m = MEASURES[th.measure]
        self.th = th
        self.measure: str = th.measure
        self.label: str = label_of(th)
        self.window: float = th.window
        self.breach: float = th.breach
        self.warn: float | None = th.warn
        self.clear: float = th.clear
        self.for_: float = th.for_
        self.direction: str = th.direction
        self.above: bool = th.direction == "above"
        self.op: str = ">" if self.above else "<"
        self.quantile: float | None = m.quantile
        self.ratio: bool = m.kind == "ratio"
        self.limit: str = shown_limit(th.measure, th.breach)
        self.warn_text: str = "" if th.warn is None else f"warn {shown_limit(th.measure, th.warn)}"
        self.lasts: float = max(th.for_, th.window if m.windowed else 0.0)
        """How long a figure past ``warn`` within its noise is held back."""
        self.windowed: bool = m.windowed
        self.min_volume: float = float(th.min_volume)
        self.modelled: bool = th.measure in MODELLED
        self.channel: str = th.channel
        self._applies: dict[str, bool] = {}
        self.too_few: str = f"{self.label}: too few contacts to judge"
        self.if_lasts: str = f" (pot hole if it lasts {format_duration(th.for_)})"

    def worse(self, value: float, limit: float) -> bool:
        """Whether ``value`` is past ``limit`` in the bad direction (as :meth:`Threshold.worse`)."""
        return value > limit if self.above else value < limit

    def applies(self, channel: str) -> bool:
        """Whether series on ``channel`` are held to the threshold (its glob matched once per channel)."""
        if self.channel == "*":
            return True
        found = self._applies.get(channel)
        if found is None:
            found = self._applies[channel] = channel_applies(self.th, channel)
        return found


def same_value(a: float, b: float) -> bool:
    """Whether two values are the same number, down to the sign of a zero (which formatting shows)."""
    return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))


def verdict_of(
    rs: RuleState, state: State, reason: str, measure: str, value: float | None, badness: float
) -> Verdict:
    """The verdict of these fields: the rule's last one when it has them all (most judgements give
    the verdict they gave before), else a new one, kept as the rule's last."""
    last = rs.verdict
    if (
        last is not None
        and last.state is state
        and last.badness == badness
        and last.reason == reason
        and last.measure == measure
    ):
        old = last.value
        if value is None:
            if old is None:
                return last
        elif old is not None and same_value(old, value):
            return last
    verdict = rs.verdict = Verdict(state, reason, measure, value, badness)
    return verdict


def shown_value(rs: RuleState, line: Line) -> str:
    """The rule's value as shown (formatted once per value)."""
    if not rs.fmt:
        rs.fmt = format_value(line.measure, rs.shown_for)
    return rs.fmt


def versus_breach_text(rs: RuleState, line: Line) -> str:
    """The rule's value against its breach line (worded once per value)."""
    if not rs.versus_breach:
        rs.versus_breach = versus(line.label, line.measure, rs.shown_for, line.op, line.breach, line.limit)
    return rs.versus_breach


OK_VERDICT = Verdict(State.OK, "within bounds")


def channel_applies(th: Threshold, channel: str) -> bool:
    """Whether series on ``channel`` are held to ``th`` (its channel glob)."""
    if th.channel == "*":
        return True
    return fnmatch.fnmatchcase(channel, th.channel)
