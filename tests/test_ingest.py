"""ProcessSource: a source read in a child process gives exactly what it gives in-process."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectors.jsonl import JsonlFileSource
from collectors.simulator import SimulatorSource
from collectors.simulator.model import simulate_events
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.ingest import ProcessSource
from cxmon.rows import decode_rows, encode_rows
from tests.helpers import SIM_START_TS, sim_config, skip_unless_ci


def write_simulated(path: Path, seconds: float) -> int:
    """Write ``seconds`` of the simulator to ``path``; return how many events it wrote (its
    heartbeats, written too, are not events)."""
    config = sim_config(speed="max")
    source = SimulatorSource.from_config(config.collectors[0], config)
    n = 0
    with path.open("w") as fh:
        for ev in simulate_events(source.options, SIM_START_TS, SIM_START_TS + seconds, source="sim"):
            fh.write(json.dumps(ev.to_dict()) + "\n")
            n += ev.kind is not EventKind.HEARTBEAT
    return n


async def backfill(path: Path, db: Path, in_child: bool) -> Engine:
    source = JsonlFileSource("feed", str(path))
    engine = Engine(
        sim_config(speed="max"),
        db_path=str(db),
        sources=[ProcessSource(source) if in_child else source],
        clock="events",
        store_writer="process",
    )
    async with engine:
        await engine.run()
    return engine


def bench_queue_log() -> Any:
    """bench/queue_log.py as a module: its seeded generator writes a realistic queue_log."""
    from tests.helpers import REPO

    spec = importlib.util.spec_from_file_location("bench_queue_log", REPO / "bench" / "queue_log.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def count(db: Path, sql: str) -> int:
    """The one number a ``SELECT COUNT(*)`` query gives."""
    [(n,)] = table(db, sql)
    assert isinstance(n, int)
    return n


def test_rows_decode_back_to_the_same_events() -> None:
    """encode_rows → decode_rows is the identity, for empty, zero and missing optional fields alike."""
    events = [
        ContactEvent(1.5, EventKind.ARRIVED, "c1", "voice", "q1"),
        ContactEvent(2.0, EventKind.ANSWERED, "c1", "voice", "q1", "src", "cust", 0.0),
        ContactEvent(3.0, EventKind.RESOLVED, "c1", "voice", "q1", "", "", None, 0.0, "", None, ""),
        ContactEvent(4.0, EventKind.FEEDBACK, "c1", "survey", "q1", score=5.0, reason="csat", target="t2"),
        ContactEvent(5.0, EventKind.STAFFING, "", "voice", "q1", agents_staffed=0, agents_available=0),
        ContactEvent(6.0, EventKind.ABANDONED, "c2", "chat", "q2", wait=12.5, reason="hangup"),
    ]
    rows = encode_rows(events, "feed")
    back = decode_rows(rows)
    assert [e.source for e in back] == ["feed", "src", "feed", "feed", "feed", "feed"]
    assert back == [dataclasses.replace(ev, source=ev.source or "feed") for ev in events]


async def test_backfill_in_a_child_stores_and_judges_exactly_like_in_process(tmp_path: Path) -> None:
    """Same file, read in-process and in a child: the same events, transitions, minute figures and
    aggregator totals, with the offset stored."""
    path = tmp_path / "events.jsonl"
    n = write_simulated(path, 1800)
    here = await backfill(path, tmp_path / "here.db", in_child=False)
    child = await backfill(path, tmp_path / "child.db", in_child=True)
    assert child.health["feed"].events_total == here.health["feed"].events_total == n
    for sql in (
        "SELECT * FROM events ORDER BY id",
        "SELECT ts, step, channel, queue, from_state, to_state, reason FROM transitions ORDER BY id",
        "SELECT * FROM snapshots ORDER BY minute, step, channel, queue",
        "SELECT source, file_id, position FROM source_offsets",
    ):
        assert table(tmp_path / "child.db", sql) == table(tmp_path / "here.db", sql), sql
    assert table(tmp_path / "child.db", "SELECT position FROM source_offsets") == [(path.stat().st_size,)]
    assert count(tmp_path / "child.db", "SELECT COUNT(*) FROM transitions") > 0
    for key, series in here.aggregator.series.items():
        other = child.aggregator.series[key]
        assert other.totals == series.totals
        assert [w.total.c for w in other.windows] == [w.total.c for w in series.windows]
        assert [w.total.wait for w in other.windows] == [w.total.wait for w in series.windows]


async def test_bad_lines_in_the_child_are_reported_with_file_and_line(tmp_path: Path) -> None:
    """Errors cross from the child with their file:line; the good lines around them are stored."""
    path = tmp_path / "events.jsonl"
    good = [ContactEvent(1000.0 + i, EventKind.ARRIVED, f"c{i}", "voice", "billing") for i in range(3)]
    lines = [json.dumps(good[0].to_dict()), "{oops", json.dumps(good[1].to_dict()), "[]"]
    path.write_text("\n".join([*lines, json.dumps(good[2].to_dict())]) + "\n")
    engine = await backfill(path, tmp_path / "h.db", in_child=True)
    assert engine.health["feed"].errors_total == 2
    assert any(f"{path}:2: not JSON" in e for e in engine.errors)
    assert any(f"{path}:4: not a JSON object" in e for e in engine.errors)
    assert table(tmp_path / "h.db", "SELECT contact_id FROM events ORDER BY id") == [
        ("c0",),
        ("c1",),
        ("c2",),
    ]


async def test_a_second_run_resumes_after_what_the_first_stored(tmp_path: Path) -> None:
    """The child starts from the stored offset: appended lines are the only ones added."""
    path = tmp_path / "events.jsonl"
    write_simulated(path, 600)
    db = tmp_path / "h.db"
    first = await backfill(path, db, in_child=True)
    stored = count(db, "SELECT COUNT(*) FROM events")
    assert stored == first.health["feed"].events_total > 0
    again = await backfill(path, db, in_child=True)
    assert again.health["feed"].events_total == 0
    extra = ContactEvent(SIM_START_TS + 700, EventKind.ARRIVED, "late-1", "voice", "billing")
    with path.open("a") as fh:
        fh.write(json.dumps(extra.to_dict()) + "\n")
    third = await backfill(path, db, in_child=True)
    assert third.health["feed"].events_total == 1
    assert count(db, "SELECT COUNT(*) FROM events") == stored + 1


class StuckSink:
    """A sink that takes the first batch and never returns (an engine whose queue has no room)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        """Set once the first batch has come."""

    async def emit(self, events: object, offset: object = None) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def emit_rows(self, rows: object, offset: object, encoded: bytes) -> None:
        await self.emit(rows, offset)

    def error(self, where: str, msg: str) -> None:
        pass

    def set_up(self, up: bool) -> None:
        pass

    async def load_offset(self) -> None:
        return None


