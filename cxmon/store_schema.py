"""The history database's schema: migrations and the statements that write and read it.

Standard library only (with :mod:`cxmon.rows`): the writer process imports it and starts in a few
milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection

from cxmon.rows import FIELDS, sentinel, sql_columns, sql_insert_values, sql_select_row

# Each entry migrates the schema from version i to i + 1. Never edit a shipped entry: append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        queue TEXT NOT NULL,
        customer_id TEXT,
        wait REAL,
        duration REAL,
        reason TEXT,
        score REAL,
        target TEXT,
        agents_staffed INTEGER,
        agents_available INTEGER
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_customer ON events (customer_id, ts) WHERE customer_id IS NOT NULL;
    CREATE TABLE source_offsets (
        source TEXT PRIMARY KEY,
        file_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        step TEXT NOT NULL,
        channel TEXT NOT NULL,
        queue TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX transitions_ts ON transitions (ts);
    CREATE TABLE acks (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        step TEXT NOT NULL,
        who TEXT NOT NULL,
        note TEXT NOT NULL,
        until REAL NOT NULL
    );
    CREATE TABLE snapshots (
        minute REAL NOT NULL,
        step TEXT NOT NULL,
        channel TEXT NOT NULL,
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        figures TEXT NOT NULL,
        PRIMARY KEY (minute, step, channel, queue)
    );
    """,
    # 2: the journey (steps, thresholds, windows) the history was written with, so that stats and
    # replay judge it as it was judged live; a new row each time the journey changes.
    """
    CREATE TABLE journeys (
        id INTEGER PRIMARY KEY,
        recorded REAL NOT NULL,
        digest TEXT NOT NULL,
        toml TEXT NOT NULL
    );
    """,
    # 3: staffing events may carry the contacts waiting as a source counts them (Genesys Cloud's
    # queue observations).
    """
    ALTER TABLE events ADD COLUMN contacts_waiting INTEGER;
    """,
    # 4: the measure that drove a transition, so that an alert taken up after a restart carries the
    # labels it was sent with (cxmon.engine.warm).
    """
    ALTER TABLE transitions ADD COLUMN measure TEXT NOT NULL DEFAULT '';
    """,
)

INSERT_EVENT = f"INSERT INTO events ({sql_columns()}) {sql_insert_values()}"
"""Inserts one row (:mod:`cxmon.rows`), its sentinels stored as NULL."""
SELECT_ROWS = f"SELECT {sql_select_row()} FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id"
"""Reads events in a time range as rows, NULLs back to their sentinels."""


SELECT_NEWEST_START = "SELECT ts FROM events WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 1 OFFSET ?"
"""The time of the (n + 1)-th newest event of a range: the newest n come after it."""


def select_rows(columns: Collection[str]) -> str:
    """:data:`SELECT_ROWS` for an events table with these ``columns`` (an older schema's, read
    where it cannot be migrated: the optional fields it lacks read as empty)."""
    return f"SELECT {sql_select_row(columns)} FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id"


def select_source_rows(sources: int) -> str:
    """:data:`SELECT_ROWS` for events of ``sources`` named sources (one ``?`` each, after the range)."""
    marks = ",".join("?" * sources)
    where = f"ts >= ? AND ts < ? AND source IN ({marks})"
    return f"SELECT {sql_select_row()} FROM events WHERE {where} ORDER BY ts, id"


SELECT_EVENTS = f"SELECT {sql_columns()} FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id"
"""Reads events in a time range with their NULLs (:func:`cxmon.rows.event_from_columns`)."""
SELECT_CUSTOMER = f"SELECT {sql_columns()} FROM events WHERE customer_id = ? AND ts >= ? ORDER BY ts, id"


def select_customer(columns: Collection[str]) -> str:
    """:data:`SELECT_CUSTOMER` for an events table with these ``columns`` (an older schema's: the
    optional fields it lacks read as NULL)."""
    names = ", ".join(n if n in columns or sentinel(i) is None else "NULL" for i, n in enumerate(FIELDS))
    return f"SELECT {names} FROM events WHERE customer_id = ? AND ts >= ? ORDER BY ts, id"


UPSERT_OFFSET = (
    "INSERT INTO source_offsets (source, file_id, position, updated) VALUES (?,?,?,?) "
    "ON CONFLICT (source) DO UPDATE SET file_id = excluded.file_id, position = excluded.position, "
    "updated = excluded.updated"
)
INSERT_TRANSITION = (
    "INSERT INTO transitions (ts, step, channel, queue, from_state, to_state, reason, measure) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
UPSERT_SNAPSHOT = (
    "INSERT OR REPLACE INTO snapshots (minute, step, channel, queue, state, figures) VALUES (?,?,?,?,?,?)"
)
INSERT_JOURNEY = "INSERT INTO journeys (recorded, digest, toml) VALUES (?,?,?)"
SELECT_JOURNEY = "SELECT digest, toml FROM journeys ORDER BY id DESC LIMIT 1"
"""The journey the history was last written with."""

CUSTOMER_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_customer ON events (customer_id, ts) WHERE customer_id IS NOT NULL"
)
INDEX_BUILD = ("PRAGMA cache_size=-2000", "PRAGMA threads=2")
"""How the customer index is built after a backfill: SQLite's sorter then sorts cache-sized runs,
in helper threads, and merges them. With the 64 MB cache of the inserts it sorts everything in one
pass on one core instead, which takes over twice as long (1.6 s against 0.6 s for 1.6 million
rows)."""
