"""`cxmon import` in a real terminal (tmux): the progress bar redraws one line, whatever the width."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.test_importer import _calls, write_queue_log

pytestmark = pytest.mark.integration


def screen(tmux: list[str]) -> list[str]:
    """The window's lines, its scrollback included, without the blank ones."""
    out = subprocess.run(
        [*tmux, "capture-pane", "-p", "-S", "-", "-t", "imp"], capture_output=True, text=True, check=True
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("width", [60, 80, 160])
def test_the_progress_bar_stays_on_one_line_of_the_terminal(
    tmux: list[str], tmp_path: Path, width: int
) -> None:
    """At 60, 80 and 160 columns an import leaves one progress line on the screen (its last draw),
    then its summary: a line wider than the terminal would wrap, and each redraw leave a line."""
    log = tmp_path / "queue_log"
    write_queue_log(log, _calls(3000, seed=5))
    done = tmp_path / "exit-code"
    db = tmp_path / "h.db"
    # The window stays after the import (the sleep) so that its screen can be read.
    command = f"{sys.executable} -m cxmon import queue_log {log} --db {db}; echo $? > {done}; sleep 60"
    window = ("-x", str(width), "-y", "24", "-c", str(REPO))
    subprocess.run([*tmux, "new-session", "-d", "-s", "imp", *window, command], check=True)
    for _ in range(600):
        if done.exists() and done.read_text().strip():
            break
        time.sleep(0.1)
    lines = screen(tmux)
    assert done.read_text().strip() == "0", lines
    progress = [line for line in lines if "queue_log: " in line and "%" in line and "imported" not in line]
    assert len(progress) == 1 and "100.0%" in progress[0], lines
    assert any(line.startswith("imported ") for line in lines), lines
