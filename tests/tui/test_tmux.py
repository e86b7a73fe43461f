"""The real ``cxmon run`` in a real terminal (tmux): first frame, journey steps, status bar, clean quit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_binary
from tests.snapshot_app import sim_config_text

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A tmux command prefix on a private server, killed afterwards."""
    prefix = [require_binary("tmux"), "-L", f"cxmon-test-{os.getpid()}", "-f", os.devnull]
    yield prefix
    subprocess.run([*prefix, "kill-server"], capture_output=True, check=False)


def wait_for(check: object, tries: int = 300, every: float = 0.1) -> bool:
    """Poll ``check()`` until it is true or ``tries`` run out."""
    for _ in range(tries):
        if check():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False


def test_cxmon_run_shows_the_dashboard_and_q_exits_0(tmux: list[str], tmp_path: Path) -> None:
    """`cxmon run` draws the journey steps and the status bar; q quits with exit code 0."""
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="60").replace('path = "cxmon.db"', f'path = "{tmp_path / "cxmon.db"}"', 1)
    config.write_text(text, encoding="utf-8")
    exit_file = tmp_path / "exit-code"
    command = f"{sys.executable} -m cxmon run --config {config}; echo $? > {exit_file}"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "cxmon", "-x", "120", "-y", "40", "-c", str(REPO), command],
        check=True,
    )

    def screen() -> str:
        out = subprocess.run([*tmux, "capture-pane", "-p", "-t", "cxmon"], capture_output=True, text=True)
        return out.stdout

    labels = ("Pre-sale enquiry", "Ordering", "Getting help", "Escalation", "Resolution", "Feedback")
    assert wait_for(lambda: all(label in screen() for label in labels) and "ev/s" in screen()), screen()
    frame = screen()
    assert "sim" in frame and "age" in frame  # the status bar: the source, its rate, data age
    subprocess.run([*tmux, "send-keys", "-t", "cxmon", "q"], check=True)
    assert wait_for(exit_file.exists), screen()
    assert wait_for(lambda: exit_file.read_text().strip() != "")
    assert exit_file.read_text().strip() == "0"
