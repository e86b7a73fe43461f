"""CxmonApp: the floor manager's dashboard over a feed of Snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from cxmon.localtime import zone, zone_label
from cxmon.snapshot import EMPTY_SNAPSHOT, SeriesKey, Snapshot, State
from cxmon.tui.feed import Feed, GatedFeed
from cxmon.tui.format import clock_text
from cxmon.tui.log_book import LogBook
from cxmon.tui.messages import (
    CustomerChosen,
    CustomerLeadersLoaded,
    CustomerPathLoaded,
    PotholeAcknowledged,
    SnapshotPublished,
    StepChosen,
)
from cxmon.tui.narrow import NARROW, FittedFooter, fit_footers
from cxmon.tui.panels import PANE_FOCUS, TABS, WORKER_FAILED
from cxmon.tui.screens.acknowledge import AcknowledgeScreen, AckRequest
from cxmon.tui.screens.help import HelpScreen, help_text, window_list
from cxmon.tui.screens.wallboard import WallboardScreen
from cxmon.tui.widgets.customer_paths import CustomerPaths
from cxmon.tui.widgets.detail_pane import DetailPane
from cxmon.tui.widgets.event_log import EventLog, LogEntry
from cxmon.tui.widgets.journey_map import JourneyMap
from cxmon.tui.widgets.pothole_board import PotholeBoard, problem_count
from cxmon.tui.widgets.stale_banner import StaleBanner
from cxmon.tui.widgets.status_bar import StatusBar
from cxmon.tui.widgets.step_matrix import StepMatrix
from cxmon.units import format_window


class CxmonApp(App[int]):
    """Journey map, matrix, pot holes, detail, customer paths and event log over one feed."""

    TITLE = "cxmon"
    SUB_TITLE = "waiting for the first snapshot"
    # Absolute, so subclasses defined elsewhere (benchmarks, tests) find it too.
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-wide")]  # noqa: RUF012 (App declares the type)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("w", "cycle_window", "Window"),
        Binding("a", "acknowledge", "Ack"),
        Binding("p", "pause", "Pause"),
        Binding("v", "toggle_wallboard", "Wallboard"),
        Binding("escape", "clear_filter", "Clear filter / back", show=False),
        Binding("s", "matrix('sort')", "Sort", show=False),
        Binding("space", "matrix('toggle_expand')", "Expand", show=False),
        *(Binding(str(i + 1), f"show_tab('{tab}')", tab, show=False) for i, tab in enumerate(TABS)),
    ]

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot on screen (held while paused)."""
    window: reactive[float] = reactive(300.0)
    """The window (seconds) the matrix shows."""
    filter_text: reactive[str] = reactive("")
    """Channel/queue filter for the matrix and the pot-hole board."""
    paused: reactive[bool] = reactive(False)
    """True while updates are held."""
    selected_step: reactive[str | None] = reactive(None)
    """The step drilled into (None: the worst step)."""
    selected_series: reactive[SeriesKey | None] = reactive(None)
    """The series drilled into (None: the step's worst series)."""
    log_entries: reactive[tuple[LogEntry, ...]] = reactive(())
    """Transitions and acknowledgements, newest first."""
    silent_for: reactive[float | None] = reactive(None)
    """Seconds since the feed last delivered, once that is past the stale limit."""

    def __init__(
        self,
        feed: Feed,
        *,
        wallboard: bool = False,
        refresh_interval: float = 0.25,
        silent_after: float | None = None,
        timezone: str | None = None,
        utc: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the dashboard.

        Args:
            feed: where snapshots come from (the Engine, or a hub client).
            wallboard: open on the big-number wall view.
            refresh_interval: least wall time between repaints (at most 4 a second by default).
            silent_after: wall seconds without a snapshot before the STALE banner shows
                (default: the config's ``stale_after``).
            timezone: the zone times are shown in, e.g. "UTC" for fixed screenshots (default: the
                config's ``[display] timezone``, else the machine's).
            utc: the same as ``timezone="UTC"``.
            clock: wall clock for the refresh limit and the silence check.
            wall_clock: epoch seconds, for how old a watcher's figures are while no hub answers.
        """
        super().__init__()
        self.feed = feed
        self.config = feed.config
        self.start_wallboard = wallboard
        self.refresh_interval = refresh_interval
        self.silent_after = silent_after if silent_after is not None else self.config.monitor.stale_after
        self.tz = zone(timezone or ("UTC" if utc else None) or self.config.display_timezone)
        self.clock = clock
        self.wall_clock = wall_clock
        self.window = self.config.monitor.windows[0]
        self._pending: Snapshot | None = None
        self._drilled_from: str | None = None
        """The panel a drill-in was opened from (Esc goes back to it)."""
        self._last_apply = float("-inf")
        self._apply_scheduled = False
        self._last_received = clock()
        self._log_book = LogBook()
        self._log_dirty = False
        self.last_ack_error: str | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        labels = {s.name: s.label for s in self.config.steps}
        yield Header(icon="≡")
        yield StaleBanner(id="stale-banner").data_bind(CxmonApp.snapshot, CxmonApp.silent_for)
        yield JourneyMap(id="journey").data_bind(CxmonApp.snapshot)
        with TabbedContent(id="tabs", initial="matrix"):
            with TabPane("Matrix", id="matrix"):
                yield StepMatrix(self.config, id="matrix-table").data_bind(
                    CxmonApp.snapshot, CxmonApp.window, CxmonApp.filter_text
                )
            with TabPane("Pot holes", id="potholes"):
                yield PotholeBoard(tz=self.tz, id="pothole-board").data_bind(
                    CxmonApp.snapshot, CxmonApp.filter_text
                )
                yield Static(id="pothole-note")
            with TabPane("Detail", id="detail"):
                yield DetailPane(self.config, tz=self.tz, id="detail-pane").data_bind(
                    CxmonApp.snapshot, step=CxmonApp.selected_step, series_key=CxmonApp.selected_series
                )
            with TabPane("Customers", id="customers"):
                yield CustomerPaths(self.config, tz=self.tz, id="customer-paths").data_bind(CxmonApp.snapshot)
            with TabPane("Events", id="events"):
                yield EventLog(tz=self.tz, labels=labels, id="event-log").data_bind(
                    CxmonApp.snapshot, entries=CxmonApp.log_entries
                )
        yield Input(placeholder="filter by channel or queue — Enter keeps it, Esc clears", id="filter")
        yield StatusBar(clock=self.wall_clock, id="status-bar").data_bind(
            CxmonApp.snapshot, CxmonApp.window, CxmonApp.filter_text, CxmonApp.paused
        )
        yield FittedFooter()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        """Narrow screens get the compact matrix (short titles, abbreviated steps, sideways scroll)
        and the compact footer, whose keys then fit 80 columns (the palette's ^p is in the help)."""
        found = self.query("#matrix-table")
        if found:
            found.first(StepMatrix).compact = width < NARROW
        fit_footers(self, width)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self._fit(self.size.width)
        self._take(self.feed.latest)
        self._follow_feed()
        self.set_interval(1.0, self._check_silence)
        if self.start_wallboard:
            self.action_toggle_wallboard()
        else:
            self.query_one(JourneyMap).focus()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Acknowledge pot hole", "Acknowledge the selected pot hole (a)", self.action_acknowledge
        )
        yield SystemCommand(
            "Cycle window",
            f"Show the next window: {window_list(self._windows(), ', ')} (w)",
            self.action_cycle_window,
        )
        yield SystemCommand("Filter", "Filter by channel or queue (/)", self.action_filter)
        yield SystemCommand("Pause / resume", "Hold the screen still (p)", self.action_pause)
        yield SystemCommand("Wallboard", "Big-number view for a TV (v)", self.action_toggle_wallboard)
        yield SystemCommand("Help", "Keys and legend (?)", self.action_help)
        for tab in TABS:
            yield SystemCommand(
                f"Show {tab}", f"Switch to the {tab} panel", lambda t=tab: self.action_show_tab(t)
            )

    # ------------------------------------------------------------------ the feed

    @work(exclusive=True, group="feed", exit_on_error=False)
    async def _follow_feed(self) -> None:
        """Post each snapshot the feed publishes; the log collects every transition seen on the way."""
        async for snap in self.feed.subscribe():
            self._collect_log(snap)
            self.post_message(SnapshotPublished(snap))

    def _collect_log(self, snap: Snapshot) -> None:
        # recent_transitions holds the ticks this reader skipped too (the feed is newest-only).
        entries = [LogEntry.of_transition(tr) for tr in snap.recent_transitions or snap.transitions]
        entries.extend(LogEntry.of_ack(ack) for ack in snap.acks)
        if self._log_book.add(entries):
            self._log_dirty = True

    @on(SnapshotPublished)
    def _snapshot_published(self, message: SnapshotPublished) -> None:
        self._take(message.snapshot)

    def _take(self, snap: Snapshot) -> None:
        self._pending = snap
        self._last_received = self.clock()
        if self.silent_for is not None:
            self.silent_for = None
        if self.paused or self._apply_scheduled:
            return
        wait = self._last_apply + self.refresh_interval - self.clock()
        if wait <= 0:
            self._apply()
        else:
            self._apply_scheduled = True
            self.set_timer(wait, self._apply)

    def _apply(self) -> None:
        """Show the newest snapshot received (at most once per refresh interval)."""
        self._apply_scheduled = False
        if self.paused or self._pending is None:
            return
        snap, self._pending = self._pending, None
        self._last_apply = self.clock()
        if snap.version != self.snapshot.version or snap is not self.snapshot:
            self.snapshot = snap
        if self._log_dirty:
            self._log_dirty = False
            self.log_entries = self._log_book.entries()

    def watch_snapshot(self, snap: Snapshot) -> None:
        if snap.version == 0:
            return
        stale = " · ⚠ STALE" if snap.stale else ""
        when = f"{clock_text(snap.ts, self.tz)} {zone_label(self.tz, snap.ts)}"
        subtitle = f"{when} · window {format_window(self.window)}{stale}"
        if self.sub_title != subtitle:
            self.sub_title = subtitle
        self._label_tabs(snap)
        self.call_after_refresh(self._show_pothole_note)

    @on(DataTable.RowHighlighted, "#pothole-board")
    def _show_pothole_note(self) -> None:
        """Under the board, the highlighted pot hole in full: its reason and its acknowledgement's note."""
        found = self.query("#pothole-note")
        if not found:
            return
        board = self.query_one(PotholeBoard)
        found.first(Static).update(board.row_text(board.current_row))

    def _label_tabs(self, snap: Snapshot) -> None:
        holes = problem_count(snap)
        label = f"Pot holes ({holes})" if holes else "Pot holes"
        try:
            tab = self.query_one("#tabs", TabbedContent).get_tab("potholes")
        except NoMatches:
            # The tabs mount after the app (a snapshot there first is labelled by the next one), and
            # are taken apart while the last snapshots arrive at shutdown.
            return
        if str(tab.label) != label:
            tab.label = label

    def _check_silence(self) -> None:
        silent = self.clock() - self._last_received
        value = silent if silent > self.silent_after else None
        if value != self.silent_for and (
            value is None or self.silent_for is None or int(value) != int(self.silent_for)
        ):
            self.silent_for = value

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report any worker that failed; the dashboard carries on."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            title = WORKER_FAILED.get(event.worker.name, "A background task failed")
            self.notify(str(error) or repr(error), title=title, severity="error")
            if event.worker.name == "_acknowledge":
                self.last_ack_error = str(error) or repr(error)

    # ------------------------------------------------------------------ drill-in and customers

    @on(StepChosen)
    def _step_chosen(self, message: StepChosen) -> None:
        self.selected_step = message.step
        self.selected_series = message.series
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active != "detail":
            self._drilled_from = tabs.active
        tabs.active = "detail"

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "customers":
            self._load_leaders()

    @work(exclusive=True, group="customers", exit_on_error=False)
    async def _load_leaders(self) -> None:
        """Read the strikes list from the store through the feed (off the UI's way: a worker)."""
        leaders = await self.feed.customer_leaders(20)
        self.post_message(CustomerLeadersLoaded(leaders))

    @on(CustomerLeadersLoaded)
    def _leaders_loaded(self, message: CustomerLeadersLoaded) -> None:
        self.query_one(CustomerPaths).leaders = tuple(message.leaders)

    @on(CustomerChosen)
    def _customer_chosen(self, message: CustomerChosen) -> None:
        self._load_path(message.customer_id)

    @work(exclusive=True, group="customer-path", exit_on_error=False)
    async def _load_path(self, customer_id: str) -> None:
        """Read one customer's path from the store through the feed."""
        events = await self.feed.customer_path(customer_id)
        self.post_message(CustomerPathLoaded(customer_id, events))

    @on(CustomerPathLoaded)
    def _path_loaded(self, message: CustomerPathLoaded) -> None:
        self.query_one(CustomerPaths).path = (message.customer_id, tuple(message.events))

    # ------------------------------------------------------------------ actions

    def action_show_tab(self, tab: str) -> None:
        """Switch to a panel and give its widget the focus, so its keys work at once."""
        self.query_one("#tabs", TabbedContent).active = tab
        self._focus_pane(tab)

    def _windows(self) -> tuple[float, ...]:
        """The windows the figures are kept over: the feed's, or the config's before it spoke."""
        return tuple(self.snapshot.windows if self.snapshot.version else self.config.monitor.windows)

    def help_keys(self) -> list[tuple[str, str]]:
        """(key, what it does) of this dashboard's own keys, listed in the help after the common ones."""
        return []

    def action_cycle_window(self) -> None:
        """Show the next window's figures (the shortest after the longest)."""
        windows = self._windows()
        i = windows.index(self.window) if self.window in windows else -1
        self.window = windows[(i + 1) % len(windows)]
        self.notify(f"window {format_window(self.window)}", timeout=1.5)

    def action_pause(self) -> None:
        """Hold the screen still, or resume with the newest snapshot."""
        self.paused = not self.paused
        if not self.paused:
            self._apply()

    def action_help(self) -> None:
        """Show keys and legend."""
        formula = self.snapshot.service_level_formula if self.snapshot.version else None
        formula = formula or self.config.monitor.service_level_formula
        zone = zone_label(self.tz, self.snapshot.ts or None)
        text = help_text(self.config, formula, zone, self._windows(), self.help_keys())
        self.push_screen(HelpScreen(text))

    def action_filter(self) -> None:
        """Open the channel/queue filter."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = bool(box.value)
        self._focus_pane(self.query_one("#tabs", TabbedContent).active)

    def action_clear_filter(self) -> None:
        """Clear the channel/queue filter (Esc), wherever the focus is; with no filter, go back
        from a drilled-in detail to the panel it was opened from."""
        box = self.query_one("#filter", Input)
        if not box.display and not self.filter_text:
            if self.query_one("#tabs", TabbedContent).active == "detail" and self._drilled_from:
                self.action_show_tab(self._drilled_from)
            return
        refocus = box.has_focus
        box.value = ""
        box.display = False
        self.filter_text = ""
        if refocus:
            self._focus_pane(self.query_one("#tabs", TabbedContent).active)

    def action_matrix(self, action: str) -> None:
        """Sort or expand the matrix (``s``, Space) while it is the panel shown, wherever the focus is."""
        if self.query_one("#tabs", TabbedContent).active != "matrix":
            return
        matrix = self.query_one("#matrix-table", StepMatrix)
        {"sort": matrix.action_sort, "toggle_expand": matrix.action_toggle_expand}[action]()

    def _focus_pane(self, tab: str) -> None:
        """Give the keys to the panel's own widget (the table Enter, ↑ ↓ and the panel's keys act on)."""
        found = self.query(PANE_FOCUS.get(tab, ""))
        if found:
            found.first().focus()

    def on_key(self, event: events.Key) -> None:
        # Enter on the tab bar opens the panel: its widget takes the focus.
        if event.key == "enter" and isinstance(self.focused, Tabs):
            event.stop()
            self._focus_pane(self.query_one("#tabs", TabbedContent).active)

    def action_toggle_wallboard(self) -> None:
        """Switch between the dashboard and the wallboard."""
        if isinstance(self.screen, WallboardScreen):
            self.pop_screen()
            return
        screen = self.make_wallboard().data_bind(CxmonApp.snapshot)
        self.push_screen(screen)

    def make_wallboard(self) -> WallboardScreen:
        """A new wallboard screen (the replay adds its bar to it)."""
        return WallboardScreen(tz=self.tz)

    def selected_pothole(self) -> str | None:
        """The step ``a`` acknowledges: the pot-hole board's row, else the drilled-in step, else the worst."""
        tabs = self.query_one("#tabs", TabbedContent)
        board = self.query_one(PotholeBoard)
        if tabs.active == "potholes" and board.current_row is not None:
            return board.current_row.step
        if tabs.active == "matrix":
            row = self.query_one(StepMatrix).current_row
            if row is not None:
                return row.step
        if self.selected_step:
            return self.selected_step
        journey = self.query_one(JourneyMap)
        if journey.has_focus and journey.steps:
            return journey.steps[min(journey.cursor, len(journey.steps) - 1)]
        worst = [s for s in self.snapshot.steps if s.state is not State.OK]
        return max(worst, key=lambda s: s.state.severity).name if worst else None

    def action_acknowledge(self) -> None:
        """Acknowledge the selected pot hole with a note (stored through the feed)."""
        step = self.selected_pothole()
        if step is None:
            self.notify("Nothing to acknowledge: pick a step first.", severity="warning")
            return
        status = self.snapshot.step(step)
        label = status.label if status else step
        reason = status.reason if status else ""
        if isinstance(self.feed, GatedFeed) and not self.feed.may_acknowledge(step):
            # Said before the form, not after the floor manager has filled it in.
            self.notify(
                f"{label}: this watcher's token may view, not acknowledge.",
                title="View only",
                severity="warning",
            )
            return

        def done(request: AckRequest | None) -> None:
            if request is not None:
                self._acknowledge(request)

        self.push_screen(AcknowledgeScreen(step, label, reason), done)

    @work(exclusive=False, group="ack", exit_on_error=False)
    async def _acknowledge(self, request: AckRequest) -> None:
        """Store the acknowledgement through the feed, then tell the app."""
        until = None if request.for_seconds is None else self.feed.latest.ts + request.for_seconds
        ack = await self.feed.acknowledge(request.step, request.who, request.note, until)
        self.post_message(PotholeAcknowledged(ack))

    @on(PotholeAcknowledged)
    def _acknowledged(self, message: PotholeAcknowledged) -> None:
        ack = message.ack
        if self._log_book.add([LogEntry.of_ack(ack)]):
            self.log_entries = self._log_book.entries()
        status = self.snapshot.step(ack.step)
        label = status.label if status is not None else ack.step
        self.notify(f"{label} acknowledged by {ack.who}: {ack.note}", title="Acknowledged")
