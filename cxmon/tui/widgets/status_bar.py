"""Status bar: each source's health, events/s, data age, window, filter, PAUSED and alert-sink trouble."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cxmon.snapshot import EMPTY_SNAPSHOT, AlertStatus, HubStatus, Snapshot, SourceStatus
from cxmon.tui.format import age_text
from cxmon.units import format_window


def data_age(snapshot: Snapshot, now: float | None = None) -> float | None:
    """Seconds between the snapshot and the newest event any source delivered (None when none yet).

    On a watcher cut off from every hub it shows, the time since the last snapshot came is added:
    the figures on screen grow older while no hub answers.

    Args:
        snapshot: the snapshot shown.
        now: wall time (epoch seconds), to age a watcher's snapshot by (None: not aged).
    """
    newest = [s.last_event_ts for s in snapshot.sources if s.last_event_ts is not None]
    if not newest:
        return None
    age = snapshot.ts - max(newest)
    hub = snapshot.hub
    if now is not None and hub is not None and hub.links and not hub.live:
        heard = [link.heard for link in hub.links if link.heard is not None]
        if heard:
            age += max(0.0, now - max(heard))
    return age


def alerts_text(status: AlertStatus | None) -> str:
    """Summarise the alert sinks' status for the status bar ("" when healthy)."""
    if status is None:
        return ""
    failures, last = status.failures, status.last_error
    if not failures and not last:
        return ""
    return f"alerts: {failures} failed" + (f" ({last})" if last else "")


def store_text(snapshot: Snapshot) -> str:
    """Say when history commits fail, and when the sources are held back for it ("" when healthy)."""
    st = snapshot.store
    if st is None or st.last_error is None:
        return ""
    held = "sources held" if st.backpressure else "retrying"
    return f"history: {st.last_error} — {held}, {st.pending_rows:,} rows waiting"


def hub_part(hub: HubStatus | None, now: float) -> Content | None:
    """A watcher's hub connections: live, or DISCONNECTED and when it tries again; None in-process.

    Args:
        hub: the snapshot's hub connections.
        now: wall time (epoch seconds), to count down to the next attempt from.
    """
    if hub is None or not hub.links:
        return None
    if hub.sites:
        live, count = hub.live, len(hub.links)
        style = "$text-success" if live == count else "bold reverse $text-error"
        return Content.styled(f" hubs {live}/{count} live ", style)
    link = hub.links[0]
    if link.state == "live":
        return Content.assemble("hub ", ("● live", "$text-success"))
    when = ""
    if link.retry_at is not None:
        left = math.ceil(link.retry_at - now)
        when = f", retry in {left} s" if left > 0 else ", retrying"
    return Content.styled(f" hub ✖ DISCONNECTED{when} ", "bold reverse $text-error")


def source_part(src: SourceStatus, rate: bool = True) -> Content:
    """One source: a symbol and word for its health, its event and error rates (no event rate when
    STALE: the last one known is not the source's now, and an 80-column bar needs the room; none
    either at its input's end, where it is done, not down: a replay at the end of its range).

    Args:
        src: the source.
        rate: show its event rate (False: its name, health and any errors, for a narrow bar).
    """
    if src.stale:
        mark, style = "? STALE", "bold $text-error"
    elif not src.up and src.finished:
        mark, style = "■ end", "bold"
    elif not src.up:
        mark, style = "✖ down", "bold $text-error"
    else:
        mark, style = "● up", "$text-success"
    quiet = src.stale or (src.finished and not src.up)
    events = "" if quiet or not rate else f" {src.events_per_second:.0f} ev/s"
    errors = f" {src.errors_per_second:.1f} err/s" if src.errors_per_second or src.errors_total else ""
    return Content.assemble(
        (src.name, "bold"),
        " ",
        (mark, style),
        events,
        (errors, "$text-warning"),
    )


def sources_summary(sources: tuple[SourceStatus, ...]) -> Content:
    """Every source in one part, how many are up and how many came to their input's end
    ("sources 1/2 up", "sources 0/1 up, 1 ended"): for a bar too narrow to name each."""
    up = sum(1 for s in sources if s.up and not s.stale)
    ended = sum(1 for s in sources if s.finished and not s.up and not s.stale)
    style = "$text-success" if up + ended == len(sources) else "bold $text-error"
    text = f"{up}/{len(sources)} up" + (f", {ended} ended" if ended else "")
    return Content.assemble("sources ", (text, style))


FULL, NO_RATES, SUMMARY = 2, 1, 0
"""How much the bar says of the sources: each with its event rate and the total, each by name and
health (and errors), or only how many are up. A bar too narrow for one says the next, so the data
age, the window and any trouble with the history or the alert sinks stay on screen at 80 columns."""


class StatusBar(Static):
    """One line at the bottom: sources, rate, data age, window, filter, PAUSED."""

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    window: reactive[float] = reactive(300.0)
    """The window the matrix shows."""
    filter_text: reactive[str] = reactive("")
    """The active channel/queue filter."""
    paused: reactive[bool] = reactive(False)
    """Updates are paused: the screen shows an older snapshot."""

    def __init__(self, *, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        """Build the bar.

        Args:
            clock: wall clock (epoch seconds), for the data's age while no hub answers.
            **kwargs: as for ``Static``.
        """
        super().__init__(**kwargs)
        self.clock = clock
        self._shown: Content | None = None

    def on_mount(self) -> None:
        self._paint()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        # No snapshot comes while the hub is out of reach, yet what the bar says of it changes.
        hub = self.snapshot.hub
        if hub is not None and hub.links and hub.state != "live":
            self._paint()

    def watch_snapshot(self) -> None:
        self._paint()

    def watch_window(self) -> None:
        self._paint()

    def watch_filter_text(self) -> None:
        self._paint()

    def watch_paused(self) -> None:
        self._paint()

    def on_resize(self) -> None:
        self._paint()

    def _paint(self) -> None:
        width = self.content_size.width
        for detail in (FULL, NO_RATES, SUMMARY):
            content = self._content(detail)
            if not width or content.cell_length <= width:
                break
        if content != self._shown:
            self._shown = content
            self.update(content)

    def _content(self, detail: int) -> Content:
        """The bar's line, saying as much of the sources as ``detail`` asks."""
        snap = self.snapshot
        parts: list[Content] = []
        if self.paused:
            parts.append(Content.styled(" ⏸ PAUSED ", "bold reverse $text-warning"))
        now = self.clock()
        hub = hub_part(snap.hub, now)
        if hub is not None:
            parts.append(hub)
        if detail == SUMMARY and snap.sources:
            parts.append(sources_summary(snap.sources))
        else:
            parts.extend(source_part(s, rate=detail == FULL) for s in snap.sources)
        if detail == FULL and not snap.stale:
            parts.append(Content(f"{snap.events_per_second:.0f} ev/s total"))
        age = data_age(snap, now)
        parts.append(Content.assemble("age ", (age_text(age), "bold")))
        parts.append(Content(f"window {format_window(snap.windows[0] if not self.window else self.window)}"))
        if snap.strikes:
            parts.append(Content.assemble(("strikes ", ""), (str(snap.strikes), "bold $text-warning")))
        if self.filter_text:
            parts.append(Content.assemble("filter ", (self.filter_text, "bold $text-accent")))
        store = store_text(snap)
        if store:
            parts.append(Content.styled(store, "bold $text-error"))
        alerts = alerts_text(snap.alerts)
        if alerts:
            parts.append(Content.styled(alerts, "bold $text-error"))
        return Content(" │ ").join(parts)
