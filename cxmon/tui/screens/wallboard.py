"""Wallboard: the steps and their headline figures in big digits, for a TV on the floor."""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Digits, Label

from cxmon.localtime import zone_label
from cxmon.measures import MEASURES
from cxmon.snapshot import EMPTY_SNAPSHOT, Snapshot, State, StepStatus
from cxmon.tui.format import STATE_WORD, clock_text, trend_arrow
from cxmon.tui.narrow import FittedFooter, fit_footers
from cxmon.units import format_window

STATE_CLASSES = ("-ok", "-watch", "-pothole", "-stale")


def big_figure(measure: str, value: float | None) -> tuple[str, str]:
    """Return (digits, unit) for a headline: ratios in percent, durations as m:ss, counts plain."""
    if value is None or measure not in MEASURES:
        return "-", ""
    kind = MEASURES[measure].kind
    if kind == "ratio":
        return f"{value * 100:.0f}", "%"
    if kind == "duration":
        seconds = round(value)
        if seconds >= 3600:
            return f"{seconds // 3600}:{seconds % 3600 // 60:02d}", "h:mm"
        return f"{seconds // 60}:{seconds % 60:02d}", "m:ss"
    if kind == "score":
        return f"{value:.2f}", ""
    return f"{value:.0f}", ""


class BigTile(Vertical):
    """A step on the wallboard: label, state word, headline in big digits."""

    def __init__(self, step: str) -> None:
        super().__init__(id=f"big-{step}", classes="big-tile")
        self.step = step
        self._shown: tuple[object, ...] | None = None
        # Built here, not in compose: a snapshot can arrive between mounting the tile and composing it.
        self._label = Label(classes="big-label")
        self._digits = Digits(classes="big-digits")
        self._unit = Label(classes="big-unit")

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._digits
        yield self._unit

    def show(self, status: StepStatus, state: State) -> None:
        """Redraw when the step's figures changed."""
        digits, unit = big_figure(status.headline_measure, status.headline_value)
        arrow, _ = trend_arrow(status.trend, status.headline_measure)
        key = (status.label, state, digits, unit, arrow, status.headline_window)
        if key == self._shown:
            return
        self._shown = key
        star = "★ " if status.moment_of_truth else ""
        # The state word has a line of its own: after the name it would be split where a long name
        # leaves it no room ("✔" at the end of one line, "OK" on the next).
        self._label.update(f"{star}{status.label}\n{STATE_WORD[state]}")
        self._digits.update(digits)
        label = MEASURES[status.headline_measure].label if status.headline_measure in MEASURES else ""
        window = f" · {format_window(status.headline_window)}" if status.headline_window else ""
        self._unit.update(" ".join(part for part in (label, unit, arrow) if part) + window)
        for cls in STATE_CLASSES:
            self.set_class(cls == f"-{state.value}", cls)


class WallboardScreen(Screen[None]):
    """Every step as a big tile; follows the app's snapshot."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v,escape", "app.toggle_wallboard", "Dashboard"),
        Binding("q", "app.quit", "Quit"),
    ]

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""

    def __init__(self, *, tz: tzinfo | None = None, under_title: Widget | None = None) -> None:
        """``under_title``: a line shown under the title (a replay's bar), if any."""
        super().__init__(id="wallboard")
        self.tz = tz
        self._under_title = under_title

    def compose(self) -> ComposeResult:
        yield Label(id="wall-title")
        if self._under_title is not None:
            yield self._under_title
        yield Grid(id="wall-grid")
        yield FittedFooter()

    def on_mount(self) -> None:
        fit_footers(self, self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        # The dashboard's footer goes compact on a narrow screen: this one has the same keys and
        # more (a replay's), and was cut off at 80 columns.
        fit_footers(self, event.size.width)

    def watch_snapshot(self, snapshot: Snapshot) -> None:
        if not self.is_mounted:
            return
        grid = self.query_one("#wall-grid", Grid)
        tiles = {t.step: t for t in grid.query_children(BigTile)}
        names = [s.name for s in snapshot.steps]
        if names != list(tiles):
            grid.remove_children()
            new = [BigTile(n) for n in names]
            grid.mount_all(new)
            tiles = {t.step: t for t in new}
        for status in snapshot.steps:
            tiles[status.name].show(status, State.STALE if snapshot.stale else status.state)
        stale = " — ⚠ STALE: data is not current" if snapshot.stale else ""
        self.query_one("#wall-title", Label).update(
            f"cxmon wallboard · {clock_text(snapshot.ts, self.tz)} {zone_label(self.tz, snapshot.ts)}{stale}"
        )
        self.set_class(snapshot.stale, "-stale")
