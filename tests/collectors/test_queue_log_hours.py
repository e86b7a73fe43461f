"""Opening hours of a queue_log collector: parsing, checking with `cxmon check`, and when a period began."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.queue_log.hours import parse_hours
from tests.helpers import REPO

UTC = dt.UTC


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_weekday_hours_open_and_closed() -> None:
    """mon-fri 08:00-18:00: open on Wednesday at 12:00 since 08:00, closed at 18:00 and on Saturday."""
    hours, problems = parse_hours(["mon-fri 08:00-18:00"], "UTC")
    assert problems == [] and hours is not None
    # 2026-12-02 is a Wednesday, 2026-12-05 a Saturday.
    assert hours.opened_at(at("2026-12-02T12:00")) == at("2026-12-02T08:00")
    assert hours.opened_at(at("2026-12-02T18:00")) is None
    assert hours.opened_at(at("2026-12-05T12:00")) is None


def test_a_span_past_midnight_began_the_day_before() -> None:
    """fri 22:00-06:00 covers Saturday 03:00, which opened on Friday at 22:00."""
    hours, _ = parse_hours(["fri 22:00-06:00"], "UTC")
    assert hours is not None
    assert hours.opened_at(at("2026-12-05T03:00")) == at("2026-12-04T22:00")
    assert hours.opened_at(at("2026-12-05T07:00")) is None


def test_hours_are_read_in_their_time_zone() -> None:
    """daily 09:00-17:00 in Europe/Madrid (UTC+1 in December) is open at 08:30 UTC, closed at 16:30 UTC."""
    hours, _ = parse_hours(["daily 09:00-17:00"], "Europe/Madrid")
    assert hours is not None
    assert hours.opened_at(at("2026-12-02T08:30")) == at("2026-12-02T08:00")
    assert hours.opened_at(at("2026-12-02T16:30")) is None


def test_no_hours_means_always_open() -> None:
    """Without spans the centre is always open (silence is always suspect)."""
    hours, _ = parse_hours([], "local")
    assert hours is not None and hours.opened_at(at("2026-12-05T03:00")) == float("-inf")


@pytest.mark.parametrize(
    ("spans", "zone", "problem"),
    [
        (["funday 08:00-18:00"], "UTC", "collectors[0].hours[0]: unknown day 'funday'"),
        (["mon 8-18"], "UTC", "collectors[0].hours[0]: expected HH:MM, got '8'"),
        (["mon 08:00-25:00"], "UTC", "collectors[0].hours[0]: not a time of day: '25:00'"),
        (["mon-fri 08:00-18:00"], "Mars/Olympus", "collectors[0].timezone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_cxmon_check_reports_bad_hours_with_their_key(
    tmp_path: Path, spans: list[str], zone: str, problem: str
) -> None:
    """`cxmon check` exits 2 and names the bad entry of ``hours`` or ``timezone`` by its key path."""
    config = (REPO / "config" / "default.toml").read_text()
    hours = ", ".join(f'"{s}"' for s in spans)
    table = (
        f'\n[[collectors]]\ntype = "queue_log"\nname = "pbx"\npath = "/var/log/asterisk/queue_log"\n'
        f'hours = [{hours}]\ntimezone = "{zone}"\n'
    )
    path = tmp_path / "cxmon.toml"
    path.write_text(_only_collector(config) + table)
    res = subprocess.run(
        [sys.executable, "-m", "cxmon", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert problem in res.stdout + res.stderr


def _only_collector(config: str) -> str:
    """The default config without its own collectors (the test's queue_log is then collectors[0])."""
    return config.split("[[collectors]]", 1)[0]
