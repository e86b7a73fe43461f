"""Tests for call-record files: the Anonymous Bank preset, generic mappings, paced replay."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest

from collectors.base import Offset
from collectors.records import ANONYMOUS_BANK, ReadState, RecordMapping, RecordsSource, read_records
from collectors.records.source import parse_options
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from tests.collectors.test_queue_log import MemorySink
from tests.helpers import one_step_config, shared_data
from tests.test_source_health import until

HEADER = (
    "vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,"
    "q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server\n"
)
ISRAEL = dt.timezone(dt.timedelta(hours=3))  # IDT, all of August 1999


def bank_file(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def at(day: int, hms: str) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return dt.datetime(1999, 8, day, h, m, s, tzinfo=ISRAEL).timestamp()


def read(
    path: Path, mapping: RecordMapping = ANONYMOUS_BANK
) -> tuple[list[ContactEvent], list[int], ReadState]:
    errors: list[int] = []
    state = ReadState()
    events = read_records(path, mapping, on_error=lambda ln, why: errors.append(ln), state=state)
    return events, errors, state


def test_served_call_is_arrival_answer_and_resolution(tmp_path: Path) -> None:
    """An AGENT row: arrived at q_start, answered at q_exit (wait = queue time), resolved at ser_exit."""
    path = bank_file(
        tmp_path,
        "AA0101,44749,27644400,2,PS,2010-08-03,7:01:18,7:01:25,7,7:01:25,7:02:05,40,AGENT,7:02:04,7:05:15,191,MORIAH",
    )
    events, errors, _ = read(path)
    got = [(e.kind, e.ts, e.wait, e.duration) for e in events]
    assert got == [
        (EventKind.ARRIVED, at(3, "7:01:25"), None, None),
        (EventKind.ANSWERED, at(3, "7:02:05"), 40.0, None),
        (EventKind.RESOLVED, at(3, "7:05:15"), None, 191.0),
    ]
    assert {e.queue for e in events} == {"PS"} and {e.customer_id for e in events} == {"27644400"}
    assert errors == []


def test_dates_are_august_1999_in_israel_time(tmp_path: Path) -> None:
    """The 2010-08-DD dates are read as 1999-08-DD, times as Israel summer time (UTC+3)."""
    path = bank_file(
        tmp_path,
        "AA1,1,0,0,PS,2010-08-01,0:10:10,0:10:27,17,0:10:27,0:10:40,13,HANG,0:00:00,0:00:00,0,NO_SERVER",
    )
    events, _, _ = read(path)
    assert dt.datetime.fromtimestamp(events[0].ts, dt.UTC) == dt.datetime(
        1999, 7, 31, 21, 10, 27, tzinfo=dt.UTC
    )


def test_hang_after_queueing_is_an_abandon(tmp_path: Path) -> None:
    """A HANG row that queued is abandoned at q_exit with the queue time as wait; customer 0 is unknown."""
    path = bank_file(
        tmp_path,
        "AA1,1,0,0,NW,2010-08-02,9:00:00,9:00:10,10,9:00:10,9:01:40,90,HANG,0:00:00,0:00:00,0,NO_SERVER",
    )
    events, _, state = read(path)
    [_, abandoned] = events
    assert (abandoned.kind, abandoned.wait, abandoned.reason, abandoned.customer_id) == (
        EventKind.ABANDONED,
        90.0,
        "hangup",
        None,
    )
    assert state.counts["abandoned"] == 1


def test_hang_in_the_voice_response_unit_is_not_offered(tmp_path: Path) -> None:
    """A HANG row that never queued (q_start 0:00:00) makes no events and is counted as not queued."""
    path = bank_file(
        tmp_path,
        "AA1,1,0,0,PS,2010-08-01,0:10:10,0:10:27,17,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER",
    )
    events, errors, state = read(path)
    assert events == [] and errors == [] and state.counts["not_queued"] == 1


def test_phantom_calls_are_skipped_and_counted(tmp_path: Path) -> None:
    """PHANTOM rows (calls that could not be traced) make no events and are counted."""
    path = bank_file(
        tmp_path,
        "AA1,1,0,0,PS,2010-08-05,10:36:00,10:36:39,39,10:36:39,10:38:58,139,PHANTOM,10:38:58,10:39:00,2,NO_SERVER",
    )
    events, _, state = read(path)
    assert events == [] and state.counts["skipped:PHANTOM"] == 1


def test_agent_call_that_never_queued_waits_zero(tmp_path: Path) -> None:
    """An AGENT row with no queue times went straight to an agent: answered at ser_start, wait 0."""
    path = bank_file(
        tmp_path,
        "AA1,1,5,0,PS,2010-08-01,10:00:20,10:00:31,11,0:00:00,0:00:00,0,AGENT,10:00:30,10:02:09,99,DORIT",
    )
    events, _, _ = read(path)
    assert [(e.kind, e.ts, e.wait) for e in events[:2]] == [
        (EventKind.ARRIVED, at(1, "10:00:30"), None),
        (EventKind.ANSWERED, at(1, "10:00:30"), 0.0),
    ]


def test_service_after_midnight_is_the_next_day(tmp_path: Path) -> None:
    """A call served across midnight ends on the next day, not 24 h before it started."""
    path = bank_file(
        tmp_path,
        "AA1,1,5,0,PS,2010-08-01,23:58:00,23:58:10,10,23:58:10,23:59:00,50,AGENT,23:59:00,0:03:00,240,DORIT",
    )
    events, _, _ = read(path)
    assert events[-1].ts == at(2, "0:03:00") and events[-1].duration == 240.0


def test_events_come_out_in_time_order_across_rows(tmp_path: Path) -> None:
    """Rows out of time order still give one time-ordered event stream."""
    path = bank_file(
        tmp_path,
        "AA1,2,0,0,PS,2010-08-01,9:00:00,9:00:05,5,9:00:05,9:00:30,25,HANG,0:00:00,0:00:00,0,NO_SERVER",
        "AA1,1,0,0,PS,2010-08-01,8:00:00,8:00:05,5,8:00:05,8:00:30,25,HANG,0:00:00,0:00:00,0,NO_SERVER",
    )
    events, _, _ = read(path)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert events[0].contact_id == "1999-08-01/1"


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    """Short rows and unreadable times are errors at their line; the good rows still make events."""
    good = "AA1,1,0,0,PS,2010-08-01,9:00:00,9:00:05,5,9:00:05,9:00:30,25,HANG,0:00:00,0:00:00,0,NO_SERVER"
    path = bank_file(
        tmp_path,
        good,
        "AA1,2,0,0,PS",
        "AA1,3,0,0,PS,2010-08-01,9:00:00,9:00:05,5,nine,9:00:30,25,HANG,0:00:00,0:00:00,0,NO_SERVER",
        good.replace(",1,", ",4,"),
    )
    events, errors, state = read(path)
    assert errors == [3, 4] and state.counts["bad"] == 2
    assert len(events) == 4


def test_generic_mapping_with_iso_times(tmp_path: Path) -> None:
    """A mapping with full datetimes and no outcome column: served when there is a service start."""
    path = tmp_path / "cdr.csv"
    path.write_text(
        "id,queue,enter,leave,talk_start,talk_end\n"
        "a,sales,2024-01-02 10:00:00,2024-01-02 10:00:20,2024-01-02 10:00:20,2024-01-02 10:05:00\n"
        "b,sales,2024-01-02 10:01:00,2024-01-02 10:01:07,,\n"
    )
    mapping = RecordMapping(
        contact="id",
        queue="queue",
        queue_start="enter",
        queue_exit="leave",
        service_start="talk_start",
        service_end="talk_end",
        time_format="%Y-%m-%d %H:%M:%S",
    )
    events, errors, _ = read(path, mapping)
    assert errors == []
    assert [(e.contact_id, e.kind.value, e.wait) for e in events if e.kind is not EventKind.ARRIVED] == [
        ("a", "answered", 20.0),
        ("b", "abandoned", 7.0),
        ("a", "resolved", None),
    ]


def test_a_time_the_mapping_names_no_column_for_did_not_happen(tmp_path: Path) -> None:
    """A mapping with queue times and no service columns, whose ``missing`` values leave out the
    empty text, reads every row: the unmapped service start and end did not happen (before, each
    was read as an empty time, and every row was rejected as "not a time of day: ''")."""
    path = bank_file(
        tmp_path,
        "AA0101,1,0,0,PS,2010-08-03,7:01:18,7:01:25,7,7:01:25,7:02:05,40,AGENT,7:02:04,7:05:15,191,MORIAH",
        "AA0101,2,0,0,PS,2010-08-03,7:03:18,7:03:25,7,7:03:25,7:04:00,35,HANG,0:00:00,0:00:00,0,NO_SERVER",
    )
    mapping = RecordMapping(
        contact="call_id",
        queue="type",
        queue_start="q_start",
        queue_exit="q_exit",
        outcome="outcome",
        date="date",
        year=1999,
        missing=("0:00:00",),
        timezone="Asia/Jerusalem",
    )
    events, errors, _ = read(path, mapping)
    assert errors == []
    assert [(e.kind, e.ts, e.wait) for e in events] == [
        (EventKind.ARRIVED, at(3, "7:01:25"), None),
        (EventKind.ANSWERED, at(3, "7:02:05"), 40.0),
        (EventKind.ARRIVED, at(3, "7:03:25"), None),
        (EventKind.ABANDONED, at(3, "7:04:00"), 35.0),
    ]


def test_options_need_a_preset_or_mapping() -> None:
    """A records table without preset or mapping, or with an unknown preset, is refused with its path."""
    assert parse_options({"path": "x.csv"}, "collectors[0]")[1] == [
        "collectors[0]: needs a preset or a mapping table"
    ]
    problems = parse_options({"path": "x.csv", "preset": "bank"}, "collectors[0]")[1]
    assert problems and problems[0].startswith("collectors[0].preset: unknown preset 'bank'")


def test_mapping_keys_override_the_preset() -> None:
    """Keys of a mapping table change the preset's values and unknown keys are reported."""
    opts, problems = parse_options(
        {"path": "x.csv", "preset": "anonymous-bank", "mapping": {"timezone": "UTC", "year": 2010}}, "c"
    )
    assert problems == [] and opts is not None
    assert (opts.mapping.timezone, opts.mapping.year, opts.mapping.queue) == ("UTC", 2010, "type")
    assert parse_options({"path": "x", "preset": "anonymous-bank", "mapping": {"colour": "x"}}, "c")[1] == [
        "c.mapping.colour: unknown key"
    ]


