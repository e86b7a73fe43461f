"""Journey map: the steps left to right as tiles, coloured and worded by state."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cxmon.measures import MEASURES, format_value
from cxmon.snapshot import EMPTY_SNAPSHOT, Snapshot, State, StepStatus
from cxmon.tui.format import STATE_WORD, trend_arrow
from cxmon.tui.messages import StepChosen
from cxmon.units import format_window

STATE_CLASSES = ("-ok", "-watch", "-pothole", "-stale")


def measure_first(reason: str) -> str:
    """``"voice/billing: abandon rate 32% > 15%"`` → ``"abandon rate 32% > 15% · voice/billing"``: on a
    narrow tile the measure is what must show."""
    where, sep, rest = reason.partition(": ")
    if sep and "/" in where and " " not in where:
        return f"{rest} · {where}"
    return reason


def tile_text(step: StepStatus, state: State, *, lines: int = 3) -> Content:
    """Return a tile's text: label (★ on a moment of truth), state word, headline figure and trend.

    Args:
        step: the step's status.
        state: the state to show (STALE while the whole feed is).
        lines: 4 (label, state, figure, and why when not OK), 3 (label, state, figure), or 2 for a
            narrow screen (state and label, figure).
    """
    star = "★ " if step.moment_of_truth else ""
    label = (
        MEASURES[step.headline_measure].label if step.headline_measure in MEASURES else step.headline_measure
    )
    arrow, verdict = trend_arrow(step.trend, step.headline_measure)
    arrow_style = {"bad": "$text-error", "good": "$text-success"}.get(verdict, "")
    headline = (
        format_value(step.headline_measure, step.headline_value) if step.headline_measure in MEASURES else "—"
    )
    # Figure and arrow first: on a narrow tile the measure's name is what gets cut. The window says
    # which figure this is: the matrix beside it shows the window chosen with `w`.
    window = f" {format_window(step.headline_window)}" if step.headline_window else ""
    figure = Content.assemble(
        (headline, "bold"), " ", (arrow, arrow_style), f" {label}", (window, "$text-muted")
    )
    if lines >= 4:
        # Room for why: the reason names the measure that is breaching (it can differ from the headline).
        why = measure_first(step.reason) if state in (State.WATCH, State.POTHOLE) else ""
        return Content.assemble(
            (f"{star}{step.label}", "bold"),
            "\n",
            (STATE_WORD[state], "bold"),
            "\n",
            figure,
            "\n",
            (why, "$text-muted"),
        )
    if lines < 3:
        # The state word first: a label can be cut, the state must not.
        return Content.assemble(
            (STATE_WORD[state], "bold"), " ", (f"{star}{step.label}", "bold"), "\n", figure
        )
    return Content.assemble((f"{star}{step.label}", "bold"), "\n", (STATE_WORD[state], "bold"), "\n", figure)


class StepTile(Static):
    """One step: its state by colour and by word, headline figure, trend arrow (3 lines, or 2 when low)."""

    def __init__(self, step: str) -> None:
        super().__init__(id=f"tile-{step}", classes="tile")
        self.step = step
        self._shown: tuple[object, ...] | None = None
        self._status: tuple[StepStatus, State] | None = None

    def show(self, status: StepStatus, state: State) -> None:
        """Redraw from ``status`` (shown as ``state``), touching the widget only when something changed."""
        key = (
            status.label,
            state,
            status.headline_measure,
            status.headline_value,
            status.headline_window,
            trend_arrow(status.trend, status.headline_measure),
            status.moment_of_truth,
            status.reason,
        )
        if key == self._shown:
            return
        self._shown = key
        self._status = (status, state)
        self.refresh()
        for cls in STATE_CLASSES:
            self.set_class(cls == f"-{state.value}", cls)
        self.set_class(status.moment_of_truth, "-mot")
        self.tooltip = status.reason or None

    def render(self) -> Content:
        if self._status is None:
            return Content("")
        status, state = self._status
        return tile_text(status, state, lines=min(4, max(2, self.content_size.height)))


class JourneyMap(Horizontal, can_focus=True):
    """The journey's steps as tiles in journey order; ←/→ pick a step, Enter drills into it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Previous step", show=False),
        Binding("right", "move(1)", "Next step", show=False),
        Binding("enter", "choose", "Drill in"),
    ]

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    cursor: reactive[int] = reactive(0)
    """Index of the highlighted tile."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._tiles: dict[str, StepTile] = {}

    @property
    def steps(self) -> list[str]:
        """Step names in the order the tiles show them."""
        return list(self._tiles)

    def watch_snapshot(self, snapshot: Snapshot) -> None:
        names = [s.name for s in snapshot.steps]
        if names != self.steps:
            self.remove_children()
            self._tiles = {name: StepTile(name) for name in names}
            self.mount_all(self._tiles.values())
        for status in snapshot.steps:
            # Stale data is never shown as OK: every tile says STALE while the whole feed is stale.
            self._tiles[status.name].show(status, State.STALE if snapshot.stale else status.state)
        self._mark_cursor()

    def watch_cursor(self) -> None:
        self._mark_cursor()

    def _mark_cursor(self) -> None:
        for i, tile in enumerate(self._tiles.values()):
            tile.set_class(i == self.cursor, "-cursor")

    def action_move(self, delta: int) -> None:
        """Highlight the previous/next step."""
        count = len(self.steps)
        if count:
            self.cursor = (self.cursor + delta) % count

    def action_choose(self) -> None:
        """Drill into the highlighted step."""
        steps = self.steps
        if steps:
            self.post_message(StepChosen(steps[min(self.cursor, len(steps) - 1)]))

    def on_click(self) -> None:
        self.focus()