async def test_cancelling_the_reader_kills_its_child(tmp_path: Path) -> None:
    """A ProcessSource cancelled mid-file leaves no child process behind."""
    path = tmp_path / "events.jsonl"
    write_simulated(path, 3600)
    source = ProcessSource(JsonlFileSource("feed", str(path)))
    sink = StuckSink()
    task = asyncio.create_task(source.run(sink))
    await asyncio.wait_for(sink.started.wait(), 30)
    assert source.pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(source.pid, 0)


def cpu_and_state(pid: int) -> tuple[int, str]:
    """A process's CPU clock ticks so far and its state letter (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), fields[0]


async def test_cancelling_the_reader_while_its_pipe_is_full_ends_it(tmp_path: Path) -> None:
    """A ProcessSource cancelled once its child has filled the pipe and the relay's buffer (the engine
    behind: an import's Ctrl-C) ends and leaves no child behind: it does not wait for ever for an
    end of output that nobody reads."""
    from cxmon.importer import queue_log_source
    from tests.helpers import default_config

    log = tmp_path / "queue_log"
    bench_queue_log().generate(log, 100_000, seed=3)  # several times the pipe and the buffer
    source = ProcessSource(queue_log_source(default_config(), str(log)))
    sink = StuckSink()
    task = asyncio.create_task(source.run(sink))
    await asyncio.wait_for(sink.started.wait(), 60)
    assert source.pid is not None
    # Until the child is blocked on the full pipe: asleep, its CPU time standing still.
    seen: list[tuple[int, str]] = []
    while len(seen) < 10 or len(set(seen[-10:])) > 1 or seen[-1][1] != "S":
        seen.append(cpu_and_state(source.pid))
        await asyncio.sleep(0.1)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=60)
    assert done, "the cancelled reader is still waiting for its child's output to end"
    assert task.cancelled()
    with pytest.raises(ProcessLookupError):
        os.kill(source.pid, 0)


def test_a_source_that_cannot_be_pickled_stays_in_process() -> None:
    """wrap() falls back to the source itself when it cannot cross to a child."""

    class Local:
        name = "x"
        type = "local"

        async def run(self, sink: object) -> None:
            pass

    local = Local()
    assert ProcessSource.wrap(local) is local
    wrapped = ProcessSource.wrap(JsonlFileSource("feed", "/nonexistent"))
    assert isinstance(wrapped, ProcessSource) and wrapped.name == "feed" and wrapped.type == "jsonl"


def test_row_maker_builds_the_row_of_the_event_it_stands_for() -> None:
    """row_maker(name)(*args, **kwargs) is the row of ContactEvent(*args, **kwargs): it reads back as
    that event (with ``name`` for a missing source), and its sentinels are the store's."""
    from cxmon.rows import row_maker

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((1.0, EventKind.ARRIVED, "c1", "voice", "q1"), {}),
        ((2.0, EventKind.ANSWERED, "c1", "voice", "q1", "src", "cust", 0.0), {}),
        ((3.0, EventKind.RESOLVED, "c1", "voice", "q1", "", "", None, 0.0, "", None, ""), {}),
        (
            (4.0, EventKind.TRANSFERRED, "c1", "voice", "q1", "x"),
            {"target": "t@ctx", "reason": "blindtransfer"},
        ),
        ((5.0, EventKind.STAFFING, "", "voice", "q1", "x", None, None, None, None, None, None, 0, 3), {}),
        ((6.0, EventKind.FEEDBACK, "c2", "survey", "q2"), {"score": 4.0, "customer_id": "u9"}),
    ]
    make = row_maker("feed")
    # The same argument lists go to both: ContactEvent taken as row_maker's function is, with any.
    event_of: Callable[..., ContactEvent] = ContactEvent
    for args, kwargs in calls:
        event = event_of(*args, **kwargs)
        assert decode_rows([make(*args, **kwargs)]) == [
            dataclasses.replace(event, source=event.source or "feed")
        ]
    assert make(1.0, EventKind.ARRIVED, "c1", "voice", "q1") == (
        1.0, "arrived", "feed", "c1", "voice", "q1", 0, "", "", 0, "", 0, "", "", ""
    )  # fmt: skip


