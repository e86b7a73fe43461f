"""The real ``cxmon run`` in a real terminal (tmux): first frame, journey steps, status bar, clean quit."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import only_pid
from tests.snapshot_app import sim_config_text

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], object], tries: int = 300, every: float = 0.1) -> bool:
    """Poll ``check()`` until it is true or ``tries`` run out."""
    for _ in range(tries):
        if check():
            return True
        time.sleep(every)
    return False


def write_config(tmp_path: Path) -> Path:
    """The seeded simulator's config (60x), its history in ``tmp_path``; return its path."""
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="60").replace('path = "cxmon.db"', f'path = "{tmp_path / "cxmon.db"}"', 1)
    config.write_text(text, encoding="utf-8")
    return config


def cxmon_pid(config: Path) -> int:
    """The pid of the one `cxmon run --config CONFIG` process (not a shell that started it)."""
    return only_pid(f"^{sys.executable} -m cxmon run --config {config}$")


def committed_events(tmp_path: Path) -> int:
    """Events committed to the history in ``tmp_path``."""
    with sqlite3.connect(tmp_path / "cxmon.db") as db:
        (events,) = db.execute("SELECT count(*) FROM events").fetchone()
    return int(events)


def start(tmux: list[str], tmp_path: Path, *args: str, size: tuple[int, int] = (120, 40)) -> Path:
    """Start ``cxmon run ARGS`` on the seeded simulator (60x) in a tmux window; return its exit-code file."""
    config = write_config(tmp_path)
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


def test_a_hangup_stops_cxmon_run_as_sigterm_does_and_commits(tmux: list[str], tmp_path: Path) -> None:
    """SIGHUP (the terminal went away: an SSH connection dropped) stops `cxmon run` cleanly: exit
    code 0 and the events it read committed to the history, where dying of the signal gave 129."""
    exit_file = start(tmux, tmp_path)
    assert wait_for(lambda: "ev/s" in screen(tmux)), screen(tmux)
    os.kill(cxmon_pid(tmp_path / "cxmon.toml"), signal.SIGHUP)
    assert wait_for(lambda: exit_file.exists() and exit_file.read_text().strip() != ""), screen(tmux)
    assert exit_file.read_text().strip() == "0"
    assert committed_events(tmp_path) > 0


def _kill_terminal_under(tmux: list[str], command: str, config: Path, ended: Callable[[int], bool]) -> None:
    """Run ``command`` as a tmux session's own, wait for the dashboard, kill the session, and wait
    for ``ended()``; a cxmon still running then is killed (a hung one would outlive the test)."""
    window = ("-x", "100", "-y", "30", "-c", str(REPO))
    subprocess.run([*tmux, "new-session", "-d", "-s", "cxmon", *window, command], check=True)
    assert wait_for(lambda: "ev/s" in screen(tmux)), screen(tmux)
    pid = cxmon_pid(config)
    subprocess.run([*tmux, "kill-session", "-t", "cxmon"], check=True)
    try:
        assert wait_for(lambda: ended(pid)), f"cxmon (pid {pid}) did not end"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_cxmon_run_exits_when_its_terminal_is_killed(tmux: list[str], tmp_path: Path) -> None:
    """`cxmon run` as a tmux session's own command, the session killed: the process ends (it does
    not wait for ever on writes to a terminal that is gone) and its events are committed."""
    config = write_config(tmp_path)
    command = f"{sys.executable} -m cxmon run --config {config}"
    _kill_terminal_under(tmux, command, config, lambda pid: not Path(f"/proc/{pid}").exists() or _zombie(pid))
    assert committed_events(tmp_path) > 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_cxmon_run_stops_when_its_terminal_goes_with_no_hangup_signal(
    tmux: list[str], tmp_path: Path
) -> None:
    """The terminal's session leader ignores SIGHUP and keeps cxmon from hearing of the hang-up (as
    `make run` does): `cxmon run` learns it from its next write, stops cleanly (exit code 0, events
    committed) instead of waiting for ever with its input thread spinning."""
    config = write_config(tmp_path)
    exit_file = tmp_path / "exit-code"
    command = f"trap '' HUP; {sys.executable} -m cxmon run --config {config}; echo $? > {exit_file}"
    _kill_terminal_under(
        tmux,
        f'sh -c "{command}"',
        config,
        lambda _: exit_file.exists() and exit_file.read_text().strip() != "",
    )
    assert exit_file.read_text().strip() == "0"
    assert committed_events(tmp_path) > 0
