"""The real ``cxmon serve`` and ``cxmon watch`` in a real terminal (tmux): kill the daemon, restart it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, only_pid
from tests.hub.helpers import free_port, start_daemon
from tests.snapshot_app import sim_config_text

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], object], tries: int = 600, every: float = 0.1) -> bool:
    """Poll ``check()`` until it is true or ``tries`` run out."""
    for _ in range(tries):
        if check():
            return True
        time.sleep(every)
    return False


def test_watch_shows_the_daemon_going_away_and_coming_back(tmux: list[str], tmp_path: Path) -> None:
    """`cxmon watch` draws the daemon's journey; kill -9 the daemon: DISCONNECTED and STALE; restart: live."""
    port = free_port()
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="30").replace('listen = "127.0.0.1:8765"', f'listen = "127.0.0.1:{port}"', 1)
    config.write_text(text, encoding="utf-8")
    db = tmp_path / "cxmon.db"
    daemon = start_daemon(config, db)
    try:
        screen = _watch_in_tmux(tmux, _watch_command(port), (140, 40))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(30)
        # The status bar and the banner are painted in turn: wait for both.
        assert wait_for(
            lambda: all(word in screen() for word in ("DISCONNECTED", "STALE", "no contact with the hub"))
        ), screen()
        daemon = start_daemon(config, db)
        assert wait_for(lambda: "hub ● live" in screen() and "DISCONNECTED" not in screen()), screen()
        subprocess.run([*tmux, "send-keys", "-t", "w", "q"], check=True)
    finally:
        daemon.terminate()
        daemon.wait(30)


def _watch_command(port: int) -> str:
    """The `cxmon watch` command line for the hub at ``port``."""
    return f"{sys.executable} -m cxmon watch ws://127.0.0.1:{port} --connect-timeout 60"


def _watch_in_tmux(tmux: list[str], command: str, size: tuple[int, int]) -> Callable[[], str]:
    """Run ``command`` (a `cxmon watch`) as a tmux session's own command, wait until it shows the hub
    live, and return a function giving the screen."""
    window = ("-x", str(size[0]), "-y", str(size[1]), "-c", str(REPO))
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "w", *window, command],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    def screen() -> str:
        out = subprocess.run([*tmux, "capture-pane", "-p", "-t", "w"], capture_output=True, text=True)
        return out.stdout

    assert wait_for(lambda: "Ordering" in screen() and "hub ● live" in screen()), screen()
    return screen


@pytest.mark.parametrize("hang_up", ["kill the terminal", "SIGHUP"])
def test_watch_ends_when_its_terminal_goes(tmux: list[str], tmp_path: Path, hang_up: str) -> None:
    """The terminal under `cxmon watch` goes away — its tmux session killed while the session's shell
    keeps SIGHUP from it, or SIGHUP itself: the watch ends with exit code 0 instead of waiting for
    ever on writes to a terminal that is gone (or dying of the signal)."""
    port = free_port()
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="30").replace('listen = "127.0.0.1:8765"', f'listen = "127.0.0.1:{port}"', 1)
    config.write_text(text, encoding="utf-8")
    daemon = start_daemon(config, tmp_path / "cxmon.db")
    exit_file = tmp_path / "exit-code"
    pid = None
    try:
        # Under a shell that ignores SIGHUP (as `make` does) and writes the watch's exit code.
        command = f"sh -c \"trap '' HUP; {_watch_command(port)}; echo \\$? > {exit_file}\""
        _watch_in_tmux(tmux, command, (100, 30))
        pid = only_pid(f"^{_watch_command(port)}$")
        if hang_up == "SIGHUP":
            os.kill(pid, signal.SIGHUP)
        else:
            subprocess.run([*tmux, "kill-session", "-t", "w"], check=True)
        assert wait_for(lambda: exit_file.exists() and exit_file.read_text().strip() != ""), (
            f"cxmon watch (pid {pid}) did not end"
        )
        assert exit_file.read_text().strip() == "0"
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        daemon.terminate()
        daemon.wait(30)
