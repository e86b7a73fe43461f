"""The journey a history database was written with: recorded in it, and read back by stats and replay."""

from __future__ import annotations

import hashlib
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from cxmon.config import Config, validate
from cxmon.errors import ConfigError, StoreError
from cxmon.store_schema import SELECT_JOURNEY

RECORDED_TABLES = ("monitor", "forecast", "journey", "display")
"""The config tables that decide how stored events are grouped into series, judged and shown: the
steps and their match rules, channels, queues, thresholds, windows and the service-level formula,
the forecasts' options (they turn steps WATCH), and the clock the site reads (``[display]
timezone``: a replay shows the times its floor saw). Addresses, secrets (an AMI password, a webhook
secret) and file paths stay out of the database."""


def journey_text(config: Config) -> str:
    """Return the recorded part of ``config`` as TOML (the :data:`RECORDED_TABLES` as written)."""
    return tomli_w.dumps({name: config.raw[name] for name in RECORDED_TABLES if name in config.raw})


def digest(text: str) -> str:
    """Return the SHA-256 of a recorded journey's TOML text, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_from_text(text: str, where: str) -> Config:
    """Rebuild a :class:`Config` from a recorded journey (other tables take their defaults).

    Raises:
        ConfigError: the recorded text is not a valid journey (a database edited by hand).
    """
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: the recorded journey does not parse: {exc}"]) from None
    return validate(raw, where)


def config_from_db(path: str | Path) -> Config | None:
    """Return the journey the database at ``path`` was last written with, or None when it records
    none (a database written before cxmon recorded its journey).

    The database is opened read-only; nothing is created or migrated.

    Raises:
        StoreError: the file is not a readable SQLite database.
        ConfigError: the recorded journey is not valid.
    """
    where = f"{path} (recorded journey)"
    if not Path(path).is_file():
        # SQLite says only "unable to open database file" for a path that is not there.
        raise StoreError("no such history database", str(path))
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the history database: {exc}", str(path)) from exc
    try:
        try:
            row = conn.execute(SELECT_JOURNEY).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise StoreError(f"cannot read the history database: {exc}", str(path)) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the history database: {exc}", str(path)) from exc
    finally:
        conn.close()
    return None if row is None else config_from_text(row[1], where)