async def test_paced_replay_hands_over_every_event_in_order_and_moves_the_clock(tmp_path: Path) -> None:
    """Replayed at a high speed, every event arrives in time order and the clock reaches the last one."""
    rows = [
        f"AA1,{i},0,0,PS,2010-08-01,9:{i:02d}:00,9:{i:02d}:05,5,9:{i:02d}:05,9:{i:02d}:30,25,HANG,0:00:00,0:00:00,0,X"
        for i in range(10)
    ]
    path = bank_file(tmp_path, *rows)
    opts, _ = parse_options({"path": str(path), "preset": "anonymous-bank", "speed": 20000}, "c")
    assert opts is not None
    src = RecordsSource("bank", opts)
    assert src.paced
    sink = MemorySink()
    await src.run(sink)
    assert len(sink.events) == 20
    assert [e.ts for e in sink.events] == sorted(e.ts for e in sink.events)
    assert src.clock() >= sink.events[-1].ts
    assert src.progress()[0] == src.progress()[1]


async def test_progress_counts_rows_as_their_calls_are_handed_over(tmp_path: Path) -> None:
    """Progress reports rows in step with the bytes: part-way through the replay, part of the rows."""
    rows = [
        f"AA1,{i},0,0,PS,2010-08-01,9:{i:02d}:00,9:{i:02d}:05,5,9:{i:02d}:05,9:{i:02d}:30,25,HANG,0:00:00,0:00:00,0,X"
        for i in range(40)
    ]
    opts, _ = parse_options(
        {"path": str(bank_file(tmp_path, *rows)), "preset": "anonymous-bank", "speed": 20000}, "c"
    )
    assert opts is not None
    src = RecordsSource("bank", opts)
    seen: list[tuple[int, int, int]] = []

    class Recording(MemorySink):
        async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
            seen.append(src.progress())
            await super().emit(events, offset)

    await src.run(Recording())
    assert len(seen) >= 2
    assert [r for _, _, r in seen] == sorted(r for _, _, r in seen)
    assert 0 <= seen[0][2] < 40 and src.progress()[2] == 40
    for done, total, lines in seen:
        assert lines == 40 * done // total or abs(lines / 40 - done / total) < 0.05


