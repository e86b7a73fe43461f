"""Pot-hole board: open pot holes and watches, worst first, with reason, since and acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import ClassVar

from textual import on
from textual.binding import BindingType
from textual.reactive import reactive
from textual.widgets import DataTable

from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, Snapshot, State
from cxmon.tui.format import STATE_WORD, clock_text
from cxmon.tui.messages import StepChosen
from cxmon.tui.widgets.diff_table import Cell, DiffTable

COLUMNS = ("State", "Step", "Where", "Since", "Reason", "Acknowledged")


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One open problem: a series that is not OK, or a whole step with no such series."""

    key: str
    step: str
    channel: str
    queue: str
    state: State
    moment_of_truth: bool
    affected: int
    reason: str
    since: float | None
    ack: Ack | None


def board_rows(snapshot: Snapshot, since: dict[str, float], filter_text: str = "") -> list[BoardRow]:
    """List each open problem once, worst first (severity, then moment of truth, then contacts affected).

    A problem is a series that is not OK, named by its channel/queue (the step's own state is its worst
    series, so the step is not listed again); a step that is not OK with no such series (STALE with
    nothing received yet) is listed as the whole step.

    Args:
        snapshot: what to show.
        since: row key → when that series entered its state (from transitions seen so far).
        filter_text: keep only rows whose channel or queue contains this (whole-step rows always stay).

    Returns:
        Rows, worst first.
    """
    needle = filter_text.strip().lower()
    acks = {a.step: a for a in snapshot.acks}
    rows: list[BoardRow] = []
    for step in snapshot.steps:
        if step.state is State.OK:
            continue
        ack = step.ack or acks.get(step.name)
        bad = [s for s in snapshot.series_of(step.name) if s.state is not State.OK]
        if not bad:
            rows.append(
                BoardRow(
                    key=f"{step.name}\t\t",
                    step=step.name,
                    channel="",
                    queue="",
                    state=step.state,
                    moment_of_truth=step.moment_of_truth,
                    affected=step.affected,
                    reason=step.reason,
                    since=step.since,
                    ack=ack,
                )
            )
            continue
        for series in bad:
            if needle and needle not in series.channel.lower() and needle not in series.queue.lower():
                continue
            waiting = series.instant.get("waiting_now") or 0
            offered = series.value("offered") or 0
            key = f"{series.step}\t{series.channel}\t{series.queue}"
            rows.append(
                BoardRow(
                    key=key,
                    step=series.step,
                    channel=series.channel,
                    queue=series.queue,
                    state=series.state,
                    moment_of_truth=step.moment_of_truth,
                    affected=int(waiting + offered),
                    reason=series.reason,
                    since=since.get(key, step.since),
                    ack=ack,
                )
            )
    rows.sort(key=lambda r: (-r.state.severity, not r.moment_of_truth, -r.affected, r.key))
    return rows


def problem_count(snapshot: Snapshot) -> int:
    """Open pot holes and watches, each problem counted once (the rows :func:`board_rows` lists)."""
    return sum(1 for r in board_rows(snapshot, {}) if r.state in (State.POTHOLE, State.WATCH))


class PotholeBoard(DiffTable):
    """Open pot holes and watches, worst first; Enter drills into the step, ``a`` acknowledges it."""

    BINDINGS: ClassVar[list[BindingType]] = []

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    filter_text: reactive[str] = reactive("")
    """Only series whose channel or queue contains this are listed."""

    def __init__(self, *, tz: tzinfo | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.tz = tz
        self._since: dict[str, float] = {}
        self._rows: dict[str, BoardRow] = {}

    def on_mount(self) -> None:
        self._paint()

    def watch_snapshot(self, snapshot: Snapshot) -> None:
        # recent_transitions (oldest first) holds the ticks this board skipped too: the app shows at
        # most a few snapshots a second and none while paused, and a pot hole's start is often in between.
        for tr in snapshot.recent_transitions or snapshot.transitions:
            if tr.channel:
                self._since[f"{tr.step}\t{tr.channel}\t{tr.queue}"] = tr.ts
        self._paint()

    def watch_filter_text(self) -> None:
        self._paint()

    def _paint(self) -> None:
        if not self.is_mounted:
            return
        self.set_zoned_columns(COLUMNS, ("Since",), self.tz, self.snapshot.ts or None)
        rows = board_rows(self.snapshot, self._since, self.filter_text)
        labels = {s.name: s.label for s in self.snapshot.steps}
        out = []
        for row in rows:
            star = "★ " if row.moment_of_truth else ""
            where = f"{row.channel}/{row.queue}" if row.channel else "whole step"
            ack = f"✓ {row.ack.who}: {row.ack.note}" if row.ack else ""
            cells: tuple[Cell, ...] = (
                (STATE_WORD[row.state], f"-{row.state.value}"),
                (star + labels.get(row.step, row.step), ""),
                (where, "" if row.channel else "muted"),
                (clock_text(row.since, self.tz) if row.since else "—", ""),
                (row.reason, ""),
                (ack, "muted"),
            )
            out.append((row.key, cells))
        self.set_rows(out)
        self._rows = {row.key: row for row in rows}

    def row_text(self, row: BoardRow | None) -> str:
        """The whole of a row, for the line under the board: where, the full reason, the full ack."""
        if row is None:
            return "No open pot holes or watches."
        labels = {s.name: s.label for s in self.snapshot.steps}
        where = f"{row.channel}/{row.queue}" if row.channel else "whole step"
        text = f"{labels.get(row.step, row.step)} · {where} — {row.reason}"
        if row.ack is not None:
            text += (
                f"\n✓ acknowledged by {row.ack.who} at {clock_text(row.ack.ts, self.tz)}, until "
                f"{clock_text(row.ack.until, self.tz)}: {row.ack.note}"
            )
        return text

    @property
    def current_row(self) -> BoardRow | None:
        """The pot hole under the cursor."""
        key = self.current_key
        return None if key is None else self._rows.get(key)

    @on(DataTable.RowSelected)
    def _drill_in(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._rows.get(str(event.row_key.value))
        if row is not None:
            self.post_message(
                StepChosen(row.step, (row.step, row.channel, row.queue) if row.channel else None)
            )