async def test_queue_log_import_in_a_child_stores_what_an_in_process_run_stores(tmp_path: Path) -> None:
    """`cxmon import queue_log` (a child builds store rows) stores exactly the events, offsets and
    transitions an engine with the source in-process stores: on a generated week of a busy PBX
    (the benchmark's generator) and on the real samples."""
    from cxmon.importer import queue_log_source, run_import
    from tests.helpers import default_config, shared_data

    config = default_config()

    async def compare(log: Path) -> None:
        child_db, here_db = tmp_path / f"{log.name}.child.db", tmp_path / f"{log.name}.here.db"
        await run_import(config, queue_log_source(config, str(log)), str(child_db))
        source = queue_log_source(config, str(log))
        engine = Engine(config, db_path=str(here_db), sources=[source], clock="events")
        async with engine:
            await engine.run()
        for sql in (
            "SELECT * FROM events ORDER BY id",
            "SELECT source, file_id, position FROM source_offsets",
            "SELECT ts, step, channel, queue, from_state, to_state, reason FROM transitions ORDER BY id",
        ):
            assert table(child_db, sql) == table(here_db, sql), (log.name, sql)

    generated = tmp_path / "generated_queue_log"
    bench_queue_log().generate(generated, 20_000, seed=5)
    await compare(generated)
    assert count(tmp_path / "generated_queue_log.child.db", "SELECT COUNT(*) FROM events") > 10_000
    assert count(tmp_path / "generated_queue_log.child.db", "SELECT COUNT(*) FROM transitions") > 0
    for log in sorted(shared_data("asterisk").glob("*queue_log*")):
        await compare(log)


