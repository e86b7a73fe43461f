"""The history store: WAL, migrations, batched commits, offsets with their events, retention."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Literal, Unpack

import pytest

from collectors.base import Offset
from cxmon.errors import StoreError
from cxmon.events import ContactEvent, EventKind
from cxmon.rows import decode_rows, encode_rows
from cxmon.snapshot import Ack, State, Transition
from cxmon.store import Store
from cxmon.store_schema import MIGRATIONS
from tests.helpers import EventExtras


def ev(i: int, ts: float = 1000.0, **kw: Unpack[EventExtras]) -> ContactEvent:
    return ContactEvent(
        ts=ts + i, kind=EventKind.ARRIVED, contact_id=f"c{i}", channel="voice", queue="q", **kw
    )


async def test_database_is_wal_with_current_schema(tmp_path: Path) -> None:
    """A new database is in WAL mode and at the newest schema version."""
    async with Store(tmp_path / "h.db") as store:
        async with store.db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone()) == ("wal",)
        assert await store.schema_version() == len(MIGRATIONS)


async def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    """Opening an existing database keeps its rows and its schema version."""
    async with Store(tmp_path / "h.db") as store:
        await store.add([ev(1)], source="s")
    async with Store(tmp_path / "h.db") as store:
        assert await store.count_events() == 1
        assert await store.schema_version() == len(MIGRATIONS)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer cxmon is refused with a clear error, not corrupted."""
    path = tmp_path / "h.db"
    async with Store(path):
        pass
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        await Store(path).open()


async def test_events_are_committed_within_the_flush_interval(tmp_path: Path) -> None:
    """A small batch is committed by the background flusher without an explicit flush."""
    path = tmp_path / "h.db"
    async with Store(path, flush_interval=0.05) as store:
        await store.add([ev(i) for i in range(10)], source="s")
        for _ in range(200):
            if store.flushes:
                break
            await asyncio.sleep(0.01)
        con = sqlite3.connect(path)
        assert con.execute("SELECT count(*) FROM events").fetchone() == (10,)
        con.close()


async def test_offset_is_committed_with_its_events(tmp_path: Path) -> None:
    """A source's offset lands in the same transaction as the events before it."""
    path = tmp_path / "h.db"
    async with Store(path, flush_interval=60) as store:
        await store.add([ev(1), ev(2)], source="tail", offset=Offset("dev:ino:abc", 120))
        assert await store.load_offset("tail") is None  # nothing committed yet
        await store.flush()
        assert await store.load_offset("tail") == Offset("dev:ino:abc", 120)
        assert await store.count_events() == 2


async def test_writer_process_commits_events_offsets_and_figures_together(tmp_path: Path) -> None:
    """With writer="process" a flush commits events, offset, transitions and minute figures in the
    child, readable through the store at once; closing commits the rest and ends the child."""
    path = tmp_path / "h.db"
    t = Transition(ts=5.0, step="s", channel="voice", queue="q", from_state=State.OK,
                   to_state=State.WATCH, reason="r")  # fmt: skip
    async with Store(path, flush_interval=60, writer="process") as store:
        await store.add([ev(1, customer_id="u"), ev(2)], source="tail", offset=Offset("f", 120))
        store.add_transitions([t])
        store.add_minute(60.0, [("s", "voice", "q", State.OK, {"offered": 2.0})])
        await store.flush()
        assert await store.load_offset("tail") == Offset("f", 120)
        assert [e.contact_id for e in await store.customer_events("u")] == ["c1"]
        assert await store.transitions() == [t]
        await store.add([ev(3)], source="tail", offset=Offset("f", 180))
        proc = store._proc
    assert proc is not None and proc.returncode == 0
    async with Store(path) as store:
        assert await store.count_events() == 3 and await store.load_offset("tail") == Offset("f", 180)


async def test_close_flushes_everything(tmp_path: Path) -> None:
    """Closing commits whatever is pending: events, transitions, minute figures."""
    path = tmp_path / "h.db"
    store = await Store(path, flush_interval=60).open()
    await store.add([ev(i) for i in range(2500)], source="s")
    store.add_transitions([Transition(5.0, "help", "", "", State.OK, State.WATCH, "wait p90 40s > warn 30s")])
    await store.close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (2500,)
    assert con.execute("SELECT to_state, reason FROM transitions").fetchall() == [
        ("watch", "wait p90 40s > warn 30s")
    ]
    con.close()


@pytest.mark.parametrize("writer", ["thread", "process"])
@pytest.mark.parametrize("after", [1, 2, 5, 20])
async def test_a_close_cancelled_midway_still_commits_and_closes(
    tmp_path: Path, writer: Literal["thread", "process"], after: int
) -> None:
    """Cancelling the task that closes the store (Ctrl-C during an import's last commit and index
    build), at several points of the close, still commits everything and closes the connection,
    whose thread would otherwise hold the process open at exit; the task ends cancelled."""
    path = tmp_path / "h.db"
    threads_before = set(threading.enumerate())
    store = await Store(path, flush_interval=60, writer=writer).open()
    await store.add([ev(i) for i in range(2500)], source="s", offset=Offset("f", 2500))
    closing = asyncio.create_task(store.close())
    for _ in range(after):
        await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert store._db is None
    for thread in set(threading.enumerate()) - threads_before:
        if "connection_worker" in thread.name:
            thread.join(timeout=30)  # it ends once the connection is closed; it would never else
            assert not thread.is_alive()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (2500,)
    assert con.execute("SELECT position FROM source_offsets").fetchall() == [(2500,)]
    con.close()


