"""Baselines: per series, measure and hour of the week, what is usual — learned from the minute figures.

Every minute's figures (the shortest window's, as stored) go into the slot of their hour of the week
(UTC, Monday 00:00 = 0). A slot gives verdicts once it has figures from ``baseline_min_weeks``
different weeks (cold start: "learning" until then); only the last ``baseline_weeks`` weeks count.
"Worse than usual" is a value past the slot's ``baseline_quantile`` (the 95th percentile of wait p90
for "above" thresholds, the 5th of service level for "below" ones) for at least the threshold's
``for``. Only the measures a step's thresholds judge are kept, and at most SAMPLES_PER_HOUR figures
per slot and week (every few minutes), so memory is bounded by series × measures × 168 × weeks.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from cxmon.config import Config, Threshold
from cxmon.measures import MEASURES, format_value
from cxmon.snapshot import BaselineStatus

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


def slot_name(how: int) -> str:
    """``"Mon 10h"`` for an hour of the week."""
    return f"{_DAYS[how // 24]} {how % 24:02d}h"


@dataclass(frozen=True, slots=True)
class Usual:
    """What the baseline says about one value."""

    ready: bool
    """False while the slot has too few weeks (cold start)."""
    weeks: int
    median: float | None = None
    limit: float | None = None
    """The quantile a worse-than-usual value is past."""


class Baselines:
    """Hour-of-week baselines of every judged measure, and who has been worse than usual since when."""

    def __init__(self, config: Config) -> None:
        """Build empty baselines for the config's steps and ``[forecast]`` settings."""
        opts = config.forecast
        self.weeks = opts.baseline_weeks
        self.min_weeks = opts.baseline_min_weeks
        self.quantile = opts.baseline_quantile
        self.window = min(config.monitor.windows)
        """The window the minute figures are of: only thresholds on it are compared."""
        self.measures: dict[str, frozenset[str]] = {
            s.name: frozenset(
                t.measure for t in s.thresholds if MEASURES[t.measure].windowed and t.window == self.window
            )
            for s in config.steps
        }
        self._slots: dict[tuple[tuple[str, str, str], str, int], dict[int, array[float]]] = {}
        self._since: dict[tuple[tuple[str, str, str], str], float] = {}
        self.minutes = 0
        self._weeks: set[int] = set()

    def add(self, key: tuple[str, str, str], minute: float, figures: Mapping[str, float | None]) -> None:
        """Learn one minute's figures of a series (the shortest window's)."""
        wanted = self.measures.get(key[0])
        if not wanted:
            return
        if int(minute // 60) % (60 // SAMPLES_PER_HOUR):
            return  # one minute in five is plenty for a quantile per hour and week
        how, week = hour_of_week(minute), week_of(minute)
        self._weeks.add(week)
        self.minutes += 1
        for measure in wanted:
            value = figures.get(measure)
            if value is None:
                continue
            weeks = self._slots.setdefault((key, measure, how), {})
            values = weeks.get(week)
            if values is None:
                values = weeks[week] = array("d")
                for old in [w for w in weeks if w <= week - self.weeks]:
                    del weeks[old]
            if len(values) < SAMPLES_PER_HOUR:
                values.append(value)

    def usual(self, key: tuple[str, str, str], measure: str, th: Threshold, now: float) -> Usual:
        """The slot's median and limit for ``now`` (learned from earlier weeks only)."""
        weeks = self._slots.get((key, measure, hour_of_week(now)), {})
        current = week_of(now)
        past = [values for week, values in weeks.items() if current - self.weeks <= week < current]
        if len(past) < self.min_weeks:
            return Usual(False, len(past))
        pooled = sorted(v for values in past for v in values)
        q = self.quantile if th.direction == "above" else 1.0 - self.quantile
        return Usual(True, len(past), _quantile(pooled, 0.5), _quantile(pooled, q))

    def worse_reason(self, key: tuple[str, str, str], th: Threshold, value: float, now: float) -> str:
        """The WATCH reason when ``value`` has been worse than usual for ``th.for_``, else ``""``."""
        if th.window != self.window or not MEASURES[th.measure].windowed:
            return ""
        usual = self.usual(key, th.measure, th, now)
        mark = (key, th.measure)
        if not usual.ready or usual.limit is None or not th.worse(value, usual.limit):
            self._since.pop(mark, None)
            return ""
        since = self._since.setdefault(mark, now)
        if now - since < th.for_:
            return ""
        label = MEASURES[th.measure].label
        side = "above" if th.direction == "above" else "below"
        pct = self.quantile * 100 if th.direction == "above" else (1.0 - self.quantile) * 100
        return (
            f"{label} {format_value(th.measure, value)} worse than usual: {side} the {pct:.0f}th percentile "
            f"for {slot_name(hour_of_week(now))} ({format_value(th.measure, usual.limit)}; "
            f"median {format_value(th.measure, usual.median)}, {usual.weeks} weeks)"
        )

    def status(self, now: float) -> BaselineStatus:
        """How far the baselines have learned at ``now``: past weeks with figures, of those needed
        (its text: "learning (1 of 2 weeks of history)", or "ready (3 weeks of history)")."""
        current = week_of(now)
        have = sum(1 for w in self._weeks if current - self.weeks <= w < current)
        return BaselineStatus(have, self.min_weeks)

    def load(self, db_path: str, before: float | None = None) -> int:
        """Learn the stored minute figures of the last ``baseline_weeks`` weeks (of the newest stored).

        Runs in a thread at start (sqlite3, read only). Returns the minutes read.
        """
        try:
            con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
        except sqlite3.Error:
            return 0
        try:
            newest = con.execute("SELECT max(minute) FROM snapshots").fetchone()[0]
            if newest is None:
                return 0
            since = newest - self.weeks * WEEK
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


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values`` (linear between neighbours)."""
    if len(values) == 1:
        return values[0]
    pos = q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)
