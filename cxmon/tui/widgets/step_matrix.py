"""Step × channel matrix: the window's figures per step and channel, queues expandable, sortable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import DataTable

from cxmon.config import Config
from cxmon.forecast.display import staffing_cell
from cxmon.measures import MEASURES, combine, format_value
from cxmon.snapshot import EMPTY_SNAPSHOT, SeriesFigures, Snapshot, State
from cxmon.tui.format import (
    MATRIX_MEASURES,
    SHORT_TITLES,
    STATE_WORD,
    abbreviate,
    judge,
    low_is_bad,
    thresholds_for,
)
from cxmon.tui.messages import StepChosen
from cxmon.tui.widgets.diff_table import Cell, DiffTable

FIXED_COLUMNS = ("Step", "Channel", "State")
COMPACT_LABEL = 13
"""Step labels are abbreviated to this many characters on a narrow screen."""
STAFFING_COLUMN = "Staffing"
"""After the measures: agents short of the step's goal ("3 short of 80/20"), or staffed and needed."""


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One row: a step's channel (its queues combined), or one queue under it."""

    key: str
    step: str
    channel: str
    queue: str | None
    """None for a channel row."""
    state: State
    values: tuple[float | None, ...]
    cells: tuple[Cell, ...]


def matrix_rows(
    snapshot: Snapshot,
    config: Config,
    window: float,
    *,
    expanded: frozenset[str] = frozenset(),
    filter_text: str = "",
    sort_column: int | None = None,
    label_width: int | None = None,
) -> list[MatrixRow]:
    """Build the matrix rows for a snapshot.

    Args:
        snapshot: what to show.
        config: for step labels and thresholds.
        window: the window (seconds) whose figures are shown.
        expanded: steps whose queues are listed under their channels.
        filter_text: keep only series whose channel or queue contains this (case-insensitive).
        sort_column: index into MATRIX_MEASURES to rank channel rows worst first; None keeps journey order.
        label_width: abbreviate step labels to this many characters (narrow screens); None: in full.

    Returns:
        Rows in display order; a channel row is followed by its queue rows when its step is expanded.
    """
    needle = filter_text.strip().lower()
    labels = {
        s.name: s.label if label_width is None else abbreviate(s.label, label_width) for s in snapshot.steps
    }
    order = {s.name: i for i, s in enumerate(snapshot.steps)}
    groups: dict[tuple[str, str], list[SeriesFigures]] = {}
    for series in snapshot.series:
        if needle and needle not in series.channel.lower() and needle not in series.queue.lower():
            continue
        groups.setdefault((series.step, series.channel), []).append(series)

    def cells_for(
        step: str,
        channel: str,
        name: str,
        state: State,
        values: Sequence[float | None],
        members: Sequence[SeriesFigures],
    ) -> tuple[Cell, ...]:
        out: list[Cell] = [(labels.get(step, step), ""), (name, ""), (STATE_WORD[state], f"-{state.value}")]
        for measure, value in zip(MATRIX_MEASURES, values, strict=True):
            verdict = judge(value, thresholds_for(config, step, measure, channel))
            out.append((format_value(measure, value), verdict))
        out.append(staffing_cell([s.forecast for s in members]))
        return tuple(out)

    families: list[tuple[MatrixRow, list[MatrixRow]]] = []
    for (step, channel), members in groups.items():
        members.sort(key=lambda s: s.queue)
        per_queue = [tuple(s.value(m, window) for m in MATRIX_MEASURES) for s in members]
        # the channel row combines its queues the way every consumer does (cxmon.measures.combine)
        figures = [{**s.windows.get(window, {}), **s.instant} for s in members]
        values = tuple(combine(m, figures, snapshot.service_level_formula) for m in MATRIX_MEASURES)
        state = max((s.state for s in members), key=lambda st: st.severity)
        marker = "▾ " if step in expanded else "▸ "
        parent = MatrixRow(
            key=f"{step}\t{channel}\t",
            step=step,
            channel=channel,
            queue=None,
            state=state,
            values=values,
            cells=cells_for(step, channel, marker + channel, state, values, members),
        )
        children = []
        if step in expanded:
            for s, vals in zip(members, per_queue, strict=True):
                children.append(
                    MatrixRow(
                        key=f"{step}\t{channel}\t{s.queue}",
                        step=step,
                        channel=channel,
                        queue=s.queue,
                        state=s.state,
                        values=vals,
                        cells=cells_for(step, channel, f"  └ {s.queue}", s.state, vals, [s]),
                    )
                )
        families.append((parent, children))

    families.sort(key=lambda f: (order.get(f[0].step, len(order)), f[0].channel))
    if sort_column is not None:
        measure = MATRIX_MEASURES[sort_column]
        sign = 1.0 if low_is_bad(measure) else -1.0

        def badness(family: tuple[MatrixRow, list[MatrixRow]]) -> tuple[bool, float]:
            value = family[0].values[sort_column]
            return (value is None, 0.0 if value is None else sign * value)

        families.sort(key=badness)
    return [row for parent, children in families for row in (parent, *children)]


