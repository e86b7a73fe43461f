"""Help screen: every key, what the colours and symbols mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# cxmon dashboard

| key | does |
|---|---|
| ← → (journey map) | pick a step |
| ↑ ↓ | move in a table |
| Tab / Shift+Tab | next / previous panel |
| Enter | drill into the step (or the customer) under the cursor |
| 1 … 5 | matrix, pot holes, detail, customers, events |
| Space (matrix) | expand a step's queues |
| s (matrix) | sort by the next figure, worst first |
| / | filter by channel or queue (Esc clears) |
| w | cycle the window (5m / 15m / 60m) |
| a | acknowledge the selected pot hole, with a note |
| p | pause updates (PAUSED shows in the status bar) |
| v | wallboard: big numbers for a TV screen |
| Ctrl+P | command palette (themes, every action) |
| ? | this help |
| q | quit |

**States** are told by colour *and* by word: ✔ OK, ▲ WATCH (past warn, or trending to a breach),
✖ POTHOLE (past breach for long enough), ? STALE (its sources went quiet: never shown as OK).
★ marks a moment of truth. Arrows show the headline figure's trend (red when it moves the bad way).

Matrix rows for a channel combine its queues: counts are added up, rates are weighted by what
they are over (the channel's own service level), percentiles show the worst queue. Expand a step
to see each queue. Cells are coloured against the step's thresholds.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and legend; any of Escape, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
