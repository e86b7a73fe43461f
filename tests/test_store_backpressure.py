"""A full disk: the store holds back the sources once its bound is reached, and loses nothing.

The "disk" is SQLite's own limit on the database's size (``PRAGMA max_page_count`` on the store's
connection), which makes every commit past it fail with the real SQLITE_FULL error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.base import Offset
from collectors.jsonl import JsonlFileSource
from cxmon.engine import Engine
from cxmon.errors import StoreError
from cxmon.events import ContactEvent, EventKind
from cxmon.exposition import render
from cxmon.store import Store
from tests.helpers import one_step_config, skip_unless_ci

ROOMY = 1_073_741_823
"""SQLite's largest max_page_count: room again."""


async def fill_disk(store: Store, spare_pages: int = 4) -> None:
    """Let the database grow only ``spare_pages`` pages past what it holds now."""
    async with store.db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await store.db.execute(f"PRAGMA max_page_count = {row[0] + spare_pages}")


async def make_room(store: Store) -> None:
    await store.db.execute(f"PRAGMA max_page_count = {ROOMY}")


async def until(cond: Callable[[], bool], turns: int = 1500) -> None:
    """Yield to the loop until ``cond()`` holds, for at most ``turns`` short sleeps."""
    for _ in range(turns):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def event(i: int) -> ContactEvent:
    # long ids fill pages quickly: the tiny "disk" is full after a few hundred rows
    return ContactEvent(
        ts=1_700_000_000.0 + i,
        kind=EventKind.ARRIVED,
        contact_id=f"contact-{i:06d}-" + "x" * 120,
        channel="voice",
        queue="q1",
    )


async def test_add_waits_while_the_disk_is_full_and_resumes_losing_nothing(tmp_path: Path) -> None:
    """With commits failing on a full disk, add() stops returning once max_pending rows wait (the
    rows in memory stay bounded); when the disk has room again every row and the last offset are
    committed, and the store says it is no longer holding back."""
    db = tmp_path / "h.db"
    batch, bound, batches = 200, 1000, 30
    async with Store(db, flush_interval=0.01, batch_size=batch, max_pending=bound) as store:
        await fill_disk(store)
        added = 0

        async def produce() -> None:
            nonlocal added
            for b in range(batches):
                evs = [event(b * batch + i) for i in range(batch)]
                await store.add(evs, source="s", offset=Offset("f", (b + 1) * batch))
                added += 1

        producer = asyncio.create_task(produce())
        await until(lambda: store.backpressure)
        seen = added
        # held: however long it waits, no more batches get in and memory stays bounded
        for _ in range(30):
            await asyncio.sleep(0.01)
            assert store.pending <= bound + batch
        assert added == seen < batches and not producer.done()
        status = store.status()
        assert status.backpressure and status.last_error is not None and "full" in status.last_error
        await make_room(store)
        await asyncio.wait_for(producer, 30)
        await store.flush()
        assert not store.status().backpressure and store.status().last_error is None
        assert await store.load_offset("s") == Offset("f", batches * batch)
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT contact_id FROM events ORDER BY ts")]
    assert ids == [event(i).contact_id for i in range(batches * batch)]


async def test_commit_failures_are_counted_until_one_succeeds(tmp_path: Path) -> None:
    """Below the bound nothing waits, but the failed commits are counted and the error kept; the
    first commit that succeeds clears both."""
    async with Store(tmp_path / "h.db", flush_interval=0.01, batch_size=50, max_pending=10_000) as store:
        await fill_disk(store, spare_pages=1)
        await store.add([event(i) for i in range(300)], source="s")
        await until(lambda: store.commit_failures >= 2)
        assert not store.backpressure and store.last_error is not None
        await make_room(store)
        # pending drops as a commit takes the rows; the error clears once that commit succeeds
        await until(lambda: store.last_error is None)
        assert store.commit_failures == 0 and store.pending == 0
        assert await store.count_events() == 300


