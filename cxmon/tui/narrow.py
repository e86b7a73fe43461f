"""The narrow layout: the width under which the screens go compact, and the footer fitted to it."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.widgets import Footer

NARROW = 120
"""Screens narrower than this get the compact layout (80 × 24 is the one to fit)."""


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
