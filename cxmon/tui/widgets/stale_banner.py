"""STALE banner: says loudly that the figures on screen are not current."""

from __future__ import annotations

from typing import Any

from textual.reactive import reactive
from textual.widgets import Static

from cxmon.snapshot import EMPTY_SNAPSHOT, Snapshot
from cxmon.tui.format import age_text


def stale_reason(snapshot: Snapshot, silent_for: float | None) -> str:
    """Return why the data is stale ("" when it is current).

    Args:
        snapshot: the newest snapshot received.
        silent_for: seconds since the feed last delivered a snapshot, when longer than the stale limit.
    """
    hub = snapshot.hub
    if hub is not None and hub.links and hub.state == "disconnected":
        # Before the feed's silence: a watcher cut off from its hub publishes only when it tries
        # again, so the silence would stand in for the cause, counted from the last attempt.
        down = [link for link in hub.links if link.state != "live"]
        return "no contact with the hub at " + ", ".join(link.url or link.site for link in down)
    if silent_for is not None:
        return f"no snapshot from the feed for {age_text(silent_for)}"
    stale = [s for s in snapshot.sources if s.stale]
    if snapshot.stale or (stale and len(stale) == len(snapshot.sources)):
        names = ", ".join(s.name for s in stale) or "every source"
        newest = [s.last_event_ts for s in snapshot.sources if s.last_event_ts is not None]
        since = f" for {age_text(snapshot.ts - max(newest))}" if newest else ""
        return f"no data from {names}{since}"
    if stale:
        return f"no data from {', '.join(s.name for s in stale)}; steps fed by it are not current"
    return ""


class StaleBanner(Static):
    """Hidden while data is current; otherwise a full-width STALE warning."""

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    silent_for: reactive[float | None] = reactive(None)
    """Seconds the feed has been silent, when past the stale limit."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: str | None = None

    def watch_snapshot(self) -> None:
        self._paint()

    def watch_silent_for(self) -> None:
        self._paint()

    def on_mount(self) -> None:
        self._paint()

    def _paint(self) -> None:
        reason = stale_reason(self.snapshot, self.silent_for)
        if reason == self._shown:
            return
        self._shown = reason
        self.display = bool(reason)
        self.set_class(bool(reason), "-stale")
        self.update(f"⚠ STALE — {reason}. Figures on screen are not current." if reason else "")