def write_events(path: Path, first: int, n: int) -> None:
    now = time.time()
    with path.open("ab") as fh:
        for i in range(first, first + n):
            data = event(i).to_dict()
            data["ts"] = now
            fh.write(orjson.dumps(data) + b"\n")


async def test_engine_holds_a_tailed_file_while_the_disk_is_full(tmp_path: Path) -> None:
    """A followed file while the database is full: the engine stops taking batches, so the tailer
    stops reading (the engine's event count and the stored offset stay put), the snapshot and the
    /metrics exposition say the sources are held; with room again every line is stored, once."""
    cfg = one_step_config()
    cfg = dataclasses.replace(
        cfg,
        monitor=dataclasses.replace(cfg.monitor, tick=0.02, queue_size=1),
        store=dataclasses.replace(cfg.store, max_pending=1000, flush_interval=0.01, batch_size=200),
    )
    log = tmp_path / "events.jsonl"
    lines = 40_000
    write_events(log, 0, 0)
    source = JsonlFileSource("file", str(log), follow=True)
    engine = Engine(cfg, db_path=str(tmp_path / "h.db"), sources=[source])
    async with engine:
        runner = asyncio.create_task(engine.run())
        store = engine.store
        assert store is not None
        await until(lambda: engine.latest.version > 0)
        await fill_disk(store)
        write_events(log, 0, lines)
        await until(lambda: engine.latest.store is not None and engine.latest.store.backpressure)
        held = engine.latest
        assert held.store is not None and held.store.last_error is not None
        taken = held.events_total
        assert taken < lines
        # held for a while: no more events taken, the rows in memory bounded, the offset unmoved
        with sqlite3.connect(tmp_path / "h.db") as conn:
            stored_offset = conn.execute("SELECT position FROM source_offsets").fetchall()
        for _ in range(20):
            await asyncio.sleep(0.02)
            assert engine.latest.events_total == taken
            assert store.pending <= cfg.store.max_pending + 5000 + 100
        with sqlite3.connect(tmp_path / "h.db") as conn:
            assert conn.execute("SELECT position FROM source_offsets").fetchall() == stored_offset
        families = {f.name: f for f in text_string_to_metric_families(render(engine.latest, cfg).decode())}
        assert families["cxmon_store_backpressure"].samples[0].value == 1.0
        assert families["cxmon_store_commit_failures"].samples[0].value >= 1.0

        await make_room(store)
        size = log.stat().st_size
        await until(lambda: engine.latest.events_total == lines)
        await until(lambda: store.pending == 0 and not store.backpressure)
        await until(lambda: engine.latest.store is not None and not engine.latest.store.backpressure)
        families = {f.name: f for f in text_string_to_metric_families(render(engine.latest, cfg).decode())}
        assert families["cxmon_store_backpressure"].samples[0].value == 0.0
        engine.stop()
        await runner
    with sqlite3.connect(tmp_path / "h.db") as conn:
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT contact_id) FROM events").fetchone()
        (position,) = conn.execute("SELECT position FROM source_offsets").fetchone()
    assert (count, distinct) == (lines, lines)
    assert position == size


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (skips the test where mounting is not allowed)."""
    where.mkdir()
    mount = shutil.which("mount")
    proc = subprocess.run(
        [mount or "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount is None or proc.returncode != 0:
        skip_unless_ci(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path) -> Path:
    """Write a file that takes every free byte of ``fs``; return it (remove it to make room)."""
    filler = fs / "filler"
    # Unbuffered: a buffered file keeps what a write could not put on the disk, and closing it
    # fails again trying to write that.
    with filler.open("wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as fh:
        while True:  # the last few free bytes
            fh.write(b"\0" * 512)
    return filler


async def test_writer_process_on_a_full_filesystem_holds_and_resumes(tmp_path: Path) -> None:
    """A real full filesystem under the writer process (the backfill path): add() waits once the
    bound is reached, and after space is freed every row is committed once."""
    with tiny_filesystem(tmp_path / "disk") as fs:
        db = fs / "h.db"
        batch, bound, batches = 200, 1000, 20
        async with Store(
            db, flush_interval=0.01, batch_size=batch, max_pending=bound, writer="process"
        ) as store:
            await store.add([event(-1)], source="s")
            await store.flush()
            filler = fill(fs)
            added = 0

            async def produce() -> None:
                nonlocal added
                for b in range(batches):
                    evs = [event(b * batch + i) for i in range(batch)]
                    await store.add(evs, source="s", offset=Offset("f", (b + 1) * batch))
                    added += 1

            producer = asyncio.create_task(produce())
            await until(lambda: store.backpressure)
            seen = added
            for _ in range(30):
                await asyncio.sleep(0.01)
                assert store.pending <= bound + batch
            assert added == seen < batches and not producer.done()
            assert store.last_error is not None and "full" in store.last_error
            filler.unlink()
            await asyncio.wait_for(producer, 60)
        with sqlite3.connect(db) as conn:
            ids = [r[0] for r in conn.execute("SELECT contact_id FROM events ORDER BY ts")]
            (position,) = conn.execute("SELECT position FROM source_offsets").fetchone()
    assert ids == [event(i).contact_id for i in range(-1, batches * batch)]
    assert position == batches * batch


async def test_status_bar_says_the_sources_are_held() -> None:
    """The dashboard's status bar names the failing commit and that the sources are held, and says
    nothing about the history while commits work."""
    from textual.app import App, ComposeResult

    from cxmon.snapshot import EMPTY_SNAPSHOT, StoreStatus
    from cxmon.tui.widgets.status_bar import StatusBar

    class Bar(App[None]):
        def compose(self) -> ComposeResult:
            yield StatusBar()

    held = StoreStatus(
        pending_rows=51_000, backpressure=True, commit_failures=3, last_error="database or disk is full"
    )
    app = Bar()
    async with app.run_test(size=(200, 3)) as pilot:
        bar = app.query_one(StatusBar)
        bar.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, store=StoreStatus(0, False), version=1)
        await pilot.pause()
        assert "history" not in str(bar.render())
        bar.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, store=held, version=2)
        await pilot.pause()
        text = str(bar.render())
    assert "history: database or disk is full — sources held, 51,000 rows waiting" in text


async def test_shutdown_on_a_full_disk_ends_and_says_what_was_not_stored(tmp_path: Path) -> None:
    """Stopping the engine while the disk is full and the sources are held does not hang: the store
    makes one last attempt, then closing raises a StoreError (one line for the command, exit 2)
    that counts the rows not stored; the stored offset is still the last committed batch's."""
    cfg = one_step_config()
    cfg = dataclasses.replace(
        cfg,
        monitor=dataclasses.replace(cfg.monitor, tick=0.02, queue_size=1),
        store=dataclasses.replace(cfg.store, max_pending=1000, flush_interval=0.01, batch_size=200),
    )
    log = tmp_path / "events.jsonl"
    write_events(log, 0, 0)
    engine = Engine(
        cfg, db_path=str(tmp_path / "h.db"), sources=[JsonlFileSource("file", str(log), follow=True)]
    )
    with pytest.raises(StoreError, match=r"[\d,]+ rows could not be stored \(database or disk is full\)"):
        async with engine:
            runner = asyncio.create_task(engine.run())
            store = engine.store
            assert store is not None
            await until(lambda: engine.latest.version > 0)
            await fill_disk(store)
            write_events(log, 0, 20_000)
            await until(lambda: engine.latest.store is not None and engine.latest.store.backpressure)
            engine.stop()
            await runner
    with sqlite3.connect(tmp_path / "h.db") as conn:
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        offsets = conn.execute("SELECT position FROM source_offsets").fetchall()
    assert stored < 20_000
    # nothing past the stored rows was acknowledged: no offset, or one that ends on a stored line
    if offsets:
        with log.open("rb") as fh:
            assert fh.read(offsets[0][0]).count(b"\n") == stored