@pytest.mark.parametrize(
    ("signame", "times", "code"), [("SIGINT", 1, 130), ("SIGTERM", 1, 143), ("SIGINT", 2, 130)]
)
def test_a_stopped_import_stores_what_was_read_and_a_rerun_finishes_it(
    tmp_path: Path, signame: str, times: int, code: int
) -> None:
    """Ctrl-C or SIGTERM to the whole process group mid-import: cxmon exits 130/143 having committed
    what it had, its reader and writer processes are gone, and importing again stores exactly the
    events one uninterrupted import stores. Ctrl-C twice (the second while it stops) leaves at once,
    saying so, with the history as whole: what was not committed is read again."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import REPO

    log = tmp_path / "queue_log"
    bench_queue_log().generate(log, 400_000, seed=9)

    def cmd(db: Path) -> list[str]:
        # The child restores Python's own SIGINT handling (a test runner's child may ignore it).
        boot = "import os, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        boot += "os.execv(sys.executable, [sys.executable, '-m', 'cxmon', *sys.argv[1:]])"
        return [sys.executable, "-c", boot, "import", "queue_log", str(log), "--db", str(db), "--quiet"]

    db = tmp_path / "interrupted.db"
    proc = subprocess.Popen(cmd(db), cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if db.exists() and count(db, "SELECT COUNT(*) FROM source_offsets"):
                break  # a first batch is committed: interrupt now
        except sqlite3.OperationalError:
            pass  # the file is there but its tables are not yet
        time.sleep(0.05)
    assert proc.poll() is None, "the import ended before it could be stopped"
    os.killpg(proc.pid, getattr(signal, signame))
    if times == 2:
        time.sleep(0.05)  # the first stop commits what was read, which takes longer than this
        os.killpg(proc.pid, getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    interrupted = count(db, "SELECT COUNT(*) FROM events")
    assert proc.returncode == code, err
    assert "Traceback" not in err and "import the file again" in err
    assert ("stopped at once" in err) == (times == 2), err
    # No process of the import's group is left (stopped at once, the writer may first finish the
    # commit it was in, and the reader its last write).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)

    subprocess.run(cmd(db), cwd=REPO, check=True, capture_output=True)
    whole = tmp_path / "whole.db"
    subprocess.run(cmd(whole), cwd=REPO, check=True, capture_output=True)
    sql = (
        "SELECT ts, kind, contact_id, queue, wait, duration FROM events ORDER BY ts, kind, contact_id, queue"
    )
    assert 0 < interrupted < count(whole, "SELECT COUNT(*) FROM events")
    assert table(db, sql) == table(whole, sql)


def test_the_pipe_from_the_reader_holds_a_whole_batch() -> None:
    """The reader's stdout pipe is widened to 1 MiB (or the system's limit), so a batch of a few
    hundred KiB fits and the reader parses on while the engine works through the last one."""
    import fcntl

    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        skip_unless_ci("pipe sizes can only be set on Linux")
    from cxmon.ingest import _PIPE_SIZE, _widen_pipe

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    r, w = os.pipe()
    try:
        before = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        _widen_pipe(w)
        after = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(r)
        os.close(w)
    assert before < after == min(_PIPE_SIZE, limit)
