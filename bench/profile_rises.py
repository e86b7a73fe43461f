"""Benchmark: the rise test on a real centre's arrivals, against a flat usual rate and the day's profile.

The Anonymous Bank's August 1999 (the shared data's call records): every call that queued, by its
call type (the queue), as the running counts the forecast samples every 10 seconds. For every minute
from 07:00 to midnight, :func:`cxmon.forecast.change.rise` (``rise_score`` 14, as shipped) is asked
whether the arrivals rose, once against a flat usual rate (no profile: as without history) and once
against the queue's arrival profile (15-minute intervals) learned, as :mod:`cxmon.forecast.profile`
learns it, from the month's other weeks' days (the day under test is never in its own profile).

Nothing is known to have surged at the bank that month: what the test finds is mostly the day's own
shape (the morning's climb, the evening's return). Prints, per queue, the rises found per day (a rise
is a run of minutes with one) and the hours they begin in. Usage: ``python bench/profile_rises.py
[--queues PS,NE,...] [--score 14]``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxmon.forecast import change, profile  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "anonymous-bank" / "calls-1999-08.csv"
STEP = 10.0
INTERVAL = 900.0
KEEP = change.LONGEST + change.BEFORE_LONG + 60.0


def arrivals(path: Path) -> dict[str, list[float]]:
    """Each call type's queue entry times (seconds, the day taken as UTC), sorted."""
    out: dict[str, list[float]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["q_start"] == "0:00:00":
                continue  # served or hung up in the voice menu: never queued
            day = datetime.strptime(row["date"], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            h, m, s = (int(x) for x in row["q_start"].split(":"))
            out[row["type"]].append(day + h * 3600 + m * 60 + s)
    for times in out.values():
        times.sort()
    return out


def learned(times: list[float], leave_out: int) -> profile.Profile | None:
    """The profile of ``times`` from every day but those of the week ``leave_out``."""
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for t in times:
        day = int(t // profile.DAY)
        if day // 7 == leave_out:
            continue
        counts[day][int((t % profile.DAY) // INTERVAL)] += 1
    got = profile.learn(counts, INTERVAL, min_days=5)
    return None if got is None else profile.Profile.of(INTERVAL, *got)


def episodes(
    times: list[float], score: float
) -> tuple[Counter[str], Counter[int], Counter[str], Counter[int], int, tuple[int, int]]:
    """Rises found, flat and against the profile: per day and by the hour they begin in; the days;
    the weeks with a profile, of all."""
    first_day = int(times[0] // profile.DAY)
    last_day = int(times[-1] // profile.DAY)
    profiles = {w: learned(times, w) for w in range(first_day // 7, last_day // 7 + 1)}
    flat_days: Counter[str] = Counter()
    flat_hours: Counter[int] = Counter()
    prof_days: Counter[str] = Counter()
    prof_hours: Counter[int] = Counter()
    days = 0
    for day in range(first_day, last_day + 1):
        days += 1
        p = profiles[day // 7]
        base = day * profile.DAY
        was = {"flat": False, "profile": False}
        for minute in range(7 * 60, 24 * 60):
            now = base + minute * 60.0
            grid = [now - KEEP + k * STEP for k in range(int(KEEP / STEP) + 1)]
            samples = [(t, bisect_right(times, t)) for t in grid]
            count = samples[-1][1]
            # A queue without a profile (too few arrivals) is judged flat, as the engine judges it.
            for name, prof in (("flat", None), ("profile", p)):
                rose = change.rise(samples, now, count, 1, score, prof) is not None
                if rose and not was[name]:
                    label = datetime.fromtimestamp(base, UTC).strftime("%m-%d")
                    (flat_days if name == "flat" else prof_days)[label] += 1
                    (flat_hours if name == "flat" else prof_hours)[minute // 60] += 1
                was[name] = rose
    return (
        flat_days,
        flat_hours,
        prof_days,
        prof_hours,
        days,
        (sum(1 for p in profiles.values() if p), len(profiles)),
    )


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", default="PS,NE,IN,TT,PE,NW", help="call types to test (default: all six)")
    parser.add_argument("--score", type=float, default=change.SCORE, help="rise_score (default 14)")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"{DATA}: not found (the shared data sits beside the repository)", file=sys.stderr)
        return 1
    calls = arrivals(DATA)
    for queue in args.queues.split(","):
        times = calls.get(queue, [])
        if not times:
            print(f"{queue}: no calls")
            continue
        flat_days, flat_hours, prof_days, prof_hours, days, weeks = episodes(times, args.score)
        per_day = len(times) / days
        print(f"{queue}: {len(times):,} calls queued in {days} days ({per_day:.0f} a day)")
        print(
            f"  flat usual rate: {sum(flat_days.values())} rises ({sum(flat_days.values()) / days:.2f} a day)"
        )
        print(f"    beginning at: {', '.join(f'{h:02d}h {n}' for h, n in sorted(flat_hours.items()))}")
        total = sum(prof_days.values())
        have = f"{weeks[0]} of {weeks[1]} weeks have one"
        print(f"  against the profile ({have}): {total} rises ({total / days:.2f} a day)")
        print(f"    beginning at: {', '.join(f'{h:02d}h {n}' for h, n in sorted(prof_hours.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
