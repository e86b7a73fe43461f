"""ReplayApp: the dashboard over a replayed history, with its time cursor, speed, pause and seek."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, ClassVar, Protocol

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static

from cxmon.localtime import when, zone_label
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import Feed
from cxmon.tui.screens.wallboard import WallboardScreen


class ReplayControls(Feed, Protocol):
    """What the replay bar and keys need besides the Feed (cxmon.replay.session.ReplaySession)."""

    start: float
    end: float
    speed: float | None
    paused: bool

    @property
    def position(self) -> float: ...

    @property
    def aim(self) -> float: ...

    @property
    def finished(self) -> bool: ...

    def faster(self, step: int = 1) -> float | None: ...

    def toggle_pause(self) -> bool: ...

    def seek(self, delta: float) -> float: ...


def _stamp(ts: float, tz: tzinfo | None) -> str:
    return when(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


KEYS_HINT = "   [ ] ±1m  { } ±10m  < > speed  p pause"
"""The replay's keys, on its bar."""
KEYS_HINT_SHORT = "  [ ] { } seek  < > speed"
"""The same, where the bar is narrow (? lists them in full)."""
TRACK_MIN = 8
"""The shortest progress track the bar draws; the longest is 30 cells."""


def cursor_text(session: ReplayControls, *, tz: tzinfo | None = None, columns: int = 200) -> Content:
    """The replay bar: state, speed, the cursor's time, a progress track, the range and the keys.

    Args:
        session: the replay.
        tz: the zone its times are shown in (None: the machine's).
        columns: the bar's width. Where everything does not fit, the range goes first, then the
            track shortens, then the keys are named shorter, so they stay on screen (80 columns
            over SSH).

    Returns:
        The bar's line.
    """
    span = max(session.end - session.start, 1e-9)
    # Paused, nothing moves: the cursor shown is where a seek pressed meanwhile will resume from.
    at = session.aim if session.paused else session.position
    done = min(1.0, max(0.0, (at - session.start) / span))
    if session.finished:
        state = "■ END"
    elif session.paused:
        state = "⏸ PAUSED"
    else:
        state = "▶ REPLAY"
    speed = "max" if session.speed is None else f"{session.speed:g}×"
    cursor = f"{_stamp(at, tz)} {zone_label(tz, at)}"
    span_text = f"  {_stamp(session.start, tz)} → {_stamp(session.end, tz)}"
    hint = KEYS_HINT
    fixed = len(state) + 2 + len(speed) + 3 + len(cursor) + 2
    if columns - fixed - len(hint) - len(span_text) < TRACK_MIN:
        span_text = ""
    if columns - fixed - len(hint) < TRACK_MIN:
        hint = KEYS_HINT_SHORT
    width = max(TRACK_MIN, min(30, columns - fixed - len(hint) - len(span_text)))
    filled = round(done * width)
    return Content.assemble(
        (f" {state} ", "bold reverse $text-accent"),
        f" {speed}  ",
        (cursor, "bold"),
        "  ",
        ("█" * filled, "$text-accent"),
        ("░" * (width - filled), "$text-muted"),
        span_text,
        (hint, "$text-muted"),
    )


class ReplayBar(Static):
    """One line under the header: where the replay is in its range, how fast, paused or not."""

    DEFAULT_CSS = """
    ReplayBar { height: 1; width: 1fr; background: $boost; }
    """

    def __init__(self, session: ReplayControls, *, tz: tzinfo | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.tz = tz
        self._shown: Content | None = None

    def on_mount(self) -> None:
        self.paint()
        self.set_interval(0.25, self.paint)

    def on_resize(self) -> None:
        self.paint()

    def paint(self) -> None:
        """Redraw when the cursor's line changed."""
        content = cursor_text(self.session, tz=self.tz, columns=self.size.width or 200)
        if content != self._shown:
            self._shown = content
            self.update(content)


_REPLAY = Binding.Group("replay", compact=True)


class ReplayApp(CxmonApp):
    """The dashboard replaying: ``[`` ``]`` seek a minute, ``{`` ``}`` ten, ``<`` ``>`` speed, ``p`` pause."""

    # One entry of the footer ("[]{}<> replay", the replay bar says what each does): six did not
    # fit 80 columns, on the dashboard or the wallboard.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left_square_bracket", "seek(-60)", "−1m", key_display="[", group=_REPLAY),
        Binding("right_square_bracket", "seek(60)", "+1m", key_display="]", group=_REPLAY),
        Binding("left_curly_bracket", "seek(-600)", "−10m", key_display="{", group=_REPLAY),
        Binding("right_curly_bracket", "seek(600)", "+10m", key_display="}", group=_REPLAY),
        Binding("less_than_sign", "speed(-1)", "Slower", key_display="<", group=_REPLAY),
        Binding("greater_than_sign", "speed(1)", "Faster", key_display=">", group=_REPLAY),
    ]

    def __init__(self, session: ReplayControls, **kwargs: Any) -> None:
        # A held replay delivers nothing, rightly: the feed-silence banner does not apply.
        kwargs.setdefault("silent_after", float("inf"))
        super().__init__(session, **kwargs)
        self.session = session
        self.title = "cxmon replay"

    def on_mount(self) -> None:
        # Textual calls CxmonApp.on_mount after this one (it runs every class's handler), so it is
        # not called here: run twice, it pushed the wallboard of `--wallboard` and popped it again.
        # The bar goes on the dashboard's screen before that one can push the wallboard over it.
        self.mount(ReplayBar(self.session, tz=self.tz, id="replay-bar"), before="#stale-banner")

    def make_wallboard(self) -> WallboardScreen:
        """The wallboard with the replay bar under its title: without it, a replay's wallboard
        looked live (no date, no PAUSED, no END)."""
        return WallboardScreen(tz=self.tz, under_title=ReplayBar(self.session, tz=self.tz))

    def help_keys(self) -> list[tuple[str, str]]:
        """The replay's keys, for the help."""
        return [
            ("[ ]", "move the time cursor a minute back / on"),
            ("{ }", "ten minutes back / on"),
            ("< >", "replay slower / faster (1×, 10×, 60×, max)"),
            ("p", "pause the replay (and the screen), or go on"),
        ]

    def _paint_bar(self) -> None:
        for bar in self.screen.query(ReplayBar):
            bar.paint()

    def action_seek(self, delta: float) -> None:
        """Move the time cursor by ``delta`` seconds."""
        self.session.seek(delta)
        self._paint_bar()

    def action_speed(self, step: int) -> None:
        """Step the speed through 1×, 10×, 60×, max."""
        speed = self.session.faster(step)
        self.notify(f"speed {'max' if speed is None else f'{speed:g}×'}", timeout=1.5)
        self._paint_bar()

    def action_pause(self) -> None:
        """Hold the replay (and the screen), or resume."""
        self.session.toggle_pause()
        super().action_pause()
        self._paint_bar()
