"""The acknowledge dialog: labelled fields in Tab order, who is the user, the whole note on demand."""

from __future__ import annotations

import dataclasses
import getpass

from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Label, Static

from cxmon.engine import Engine
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.messages import PotholeAcknowledged
from cxmon.tui.screens.acknowledge import AcknowledgeScreen
from cxmon.tui.widgets.pothole_board import PotholeBoard
from tests.tui.conftest import SIZE, settle

LONG_NOTE = (
    "moved 5 agents from sales to billing, called the outsourcer for two more, "
    "and asked the IVR team to play the outage message until 10:00"
)


async def open_dialog(app: CxmonApp, pilot: Pilot[int]) -> AcknowledgeScreen:
    """Open the pot-hole panel and press a on its first row."""
    board = app.query_one(PotholeBoard)
    await pilot.press("2")
    await settle(pilot, lambda: board.row_count > 0)
    await pilot.press("a")
    await settle(pilot, lambda: isinstance(app.screen, AcknowledgeScreen))
    assert isinstance(app.screen, AcknowledgeScreen)
    return app.screen


async def test_the_fields_are_labelled_and_tab_follows_their_order(engine: Engine) -> None:
    """The dialog opens on the note; Tab goes to who (pre-filled with the login user), then duration."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        labels = [str(label.render()) for label in dialog.query(".field-label").results(Label)]
        assert [text.split(".")[0] for text in labels] == ["1", "2", "3"]
        assert "Note" in labels[0] and "Who" in labels[1] and "how long" in labels[2]
        assert app.focused is dialog.query_one("#ack-note", Input)
        assert dialog.query_one("#ack-who", Input).value == getpass.getuser()
        await pilot.press("tab")
        assert app.focused is dialog.query_one("#ack-who", Input)
        await pilot.press("tab")
        assert app.focused is dialog.query_one("#ack-for", Input)


async def test_an_empty_note_is_named_and_focused(engine: Engine) -> None:
    """Enter with no note says the note is missing (not "both") and puts the cursor there."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        await pilot.press("tab", "enter")
        await pilot.pause()
        error = str(dialog.query_one("#ack-error", Label).render())
        assert "Note is empty" in error and "Who" not in error
        assert app.focused is dialog.query_one("#ack-note", Input)


async def test_the_whole_note_shows_under_the_board(engine: Engine) -> None:
    """A long note is cut in the board's column, but the line under the board shows all of it."""
    seen: list[Message] = []
    feed = MemoryFeed(engine.config, engine.latest)
    app = CxmonApp(feed, refresh_interval=0)
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await open_dialog(app, pilot)
        await pilot.press(*LONG_NOTE, "enter")
        await settle(pilot, lambda: any(isinstance(m, PotholeAcknowledged) for m in seen))
        # The feed's next snapshot carries the acknowledgement, as the engine's would.
        snap = feed.latest
        feed.publish(dataclasses.replace(snap, version=snap.version + 1, acks=tuple(feed.acks)))
        note = app.query_one("#pothole-note", Static)
        await settle(pilot, lambda: LONG_NOTE in " ".join(str(note.render()).split()))
        assert f"acknowledged by {getpass.getuser()}" in str(note.render())


async def test_a_dialog_mounted_while_the_app_quits_does_not_fail(engine: Engine) -> None:
    """`a` typed just after `q` can mount the dialog on an app that no longer composes it: its mount
    handler must not look for fields that are not there (that ended the run with a traceback)."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        dialog = AcknowledgeScreen("get_help", "Getting help", "")
        dialog.on_mount()  # before compose: what a quitting app does to a pushed screen
        await pilot.pause()


async def test_an_acknowledgement_longer_than_allowed_is_refused_in_the_dialog(engine: Engine) -> None:
    """A duration beyond the longest an acknowledgement may last is named under field 3, and nothing is
    stored (a stored one would end at a time no dashboard can show)."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        await pilot.press(*"moving agents", "tab", "tab", *"100000000h", "enter")
        await pilot.pause()
        error = str(dialog.query_one("#ack-error", Label).render())
        assert error.startswith("3.") and "7 days" in error
        assert app.screen is dialog
        assert len(engine._acks) == 0


async def test_the_acknowledged_notice_names_the_step_as_the_screen_does(engine: Engine) -> None:
    """The notice after an acknowledgement names the step by its label ("Getting help"), not by the
    config's internal name ("get_help")."""
    seen: list[Message] = []
    app = CxmonApp(MemoryFeed(engine.config, engine.latest), refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await open_dialog(app, pilot)
        await pilot.press(*"moved two agents", "enter")
        await settle(pilot, lambda: any(isinstance(m, PotholeAcknowledged) for m in seen))
        await pilot.pause()
        notices = [n.message for n in app._notifications]
    assert "Getting help acknowledged by" in " ".join(notices), notices
    assert not any(n.startswith("get_help") for n in notices), notices
