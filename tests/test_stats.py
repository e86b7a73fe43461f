"""`cxmon stats` reads the journey the database was written with; `--config` overrides it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cxmon.config import default_config_path, load, loads
from cxmon.recorded_config import config_from_db
from cxmon.store import Store
from cxmon.store_schema import MIGRATIONS
from tests.helpers import REPO
from tests.test_importer import _calls, write_queue_log

# Not the default journey: other step names, other targets, another service-level formula.
CUSTOM = """
[monitor]
windows = ["10m", "30m"]
service_level_formula = "incl_abandons"

[alerts]
webhook_url = "http://127.0.0.1:9/hook"
webhook_secret = "s3cret-not-for-the-db"

[journey]
channels = ["voice"]
queues = ["sales", "billing", "tech"]

[[journey.steps]]
name = "buy"
service_level_target = "45s"
match = [{ channel = "voice", queue = "sales" }]
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "10m"
  breach = "70%"
  direction = "below"

[[journey.steps]]
name = "care"
service_level_target = "15s"
match = [{ channel = "voice", queue = "billing" }, { channel = "voice", queue = "tech" }]
  [[journey.steps.thresholds]]
  measure = "abandon_rate"
  window = "30m"
  breach = "12%"
"""


def cxmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxmon", *args], capture_output=True, text=True, timeout=300, check=False
    )


def stats_json(*args: str) -> dict[str, Any]:
    proc = cxmon("stats", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def imported(tmp_path: Path) -> Path:
    """A database written by a real `cxmon import` with the custom journey."""
    log = tmp_path / "queue_log"
    write_queue_log(log, _calls(400, seed=11))
    cfg = tmp_path / "custom.toml"
    cfg.write_text(CUSTOM)
    db = tmp_path / "h.db"
    proc = cxmon("import", "queue_log", str(log), "--config", str(cfg), "--db", str(db), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return db


def test_stats_without_config_judges_by_the_journey_the_import_used(tmp_path: Path) -> None:
    """After `cxmon import --config custom.toml`, `cxmon stats --db DB` (no --config, the command the
    import suggests) gives exactly what `cxmon stats --db DB --config custom.toml` gives: the custom
    steps and formula, no queue merged into `other`."""
    db = imported(tmp_path)
    recorded = stats_json("--db", str(db))
    told = stats_json("--db", str(db), "--config", str(tmp_path / "custom.toml"))
    assert recorded == told
    assert recorded["service_level_formula"] == "incl_abandons"
    assert {(s["step"], s["queue"]) for s in recorded["series"]} == {
        ("buy", "sales"),
        ("care", "billing"),
        ("care", "tech"),
    }


def test_the_readme_lists_every_key_stats_json_prints(tmp_path: Path) -> None:
    """The README's `stats --json` shape names exactly the keys the command prints: at the top
    (the formula and the range too), in each series and in each transition."""
    readme = (REPO / "README.md").read_text()
    found = re.search(r"`stats --json` prints `([^`]*)`", readme)
    assert found is not None
    shape = found.group(1)
    series, transitions = (re.findall(r'"(\w+)"', inner) for inner in re.findall(r"\[([^\]]*)\]", shape))
    top = re.findall(r'"(\w+)"', re.sub(r"\[[^\]]*\]", "", shape))
    doc = stats_json("--db", str(imported(tmp_path)), "--from", "0")
    assert doc["series"] and doc["transitions"]
    assert top == list(doc)
    assert series == list(doc["series"][0])
    assert transitions == list(doc["transitions"][0])


def test_config_option_overrides_the_recorded_journey(tmp_path: Path) -> None:
    """`--config` wins over the recorded journey: the default config's steps and formula judge it."""
    db = imported(tmp_path)
    doc = stats_json("--db", str(db), "--config", str(default_config_path()))
    assert doc["service_level_formula"] == "excl_short_abandons"
    assert {s["step"] for s in doc["series"]} == {"order", "get_help"}


async def test_store_records_a_journey_once_and_again_when_it_changes(tmp_path: Path) -> None:
    """Opening the store with the same journey adds no row; a changed journey adds one, and
    load_config returns the newest."""
    db = tmp_path / "h.db"
    first = loads(CUSTOM)
    second = loads(CUSTOM.replace('"45s"', '"50s"'))
    for cfg in (first, first, second):
        async with Store(db, config=cfg):
            pass
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM journeys").fetchone() == (2,)
    async with Store(db) as store:
        latest = await store.load_config()
    assert latest is not None
    assert latest.steps == second.steps and latest.monitor == second.monitor
    assert latest.steps[0].service_level_target == 50.0


def test_recorded_journey_leaves_secrets_and_addresses_out(tmp_path: Path) -> None:
    """The database keeps the steps, thresholds and windows, not the webhook secret or URL."""
    db = imported(tmp_path)
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT toml FROM journeys").fetchone()
    assert "s3cret" not in text and "127.0.0.1" not in text
    recorded = config_from_db(db)
    assert recorded is not None
    assert recorded.steps == loads(CUSTOM).steps
    assert recorded.alerts.webhook_url is None


