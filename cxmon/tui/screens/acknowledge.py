"""Acknowledge modal: who, a note and for how long, for the selected pot hole."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from cxmon.units import parse_duration


@dataclass(frozen=True, slots=True)
class AckRequest:
    """What the user typed into the acknowledge modal."""

    step: str
    who: str
    note: str
    for_seconds: float | None
    """How long the ack holds (None: the engine's default)."""


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "floor"


class AcknowledgeScreen(ModalScreen[AckRequest | None]):
    """Ask for who and a note; Enter in the note (or OK) acknowledges, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, step: str, label: str, reason: str) -> None:
        super().__init__()
        self.step = step
        self.label = label
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical(id="ack-dialog", classes="dialog"):
            yield Label(f"Acknowledge [b]{self.label}[/b]", classes="dialog-title")
            yield Label(self.reason or "", classes="dialog-reason")
            yield Input(value=_default_user(), placeholder="who", id="ack-who")
            yield Input(placeholder="note (what is being done about it)", id="ack-note")
            yield Input(placeholder="for how long, e.g. 30m (default 4h)", id="ack-for")
            yield Label("", id="ack-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Acknowledge", variant="primary", id="ack-ok")
                yield Button("Cancel", id="ack-cancel")

    def on_mount(self) -> None:
        self.query_one("#ack-note", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ack-ok")
    def _submit(self) -> None:
        who = self.query_one("#ack-who", Input).value.strip()
        note = self.query_one("#ack-note", Input).value.strip()
        for_text = self.query_one("#ack-for", Input).value.strip()
        error = self.query_one("#ack-error", Label)
        if not who or not note:
            error.update("Who and a note are both needed.")
            return
        seconds: float | None = None
        if for_text:
            try:
                seconds = parse_duration(for_text)
            except ValueError:
                error.update(f"{for_text!r} is not a duration (try 30m or 2h).")
                return
        self.dismiss(AckRequest(self.step, who, note, seconds))

    @on(Button.Pressed, "#ack-cancel")
    def action_cancel(self) -> None:
        """Close without acknowledging."""
        self.dismiss(None)
