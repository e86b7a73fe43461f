"""Fault injection on a tailed queue_log: over-long lines, lines from the future, rotation under load."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from collectors.queue_log import QueueLogSource
from collectors.queue_log.parser import QueueLogParser
from collectors.queue_log.tailer import IDLE, FileTailer, Lines, Skipped, Switched
from cxmon.events import EventKind
from tests.collectors.test_queue_log import MemorySink
from tests.collectors.test_queue_log_tail import append, arrivals, enter, source

MIB = 1024 * 1024


async def until(cond: Callable[[], bool], what: str, tries: int = 4000) -> None:
    """Wait (cooperatively) for ``cond``; fail with ``what`` if it never comes."""
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def now_enter(i: int) -> str:
    """An ENTERQUEUE stamped with the wall clock (a live tail's line)."""
    return enter(i, ts=int(time.time()) - i)


# ---------------------------------------------------------------------- over-long lines


def test_a_line_over_the_limit_is_skipped_whole_by_the_tailer(tmp_path: Path) -> None:
    """A 3 MiB line between two good ones is one Skipped step covering exactly its bytes; reading goes on."""
    path = tmp_path / "queue_log"
    long_line = b"1000|c9|sales|NONE|ENTERQUEUE||" + b"7" * (3 * MIB) + b"|1\n"
    path.write_bytes(enter(1).encode() + long_line + enter(2).encode())
    t = FileTailer(path)
    t.open()
    steps = []
    for _ in range(200):
        step = t.step()
        if step == IDLE:
            break
        if not isinstance(step, str):
            steps.append(step)
    first = len(enter(1))
    assert isinstance(steps[0], Lines), steps
    file_id = steps[0].file_id
    assert steps == [
        Lines(enter(1).encode(), 0, first, file_id),
        Skipped(first, first + len(long_line), file_id),
        Lines(enter(2).encode(), first + len(long_line), path.stat().st_size, file_id),
    ]


@pytest.mark.parametrize("size", [MIB + 1, 3 * MIB + 17])
async def test_a_line_over_1_mib_is_reported_once_at_its_line_and_numbering_stays_right(
    tmp_path: Path, size: int
) -> None:
    """An over-long ENTERQUEUE is one error at its own line, makes no event, and a bad line after it is
    reported at its true line number."""
    path = tmp_path / "queue_log"
    long_line = "1000|c9|sales|NONE|ENTERQUEUE||" + "7" * size + "|1\n"
    path.write_text(enter(1) + long_line + enter(2) + "oops\n" + enter(3))
    sink = MemorySink()
    await source(path, follow=False).run(sink)
    assert arrivals(sink) == ["call1", "call2", "call3"]
    assert [w for w, _ in sink.errors] == [f"{path}:2", f"{path}:4"]
    assert "longer than" in sink.errors[0][1]
    assert max(len(e.customer_id or "") for e in sink.events) < 100


async def test_a_line_over_1_mib_written_slowly_during_a_live_tail_is_skipped(tmp_path: Path) -> None:
    """A live tail seeing a long line arrive in pieces skips it whole and reads the lines after it."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: arrivals(sink) == ["call1"], "the first line")
    append(path, "1000|c9|sales|NONE|ENTERQUEUE||")
    for _ in range(5):
        append(path, "x" * (MIB // 2))
        await asyncio.sleep(0.02)
    append(path, "|1\n" + now_enter(2))
    await until(lambda: arrivals(sink) == ["call1", "call2"], "the line after the long one")
    await stop(task)
    assert [w for w, _ in sink.errors] == [f"{path}:2"]


# ---------------------------------------------------------------------- lines from the future


def test_a_stamp_far_ahead_of_the_clock_is_an_error_and_moves_nothing() -> None:
    """With the clock at 1000 and max_skew 300, a line at 1200 is taken, one at 9999999999 is refused."""
    parser = QueueLogParser(clock=lambda: 1000.0, max_skew=300.0)
    errors: list[tuple[int, str]] = []
    parser.on_error = lambda lineno, why: errors.append((lineno, why))
    parser.feed(b"1200|c1|sales|NONE|ENTERQUEUE||1|1\n9999999999|c2|sales|NONE|ENTERQUEUE||2|1\n")
    assert [(e.contact_id, e.ts) for e in parser.out] == [("c1", 1200.0)]
    assert len(errors) == 1 and errors[0][0] == 2 and "ahead of the clock" in errors[0][1]


async def test_a_line_stamped_9999999999_in_a_live_tail_is_refused_with_file_and_line(tmp_path: Path) -> None:
    """During a live tail a line stamped 9999999999 is reported at path:line and makes no event."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: arrivals(sink) == ["call1"], "the first line")
    append(path, "9999999999|c2|sales|NONE|ENTERQUEUE||2|1\n" + now_enter(3))
    await until(lambda: arrivals(sink) == ["call1", "call3"], "the line after")
    await stop(task)
    assert max(e.ts for e in sink.events) < time.time() + 1
    assert [w for w, _ in sink.errors] == [f"{path}:2"]


async def test_an_import_refuses_a_stamp_from_the_future_too(tmp_path: Path) -> None:
    """Reading a 2023 log to its end (an import), a line stamped 9999999999 is refused at its line: no
    log holds lines from the future, whenever it is read."""
    path = tmp_path / "queue_log"
    path.write_text(
        enter(1, ts=1_700_000_000) + "9999999999|c2|sales|NONE|ENTERQUEUE||2|1\n" + enter(3, ts=1_700_000_000)
    )
    sink = MemorySink()
    await source(path, follow=False).run(sink)
    assert arrivals(sink) == ["call1", "call3"]
    assert [w for w, _ in sink.errors] == [f"{path}:2"] and "ahead of the clock" in sink.errors[0][1]


# ---------------------------------------------------------------------- rotation by rename


def test_rename_rotation_keeps_reading_the_old_file_the_writer_still_writes_to(tmp_path: Path) -> None:
    """After a rename the tailer stays on the old file while it was written within the grace: lines the
    writer adds there before reopening its log are read; then the new file is."""
    path = tmp_path / "queue_log"
    clock = [time.time()]
    t = FileTailer(path, grace=5.0, clock=lambda: clock[0])
    with open(path, "ab", buffering=0) as old:
        old.write(enter(1).encode())
        t.open()
        assert isinstance(t.step(), Lines)
        path.rename(tmp_path / "queue_log.1")
        path.write_text(enter(3))
        assert t.step() == IDLE  # the new file is there, but the old one was just written
        old.write(enter(2).encode())  # the writer has not reopened its log yet
        step = t.step()
        assert isinstance(step, Lines) and step.data == enter(2).encode()
    clock[0] = (tmp_path / "queue_log.1").stat().st_mtime + 5.0
    assert t.step() == Switched("rotated", 0)
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(3).encode()


class RotatingWriter(threading.Thread):
    """Writes ``n`` numbered ENTERQUEUE lines, rotating the log every ``every`` lines the way logrotate
    and Asterisk do it: ``rename`` (logrotate ``create``; Asterisk writes 100 more lines to the renamed
    file before it reopens its log), ``copytruncate``, or ``both`` in turn. Before each rotation it
    waits until the reader has read a line of the current file (rotations are a day apart), so the
    reader may lag behind within a file but never by a whole rotation."""

    def __init__(self, path: Path, n: int, every: int, how: str, read: Callable[[], int]) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.n = n
        self.every = every
        self.how = how
        self.read = read
        """How many lines the reader has read."""
        self.error: BaseException | None = None
        self.fd = -1
        self.rotations = 0

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _wait_for_reader(self, lines: int) -> None:
        for _ in range(3000):
            if self.read() >= lines:
                return
            time.sleep(0.005)
        raise TimeoutError(f"the reader never read {lines} lines")

    def _write(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        rotations = 0
        current = 0
        """The first line written to the file now at the path."""
        i = 0
        try:
            while i < self.n:
                if i and i // self.every > rotations:
                    self._wait_for_reader(current + 1)
                    i = current = self._rotate_at(i)
                    rotations += 1
                    continue
                os.write(self.fd, enter(i).encode())
                i += 1
                if i % 50 == 0:
                    time.sleep(0.001)
        finally:
            os.close(self.fd)

    def _rotate_at(self, i: int) -> int:
        old = self.path.with_name(self.path.name + ".1")
        if old.exists():
            old.rename(self.path.with_name(self.path.name + ".2"))
        how = self.how if self.how != "both" else ("rename", "copytruncate")[self.rotations % 2]
        self.rotations += 1
        if how == "copytruncate":
            shutil.copyfile(self.path, old)
            os.truncate(self.path, 0)
            return i
        self.path.rename(old)
        self.path.write_bytes(b"")  # logrotate "create"
        for _ in range(100):
            os.write(self.fd, enter(i).encode())
            i += 1
            time.sleep(0.001)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return i


async def _tail_under_rotation(tmp_path: Path, how: str) -> tuple[list[str], MemorySink]:
    path = tmp_path / "queue_log"
    path.write_bytes(b"")
    src = source(path, rotate_grace=0.5)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    writer = RotatingWriter(path, 24_000, 6_000, how, lambda: len(arrivals(sink)))
    writer.start()
    await until(lambda: not writer.is_alive(), "the writer", tries=12_000)
    await until(lambda: len(arrivals(sink)) >= 24_000, "every line", tries=2000)
    await asyncio.sleep(0.1)
    await stop(task)
    assert writer.error is None, writer.error
    return arrivals(sink), sink


@pytest.mark.parametrize("how", ["rename", "copytruncate", "both"])
async def test_rotation_under_load_loses_nothing_and_reads_nothing_twice(tmp_path: Path, how: str) -> None:
    """24,000 lines written fast with three rotations (rename with late writes to the old file,
    copytruncate while the reader lags, or the two in turn): every line is read exactly once."""
    got, sink = await _tail_under_rotation(tmp_path, how)
    assert len(got) == len(set(got)) == 24_000
    assert set(got) == {f"call{i}" for i in range(24_000)}
    assert [msg for _, msg in sink.errors] == []


def test_a_file_truncated_before_its_first_line_was_complete_restarts_at_zero(tmp_path: Path) -> None:
    """Half a first line, then truncation, then a whole line: the tailer starts over and reads it."""
    path = tmp_path / "queue_log"
    path.write_text("1001|ca")
    t = FileTailer(path)
    t.open()
    while t.step() != IDLE:
        pass
    os.truncate(path, 0)
    assert t.step() == Switched("truncated", 7)
    append(path, enter(1))
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(1).encode()


# ---------------------------------------------------------------------- copytruncate while stopped


async def test_copytruncate_while_stopped_resumes_in_the_copy(tmp_path: Path) -> None:
    """Lines appended after the stored offset, then copied away by copytruncate while cxmon was down, are
    read from the copy, then the truncated file's new lines: nothing lost, nothing twice."""
    path = tmp_path / "queue_log"
    path.write_text("".join(enter(i) for i in range(10)))
    first = MemorySink()
    await source(path, follow=False).run(first)
    append(path, "".join(enter(i) for i in range(10, 20)))
    shutil.copyfile(path, tmp_path / "queue_log.1")
    os.truncate(path, 0)
    append(path, "".join(enter(i) for i in range(20, 25)))
    again = MemorySink(offset=first.offset)
    task = asyncio.create_task(source(path).run(again))
    await until(lambda: len(arrivals(again)) >= 15, "the copy's tail and the new lines")
    await asyncio.sleep(0.05)
    await stop(task)
    assert arrivals(again) == [f"call{i}" for i in range(10, 25)]
    assert again.errors == []


# ---------------------------------------------------------------------- liveness


def heartbeats(sink: MemorySink) -> int:
    return sum(e.kind is EventKind.HEARTBEAT for e in sink.events)


async def polls(src: QueueLogSource, n: int) -> None:
    """Let the source go round its loop about ``n`` times (it publishes its status each time)."""
    for _ in range(n):
        src.status.pop("offset", None)
        await until(lambda: "offset" in src.status, "a poll")


def closed_now() -> list[str]:
    """Opening hours (UTC) that do not include this moment: two hours starting in three hours."""
    hour = (time.gmtime().tm_hour + 3) % 24
    return [f"daily {hour:02d}:00-{(hour + 2) % 24:02d}:00"]


async def test_a_deleted_file_is_down_and_sends_no_heartbeat(tmp_path: Path) -> None:
    """Once the file is deleted the source is down, says so once, and its heartbeats stop."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    src = source(path, heartbeat=0.01)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await until(lambda: heartbeats(sink) > 0, "a heartbeat while the file is there")
    path.unlink()
    await until(lambda: sink.up[-1:] == [False], "down")
    beats = heartbeats(sink)
    await polls(src, 20)
    await stop(task)
    assert heartbeats(sink) == beats
    assert [msg for _, msg in sink.errors] == [
        "the file is gone: renamed or deleted, and nothing has replaced it"
    ]


async def test_a_rotation_by_rename_is_not_a_file_gone_while_the_new_one_comes(tmp_path: Path) -> None:
    """Renamed away, and the new file created a few polls later (inside rotate_grace): the source
    never says the file is gone and never goes down, and reads the new file's lines."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    src = source(path, heartbeat=0.01, rotate_grace=2.0)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await until(lambda: heartbeats(sink) > 0, "a heartbeat while the file is there")
    path.rename(path.with_name("queue_log.1"))
    await polls(src, 10)  # the path has no file for ten polls (0.01 s apart)
    path.write_text(now_enter(2))
    await until(lambda: len(arrivals(sink)) >= 2, "the new file's line")
    ups = list(sink.up)  # stopping the source sets it down: only what came before counts
    await stop(task)
    assert sink.errors == []
    assert False not in ups[ups.index(True) :]


async def test_a_file_silent_while_the_centre_is_open_sends_no_heartbeat(tmp_path: Path) -> None:
    """Open hours (none configured: always open) and no line for 10 minutes > max_silence 5 minutes: the
    source stops claiming life (no heartbeat) and says why once."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    ten_minutes_ago = time.time() - 600
    os.utime(path, (ten_minutes_ago, ten_minutes_ago))
    src = source(path, heartbeat=0.01, max_silence=300.0)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await polls(src, 20)
    await stop(task)
    assert heartbeats(sink) == 0
    assert [msg.split(":")[0] for _, msg in sink.errors] == ["silent while the centre is open"]


async def test_a_quiet_file_at_a_closed_centre_still_sends_heartbeats(tmp_path: Path) -> None:
    """The same silent file outside the configured opening hours is a quiet night: heartbeats go on."""
    from collectors.queue_log.hours import parse_hours

    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    ten_minutes_ago = time.time() - 600
    os.utime(path, (ten_minutes_ago, ten_minutes_ago))
    hours, problems = parse_hours(closed_now(), "UTC")
    assert problems == [] and hours is not None
    src = source(path, heartbeat=0.01, max_silence=300.0, hours=hours)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await until(lambda: heartbeats(sink) >= 2, "heartbeats")
    await stop(task)
    assert sink.errors == []


async def test_a_new_file_that_never_grows_after_rotation_sends_no_heartbeat(tmp_path: Path) -> None:
    """A rotation to a file nobody writes (its last write 10 minutes ago) is silence, not life."""
    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    src = source(path, heartbeat=0.01, max_silence=300.0)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await until(lambda: heartbeats(sink) > 0, "a heartbeat while the file grows")
    old = time.time() - 600
    path.rename(tmp_path / "queue_log.1")
    os.utime(tmp_path / "queue_log.1", (old, old))
    path.write_text("")
    os.utime(path, (old, old))
    await until(lambda: src.rotations == 1, "the switch to the new file")
    beats = heartbeats(sink)
    await polls(src, 20)
    await stop(task)
    assert heartbeats(sink) == beats


async def test_a_directory_in_place_of_the_file_is_down_not_a_crash(tmp_path: Path) -> None:
    """A path that cannot be read (a directory) makes the source down with a report; it keeps running
    and reads the file once one is there."""
    path = tmp_path / "queue_log"
    path.mkdir()
    src = source(path, heartbeat=0.01)
    sink = MemorySink()
    task = asyncio.create_task(src.run(sink))
    await polls(src, 5)
    assert not task.done() and sink.up[-1:] == [False] and heartbeats(sink) == 0
    assert [w for w, _ in sink.errors] == [str(path)] and "cannot read" in sink.errors[0][1]
    path.rmdir()
    path.write_text(now_enter(1))
    await until(lambda: arrivals(sink) == ["call1"], "the file once it is there")
    await stop(task)


def test_cxmon_import_skips_an_over_long_line_and_keeps_line_numbers_right(tmp_path: Path) -> None:
    """Through `cxmon import queue_log`: a 3 MiB ENTERQUEUE is one error at line 2, a bad line after it
    is reported at line 4 (its true line), and no stored event carries any of the long line."""
    import sqlite3
    import subprocess
    import sys

    from tests.helpers import REPO

    log = tmp_path / "queue_log"
    long_line = "1000|c9|sales|NONE|ENTERQUEUE||" + "7" * (3 * MIB) + "|1\n"
    log.write_text(enter(1) + long_line + enter(2) + "oops\n" + enter(3))
    db = tmp_path / "history.db"
    res = subprocess.run(
        [sys.executable, "-m", "cxmon", "import", "queue_log", str(log), "--db", str(db), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    reports = [line for line in res.stderr.splitlines() if f"{log}:" in line and "imported" not in line]
    assert [r.split(f"{log}:")[1].split(":")[0] for r in reports] == ["2", "4"]
    assert "longer than" in reports[0] and "2 errors" in res.stderr
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT contact_id, max(length(coalesce(customer_id, ''))) FROM events WHERE kind = 'arrived' "
            "GROUP BY contact_id ORDER BY contact_id"
        ).fetchall()
    assert [c for c, _ in stored] == ["call1", "call2", "call3"] and max(n for _, n in stored) < 100


async def test_through_the_engine_a_silent_file_turns_the_source_stale(tmp_path: Path) -> None:
    """The engine (wall clock, stale_after 1 s) shows a queue_log source STALE once its file is silent
    while the centre is open, where before the tailer's heartbeats kept it fresh for ever."""
    from cxmon.engine import Engine
    from tests.helpers import one_step_config

    path = tmp_path / "queue_log"
    path.write_text(now_enter(1))
    ten_minutes_ago = time.time() - 600
    os.utime(path, (ten_minutes_ago, ten_minutes_ago))
    cfg = one_step_config()
    cfg = replace(cfg, monitor=replace(cfg.monitor, stale_after=1.0))
    src = source(path, heartbeat=0.02, max_silence=60.0)
    engine = Engine(cfg, store=False, sources=[src])
    async with engine:
        stale = False
        for _ in range(400):
            await asyncio.sleep(0.02)
            snap = engine._tick(time.time())
            if snap.sources and snap.sources[0].stale:
                stale = True
                break
    assert stale
    assert snap.sources[0].up  # the file is there and readable: silent, not down
