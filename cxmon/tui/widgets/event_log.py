"""Event log: state transitions and acknowledgements, newest first, stamped with source time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from textual.reactive import reactive

from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, Snapshot, State, Transition
from cxmon.tui.format import STATE_WORD, clock_text
from cxmon.tui.widgets.diff_table import Cell, DiffTable

COLUMNS = ("Time", "Step", "Where", "Change", "Reason")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the event log: a transition or an acknowledgement."""

    ts: float
    step: str
    where: str
    change: str
    state: State | None
    """The state entered (None for an acknowledgement)."""
    reason: str

    @property
    def key(self) -> str:
        """Identity of the entry, so the same transition seen twice is logged once."""
        return f"{self.ts}\t{self.step}\t{self.where}\t{self.change}"

    @classmethod
    def of_transition(cls, tr: Transition) -> LogEntry:
        """Describe a transition."""
        return cls(
            ts=tr.ts,
            step=tr.step,
            where=f"{tr.channel}/{tr.queue}" if tr.channel else "whole step",
            change=f"{tr.from_state.value.upper()} → {tr.to_state.value.upper()}",
            state=tr.to_state,
            reason=tr.reason,
        )

    @classmethod
    def of_ack(cls, ack: Ack) -> LogEntry:
        """Describe an acknowledgement."""
        return cls(
            ts=ack.ts,
            step=ack.step,
            where="whole step",
            change=f"✓ ack by {ack.who}",
            state=None,
            reason=ack.note,
        )


class EventLog(DiffTable):
    """The newest transitions and acknowledgements first."""

    entries: reactive[tuple[LogEntry, ...]] = reactive(())
    """Log entries, newest first (the app accumulates them from every snapshot it receives)."""
    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The newest picture: its engine time names the zone while the log is still empty."""

    def __init__(
        self, *, tz: tzinfo | None = None, labels: dict[str, str] | None = None, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.tz = tz
        self.labels = labels or {}

    def on_mount(self) -> None:
        self._paint(self.entries)

    def watch_entries(self, entries: tuple[LogEntry, ...]) -> None:
        self._paint(entries)

    def watch_snapshot(self, snapshot: Snapshot) -> None:
        if self.is_mounted and not self.entries:
            self.set_zoned_columns(COLUMNS, ("Time",), self.tz, snapshot.ts or None)

    def _paint(self, entries: Sequence[LogEntry]) -> None:
        if not self.is_mounted:
            return
        # The zone as it is called at the newest entry's time (entries come newest first), or at
        # the engine's time before there is one (a replay of August in December is in summer time).
        newest = entries[0].ts if entries else self.snapshot.ts
        self.set_zoned_columns(COLUMNS, ("Time",), self.tz, newest or None)
        rows = []
        for e in entries:
            word = STATE_WORD[e.state] if e.state is not None else "✓ ACK"
            style = f"-{e.state.value}" if e.state is not None else "muted"
            cells: tuple[Cell, ...] = (
                (clock_text(e.ts, self.tz), ""),
                (self.labels.get(e.step, e.step), ""),
                (e.where, "muted"),
                (f"{word}  {e.change}", style),
                (e.reason, ""),
            )
            rows.append((e.key, cells))
        # A log is read from the top. A table keeps its cursor on the row it was on, which here
        # would walk a cursor left on the newest entry (where it starts) down the log with every
        # arrival, and the view with it, out of sight of what just happened; so a cursor on the
        # top row stays there. One moved down onto an older entry stays on that entry.
        newest = self.cursor_row <= 0
        self.set_rows(rows)
        if newest and rows and self.cursor_row != 0:
            self.move_cursor(row=0, animate=False)
