"""Hostile call-record files through the real `cxmon import records` command: bad rows are errors at
their line, the good rows around them are stored, and the import finishes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

HEADER = (
    b"vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,"
    b"q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server\n"
)


def row(call: int, queue: bytes = b"PS", q_start: bytes = b"9:00:05") -> bytes:
    return b"AA1,%d,7,0,%s,2010-08-01,9:00:00,9:00:05,5,%s,9:00:30,25,AGENT,9:00:30,9:03:30,180,DANA\n" % (
        call,
        queue,
        q_start,
    )


def import_records(tmp_path: Path, body: bytes) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `cxmon import records` on HEADER + body; return the run and the stored call ids."""
    csv_path = tmp_path / "calls.csv"
    csv_path.write_bytes(HEADER + body)
    db = tmp_path / "bank.db"
    res = subprocess.run(
        [sys.executable, "-m", "cxmon", "import", "records", str(csv_path), "--preset", "anonymous-bank",
         "--db", str(db), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    calls: list[str] = []
    if db.exists():
        with sqlite3.connect(db) as conn:
            calls = [
                r[0].rsplit("/", 1)[-1]
                for r in conn.execute(
                    "SELECT DISTINCT contact_id FROM events WHERE kind = 'arrived' ORDER BY 1"
                )
            ]
    return res, calls


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (row(2).replace(b"DANA", b"D" * 200_000), "field larger than field limit"),
        (b'AA1,2,7,0,"PS,2010-08-01,9:00:00\n', "quoted field"),
        (row(2, q_start=b"25:61:61"), "not a time of day: '25:61:61'"),
        (row(2, queue=b"P\x00S"), "NUL byte"),
        (row(2, queue=b"P\xff\xfeS"), "not UTF-8"),
    ],
    ids=["field-over-131072-bytes", "unterminated-quote", "time-25:61:61", "nul-in-queue", "invalid-utf8"],
)
def test_a_bad_row_is_an_error_at_its_line_and_the_rows_around_it_are_stored(
    tmp_path: Path, bad: bytes, why: str
) -> None:
    """The bad row (line 3) is reported with its line and reason; rows 1, 3 and 4 are stored; the
    import exits 3 (whole file read, lines rejected) and says the rejected row is not stored."""
    res, calls = import_records(tmp_path, row(1) + bad + row(3) + row(4))
    assert res.returncode == 3, res.stderr
    assert "1 line was rejected" in res.stderr
    assert calls == ["1", "3", "4"]
    assert "1 error," in res.stderr
    [report] = [line for line in res.stderr.splitlines() if "calls.csv:3" in line]
    assert why in report
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (row(2).replace(b",9:00:30,25,", b",abc,25,", 1), "column q_exit: not a time of day: 'abc'"),
        (row(2, q_start=b"9:00"), "column q_start: not a time of day: '9:00'"),
        (row(2).replace(b"2010-08-01", b"2010-02-30"), "column date: not a date (%Y-%m-%d): '2010-02-30'"),
    ],
    ids=["time-abc", "time-without-seconds", "date-30-february"],
)
def test_a_time_or_date_that_cannot_be_read_is_reported_with_its_column_and_value(
    tmp_path: Path, bad: bytes, why: str
) -> None:
    """A time or date the row's format cannot give is reported at its line naming the column and
    the value (before, "invalid literal for int() with base 10: 'abc'" or "day is out of range for
    month": no column, and for the date no value either); the rows around it are stored."""
    res, calls = import_records(tmp_path, row(1) + bad + row(3))
    assert res.returncode == 3, res.stderr
    assert calls == ["1", "3"]
    [report] = [line for line in res.stderr.splitlines() if "calls.csv:3" in line]
    assert why in report
