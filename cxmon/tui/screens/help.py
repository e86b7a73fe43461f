"""Help screen: every key, what the colours and symbols mean."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from cxmon.config import Config
from cxmon.tui.explain import service_level_formula
from cxmon.units import format_duration, format_window

HELP = """\
# cxmon dashboard

Keys work wherever the focus is on the screen they belong to; the focused table has a bar on its
left and a lit header.

| key | does |
|---|---|
| ← → (journey map) | pick a step |
| ↑ ↓ | move in a table; ← → scroll it sideways |
| Tab / Shift+Tab | next / previous panel |
| Enter | drill into the step, series or customer under the cursor; on the tab bar, open the panel |
| Esc | back from a drilled-in detail to the panel it was opened from |
| 1 … 5 | matrix, pot holes, detail, customers, events (the panel's table takes the keys) |
| Space (matrix) | expand a step's queues |
| s (matrix) | sort by the next figure, worst first |
| / | filter by channel or queue (Esc clears it, from anywhere) |
| w | cycle the window ({windows}) |
| a | acknowledge the selected pot hole: note, who, for how long |
| p | pause updates (PAUSED shows in the status bar) |
| v | wallboard: big numbers for a TV screen |
| Ctrl+P | command palette (themes, every action) |
| ? | this help |
| q | quit |
{more_keys}
**States** are told by colour *and* by word: ✔ OK, ▲ WATCH (past warn, or trending to a breach),
✖ POTHOLE (past breach for long enough), ? STALE (its sources went quiet: never shown as OK).
★ marks a moment of truth. An arrow shows which way the headline figure moved over the last two
minutes (↑ rising, ↓ falling, → flat); its colour says whether that is bad (red) or good (green).

**Service level** = {formula}, with T the step's target ({targets}). Abandon rate =
(abandoned − short abandons) ÷ (answered + abandoned − short abandons); a short abandon left within
{short}. The detail panel (Enter on a step or a matrix row) works each judged figure out from its
counts, with its window and threshold.

Offered counts contacts that arrived in the window; answered and abandoned count those that left
the queue in it, so contacts that arrived before the window can make answered + abandoned exceed
offered.

Matrix rows for a channel combine its queues: counts are added up, rates are weighted by what
they are over (the channel's own service level), percentiles show the worst queue. Expand a step
to see each queue. Cells are coloured against the step's thresholds. Times are in {zone}.
"""


def help_text(
    config: Config,
    formula: str,
    zone: str,
    windows: Sequence[float] = (),
    more_keys: Sequence[tuple[str, str]] = (),
) -> str:
    """The help, with the service-level formula in use, each step's target and the time zone.

    Args:
        config: the dashboard's config (its steps' targets, the short-abandon limit).
        formula: the service-level formula name in use.
        zone: the label of the time zone the dashboard shows.
        windows: the windows ``w`` cycles through (default: the config's).
        more_keys: (key, what it does) rows of a screen's own keys (a replay's seek and speed).

    Returns:
        The help as Markdown.
    """
    targets = ", ".join(f"{s.label} {format_duration(s.service_level_target)}" for s in config.steps)
    text = HELP.format(
        formula=service_level_formula(formula),
        targets=targets,
        short=format_duration(config.monitor.short_abandon),
        zone=zone,
        windows=window_list(windows or config.monitor.windows, " / "),
        more_keys=_MORE,
    )
    added = []
    for key, does in more_keys:
        # A screen's own meaning of a key the dashboard lists (a replay's p) takes that key's row:
        # two rows for one key left the reader to guess which one holds.
        line = f"| {key} | {does} |"
        row = re.compile(rf"^\| {re.escape(key)} \| .*\|$", re.MULTILINE)
        if row.search(text):
            text = row.sub(line.replace("\\", "\\\\"), text, count=1)
        else:
            added.append(line + "\n")
    return text.replace(_MORE, "".join(added), 1)


_MORE = "\x00more keys\x00"
"""Where a screen's own keys go in the table, until they are known."""


def window_list(windows: Sequence[float], sep: str) -> str:
    """The windows as the dashboard names them, in order: "15m / 30m / 60m"."""
    return sep.join(format_window(w) for w in windows)


class HelpScreen(ModalScreen[None]):
    """Keys and legend; any of Escape, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Markdown(self.text)

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
