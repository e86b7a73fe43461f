"""Tests for tailing a queue_log: growth, partial lines, rotation, copytruncate, resume by offset."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from collectors.base import Offset
from collectors.queue_log import QueueLogSource
from collectors.queue_log.hours import OpeningHours
from collectors.queue_log.options import QueueLogOptions
from collectors.queue_log.tailer import IDLE, PARTIAL, FileTailer, Lines, Switched
from cxmon.events import EventKind
from tests.collectors.test_queue_log import MemorySink


def enter(i: int, ts: int = 1000) -> str:
    return f"{ts + i}|call{i}|sales|NONE|ENTERQUEUE||555{i}|1\n"


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


class TailOptions(TypedDict, total=False):
    """The QueueLogOptions a test sets beside :func:`source`'s own."""

    start: str
    follow: bool
    batch: int
    heartbeat: float
    max_silence: float
    hours: OpeningHours
    rotate_grace: float


def source(path: Path, **kw: Unpack[TailOptions]) -> QueueLogSource:
    opts = QueueLogOptions(
        path=str(path), start="beginning", poll_interval=0.01, heartbeat=3600.0, rotate_grace=0.05
    )
    return QueueLogSource("ql", replace(opts, **kw))


async def until(cond: Callable[[], bool], what: str) -> None:
    """Wait (cooperatively) for ``cond``; fail with ``what`` if it never comes."""
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def arrivals(sink: MemorySink) -> list[str]:
    return [e.contact_id for e in sink.events if e.kind is EventKind.ARRIVED]


# ---------------------------------------------------------------------- the tailer alone


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    """A last line without its newline is not handed out; it comes whole once the newline arrives."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1) + "1002|call2|sa")
    t = FileTailer(path)
    t.open()
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(1).encode() and step.end == len(enter(1))
    assert t.step() == IDLE and t.held == len("1002|call2|sa")
    append(path, "les|NONE|ENTERQUEUE||5|1\n")
    step = t.step()
    assert isinstance(step, Lines) and step.data == b"1002|call2|sales|NONE|ENTERQUEUE||5|1\n"


def test_an_unfinished_first_line_gives_nothing(tmp_path: Path) -> None:
    """With only part of the first line written the tailer reports a partial read and no lines."""
    path = tmp_path / "queue_log"
    path.write_text("1001|ca")
    t = FileTailer(path)
    t.open()
    assert t.step() == PARTIAL
    assert t.step() == IDLE and t.pos == 0


def test_identity_changes_with_the_first_line(tmp_path: Path) -> None:
    """Two files at the same inode with different first lines have different identities."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    a = FileTailer(path)
    a.open()
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(enter(2).encode())
    b = FileTailer(path)
    b.open()
    assert a.file_id is not None and b.file_id is not None
    assert a.file_id.rsplit(":", 1)[0] == b.file_id.rsplit(":", 1)[0]
    assert a.file_id != b.file_id


def test_rotation_by_rename_finishes_the_old_file_then_reads_the_new(tmp_path: Path) -> None:
    """After a rename the tailer drains the old file, then (once it is quiet) reads the new from its start."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    t = FileTailer(path, clock=lambda: time.time() + 3600)
    t.open()
    assert isinstance(t.step(), Lines)
    append(path, enter(2))
    path.rename(tmp_path / "queue_log.1")
    path.write_text(enter(3))
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(2).encode()
    assert t.step() == Switched("rotated", 0)
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(3).encode() and step.start == 0


def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    """When the file shrinks below the offset (copytruncate) reading restarts at its start."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1) + enter(2))
    t = FileTailer(path)
    t.open()
    assert isinstance(t.step(), Lines)
    shutil.copy(path, tmp_path / "queue_log.1")
    with open(path, "r+b") as f:
        f.truncate(0)
    assert t.step() == Switched("truncated", 0)
    append(path, enter(3))
    step = t.step()
    assert isinstance(step, Lines) and step.data == enter(3).encode()


def test_file_rewritten_in_place_past_the_offset_is_noticed(tmp_path: Path) -> None:
    """A truncated file that grew back past the offset before we looked is caught by its first line."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    t = FileTailer(path)
    t.open()
    assert isinstance(t.step(), Lines)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write((enter(7) + enter(8)).encode())
    assert t.step() == Switched("replaced", 0, unread=True)


# ---------------------------------------------------------------------- the source


async def test_source_follows_growth_and_stores_the_offset(tmp_path: Path) -> None:
    """Lines appended while the source runs are emitted; the offset is the end of the last line."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: arrivals(sink) == ["call1"], "first line")
    append(path, enter(2) + "1003|call3|sal")
    await until(lambda: arrivals(sink) == ["call1", "call2"], "second line")
    assert sink.offset is not None and sink.offset.position == len(enter(1) + enter(2))
    append(path, "es|NONE|ENTERQUEUE||9|1\n")
    await until(lambda: arrivals(sink) == ["call1", "call2", "call3"], "completed partial line")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.up[-1] is False


