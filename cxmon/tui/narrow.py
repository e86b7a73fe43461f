"""The narrow layout: the width under which the screens go compact, and the footer fitted to it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.dom import DOMNode
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

NARROW = 120
"""Screens narrower than this get the compact layout (80 × 24 is the one to fit)."""


SHORT = {"Drill in": "Open", "Wallboard": "Wall", "Window": "Win"}
"""The compact footer's labels for the keys whose own are too long for 80 columns (the help, ``?``,
says what each key does in full)."""


class FittedFooter(Footer):
    """The footer, with the short labels of :data:`SHORT` while it is compact: a replay's dashboard
    with the matrix focused names eleven keys, and with the long labels they ran past 80 columns."""

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                widget.description = SHORT.get(widget.description, widget.description)
            yield widget

    def watch_compact(self, compact: bool) -> None:
        if self.is_mounted:
            self.call_after_refresh(self.recompose)


def fit_footers(node: DOMNode, width: int) -> None:
    """Make the footers under ``node`` compact on a screen narrower than :data:`NARROW`, so their
    keys fit 80 columns (the palette's ^p goes: it is in the help), and roomy on a wider one.

    Args:
        node: the screen (or app) whose footers are fitted.
        width: the screen's width in cells.
    """
    narrow = width < NARROW
    for footer in node.query(Footer):
        footer.compact = narrow
        footer.show_command_palette = not narrow
