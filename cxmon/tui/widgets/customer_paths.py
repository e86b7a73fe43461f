"""Customer paths: who had the most strikes in 24 h, and one customer's journey as they lived it."""

from __future__ import annotations

from datetime import date, tzinfo

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from cxmon.config import Config
from cxmon.events import ContactEvent, EventKind
from cxmon.localtime import when
from cxmon.snapshot import EMPTY_SNAPSHOT, Snapshot
from cxmon.tui.format import clock_text
from cxmon.tui.messages import CustomerChosen
from cxmon.tui.widgets.diff_table import Cell, DiffTable
from cxmon.units import format_duration

PATH_COLUMNS = ("Time", "Step", "Channel", "Queue", "Event", "Wait/handle", "Bump", "Comment")
COMMENT_MAX = 200
"""Characters of a customer's comment shown in the path (the store keeps it whole)."""
_BUMPS = {
    EventKind.ABANDONED: "✖ abandon",
    EventKind.TRANSFERRED: "↪ transfer",
    EventKind.ESCALATED: "⇧ escalation",
    EventKind.REOPENED: "↻ reopen",
}


def bump(event: ContactEvent, config: Config) -> str:
    """Return the bump this event was for the customer ("" when none): long wait, abandon, transfer,
    a feedback score at or below ``monitor.low_score``…"""
    if event.kind in _BUMPS:
        return _BUMPS[event.kind]
    if event.kind is EventKind.FEEDBACK:
        # The same line the strikes count by: a low score is a bad experience.
        low = event.score is not None and event.score <= config.monitor.low_score
        return "☹ low score" if low else ""
    step = config.step_for(event.channel, event.queue)
    if event.kind is EventKind.ANSWERED and event.wait is not None and step and event.wait > step.long_wait:
        return "⌛ long wait"
    return ""


def path_rows(
    events: list[ContactEvent], config: Config, *, tz: tzinfo | None = None, now: float | None = None
) -> list[tuple[str, tuple[Cell, ...]]]:
    """Rows for one customer's path, oldest first, each bump marked, and a survey's score and
    comment shown as the customer gave them.

    Args:
        events: the customer's events, oldest first.
        config: the journey that names their steps and long waits.
        tz: the zone the times are shown in (None: the machine's).
        now: the engine's time; an event of another day than its day shows its date ("01 Aug
            10:54:38"), since the path spans 24 h (None: times of day only).
    """
    today = _day(now, tz)
    rows: list[tuple[str, tuple[Cell, ...]]] = []
    for i, e in enumerate(events):
        stamp = clock_text(e.ts, tz)
        if today is not None and e.ts > 0 and _day(e.ts, tz) != today:
            stamp = when(e.ts, tz).strftime("%d %b %H:%M:%S")
        step = config.step_for(e.channel, e.queue)
        figure = e.wait if e.wait is not None else e.duration
        mark = bump(e, config)
        what, said = e.kind.value, ""
        if e.kind is EventKind.FEEDBACK:
            # A survey sent, or answered with a score and perhaps the customer's own words.
            what = "survey sent" if e.score is None else f"feedback {e.score:g}"
            said = " ".join((e.reason or "").split())[:COMMENT_MAX]
        rows.append(
            (
                str(i),
                (
                    (stamp, ""),
                    (step.label if step else "other", ""),
                    (e.channel, ""),
                    (e.queue, ""),
                    (what, ""),
                    (format_duration(figure) if figure is not None else "", ""),
                    (mark, "breach" if mark else ""),
                    (said, ""),
                ),
            )
        )
    return rows


class CustomerPaths(Horizontal):
    """The strikes list on the left; Enter shows that customer's path on the right."""

    leaders: reactive[tuple[tuple[str, int], ...]] = reactive(())
    """(customer_id, strikes in 24 h), most first."""
    path: reactive[tuple[str, tuple[ContactEvent, ...]] | None] = reactive(None)
    """(customer_id, events oldest first) of the customer shown, or None."""
    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The newest picture: its engine time names the zone while no path is shown."""

    def __init__(self, config: Config, *, tz: tzinfo | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = config
        self.tz = tz
        self._day_shown: date | None = None
        """The engine's day (in ``tz``) the path shown was dated against."""

    def compose(self) -> ComposeResult:
        with Vertical(id="leaders-box"):
            yield Static("Most strikes, last 24 h", classes="box-title")
            yield DiffTable(id="leaders")
        with Vertical(id="path-box"):
            yield Static("Pick a customer and press Enter", id="path-title", classes="box-title")
            yield DiffTable(id="path", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#leaders", DiffTable).set_columns(("Customer", "Strikes"))
        self._zone_before_a_path()

    def watch_snapshot(self, snapshot: Snapshot) -> None:
        self._zone_before_a_path()
        if self.path is not None and _day(snapshot.ts or None, self.tz) != self._day_shown:
            # Midnight passed under a path shown: yesterday's events now need their date.
            self.watch_path(self.path)

    def _zone_before_a_path(self) -> None:
        """Name the path's zone as it is at the engine's time until a path is shown."""
        if self.is_mounted and not (self.path and self.path[1]):
            ts = self.snapshot.ts or None
            self.query_one("#path", DiffTable).set_zoned_columns(PATH_COLUMNS, ("Time",), self.tz, ts)

    def watch_leaders(self, leaders: tuple[tuple[str, int], ...]) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#leaders", DiffTable)
        table.set_rows(
            [
                (cid, ((cid, ""), (str(n), "breach" if n >= self.config.monitor.strikes else "")))
                for cid, n in leaders
            ]
        )

    def watch_path(self, path: tuple[str, tuple[ContactEvent, ...]] | None) -> None:
        if not self.is_mounted or path is None:
            return
        customer, events = path
        bumps = sum(1 for e in events if bump(e, self.config))
        self.query_one("#path-title", Static).update(
            f"Customer {customer}: {_count(len(events), 'event')}, {_count(bumps, 'bump')} (oldest first)"
        )
        table = self.query_one("#path", DiffTable)
        # The zone as it is called at the newest event's time (the path is oldest first).
        newest = events[-1].ts if events else self.snapshot.ts
        table.set_zoned_columns(PATH_COLUMNS, ("Time",), self.tz, newest or None)
        now = self.snapshot.ts or None
        self._day_shown = _day(now, self.tz)
        table.set_rows(path_rows(list(events), self.config, tz=self.tz, now=now))

    @on(DataTable.RowSelected, "#leaders")
    def _choose(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(CustomerChosen(str(event.row_key.value)))


def _day(ts: float | None, tz: tzinfo | None) -> date | None:
    """The day of ``ts`` in ``tz`` (None for no time)."""
    return when(ts, tz).date() if ts is not None and ts > 0 else None


def _count(n: int, noun: str) -> str:
    """``"1 event"``, ``"2 events"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