async def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """An event read back equals the event written."""
    original = ContactEvent(
        ts=12.5,
        kind=EventKind.ANSWERED,
        contact_id="c",
        channel="chat",
        queue="q",
        source="s",
        customer_id="u1",
        wait=3.25,
        reason="r",
        target="t",
    )
    async with Store(tmp_path / "h.db") as store:
        await store.add([original])
        await store.flush()
        assert await store.events() == [original]
        assert await store.customer_events("u1") == [original]


async def test_round_trip_keeps_empty_zero_and_missing_values_apart(tmp_path: Path) -> None:
    """Empty strings, zeros and "0" come back as written, and missing fields as None."""
    edge = [
        ContactEvent(1.0, EventKind.ABANDONED, "c", "voice", "q", "s", "", 0.0, None, "0", 0.0, "", 0, 0),
        ContactEvent(2.0, EventKind.STAFFING, "", "voice", "q", "s", "0", None, 0.0, "", None, "0"),
        ContactEvent(3.0, EventKind.RESOLVED, "d", "voice", "q", "s", duration=7.0),
    ]
    async with Store(tmp_path / "h.db") as store:
        await store.add(edge)
        await store.flush()
        assert await store.events() == edge


async def test_rows_read_back_are_the_rows_of_the_events_written(tmp_path: Path) -> None:
    """iter_rows gives each stored event as encode_rows lays it out (NULLs as its sentinels), so
    the rows decode to the events read back, edge values included, oldest first, within range."""
    events = [
        ContactEvent(1.0, EventKind.ABANDONED, "c", "voice", "q", "s", "", 0.0, None, "0", 0.0, "", 0, 0),
        ContactEvent(2.0, EventKind.STAFFING, "", "voice", "q", "s", "0", None, 0.0, "", None, "0"),
        ContactEvent(3.0, EventKind.RESOLVED, "d", "voice", "q", "s", duration=7.0),
        ContactEvent(4.0, EventKind.ANSWERED, "e", "chat", "q", "s", "u1", 3.25, reason="r", target="t"),
    ]
    async with Store(tmp_path / "h.db") as store:
        await store.add(events[::-1])
        await store.flush()
        rows = [row async for batch in store.iter_rows(batch=3) for row in batch]
        assert rows == encode_rows(events, "")
        assert decode_rows(rows) == events
        within = [row async for batch in store.iter_rows(2.0, 4.0) for row in batch]
        assert decode_rows(within) == events[1:3]


async def test_retention_purges_old_rows_only(tmp_path: Path) -> None:
    """Purging by age deletes older rows and keeps newer ones."""
    async with Store(tmp_path / "h.db") as store:
        await store.add([ev(i, ts=0.0) for i in range(10)] + [ev(i, ts=1000.0) for i in range(5)])
        await store.flush()
        assert await store.purge(before=500.0) == 10
        assert await store.count_events() == 5


async def test_acknowledgements_are_stored(tmp_path: Path) -> None:
    """An acknowledgement is committed at once and read back."""
    ack = Ack(step="help", who="dana", note="on it", ts=10.0, until=100.0)
    async with Store(tmp_path / "h.db") as store:
        await store.add_ack(ack)
        assert await store.acks() == [ack]


def _indexes(path: Path) -> set[str]:
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    con.close()
    return names


async def test_backfill_writer_builds_the_customer_index_at_the_end(tmp_path: Path) -> None:
    """A process-writer store leaves the customer index out while it writes and builds it on close."""
    path = tmp_path / "h.db"
    store = await Store(path, writer="process").open()
    assert "events_customer" not in _indexes(path)
    await store.add([ev(i, customer_id=f"u{i % 3}") for i in range(30)], source="s")
    await store.close()
    assert "events_customer" in _indexes(path)
    async with Store(path) as again:
        assert len(await again.customer_events("u1")) == 10


async def test_backfill_writer_builds_the_customer_index_once_the_sources_finish(tmp_path: Path) -> None:
    """Told the sources have finished, the writer process builds the customer index after its next
    commit, before the store closes; rows added after that are in the index too."""
    path = tmp_path / "h.db"
    store = await Store(path, writer="process").open()
    await store.add([ev(i, customer_id=f"u{i % 3}") for i in range(30)], source="s")
    store.sources_finished()
    await store.flush()
    await store.add([ev(100, customer_id="u1")], source="s")
    await store.flush()
    assert "events_customer" in _indexes(path)  # built by the writer, not yet by close
    await store.close()
    async with Store(path) as again:
        assert len(await again.customer_events("u1")) == 11


async def test_a_missing_customer_index_is_rebuilt_on_open(tmp_path: Path) -> None:
    """If a backfill died before rebuilding the index, the next open puts it back."""
    path = tmp_path / "h.db"
    async with Store(path):
        pass
    con = sqlite3.connect(path)
    con.execute("DROP INDEX events_customer")
    con.commit()
    con.close()
    async with Store(path):
        pass
    assert "events_customer" in _indexes(path)
