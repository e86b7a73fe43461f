"""The JSON-lines source: bad lines are reported and skipped, good ones kept, re-reads resume."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from collectors.jsonl import JsonlFileSource
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from tests.collectors.test_queue_log import MemorySink
from tests.collectors.test_queue_log_tail import append, until
from tests.helpers import one_step_config


def line(i: int) -> str:
    ev = ContactEvent(ts=1000.0 + i, kind=EventKind.ARRIVED, contact_id=f"c{i}", channel="voice", queue="q1")
    return json.dumps(ev.to_dict())


async def ingest(path: Path, db: Path) -> Engine:
    engine = Engine(
        one_step_config(), db_path=str(db), sources=[JsonlFileSource("feed", str(path))], clock="events"
    )
    async with engine:
        await engine.run()
    return engine


async def test_bad_lines_are_reported_with_file_and_line_and_the_rest_kept(tmp_path: Path) -> None:
    """A malformed line is an error naming file:line; the good lines around it are all stored."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line(1), "{not json", line(2), '{"kind": "arrived"}', line(3), ""]) + "\n")
    engine = await ingest(path, tmp_path / "h.db")
    assert engine.health["feed"].errors_total == 2
    errors = list(engine.errors)
    assert any(f"{path}:2: not JSON" in e for e in errors)
    assert any(f"{path}:4:" in e for e in errors)
    con = sqlite3.connect(tmp_path / "h.db")
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")] == ["c1", "c2", "c3"]


async def test_reading_again_resumes_after_the_stored_offset(tmp_path: Path) -> None:
    """Reading the same file twice, with lines appended in between, stores every event exactly once."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(line(i) + "\n" for i in range(10)))
    db = tmp_path / "h.db"
    await ingest(path, db)
    with path.open("a") as fh:
        fh.write("".join(line(i) + "\n" for i in range(10, 15)))
    await ingest(path, db)
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")]
    assert ids == [f"c{i}" for i in range(15)]


async def test_a_bad_line_appended_after_a_read_is_reported_by_its_line_in_the_file(tmp_path: Path) -> None:
    """Read again from the stored offset, a bad line appended since is named by its line in the whole
    file (13), not by its line in what the second read went through (3)."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(line(i) + "\n" for i in range(10)))
    db = tmp_path / "h.db"
    await ingest(path, db)
    with path.open("a") as fh:
        fh.write(line(10) + "\n" + line(11) + "\n" + "{not json\n" + line(12) + "\n")
    engine = await ingest(path, db)
    [bad] = [e for e in engine.errors if "not JSON" in e]
    assert bad.startswith(f"[feed] {path}:13: not JSON")
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")][-3:] == [
        "c10",
        "c11",
        "c12",
    ]


def test_simulate_output_reads_back_as_the_same_events(tmp_path: Path) -> None:
    """What `cxmon simulate --out` writes parses back into the events that were generated."""
    from collectors.jsonl import parse_line

    ev = ContactEvent(
        ts=5.5,
        kind=EventKind.ANSWERED,
        contact_id="c",
        channel="chat",
        queue="q",
        wait=3.0,
        customer_id="u",
        source="sim",
    )
    assert parse_line(json.dumps(ev.to_dict()).encode()) == ev


async def test_a_non_finite_time_or_wait_is_an_error_at_its_line(tmp_path: Path) -> None:
    """ "ts": "inf" and "wait": "nan" are errors at file:line; the good lines around them are stored."""
    bad_ts = json.loads(line(2)) | {"ts": "inf"}
    bad_wait = json.loads(line(3)) | {"kind": "answered", "wait": "nan"}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line(1), json.dumps(bad_ts), json.dumps(bad_wait), line(4)]) + "\n")
    async with asyncio.timeout(60):  # an infinite time once made the engine wait for ever
        engine = await ingest(path, tmp_path / "h.db")
    errors = list(engine.errors)
    assert any(f"{path}:2: ts is not a finite number: 'inf'" in e for e in errors)
    assert any(f"{path}:3: wait is not a finite number: 'nan'" in e for e in errors)
    con = sqlite3.connect(tmp_path / "h.db")
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")] == ["c1", "c4"]


async def test_a_staffing_count_past_any_real_one_is_an_error_at_its_line(tmp_path: Path) -> None:
    """ "agents_staffed": 1e300 is an error at file:line, and the good lines around it are stored
    (it used to be taken as a 300-digit integer that failed the store's commit of the whole batch)."""
    staffing = {"ts": 1002.0, "kind": "staffing", "channel": "voice", "queue": "q1"}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line(1), json.dumps(staffing | {"agents_staffed": 1e300}), line(3)]) + "\n")
    engine = await ingest(path, tmp_path / "h.db")
    assert any(f"{path}:2: agents_staffed is not a count" in e for e in engine.errors)
    con = sqlite3.connect(tmp_path / "h.db")
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")] == ["c1", "c3"]


