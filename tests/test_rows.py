"""The event row: one definition of a ContactEvent as a tuple, its sentinels and its SQL."""

from __future__ import annotations

import dataclasses
import inspect
import marshal
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon.events import ContactEvent, EventKind
from cxmon.rows import (
    FIELDS,
    NO_NUMBER,
    NO_TEXT,
    OPTIONAL_NUMBER,
    OPTIONAL_TEXT,
    decode_rows,
    encode_rows,
    event_from_columns,
    row_maker,
    row_of,
)
from cxmon.store_schema import INSERT_EVENT, MIGRATIONS, SELECT_EVENTS, SELECT_ROWS
from cxmon.store_writer import Frame, WriterProcess

TEXT = st.text(max_size=8)
NUMBER = st.floats(min_value=0, max_value=1e6, allow_nan=False)
EVENTS = st.builds(
    ContactEvent,
    ts=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    kind=st.sampled_from(EventKind),
    contact_id=TEXT,
    channel=TEXT,
    queue=TEXT,
    source=TEXT,
    customer_id=st.none() | TEXT,
    wait=st.none() | NUMBER,
    duration=st.none() | NUMBER,
    reason=st.none() | TEXT,
    score=st.none() | NUMBER,
    target=st.none() | TEXT,
    agents_staffed=st.none() | st.integers(0, 10_000),
    agents_available=st.none() | st.integers(0, 10_000),
    contacts_waiting=st.none() | st.integers(0, 10_000),
)


def test_fields_are_the_events_fields() -> None:
    """The row holds every ContactEvent field once, optional ones with a sentinel of their kind."""
    assert sorted(FIELDS) == sorted(f.name for f in dataclasses.fields(ContactEvent))
    optional = {FIELDS[i] for i in (*OPTIONAL_TEXT, *OPTIONAL_NUMBER)}
    assert optional == {f.name for f in dataclasses.fields(ContactEvent) if f.default is None}
    assert {FIELDS[i] for i in OPTIONAL_NUMBER} == {
        "wait",
        "duration",
        "score",
        "agents_staffed",
        "agents_available",
        "contacts_waiting",
    }


@given(st.lists(EVENTS, max_size=20))
def test_rows_round_trip_to_the_same_events(events: list[ContactEvent]) -> None:
    """decode(encode(events)) gives the events back, None where they had None."""
    assert decode_rows(encode_rows(events, "")) == events


@given(EVENTS)
def test_row_of_and_row_maker_agree(ev: ContactEvent) -> None:
    """The aggregator's row_of and the readers' row_maker build the same row for an event."""
    make = row_maker("")
    assert row_of(ev) == make(
        ev.ts,
        ev.kind,
        ev.contact_id,
        ev.channel,
        ev.queue,
        ev.source,
        ev.customer_id,
        ev.wait,
        ev.duration,
        ev.reason,
        ev.score,
        ev.target,
        ev.agents_staffed,
        ev.agents_available,
        ev.contacts_waiting,
    )


@pytest.mark.pure_python
def test_row_maker_takes_contact_events_arguments() -> None:
    """row_maker's function takes ContactEvent's arguments (names, order, defaults; ``source_`` for
    ``source``), so a parser's ``make_event`` can be either."""
    event = list(inspect.signature(ContactEvent.__init__).parameters.values())[1:]
    maker = list(inspect.signature(row_maker("")).parameters.values())
    assert [(p.name, p.kind, p.default) for p in event] == [
        ("source" if p.name == "source_" else p.name, p.kind, p.default) for p in maker
    ]


def test_row_maker_fills_in_the_source_and_the_sentinels() -> None:
    """An event made without a source takes the reader's; absent fields are their sentinels."""
    row = row_maker("feed")(1.0, EventKind.ARRIVED, "c1", "voice", "q")
    t, n = NO_TEXT, NO_NUMBER
    assert row == (1.0, "arrived", "feed", "c1", "voice", "q", t, n, n, t, n, t, n, n, n)


