"""SIGHUP to a daemon whose output is not a terminal: it stops cleanly and keeps logging as it does."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.test_source_lock import CONFIG, ROOT, make_log, wait_for_holder


def test_serve_logging_to_a_file_keeps_its_shutdown_lines_after_sighup(tmp_path: Path) -> None:
    """`cxmon serve` with its output going to a file (a service manager's journal, a redirect) that
    gets SIGHUP stops with exit 0 and still writes its shutdown lines there: only a terminal is let
    go on a hang-up, not a log."""
    qlog = tmp_path / "queue_log"
    qlog.write_bytes(make_log(50, 3))
    config = tmp_path / "cxmon.toml"
    config.write_text(CONFIG.replace("PATH", str(qlog)))
    db = tmp_path / "h.db"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "cxmon", "serve", "--config", str(config), "--db", str(db)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
        try:
            wait_for_holder(db, "pbx", serve)
            serve.send_signal(signal.SIGHUP)
            assert serve.wait(timeout=60) == 0
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
    assert "source pbx: " in log.read_text()
