"""Baselines: per series, judged measure, window and hour of the week, what is usual (minute figures).

Every minute's figures go into the slot of their hour of the week (UTC, Monday 00:00 = 0): the
measures a step's thresholds judge, in every window they judge them over (the minute figures carry
the shortest window's figures under the measure's name and the longer windows' judged ones as
``measure@15m``, so imports and restarts learn every window from the store). A figure resting on
fewer contacts than the threshold's ``min_volume`` is not learned. A slot gives verdicts once it has
figures from ``baseline_min_weeks`` different weeks (cold start: "learning" until then); only the
last ``baseline_weeks`` weeks count. "Worse than usual" is a value past the slot's
``baseline_quantile`` (the 95th percentile of wait p90 for "above" thresholds, the 5th of service
level for "below" ones) for at least the threshold's ``for``. At most SAMPLES_PER_HOUR figures are
kept per slot and week (every few minutes), so memory is bounded by series × judged measures × 168 ×
(weeks + 1). What a slot says cannot change within its hour (it reads earlier weeks only), so it is worked
out once per hour and kept.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo

import orjson

from cxmon.config import Config, Threshold
from cxmon.forecast.usual import UsualFigure
from cxmon.localtime import when, zone
from cxmon.measures import MEASURES, format_value, volume
from cxmon.snapshot import BaselineStatus
from cxmon.units import format_window

WEEK = 7 * 86400.0
SAMPLES_PER_HOUR = 12
"""Figures kept per slot and week: one every five minutes of the hour."""
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hour_of_week(ts: float) -> int:
    """Hours since Monday 00:00 UTC (0–167); the epoch fell on a Thursday."""
    return int((ts // 3600 + 72) % 168)


def week_of(ts: float) -> int:
    """Whole weeks since the Monday before the epoch."""
    return int((ts + 3 * 86400) // WEEK)


def week_start(week: int) -> float:
    """The epoch second the week :func:`week_of` numbers ``week`` begins (Monday 00:00 UTC)."""
    return week * WEEK - 3 * 86400


def slot_name(how: int) -> str:
    """``"Mon 10h"`` for an hour of the week."""
    return f"{_DAYS[how // 24]} {how % 24:02d}h"


def local_slot_name(ts: float, tz: tzinfo | None) -> str:
    """The hour of the week ``ts`` is in, named as a clock in ``tz`` reads its start: ``"Mon 12h"``
    (``"Mon 15:30"`` in a zone whose hours begin at half past; None: the machine's zone)."""
    start = when(ts // 3600 * 3600, tz)
    day = _DAYS[start.weekday()]
    return f"{day} {start.hour:02d}h" if start.minute == 0 else f"{day} {start.hour:02d}:{start.minute:02d}"


@dataclass(frozen=True, slots=True)
class Usual:
    """What the baseline says about one value."""

    ready: bool
    """False while the slot has too few weeks (cold start)."""
    weeks: int
    median: float | None = None
    limit: float | None = None
    """The quantile a worse-than-usual value is past."""


@dataclass(frozen=True, slots=True)
class Watched:
    """One judged measure and window of a step, as the baselines learn it."""

    measure: str
    window: float
    name: str
    """Its key in the minute figures: the measure's name, with ``@window`` past the shortest."""
    min_volume: float
    direction: str
    """Of the (first) threshold that judges it: where the exported limit lies."""


_Slot = tuple[tuple[str, str, str], str, float]
"""(series key, measure, window)."""


class Baselines:
    """Hour-of-week baselines of every judged measure, and who has been worse than usual since when."""

    def __init__(self, config: Config) -> None:
        """Build empty baselines for the config's steps and ``[forecast]`` settings."""
        opts = config.forecast
        self.weeks = opts.baseline_weeks
        self.min_weeks = opts.baseline_min_weeks
        self.quantile = opts.baseline_quantile
        self.tz = zone(config.display_timezone)
        """The floor's clock, in which a reason names the hour (the slots themselves are UTC)."""
        self.shortest = min(config.monitor.windows)
        """The window whose figures the minute figures carry under the measures' own names."""
        self.watched: dict[str, tuple[Watched, ...]] = {}
        """Step → the measures and windows its thresholds judge (windowed measures only)."""
        self._by_slot: dict[tuple[str, str, float], Watched] = {}
        for step in config.steps:
            seen: dict[tuple[str, float], Watched] = {}
            for t in step.thresholds:
                if not MEASURES[t.measure].windowed:
                    continue
                old = seen.get((t.measure, t.window))
                seen[(t.measure, t.window)] = Watched(
                    t.measure,
                    t.window,
                    stored_name(t.measure, t.window, self.shortest),
                    t.min_volume if old is None else min(old.min_volume, t.min_volume),
                    t.direction if old is None else old.direction,
                )
            self.watched[step.name] = tuple(seen.values())
            for w in seen.values():
                self._by_slot[(step.name, w.measure, w.window)] = w
        self._longer: dict[str, tuple[Watched, ...]] = {
            name: tuple(w for w in watched if w.window != self.shortest)
            for name, watched in self.watched.items()
        }
        self._stored: dict[str, tuple[tuple[float, str, str, float], ...]] = {
            name: tuple((w.window, w.measure, w.name, w.min_volume) for w in longer)
            for name, longer in self._longer.items()
        }
        """Step → (window, measure, minute-figure name, min_volume) of its longer windows' judged
        figures (what :meth:`stored_figures` reads, minute after minute)."""
        self._slots: dict[int, dict[_Slot, dict[int, array[float]]]] = {}
        """Hour of the week → (series, measure, window) → week → figures."""
        self._usual: dict[tuple[_Slot, str], Usual] = {}
        """What the slots of ``_usual_at`` say, per direction, as worked out so far."""
        self._usual_at = (-1, -1)
        """(hour of the week, week) ``_usual`` holds."""
        self._figures: tuple[UsualFigure, ...] = ()
        self._figures_at = (-1, -1)
        self._since: dict[tuple[tuple[str, str, str], str, float], float] = {}
        self.minutes = 0
        self._weeks: set[int] = set()
        self._status = BaselineStatus(0, self.min_weeks)
        self._status_at = (-1, -1)
        """(week, weeks with figures) :attr:`_status` was worked out for."""

    def longer(self, step: str) -> tuple[Watched, ...]:
        """The judged measures of ``step`` over windows longer than the shortest (stored as ``m@w``)."""
        return self._longer.get(step, ())

    def stored_figures(
        self, step: str, windows: Mapping[float, Mapping[str, float | None]]
    ) -> dict[str, float]:
        """The longer windows' judged figures of a series, under their minute-figure names
        (``wait_p90@15m``), those resting on too few contacts left out."""
        out: dict[str, float] = {}
        stored = self._stored.get(step)
        if stored is None:
            return out
        # ``in`` then ``[]``: ``get`` on the read-only views the tick keeps is two method calls
        # (this runs for every series each minute).
        for window, measure, name, least in stored:
            if window not in windows:
                continue
            figures = windows[window]
            if measure not in figures:
                continue
            value = figures[measure]
            if value is None:
                continue
            if volume(measure, figures) >= least:
                out[name] = value
        return out

    @staticmethod
    def learns(minute: float) -> bool:
        """Whether :meth:`add` learns the figures of ``minute``: one minute in five is plenty for a
        quantile per hour and week."""
        return not int(minute // 60) % (60 // SAMPLES_PER_HOUR)

    def add(self, key: tuple[str, str, str], minute: float, figures: Mapping[str, float | None]) -> None:
        """Learn one minute's figures of a series (as stored: see :func:`stored_name`)."""
        if not self.learns(minute):
            return
        wanted = self.watched.get(key[0])
        if not wanted:
            return
        how, week = hour_of_week(minute), week_of(minute)
        self._weeks.add(week)
        self.minutes += 1
        if week < self._usual_at[1] or week < self._figures_at[1]:
            self._usual_at = self._figures_at = (-1, -1)  # history learned late (a load): work it out again
        slots = self._slots.setdefault(how, {})
        for w in wanted:
            value = figures.get(w.name)
            if value is None:
                continue
            if w.window == self.shortest and volume(w.measure, figures) < w.min_volume:
                continue
            weeks = slots.setdefault((key, w.measure, w.window), {})
            values = weeks.get(week)
            if values is None:
                values = weeks[week] = array("d")
                # The weeks before the last ``weeks`` before this one are read no more (this week's
                # slot reads the ``weeks`` before it: keep them all).
                for old in [x for x in weeks if x < week - self.weeks]:
                    del weeks[old]
            if len(values) < SAMPLES_PER_HOUR:
                values.append(value)

    def _slot_usual(self, slot: _Slot, direction: str, how: int, current: int) -> Usual:
        weeks = self._slots.get(how, {}).get(slot, {})
        past = [values for week, values in weeks.items() if current - self.weeks <= week < current]
        if len(past) < self.min_weeks:
            return Usual(False, len(past))
        pooled = sorted(v for values in past for v in values)
        if not pooled:
            return Usual(False, len(past))
        q = self.quantile if direction == "above" else 1.0 - self.quantile
        return Usual(True, len(past), _quantile(pooled, 0.5), _quantile(pooled, q))

    def usual(self, key: tuple[str, str, str], measure: str, th: Threshold, now: float) -> Usual:
        """The slot's median and limit for ``now`` over the threshold's window (learned from earlier
        weeks only)."""
        at = (hour_of_week(now), week_of(now))
        if at != self._usual_at:
            self._usual.clear()
            self._usual_at = at
        mark = ((key, measure, th.window), th.direction)
        found = self._usual.get(mark)
        if found is None:
            found = self._usual[mark] = self._slot_usual(mark[0], th.direction, *at)
        return found

    def figures(self, now: float) -> tuple[UsualFigure, ...]:
        """Every ready slot of ``now``'s hour of the week, for the snapshot (worked out once an hour)."""
        how, current = hour_of_week(now), week_of(now)
        if (how, current) == self._figures_at:
            return self._figures
        out = []
        q = self.quantile
        for slot in self._slots.get(how, {}):
            key, measure, window = slot
            w = self._by_slot.get((key[0], measure, window))
            if w is None:
                continue
            usual = self._slot_usual(slot, w.direction, how, current)
            if usual.ready and usual.median is not None and usual.limit is not None:
                out.append(
                    UsualFigure(
                        *key,
                        measure=measure,
                        window=window,
                        median=usual.median,
                        limit=usual.limit,
                        limit_quantile=q if w.direction == "above" else round(1.0 - q, 6),
                        weeks=usual.weeks,
                    )
                )
        out.sort(key=lambda f: (f.step, f.channel, f.queue, f.measure, f.window))
        self._figures = tuple(out)
        self._figures_at = (how, current)
        return self._figures

    def worse_reason(self, key: tuple[str, str, str], th: Threshold, value: float, now: float) -> str:
        """The WATCH reason when ``value`` has been worse than usual for ``th.for_``, else ``""``."""
        if not MEASURES[th.measure].windowed:
            return ""
        usual = self.usual(key, th.measure, th, now)
        mark = (key, th.measure, th.window)
        if not usual.ready or usual.limit is None or not th.worse(value, usual.limit):
            self._since.pop(mark, None)
            return ""
        since = self._since.setdefault(mark, now)
        if now - since < th.for_:
            return ""
        label = MEASURES[th.measure].label
        if th.window != self.shortest:
            label = f"{label} ({format_window(th.window)})"
        side = "above" if th.direction == "above" else "below"
        pct = self.quantile * 100 if th.direction == "above" else (1.0 - self.quantile) * 100
        return (
            f"{label} {format_value(th.measure, value)} worse than usual: {side} the {pct:.0f}th percentile "
            f"for {local_slot_name(now, self.tz)} ({format_value(th.measure, usual.limit)}; "
            f"median {format_value(th.measure, usual.median)}, {usual.weeks} weeks)"
        )

    def next_look(self, key: tuple[str, str, str], th: Threshold, now: float) -> float:
        """When :meth:`worse_reason` can next answer otherwise for the same value: the end of the
        threshold's ``for`` while the value is worse than usual, else the next hour of the week (a
        new slot, with a usual of its own), once anything has been learned; never without."""
        if not self._weeks or not MEASURES[th.measure].windowed:
            return math.inf
        at = (now // 3600 + 1) * 3600
        since = self._since.get((key, th.measure, th.window))
        if since is not None and now < since + th.for_:
            at = min(at, since + th.for_)
        return at

    def status(self, now: float) -> BaselineStatus:
        """How far the baselines have learned at ``now``: past weeks with figures, of those needed
        (its text: "learning (1 of 2 weeks of history)", or "ready (3 weeks of history)")."""
        current = week_of(now)
        at = (current, len(self._weeks))  # weeks are only ever added
        if at != self._status_at:
            have = sum(1 for w in self._weeks if current - self.weeks <= w < current)
            self._status, self._status_at = BaselineStatus(have, self.min_weeks), at
        return self._status

    def load(self, db_path: str, before: float | None = None) -> int:
        """Learn the stored minute figures of the weeks a slot counts: the last ``baseline_weeks``
        whole weeks before the week of the newest stored minute, and that week (with ``before``,
        of the minutes before it: what a monitor knew then, for a replay).

        Runs in a thread at start (sqlite3, read only). Returns the minutes read.

        Args:
            db_path: the history.
            before: learn only the minutes before this (a replay: what the floor had learned then).
        """
        try:
            con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
        except sqlite3.Error:
            return 0
        try:
            newest = con.execute("SELECT max(minute) FROM snapshots").fetchone()[0]
            if newest is None:
                return 0
            if before is not None:
                newest = min(newest, before)
            # From the Monday that begins the earliest week counted: a slot of this week reads the
            # whole of that week's hour, not only the part after the newest minute's time of week.
            since = week_start(week_of(newest) - self.weeks)
            rows: Iterable[tuple[float, str, str, str, str]] = con.execute(
                "SELECT minute, step, channel, queue, figures FROM snapshots"
                " WHERE minute >= ? ORDER BY minute",
                (since,),
            )
            count = 0
            for minute, step, channel, queue, figures in rows:
                if before is not None and minute >= before:
                    break
                try:
                    data = orjson.loads(figures)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(data, dict):
                    self.add((step, channel, queue), minute, data)
                    count += 1
            return count
        except sqlite3.Error:
            return 0
        finally:
            con.close()


def stored_name(measure: str, window: float, shortest: float) -> str:
    """A judged figure's key in the minute figures: ``wait_p90`` for the shortest window (whose
    figures they are), ``wait_p90@15m`` for a longer one."""
    return measure if window == shortest else f"{measure}@{format_window(window)}"


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values`` (linear between neighbours)."""
    if len(values) == 1:
        return values[0]
    pos = q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)