async def test_old_database_is_migrated_and_stats_says_it_uses_the_default(tmp_path: Path) -> None:
    """A database from before journeys were recorded (schema 1) keeps its events when migrated,
    and `cxmon stats` on it says on stderr that it judges by the default config."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            MIGRATIONS[0] + "CREATE TABLE schema_version (version INTEGER NOT NULL);"
            "INSERT INTO schema_version VALUES (1);"
            "INSERT INTO events (ts, kind, source, contact_id, channel, queue) "
            "VALUES (1700000000, 'arrived', 'x', 'c1', 'voice', 'billing');"
        )
    assert config_from_db(db) is None
    proc = cxmon("stats", "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "does not record the journey" in proc.stderr
    assert {s["step"] for s in json.loads(proc.stdout)["series"]} == {"get_help"}
    async with Store(db) as store:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.count_events() == 1
        assert await store.load_config() is None


async def test_default_config_round_trips_through_the_database(tmp_path: Path) -> None:
    """Every step, threshold and monitor setting of the default config comes back from the
    database as it went in."""
    cfg = load(default_config_path())
    db = tmp_path / "d.db"
    async with Store(db, config=cfg):
        pass
    back = config_from_db(db)
    assert back is not None
    assert (back.steps, back.monitor, back.channels, back.queues) == (
        cfg.steps,
        cfg.monitor,
        cfg.channels,
        cfg.queues,
    )


def test_a_time_without_a_zone_is_the_clock_time_the_dashboard_shows(tmp_path: Path) -> None:
    """`--from`/`--to` without a zone are read in the config's `[display] timezone` (Jerusalem, in
    summer IDT: 09:00 is 06:00 UTC), or in the machine's zone when the config sets none (the
    recorded journey here, under TZ=America/New_York); a time with a zone, or epoch seconds, mean
    what they say."""
    db = imported(tmp_path)
    bank_zone = tmp_path / "custom-jerusalem.toml"
    bank_zone.write_text(CUSTOM + '\n[display]\ntimezone = "Asia/Jerusalem"\n')
    doc = stats_json(
        "--db",
        str(db),
        "--config",
        str(bank_zone),
        "--from",
        "1999-08-02T09:00",
        "--to",
        "1999-08-02T17:30:00+03:00",
    )
    assert (doc["from"], doc["to"]) == ("1999-08-02T06:00:00Z", "1999-08-02T14:30:00Z")
    doc = stats_json(
        "--db", str(db), "--config", str(bank_zone), "--from", "1999-08-02T09:00Z", "--to", "933600000"
    )
    assert (doc["from"], doc["to"]) == ("1999-08-02T09:00:00Z", "1999-08-02T13:20:00Z")
    proc = subprocess.run(
        [sys.executable, "-m", "cxmon", "stats", "--json", "--db", str(db), "--from", "2026-01-05T09:00"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "TZ": "America/New_York"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["from"] == "2026-01-05T14:00:00Z"


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_a_time_that_does_not_parse_is_refused_before_the_database_is_read(
    option: str, tmp_path: Path
) -> None:
    """`--from yesterday` (or `--to yesterday`) exits 2 with one line naming that option and what it
    was given, even with a database that is not there."""
    proc = cxmon("stats", "--db", str(tmp_path / "none.db"), option, "yesterday")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"{option}: expected ISO 8601 or epoch seconds, got 'yesterday' "
        "(Invalid isoformat string: 'yesterday')\n"
    )


@pytest.mark.parametrize(("option", "given"), [("--from", "nan"), ("--to", "inf"), ("--from", "1e400")])
def test_a_number_no_date_can_be_given_for_is_refused_naming_its_option(
    option: str, given: str, tmp_path: Path
) -> None:
    """`--from nan`, `--to inf` or `--from 1e400` parse as numbers but are no time: exit 2 with one
    line naming the option, rather than a traceback from writing the range's dates."""
    db = imported(tmp_path)
    proc = cxmon("stats", "--json", "--db", str(db), option, given)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"{option}: expected ISO 8601 or epoch seconds, got {given!r}: not a time a date can be given for\n"
    )


def test_a_from_that_is_not_before_to_is_refused(tmp_path: Path) -> None:
    """`--from` after `--to` (the two swapped) exits 2 naming both, rather than empty figures and 0."""
    db = imported(tmp_path)
    proc = cxmon("stats", "--db", str(db), "--from", "1999-08-05T00:00Z", "--to", "1999-08-02T00:00Z")
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    assert (
        "--from 1999-08-05T00:00Z (1999-08-05T00:00:00Z) is not before --to 1999-08-02T00:00Z "
        "(1999-08-02T00:00:00Z): the range holds no time"
    ) in proc.stderr


def test_a_directory_given_as_the_database_is_named_as_one(tmp_path: Path) -> None:
    """`--db` naming a directory exits 2 saying it is a directory, not that no database exists."""
    proc = cxmon("stats", "--db", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == f"{tmp_path}: a directory, not a history database\n"