async def _following(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[MemorySink, asyncio.Task[None]]:
    monkeypatch.setattr("collectors.jsonl.POLL", 0.01)
    sink = MemorySink()
    task = asyncio.create_task(JsonlFileSource("feed", str(path), follow=True).run(sink))
    return sink, task


def contacts(sink: MemorySink) -> list[str]:
    return [e.contact_id for e in sink.events]


async def test_a_followed_file_that_is_not_there_yet_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followed, a file that does not exist yet keeps the source running and down, reported once;
    when it appears its lines are read and the source is up (it used to end the source, and with it
    `cxmon serve`)."""
    path = tmp_path / "events.jsonl"
    sink, task = await _following(path, monkeypatch)
    await until(lambda: sink.up[-1:] == [False], "the source to say it is down")
    await asyncio.sleep(0.05)
    assert not task.done()
    assert sink.errors == [(str(path), "cannot read: No such file or directory (waiting for it)")]
    path.write_text(line(1) + "\n" + line(2) + "\n")
    await until(lambda: len(sink.events) == 2, "the new file's events")
    assert contacts(sink) == ["c1", "c2"] and sink.up[-1]
    task.cancel()


async def test_a_followed_file_truncated_is_read_again_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A followed file cut short and written again is read from its start, and the cut is reported
    (the new lines used to be passed over, unreported, up to the old file's length)."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(line(i) + "\n" for i in range(5)))
    sink, task = await _following(path, monkeypatch)
    await until(lambda: len(sink.events) == 5, "the first five events")
    path.write_text(line(10) + "\n")
    await until(lambda: len(sink.events) == 6, "the line written after the truncation")
    append(path, line(11) + "\n")
    await until(lambda: len(sink.events) == 7, "the line appended after it")
    assert contacts(sink)[5:] == ["c10", "c11"]
    assert (str(path), "truncated: the file at the path is read from its start") in sink.errors
    task.cancel()


async def test_a_followed_file_rotated_by_rename_loses_no_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A followed file renamed away (still written for a moment) and replaced by a new one: the old
    file's last lines and every line of the new one are read, each once."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(line(i) + "\n" for i in range(3)))
    sink, task = await _following(path, monkeypatch)
    await until(lambda: len(sink.events) == 3, "the first three events")
    with path.open("a") as old:
        path.rename(tmp_path / "events.jsonl.1")
        await asyncio.sleep(0.05)
        old.write(line(3) + "\n")
    path.write_text(line(4) + "\n")
    await until(lambda: len(sink.events) == 5, "the rest of the old file and the new one")
    assert contacts(sink) == ["c0", "c1", "c2", "c3", "c4"]
    task.cancel()


async def test_a_time_before_1970_is_an_error_at_its_line(tmp_path: Path) -> None:
    """ "ts": -5 is an error at file:line (it used to be passed on and refused by the engine as
    "event 2 of a batch", a place no one can find in the file)."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line(1), json.dumps(json.loads(line(2)) | {"ts": -5}), line(3)]) + "\n")
    engine = await ingest(path, tmp_path / "h.db")
    assert any(f"{path}:2: ts must be a finite time from 1970 on, got -5" in e for e in engine.errors)
    con = sqlite3.connect(tmp_path / "h.db")
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")] == ["c1", "c3"]


async def test_a_missing_file_not_followed_fails_the_source(tmp_path: Path) -> None:
    """A file the source was to read once and cannot read is reported and fails the source (the run
    cannot end as a success), rather than ending as if it had been read."""
    path = tmp_path / "absent.jsonl"
    engine = await ingest(path, tmp_path / "h.db")
    health = engine.health["feed"]
    assert health.failed
    assert any(f"{path}: cannot read: No such file or directory" in e for e in engine.errors)


async def test_a_customer_that_is_not_a_string_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    """A line naming its customer with an object (``customer``, which a line does not carry) or with a
    ``customer_id`` that is not a string is an error at file:line naming the key; the lines around
    it are stored."""
    with_object = json.loads(line(2)) | {"customer": {"x": 1}}
    with_number = json.loads(line(3)) | {"customer_id": 34600111222}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line(1), json.dumps(with_object), json.dumps(with_number), line(4)]) + "\n")
    engine = await ingest(path, tmp_path / "h.db")
    errors = list(engine.errors)
    assert any(f"{path}:2: customer: unknown key" in e for e in errors)
    assert any(f"{path}:3: customer_id: expected a string, got 34600111222" in e for e in errors)
    con = sqlite3.connect(tmp_path / "h.db")
    assert [r[0] for r in con.execute("SELECT contact_id FROM events ORDER BY id")] == ["c1", "c4"]