@settings(max_examples=50, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=20))
def test_sql_stores_sentinels_as_null_and_reads_them_back(events: list[ContactEvent]) -> None:
    """Rows inserted with INSERT_EVENT hold NULL for None; SELECT_ROWS reads the same rows back,
    and SELECT_EVENTS with event_from_columns the same events."""
    conn = sqlite3.connect(":memory:")
    conn.executescript("".join(MIGRATIONS))
    rows = encode_rows(events, "")
    conn.executemany(INSERT_EVENT, rows)
    nulls = conn.execute("SELECT count(*) FROM events WHERE wait IS NULL").fetchone()[0]
    assert nulls == sum(ev.wait is None for ev in events)
    # SQLite keeps ids in insertion order: order by id to compare with the input order
    by_id = SELECT_ROWS.replace("ORDER BY ts, id", "ORDER BY id")
    assert [tuple(r) for r in conn.execute(by_id, (-1, 1e12))] == rows
    by_id = SELECT_EVENTS.replace("ORDER BY ts, id", "ORDER BY id")
    assert [event_from_columns(r) for r in conn.execute(by_id, (-1, 1e12))] == events


def test_writer_process_commits_a_frame_and_reports_a_failed_one(tmp_path: Path) -> None:
    """`python -m cxmon.store_writer DB` commits each frame in one transaction and answers "ok";
    a frame it cannot commit is rolled back whole and answered with the error."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("".join(MIGRATIONS))
    rows = encode_rows(
        [ContactEvent(float(i), EventKind.ARRIVED, f"c{i}", "voice", "q") for i in range(5)], "s"
    )
    writer = WriterProcess(str(db))
    try:
        assert writer.exchange(([marshal.dumps(rows[:2])], rows[2:], [], [], [], False)) == b"ok\n"
        bad: Frame = ([], rows, [], [("not", "a", "transition")], [], False)
        assert writer.exchange(bad).startswith(b"error ")
    finally:
        writer.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (5,)


@settings(max_examples=10, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=30))
def test_writer_process_stores_events_the_standard_library_reads_back(events: list[ContactEvent]) -> None:
    """The writer process (apsw, its own SQLite) writes a database that sqlite3, which the rest of
    cxmon reads with, reads back as the same events: NULL for None, text, reals and integers."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.db"
        with sqlite3.connect(db) as conn:
            conn.executescript("".join(MIGRATIONS))
        rows = encode_rows(events, "")
        writer = WriterProcess(str(db))
        try:
            half = len(rows) // 2
            assert writer.exchange(([marshal.dumps(rows[:half])], rows[half:], [], [], [], True)) == b"ok\n"
        finally:
            writer.close()
        assert writer.returncode == 0
        with sqlite3.connect(db) as conn:
            by_id = SELECT_EVENTS.replace("ORDER BY ts, id", "ORDER BY id")
            assert [event_from_columns(r) for r in conn.execute(by_id, (-1, 1e12))] == events
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_replay_reads_a_database_of_the_previous_schema(tmp_path: Path) -> None:
    """Replay opens history read-only, so a database written before events had contacts_waiting
    (schema 2) is not migrated: its events are still read, the missing field as None."""
    from cxmon.replay.source import ReplaySource

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("".join(MIGRATIONS[:2]))
        conn.execute(
            "INSERT INTO events (ts, kind, source, contact_id, channel, queue, agents_staffed) "
            "VALUES (10.0, 'staffing', 's', '', 'voice', 'q', 4)"
        )
    source = ReplaySource(db, 0.0, 100.0, speed=None)
    batches = [batch async for batch in source._rows()]
    assert batches == [
        [ContactEvent(10.0, EventKind.STAFFING, "", "voice", "q", "s", agents_staffed=4)],
        [ContactEvent(100.0, EventKind.HEARTBEAT, "", "", "", "replay")],  # the range's end
    ]


async def test_replay_reads_a_customer_path_from_a_database_of_the_previous_schema(tmp_path: Path) -> None:
    """The replayed customer path reads a schema-2 database (read-only, not migrated) too."""
    from cxmon.replay.source import customer_path

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("".join(MIGRATIONS[:2]))
        conn.execute(
            "INSERT INTO events (ts, kind, source, contact_id, channel, queue, customer_id) "
            "VALUES (10.0, 'arrived', 's', 'c1', 'voice', 'q', '+442071838750')"
        )
    path = await customer_path(db, "+442071838750", 100.0)
    assert path == [ContactEvent(10.0, EventKind.ARRIVED, "c1", "voice", "q", "s", "+442071838750")]