async def test_start_and_end_select_a_slice(tmp_path: Path) -> None:
    """start/end options keep only the calls inside the slice (read in the mapping's timezone)."""
    rows = [
        f"AA1,{h},0,0,PS,2010-08-01,{h}:00:00,{h}:00:05,5,{h}:00:05,{h}:00:30,25,HANG,0:00:00,0:00:00,0,X"
        for h in (6, 8, 12)
    ]
    path = bank_file(tmp_path, *rows)
    opts, _ = parse_options(
        {
            "path": str(path),
            "preset": "anonymous-bank",
            "start": "1999-08-01T07:00",
            "end": "1999-08-01T10:00",
        },
        "c",
    )
    assert opts is not None
    sink = MemorySink()
    await RecordsSource("bank", opts).run(sink)
    assert {e.contact_id for e in sink.events} == {"1999-08-01/8"}


def test_real_bank_month_matches_the_rules() -> None:
    """Over the real August 1999 file every row is accounted for, each by the rules of the preset."""
    path = shared_data("anonymous-bank", "calls-1999-08.csv")
    events, errors, state = read(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    none = "0:00:00"
    phantom = sum(r["outcome"] == "PHANTOM" for r in rows)
    reached = [
        r for r in rows if r["outcome"] != "PHANTOM" and (r["q_start"] != none or r["ser_start"] != none)
    ]
    served = sum(r["outcome"] == "AGENT" for r in reached)
    hung = sum(r["outcome"] == "HANG" for r in reached)
    untimed = sum(r["outcome"] == "AGENT" and r["q_start"] == r["ser_start"] == none for r in rows)
    assert errors == []
    assert state.rows == len(rows)
    assert state.counts["skipped:PHANTOM"] == phantom
    assert state.counts["answered"] == served and state.counts["abandoned"] == hung
    assert state.counts["answered_untimed"] == untimed == 29
    assert state.counts["not_queued"] == len(rows) - phantom - len(reached) - untimed
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.ARRIVED) == len(reached)
    assert len({e.contact_id for e in events}) == len(reached)
    assert all(e.wait is None or e.wait >= 0 for e in events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    first, last = (
        dt.datetime.fromtimestamp(events[0].ts, ISRAEL),
        dt.datetime.fromtimestamp(events[-1].ts, ISRAEL),
    )
    assert (first.year, first.month, first.day) == (1999, 8, 1)
    assert (last.year, last.month) in ((1999, 8), (1999, 9))


async def test_a_missing_file_under_a_live_engine_is_reported_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A records path that names no file, in a live run: the source is reported stopped with the
    reason and the file, and no traceback is logged (one used to be, at every restart)."""
    path = tmp_path / "calls.csv"
    opts, _ = parse_options({"path": str(path), "preset": "anonymous-bank", "speed": 60}, "c")
    assert opts is not None
    engine = Engine(one_step_config(), store=False, sources=[RecordsSource("bank", opts)])
    async with engine:
        await until(lambda: "source stopped" in (engine.health["bank"].last_error or ""))
    assert f"source stopped: No such file or directory: {path}" in (engine.health["bank"].last_error or "")
    assert not [r for r in caplog.records if r.exc_info]
