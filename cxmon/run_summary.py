"""What a headless run saw, told when it ends: engine time, events, pot holes, where they were stored."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from cxmon.snapshot import Snapshot, State, Transition
from cxmon.units import format_duration


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z"


@dataclass(slots=True)
class RunTally:
    """A snapshot listener that keeps what the end-of-run summary needs (every tick's transitions)."""

    first_ts: float | None = None
    """Engine time of the first snapshot."""
    started: float | None = None
    """Engine time the run began, when it is known before the first tick (a paced run: its first
    snapshot comes a tick later, as much as a minute of engine time at a high simulator speed)."""
    potholes: list[Transition] = field(default_factory=list)
    """Every step transition into POTHOLE, in order."""
    watches: list[Transition] = field(default_factory=list)
    """Every step transition into WATCH, in order."""

    def __call__(self, snap: Snapshot) -> None:
        """Take one published snapshot (an engine listener)."""
        if self.first_ts is None:
            self.first_ts = snap.ts
        for tr in snap.transitions:
            if tr.to_state is State.POTHOLE:
                self.potholes.append(tr)
            elif tr.to_state is State.WATCH:
                self.watches.append(tr)

    def summary(self, last: Snapshot, *, stored: int | None, db: str | None) -> str:
        """Return the summary printed when ``cxmon run --headless`` ends.

        Args:
            last: the engine's final snapshot (published after every event was processed).
            stored: events the store committed (None when the run stored nothing).
            db: the history database's path (None when the run stored nothing).

        Returns:
            Several lines: engine time, events per source, pot holes (each step, when and why),
            watches, and where the history is.
        """
        start = self.started if self.started is not None else self.first_ts
        if start is None or start > last.ts:
            start = last.ts
        sources = ", ".join(f"{s.name} {s.events_total}" for s in last.sources)
        lines = [
            f"summary: {format_duration(max(0.0, last.ts - start))} of engine time, "
            f"{_stamp(start)} to {_stamp(last.ts)}",
            f"events: {last.events_total} received ({sources or 'no sources'}), {last.errors_total} errors",
        ]
        if self.potholes:
            lines.append(f"pot holes: {len(self.potholes)}")
            lines.extend(f"  {_stamp(tr.ts)}  {tr.step}: {tr.reason}" for tr in self.potholes)
        else:
            lines.append("pot holes: none")
        watched = sorted({tr.step for tr in self.watches})
        lines.append(f"watches: {len(self.watches)}" + (f" ({', '.join(watched)})" if watched else ""))
        open_now = [s.name for s in last.steps if s.state is State.POTHOLE]
        if open_now:
            lines.append(f"still open at the end: {', '.join(open_now)}")
        if db is None:
            lines.append("stored: nothing (no history database)")
        else:
            path = Path(db).resolve()
            lines.append(f"stored: {stored} events in {path} (cxmon stats --db {path})")
        return "\n".join(lines)
