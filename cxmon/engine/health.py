"""Source health: each source's running figures, when it counts as stale, and why (in words)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cxmon.snapshot import SourceStatus


@dataclass(slots=True)
class SourceHealth:
    """Running health figures of one source."""

    name: str
    type: str
    up: bool = False
    finished: bool = False
    down: bool = False
    """The source said it lost its input (``set_up(False)``) or it died: stale at once."""
    failed: bool = False
    """The source ended with an error and was not started again (its work is incomplete)."""
    started_at: float | None = None
    """Engine time the source was started: a source is given ``stale_after`` to say its first word."""
    back_at: float | None = None
    """Engine time the source came up again after it had been up and went down (None: it has not
    since): it stays stale until it has stayed up for ``recover_after`` (a flapping source is one
    outage, not an OK and an alert each time it reconnects)."""
    been_up: bool = False
    """The source has been up once (its first coming up is a start, not a recovery)."""
    restarts: int = 0
    events_total: int = 0
    errors_total: int = 0
    last_event_ts: float | None = None
    last_error: str | None = None
    rate_events: float = 0.0
    rate_errors: float = 0.0
    _mark_events: int = 0
    _mark_errors: int = 0

    def heard(self, ts: float) -> None:
        """The source is alive up to source time ``ts`` (an event or a heartbeat it sent)."""
        if self.last_event_ts is None or ts > self.last_event_ts:
            self.last_event_ts = ts

    def say_up(self, up: bool, now: float) -> None:
        """The source says at engine time ``now`` that its input is up (True) or down (False)."""
        if up and self.down and self.been_up:
            self.back_at = now
        elif not up:
            self.back_at = None
        self.been_up = self.been_up or up
        self.up = up
        self.down = not up


class SourcesHealth:
    """The health of every source of an engine, and what it makes stale."""

    def __init__(
        self,
        health: dict[str, SourceHealth],
        stale_after: float,
        event_clock: bool,
        paced: bool,
        recover_after: float = 0.0,
    ) -> None:
        """Judge ``health`` (name → figures, kept up to date by the engine's sinks).

        Args:
            health: the sources' running figures.
            stale_after: seconds of silence that make a source stale.
            event_clock: engine time is the events' own (a backfill): silence cannot be told.
            paced: engine time runs at its own pace (a finished unpaced source is done, not down).
            recover_after: seconds a source that was down must stay up again before it is no
                longer stale (not on an event clock: there the data's gaps are not outages).
        """
        self.health = health
        self.stale_after = stale_after
        self.event_clock = event_clock
        self.paced = paced
        self.recover_after = 0.0 if event_clock else recover_after
        self._wall_mark = time.monotonic()

    def is_stale(self, h: SourceHealth, now: float) -> bool:
        """Whether source ``h`` is stale at engine time ``now``."""
        limit = self.stale_after
        if h.last_event_ts is not None:
            silent = now - h.last_event_ts > limit and not self.event_clock
        elif self.event_clock:
            silent = h.started_at is None
        else:
            # Not heard from yet: a source that is starting is given stale_after to say its
            # first word (a start is not an outage).
            silent = h.started_at is None or now - h.started_at > limit
        stale = silent or (h.down and not h.finished) or self.recovering(h, now)
        if h.finished and not self.paced and not h.failed:
            stale = False  # an import that finished is done, not down
        return stale

    def recovering(self, h: SourceHealth, now: float) -> bool:
        """Whether source ``h`` came back from an outage less than ``recover_after`` ago (it is up,
        and still stale: a source that drops again within that time has not recovered)."""
        back = h.back_at
        return back is not None and not h.finished and now - back < self.recover_after

    def stale(self, now: float) -> tuple[frozenset[str], bool]:
        """(names of the stale sources, whether everything is stale) at engine time ``now``."""
        names = frozenset(h.name for h in self.health.values() if self.is_stale(h, now))
        return names, (bool(self.health) and len(names) == len(self.health)) or not self.health

    def statuses(self, now: float) -> tuple[SourceStatus, ...]:
        """Every source's status at ``now``; event rates are brought up to date once a wall second."""
        wall = time.monotonic()
        elapsed = wall - self._wall_mark
        update_rates = elapsed >= 1.0
        out = []
        for h in self.health.values():
            if update_rates:
                h.rate_events = (h.events_total - h._mark_events) / elapsed
                h.rate_errors = (h.errors_total - h._mark_errors) / elapsed
                h._mark_events, h._mark_errors = h.events_total, h.errors_total
            out.append(
                SourceStatus(
                    name=h.name,
                    type=h.type,
                    up=h.up,
                    stale=self.is_stale(h, now),
                    events_total=h.events_total,
                    errors_total=h.errors_total,
                    last_event_ts=h.last_event_ts,
                    events_per_second=h.rate_events,
                    errors_per_second=h.rate_errors,
                    last_error=h.last_error,
                    finished=h.finished and not h.failed,
                )
            )
        if update_rates:
            self._wall_mark = wall
        return tuple(out)

    def stale_reason(self, names: list[str], now: float) -> str:
        """Why the sources ``names`` are stale, in words."""
        if not names:
            return "no sources"
        parts = []
        for name in names:
            h = self.health[name]
            if h.down and not h.finished:
                parts.append(f"{name} is down" + (f" ({h.last_error})" if h.last_error else ""))
            elif self.recovering(h, now):
                assert h.back_at is not None
                parts.append(
                    f"{name} is back for {int(now - h.back_at)}s of the {int(self.recover_after)}s "
                    "it must stay up"
                )
            elif h.last_event_ts is None:
                parts.append(f"nothing from {name} yet")
            else:
                parts.append(f"nothing from {name} for {int(now - h.last_event_ts)}s")
        return "; ".join(parts)
