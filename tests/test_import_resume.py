"""A file imported in goes (a stopped import run again, a log that grew) stores what one import of
it stores: the same transitions at the same seconds, on the bank's real month as a queue_log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, shared_data

BANK = REPO / "config" / "anonymous-bank.toml"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Anonymous Bank's August as the queue_log lines Asterisk would have written for it."""
    csv = shared_data("anonymous-bank", "calls-1999-08.csv")
    out = tmp_path_factory.mktemp("bank") / "queue_log"
    subprocess.run(
        [sys.executable, "bench/bank_queue_log.py", str(out), "--months", "1"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert csv.exists()
    return out.read_text().splitlines(keepends=True)


def imported(log: Path, db: Path) -> None:
    """`cxmon import queue_log` the file into ``db`` with the bank's journey, as a user runs it."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "cxmon", "import", "queue_log", str(log)),
            "--db",
            str(db),
            "--config",
            str(BANK),
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def transitions(db: Path) -> list[tuple[float, str, str, str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT ts, step, from_state, to_state, reason FROM transitions ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("cut", [12_345, 35_000])
def test_a_log_imported_in_two_goes_stores_the_transitions_of_one_import(
    month: list[str], tmp_path: Path, cut: int
) -> None:
    """The month imported, then imported again once the file has grown from ``cut`` lines to all
    of them (3 and 10 August), stores every transition one import stores, at the same second and
    for the same reason (before, a backfill's ticks fell a minute apart from where each import
    began: 176 and 127 transitions differed, 16 and 9 of them in the states' order)."""
    whole, log = tmp_path / "whole.log", tmp_path / "queue_log"
    whole.write_text("".join(month))
    imported(whole, tmp_path / "whole.db")
    log.write_text("".join(month[:cut]))
    imported(log, tmp_path / "split.db")
    with log.open("a") as fh:  # the same file grown, as Asterisk appends to it
        fh.write("".join(month[cut:]))
    imported(log, tmp_path / "split.db")
    one, two = transitions(tmp_path / "whole.db"), transitions(tmp_path / "split.db")
    assert len(one) > 1000
    assert two == one
