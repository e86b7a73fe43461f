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

from cxmon.engine.acks import MAX_ACK
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
    """Ask for a note, who and for how long, top to bottom; Enter (or Acknowledge) stores it, Esc cancels.

    The fields are labelled and in the order Tab visits them; who starts as the logged-in user.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, step: str, label: str, reason: str) -> None:
        super().__init__()
        self.step = step
        self.label = label
        self.reason = reason
        # Built here, not looked up: a screen pushed while the app quits is mounted but never composed.
        self._note = Input(placeholder="e.g. two agents moved from sales", id="ack-note")
        self._who = Input(value=_default_user(), id="ack-who")
        self._for = Input(placeholder="30m, 2h …", id="ack-for")
        self._error = Label("", id="ack-error")

    def compose(self) -> ComposeResult:
        with Vertical(id="ack-dialog", classes="dialog"):
            yield Label(f"Acknowledge [b]{self.label}[/b]", classes="dialog-title")
            yield Label(self.reason or "", classes="dialog-reason")
            yield Label("1. Note: what is being done about it", classes="field-label")
            yield self._note
            yield Label("2. Who is acknowledging", classes="field-label")
            yield self._who
            yield Label("3. For how long (empty: 4h)", classes="field-label")
            yield self._for
            yield self._error
            with Horizontal(classes="dialog-buttons"):
                yield Button("Acknowledge", variant="primary", id="ack-ok")
                yield Button("Cancel", id="ack-cancel")

    def on_mount(self) -> None:
        self._note.focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ack-ok")
    def _submit(self) -> None:
        note, who, error = self._note, self._who, self._error
        for_text = self._for.value.strip()
        if not note.value.strip():
            error.update("1. Note is empty: say what is being done about it.")
            note.focus()
            return
        if not who.value.strip():
            error.update("2. Who is empty: give your name.")
            who.focus()
            return
        seconds: float | None = None
        if for_text:
            try:
                seconds = parse_duration(for_text)
            except ValueError:
                error.update(f"3. {for_text!r} is not a duration (try 30m or 2h).")
                self._for.focus()
                return
            if not 0 < seconds <= MAX_ACK:
                error.update(f"3. {for_text!r}: give a duration above 0s and up to {MAX_ACK / 86400:g} days.")
                self._for.focus()
                return
        self.dismiss(AckRequest(self.step, who.value.strip(), note.value.strip(), seconds))

    @on(Button.Pressed, "#ack-cancel")
    def action_cancel(self) -> None:
        """Close without acknowledging."""
        self.dismiss(None)