async def test_source_survives_rename_rotation(tmp_path: Path) -> None:
    """Every line written before and after a rename rotation is emitted once."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: len(arrivals(sink)) == 1, "first line")
    append(path, enter(2))
    path.rename(tmp_path / "queue_log.1")
    path.write_text(enter(3))
    append(path, enter(4))
    await until(lambda: len(arrivals(sink)) == 4, "lines after rotation")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert arrivals(sink) == ["call1", "call2", "call3", "call4"]


async def test_source_survives_copytruncate(tmp_path: Path) -> None:
    """After copytruncate the new lines are read from the start of the emptied file."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: len(arrivals(sink)) == 1, "first line")
    shutil.copy(path, tmp_path / "queue_log.1")
    with open(path, "r+b") as f:
        f.truncate(0)
    await asyncio.sleep(0.05)
    append(path, enter(2))
    await until(lambda: len(arrivals(sink)) == 2, "line after truncation")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert arrivals(sink) == ["call1", "call2"]


async def test_restart_resumes_after_the_stored_offset_with_state(tmp_path: Path) -> None:
    """A new source given the stored offset emits only later lines, knowing who was waiting before."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1) + enter(2))
    sink = MemorySink()
    await source(path, follow=False).run(sink)
    assert arrivals(sink) == ["call1", "call2"]
    append(path, "1100|call1|sales|SIP/1|CONNECT|99|x|1\n")
    again = MemorySink(offset=sink.offset)
    await source(path, follow=False).run(again)
    assert [(e.kind, e.contact_id, e.wait) for e in again.events] == [(EventKind.ANSWERED, "call1", 99.0)]


async def test_restart_finds_a_file_rotated_while_down(tmp_path: Path) -> None:
    """Lines added to the old file after the offset, then rotated away, are read, then the new file."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    await source(path, follow=False).run(sink)
    append(path, enter(2))
    os.rename(path, tmp_path / "queue_log.1")
    path.write_text(enter(3))
    again = MemorySink(offset=sink.offset)
    task = asyncio.create_task(source(path).run(again))
    await until(lambda: len(arrivals(again)) == 2, "old tail and new file")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert arrivals(again) == ["call2", "call3"] and again.errors == []


async def test_unknown_offset_reads_the_file_from_the_start(tmp_path: Path) -> None:
    """A stored offset whose file is gone is reported and the current file is read from its start."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink(offset=Offset("1:2:deadbeef", 10))
    await source(path, follow=False).run(sink)
    assert arrivals(sink) == ["call1"] and len(sink.errors) == 1


async def test_first_start_at_end_emits_only_new_lines_but_knows_the_past(tmp_path: Path) -> None:
    """With start = "end" old lines make no events, yet a later CONNECT matches its old ENTERQUEUE."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path, start="end").run(sink))
    await until(lambda: sink.offset is not None, "warm-up")
    append(path, "1100|call1|sales|SIP/1|CONNECT|99|x|1\n")
    await until(lambda: len(sink.kinds()) == 1, "the connect")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.kinds() == ["answered"]


async def test_missing_file_is_down_until_it_appears(tmp_path: Path) -> None:
    """A missing file makes the source down with one error; once created its lines are read."""
    path = tmp_path / "queue_log"
    sink = MemorySink()
    task = asyncio.create_task(source(path).run(sink))
    await until(lambda: sink.up[-1:] == [False], "down")
    path.write_text(enter(1))
    await until(lambda: arrivals(sink) == ["call1"], "line after the file appears")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [w for w, _ in sink.errors] == [str(path)] and True in sink.up


async def test_bad_lines_are_reported_as_file_and_line(tmp_path: Path) -> None:
    """A malformed line is reported as path:line and the lines around it are emitted."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1) + "oops\n" + enter(2))
    sink = MemorySink()
    await source(path, follow=False).run(sink)
    assert arrivals(sink) == ["call1", "call2"]
    assert [w for w, _ in sink.errors] == [f"{path}:2"]


async def test_quiet_file_sends_heartbeats(tmp_path: Path) -> None:
    """While the file is quiet the source sends heartbeats so its steps do not go STALE."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1))
    sink = MemorySink()
    task = asyncio.create_task(source(path, heartbeat=0.01).run(sink))
    await until(lambda: any(e.kind is EventKind.HEARTBEAT for e in sink.events), "heartbeat")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_followed_file_says_it_is_alive_as_soon_as_it_is_caught_up(tmp_path: Path) -> None:
    """A live file read to its end sends a heartbeat at once, not a heartbeat period later: after a
    restart the engine knows only the last stored line's time, and waiting out the period could
    leave the source silent past ``stale_after`` and page STALE for a file that is fine."""
    path = tmp_path / "queue_log"
    path.write_text(enter(1, ts=int(time.time()) - 30))
    sink = MemorySink()
    task = asyncio.create_task(source(path, heartbeat=3600.0).run(sink))
    await until(lambda: any(e.kind is EventKind.HEARTBEAT for e in sink.events), "a heartbeat")
    assert arrivals(sink) == ["call1"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_big_files_are_emitted_in_batches(tmp_path: Path) -> None:
    """Catching up on a long file emits batches of about ``batch`` events, each with its offset."""
    path = tmp_path / "queue_log"
    path.write_text("".join(enter(i) for i in range(5000)))
    sink = MemorySink()
    await source(path, follow=False, batch=1000).run(sink)
    assert len(arrivals(sink)) == 5000
    assert 4 <= sink.batches <= 6
    assert sink.offset is not None and sink.offset.position == path.stat().st_size
