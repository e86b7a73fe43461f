"""`cxmon run --headless` ends with a summary: events received, pot holes seen, where they were stored."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, SIM_START

POTHOLES = re.compile(r"^pot holes: (\d+)$", re.MULTILINE)


def headless(tmp_path: Path, duration: str, speed: str = "max") -> tuple[str, Path]:
    """Run `cxmon run --headless --speed max` (or ``speed``) on the seeded simulator; return stdout
    and the database."""
    text = (REPO / "config" / "default.toml").read_text()
    text = text.replace("seed = 7", f'seed = 7\nstart = "{SIM_START}"')
    text = text.replace('listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')
    config = tmp_path / "cxmon.toml"
    config.write_text(text)
    db = tmp_path / "run.db"
    res = subprocess.run(
        [
            *(sys.executable, "-m", "cxmon", "run", "--headless", "--speed", speed),
            *("--duration", duration, "--db", str(db), "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout, db


def test_a_short_run_counts_every_event_it_stored(tmp_path: Path) -> None:
    """After a 2-minute run the summary's event count equals the rows in the database (not 0)."""
    out, db = headless(tmp_path, "2m")
    with sqlite3.connect(db) as con:
        (stored,) = con.execute("SELECT count(*) FROM events").fetchone()
    assert stored > 0
    assert re.search(rf"^events: {stored} received \(sim {stored}\), 0 errors$", out, re.MULTILINE), out
    assert f"stored: {stored} events in {db.resolve()}" in out


def test_a_half_hour_run_lists_the_pot_holes_it_saw(tmp_path: Path) -> None:
    """30 simulated minutes take in the billing incident: the summary lists each stored pot hole."""
    out, db = headless(tmp_path, "30m")
    with sqlite3.connect(db) as con:
        holes = con.execute("SELECT step, reason FROM transitions WHERE to_state = 'pothole'").fetchall()
    assert holes  # the incident made at least one
    match = POTHOLES.search(out)
    assert match and int(match.group(1)) == len(holes), out
    for step, reason in holes:
        assert f"{step}: {reason}" in out
    assert "summary: 30m of engine time, 2026-01-05 08:00:00Z to 2026-01-05 08:30:00Z" in out


def test_a_paced_run_counts_its_engine_time_from_its_start(tmp_path: Path) -> None:
    """A paced run's summary counts from the moment it began, not from its first tick: at 600
    simulated seconds a second the ticks are a minute of engine time apart, and a 2-minute run
    said "1m of engine time" from 08:01."""
    out, _ = headless(tmp_path, "2m", speed="600")
    match = re.search(r"^summary: (\S+) of engine time, (\S+ \S+) to (\S+ \S+)$", out, re.MULTILINE)
    assert match, out
    assert match.group(2) == "2026-01-05 08:00:00Z", out
    # The last tick comes at or after the deadline (a loaded machine may make it late).
    assert match.group(3) >= "2026-01-05 08:02:00Z", out
