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


def start(tmux: list[str], tmp_path: Path, *args: str, size: tuple[int, int] = (120, 40)) -> Path:
    """Start ``cxmon run ARGS`` on the seeded simulator (60x) in a tmux window; return its exit-code file."""
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="60").replace('path = "cxmon.db"', f'path = "{tmp_path / "cxmon.db"}"', 1)
    config.write_text(text, encoding="utf-8")
    exit_file = tmp_path / "exit-code"
    command = f"{sys.executable} -m cxmon run --config {config} {' '.join(args)}; echo $? > {exit_file}"
    width, height = size
    window = ("-x", str(width), "-y", str(height), "-c", str(REPO))
    subprocess.run([*tmux, "new-session", "-d", "-s", "cxmon", *window, command], check=True)
    return exit_file


def screen(tmux: list[str]) -> str:
    """The tmux window's text as it is now."""
    out = subprocess.run([*tmux, "capture-pane", "-p", "-t", "cxmon"], capture_output=True, text=True)
    return out.stdout


def quit_with_q(tmux: list[str], exit_file: Path) -> str:
    """Press q and return the exit code the command ended with."""
    subprocess.run([*tmux, "send-keys", "-t", "cxmon", "q"], check=True)
    assert wait_for(exit_file.exists), screen(tmux)
    assert wait_for(lambda: exit_file.read_text().strip() != "")
    return exit_file.read_text().strip()


LABELS = ("Pre-sale enquiry", "Ordering", "Getting help", "Escalation", "Resolution", "Feedback")


def test_cxmon_run_shows_the_dashboard_and_q_exits_0(tmux: list[str], tmp_path: Path) -> None:
    """`cxmon run` draws the journey steps and the status bar; q quits with exit code 0."""
    exit_file = start(tmux, tmp_path)
    assert wait_for(lambda: all(label in screen(tmux) for label in LABELS) and "ev/s" in screen(tmux)), (
        screen(tmux)
    )
    frame = screen(tmux)
    assert "sim" in frame and "age" in frame  # the status bar: the source, its rate, data age
    assert quit_with_q(tmux, exit_file) == "0"


def test_cxmon_run_wallboard_shows_big_tiles_and_q_exits_0(tmux: list[str], tmp_path: Path) -> None:
    """`cxmon run --wallboard` opens on the wall view, keeps running as figures arrive, and q exits 0."""
    exit_file = start(tmux, tmp_path, "--wallboard", size=(160, 48))
    assert wait_for(lambda: "cxmon wallboard" in screen(tmux) and "Getting help" in screen(tmux)), screen(
        tmux
    )
    first = screen(tmux)
    # Figures keep arriving (the simulator at 60x): the clock in the title moves, the app is still up.
    assert wait_for(lambda: screen(tmux).splitlines()[0] != first.splitlines()[0]), screen(tmux)
    assert not exit_file.exists(), screen(tmux)
    assert all(label in screen(tmux) for label in LABELS), screen(tmux)
    assert quit_with_q(tmux, exit_file) == "0"