class StepMatrix(DiffTable):
    """The figures of the selected window per step and channel, coloured against thresholds.

    Space expands a step's queues, ``s`` sorts by the next column (worst first), Enter drills in.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_expand", "Expand", key_display="␣"),
        Binding("s", "sort", "Sort"),
    ]

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    window: reactive[float] = reactive(300.0)
    """Window (seconds) whose figures are shown."""
    filter_text: reactive[str] = reactive("")
    """Only channels/queues containing this are listed."""
    sort_column: reactive[int | None] = reactive(None)
    """Index into MATRIX_MEASURES ranked worst first, or None for journey order."""
    expanded: reactive[frozenset[str]] = reactive(frozenset())
    """Steps whose queues are listed."""
    compact: reactive[bool] = reactive(False)
    """Narrow screen: short column titles and step labels (the rest scrolls sideways)."""

    def __init__(self, config: Config, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self._rows: dict[str, MatrixRow] = {}
        # Step, channel and state stay in view while ← → scroll the figures sideways.
        self.fixed_columns = len(FIXED_COLUMNS)

    def on_mount(self) -> None:
        self._add_columns()
        self._paint()

    def _add_columns(self) -> None:
        titles = [*FIXED_COLUMNS]
        for i, measure in enumerate(MATRIX_MEASURES):
            mark = " ▼" if i == self.sort_column else ""
            title = SHORT_TITLES[measure] if self.compact else MEASURES[measure].label
            titles.append(title + mark)
        titles.append(STAFFING_COLUMN)
        self.set_columns(titles)

    def watch_snapshot(self) -> None:
        self._paint()

    def watch_window(self) -> None:
        self._paint()

    def watch_filter_text(self) -> None:
        self._paint()

    def watch_expanded(self) -> None:
        self._paint()

    def watch_sort_column(self) -> None:
        if self.is_mounted:
            self._add_columns()
        self._paint()

    def watch_compact(self) -> None:
        if self.is_mounted:
            self._add_columns()
        self._paint()

    def _paint(self) -> None:
        if not self.is_mounted or not self.columns:
            return
        rows = matrix_rows(
            self.snapshot,
            self.config,
            self.window,
            expanded=self.expanded,
            filter_text=self.filter_text,
            sort_column=self.sort_column,
            label_width=COMPACT_LABEL if self.compact else None,
        )
        self.set_rows([(row.key, row.cells) for row in rows])
        self._rows = {row.key: row for row in rows}

    @property
    def current_row(self) -> MatrixRow | None:
        """The row under the cursor."""
        key = self.current_key
        return None if key is None else self._rows.get(key)

    def action_toggle_expand(self) -> None:
        """Show or hide the queues of the step under the cursor."""
        row = self.current_row
        if row is not None:
            self.expanded = self.expanded ^ {row.step}

    def action_sort(self) -> None:
        """Rank rows by the next figure column, worst first (after the last, back to journey order)."""
        if self.sort_column is None:
            self.sort_column = 0
        elif self.sort_column + 1 < len(MATRIX_MEASURES):
            self.sort_column += 1
        else:
            self.sort_column = None

    @on(DataTable.HeaderSelected)
    def _sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        index = event.column_index - len(FIXED_COLUMNS)
        self.sort_column = index if 0 <= index < len(MATRIX_MEASURES) and index != self.sort_column else None

    @on(DataTable.RowSelected)
    def _drill_in(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._rows.get(str(event.row_key.value))
        if row is None:
            return
        series = None
        if row.queue is not None:
            series = (row.step, row.channel, row.queue)
        else:
            members = [s for s in self.snapshot.series if (s.step, s.channel) == (row.step, row.channel)]
            if members:
                worst = max(members, key=lambda s: s.state.severity)
                series = worst.key
        self.post_message(StepChosen(row.step, series))
