"""End-to-end tests of `cxmon import`: real Engine, real SQLite store, real files."""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from collectors.base import Offset
from collectors.records import RecordMapping, RecordsSource
from collectors.records import source as records_source_module
from collectors.records.source import RecordsOptions
from cxmon.config import Config, default_config_path, load, loads
from cxmon.events import ContactEvent
from cxmon.importer import (
    ImportResult,
    ProgressBar,
    import_command,
    queue_log_source,
    records_source,
    run_import,
)
from cxmon.store import Store
from tests.helpers import REPO, shared_data

CONFIG_TEXT = default_config_path().read_text()


def config(**monitor: str) -> Config:
    text = CONFIG_TEXT
    for key, value in monitor.items():
        text = text.replace("[monitor]\n", f'[monitor]\n{key} = "{value}"\n', 1)
        text = "\n".join(
            line for line in text.splitlines() if not line.startswith(f"{key} = ") or value in line
        )
    return loads(text)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def import_queue_log(cfg: Config, log: Path, db: Path) -> ImportResult:
    return await run_import(cfg, queue_log_source(cfg, str(log)), str(db))


def series_figures(result: ImportResult) -> dict[tuple[str, str, str], dict[str, object]]:
    """Totals and windowed figures of every series of an import's final snapshot."""
    out: dict[tuple[str, str, str], dict[str, object]] = {}
    for s in result.final.series:
        figures: dict[str, object] = dict(s.totals)
        for window, values in s.windows.items():
            for name, value in values.items():
                figures[f"{name}@{window:g}"] = None if value is None else round(value, 6)
        out[s.key] = figures
    return out


# ---------------------------------------------------------------------- queue_log


async def test_real_sample_is_stored_with_its_offset(tmp_path: Path) -> None:
    """The FreePBX sample imports into the store: six events, the offset at the end of the file."""
    log = shared_data("asterisk", "asterisk_queue_log_issue759.log")
    db = tmp_path / "h.db"
    result = await import_queue_log(config(), log, db)
    assert result.lines == 8 and result.events == 6 and result.errors == 0
    kinds = rows(db, "SELECT kind, queue FROM events WHERE kind != 'heartbeat' ORDER BY id")
    assert kinds == [
        ("arrived", "1501"),
        ("answered", "1501"),
        ("arrived", "1509"),
        ("transferred", "1501"),
        ("answered", "1509"),
        ("resolved", "1509"),
    ]
    [(position,)] = rows(db, "SELECT position FROM source_offsets")
    assert position == log.stat().st_size


async def test_importing_again_adds_only_what_was_appended(tmp_path: Path) -> None:
    """A second import of the same (grown) file resumes at the stored offset: nothing twice."""
    log = tmp_path / "queue_log"
    log.write_text("100|c1|sales|NONE|ENTERQUEUE||555|1\n")
    db = tmp_path / "h.db"
    cfg = config()
    await import_queue_log(cfg, log, db)
    await import_queue_log(cfg, log, db)
    with open(log, "a") as f:
        f.write("130|c1|sales|NONE|ABANDON|1|1|30\n")
    await import_queue_log(cfg, log, db)
    assert rows(db, "SELECT kind, contact_id FROM events WHERE source != 'engine' ORDER BY id") == [
        ("arrived", "c1"),
        ("abandoned", "c1"),
    ]


async def test_call_without_terminal_event_is_counted_lost(tmp_path: Path) -> None:
    """A call that never ends (crash, reload) is lost after monitor.lost_after, not left waiting."""
    log = tmp_path / "queue_log"
    later = "".join(
        f"{2000 + i * 60}|k{i}|sales|NONE|ENTERQUEUE||9|1\n{2010 + i * 60}|k{i}|sales|NONE|ABANDON|1|1|10\n"
        for i in range(30)
    )
    log.write_text("1000|stuck|sales|NONE|ENTERQUEUE||555|1\n1001|NONE|NONE|NONE|CONFIGRELOAD|\n" + later)
    db = tmp_path / "h.db"
    result = await import_queue_log(config(lost_after="10m"), log, db)
    [sales] = [s for s in result.final.series if s.queue == "sales"]
    assert sales.totals["lost"] == 1 and sales.instant["waiting_now"] == 0
    assert rows(db, "SELECT contact_id FROM events WHERE kind = 'lost'") == [("stuck",)]


async def test_queuestart_makes_calls_in_flight_lost_in_the_stats(tmp_path: Path) -> None:
    """After QUEUESTART (Asterisk restarted) the calls it had in flight count as lost at once."""
    log = tmp_path / "queue_log"
    log.write_text("1000|a|sales|NONE|ENTERQUEUE||1|1\n1005|NONE|NONE|NONE|QUEUESTART|\n")
    result = await import_queue_log(config(), log, tmp_path / "h.db")
    [sales] = [s for s in result.final.series if s.queue == "sales"]
    assert sales.totals["lost"] == 1 and sales.instant["waiting_now"] == 0


# ---------------------------------------------------------------------- cross-format


Call = tuple[str, str, int, str, int | None, int | None, int]
"""(id, queue, enter, outcome, wait, talk, customer): one call of the cross-format tests."""


def _calls(n: int, seed: int) -> list[Call]:
    """(id, queue, enter, outcome, wait, talk, customer) for n seeded calls."""
    rng = random.Random(seed)
    out: list[Call] = []
    t = 1_700_000_000
    for i in range(n):
        t += rng.randrange(1, 40)
        q = rng.choice(["sales", "billing", "tech"])
        wait = int(rng.expovariate(1 / 30))
        if rng.random() < 0.2:
            out.append((f"c{i}", q, t, "abandon", wait, None, rng.randrange(50)))
        else:
            out.append((f"c{i}", q, t, "served", wait, rng.randrange(30, 600), rng.randrange(50)))
    return out


def write_queue_log(path: Path, calls: list[Call]) -> None:
    lines: list[tuple[int, int, str]] = []
    for n, (cid, q, t, outcome, wait, talk, cust) in enumerate(calls):
        lines.append((t, n * 3, f"{t}|{cid}|{q}|NONE|ENTERQUEUE||{cust}|1"))
        assert wait is not None
        if outcome == "abandon":
            lines.append((t + wait, n * 3 + 1, f"{t + wait}|{cid}|{q}|NONE|ABANDON|1|1|{wait}"))
        else:
            assert talk is not None
            lines.append((t + wait, n * 3 + 1, f"{t + wait}|{cid}|{q}|SIP/1|CONNECT|{wait}|x|1"))
            lines.append(
                (
                    t + wait + talk,
                    n * 3 + 2,
                    f"{t + wait + talk}|{cid}|{q}|SIP/1|COMPLETECALLER|{wait}|{talk}|1",
                )
            )
    path.write_text("".join(text + "\n" for _, _, text in sorted(lines)))


def write_records(path: Path, calls: list[Call]) -> None:
    out = ["id,queue,customer,q_start,q_exit,s_start,s_end"]
    for cid, q, t, outcome, wait, talk, cust in calls:
        assert wait is not None
        if outcome == "abandon":
            out.append(f"{cid},{q},{cust},{t},{t + wait},,")
        else:
            assert talk is not None
            out.append(f"{cid},{q},{cust},{t},{t + wait},{t + wait},{t + wait + talk}")
    path.write_text("\n".join(out) + "\n")


async def test_same_calls_as_queue_log_and_as_records_give_the_same_figures(tmp_path: Path) -> None:
    """800 calls written as a queue_log and as a call-record CSV give identical figures per series."""
    calls = _calls(800, seed=5)
    write_queue_log(tmp_path / "queue_log", calls)
    write_records(tmp_path / "calls.csv", calls)
    cfg = config()
    from_log = await import_queue_log(cfg, tmp_path / "queue_log", tmp_path / "a.db")
    mapping = RecordMapping(
        contact="id", queue="queue", customer="customer", queue_start="q_start", queue_exit="q_exit",
        service_start="s_start", service_end="s_end", time_format="epoch", missing=("",),
    )  # fmt: skip
    records = RecordsSource("records", RecordsOptions(path=str(tmp_path / "calls.csv"), mapping=mapping))
    from_csv = await run_import(cfg, records, str(tmp_path / "b.db"))
    assert from_log.errors == from_csv.errors == 0
    a, b = series_figures(from_log), series_figures(from_csv)
    assert set(a) == set(b) and len(a) >= 1
    assert a == b
    [(n_log,)] = rows(
        tmp_path / "a.db",
        "SELECT COUNT(*) FROM events WHERE kind IN ('arrived','answered','abandoned','resolved')",
    )
    [(n_csv,)] = rows(
        tmp_path / "b.db",
        "SELECT COUNT(*) FROM events WHERE kind IN ('arrived','answered','abandoned','resolved')",
    )
    assert n_log == n_csv == sum(3 if c[3] == "served" else 2 for c in calls)


# ---------------------------------------------------------------------- the command and its progress bar


def test_progress_bar_without_a_terminal_prints_plain_lines() -> None:
    """On a non-terminal the bar prints a plain line per tenth of the file, with bytes and lines/s."""
    out = io.StringIO()
    bar = ProgressBar(out, "queue_log", tty=False)
    for done in range(0, 1001, 50):
        bar.update(done * 1000, 1_000_000, done * 10)
    bar.update(1_000_000, 1_000_000, 10_000, final=True)
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12 and "\r" not in out.getvalue()
    assert lines[-1].startswith("queue_log: 100.0% 1.0/1.0 MB, 10,000 lines,") and lines[-1].endswith(
        "lines/s"
    )


def test_progress_bar_on_a_terminal_redraws_in_place() -> None:
    """On a terminal the bar redraws one line with carriage returns and ends with a newline."""
    out = io.StringIO()
    bar = ProgressBar(out, "f", tty=True, width=10)
    bar.update(5, 10, 1)
    bar.update(10, 10, 2, final=True)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "[#####-----]" in text


@pytest.mark.parametrize("columns", [200, 80, 60, 30, 12])
def test_progress_bar_on_a_terminal_fits_its_width(columns: int) -> None:
    """Each redraw fits the terminal's width less its last column (a wrapped line is not redrawn in
    place by a carriage return): the bar shrinks, then goes, then the text is cut; each redraw
    erases what a longer one left."""
    out = io.StringIO()
    bar = ProgressBar(out, "dense2m.log", tty=True, columns=lambda: columns)
    for done in range(0, 130_000_001, 13_000_000):
        bar.update(done, 130_000_000, done // 64)
    bar.update(130_000_000, 130_000_000, 2_000_000, final=True)
    draws = out.getvalue().split("\r")[1:]
    assert (
        len(draws) == 12 and all(d.endswith("\x1b[K") for d in draws[:-1]) and draws[-1].endswith("\x1b[K\n")
    )
    shown = [d.removesuffix("\n").removesuffix("\x1b[K") for d in draws]
    assert max(len(line) for line in shown) <= columns - 1
    if columns == 200:
        assert shown[-1].startswith("[" + "#" * 30 + "] dense2m.log: 100.0% 130.0/130.0 MB, 2,000,000 lines")
    if columns == 30:
        assert shown[-1] == "dense2m.log: 100.0% 130.0/130"


async def test_a_month_of_the_banks_calls_is_stored_without_a_stale_moment(tmp_path: Path) -> None:
    """A month of real calls (the shared Anonymous Bank data) imported as records: the reader process
    is done long before the engine has taken in all it read, and the stored history never shows a
    step STALE for it (the calls it read are history, not an outage)."""
    cfg = load(REPO / "config" / "anonymous-bank.toml")
    path = shared_data("anonymous-bank", "calls-1999-08.csv")
    db = tmp_path / "bank.db"
    result = await run_import(cfg, records_source(str(path), "anonymous-bank", None, None), str(db))
    assert result.events > 100_000 and result.errors == 0
    stale = "SELECT count(*) FROM transitions WHERE from_state = 'stale' OR to_state = 'stale'"
    assert rows(db, stale) == [(0,)]
    ((stored,),) = rows(db, "SELECT count(*) FROM transitions")
    assert isinstance(stored, int) and stored > 1000  # the month's pot holes are there


TWO_BANK_CALLS = (
    "vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,"
    "q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server\n"
    "AA1,1,7,0,PS,2010-08-01,9:00:00,9:00:05,5,9:00:05,9:00:30,25,AGENT,9:00:30,9:03:30,180,DANA\n"
    "AA1,2,0,0,NE,2010-08-01,9:01:00,9:01:05,5,9:01:05,9:01:50,45,HANG,0:00:00,0:00:00,0,NO_SERVER\n"
)
"""Two calls in the Anonymous Bank's columns: one answered on PS, one abandoned on NE."""


def test_import_records_command_with_the_bank_preset(tmp_path: Path) -> None:
    """`cxmon import records FILE --preset anonymous-bank` stores the calls and reports on stderr."""
    csv_path = tmp_path / "calls.csv"
    csv_path.write_text(TWO_BANK_CALLS)
    db = tmp_path / "bank.db"
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="records", file=str(csv_path), config=None, db=str(db), preset="anonymous-bank",
        mapping=None, speed=None, name=None, quiet=False,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 0
    assert rows(db, "SELECT kind, queue FROM events WHERE source = 'records:calls.csv' ORDER BY ts, id") == [
        ("arrived", "PS"),
        ("answered", "PS"),
        ("arrived", "NE"),
        ("abandoned", "NE"),
        ("resolved", "PS"),
    ]
    assert "imported 2 lines" in err.getvalue() and "100.0%" in err.getvalue()


@pytest.mark.parametrize("journey", [None, "config/anonymous-bank.toml"], ids=["default", "bank"])
def test_an_import_whose_calls_match_no_step_says_how_to_judge_them(
    tmp_path: Path, journey: str | None
) -> None:
    """The bank's calls under the default journey match none of its steps: the import says so, and
    names the command that judges them by a journey that fits; under the bank's journey it does not."""
    csv_path = tmp_path / "calls.csv"
    csv_path.write_text(TWO_BANK_CALLS)
    db = tmp_path / "bank.db"
    err = io.StringIO()
    args = import_records_args(csv_path, db)
    args.config = None if journey is None else str(REPO / journey)
    assert import_command(args, stderr=err) == 0
    notes = [line for line in err.getvalue().splitlines() if line.startswith("note:")]
    if journey is None:
        [note] = notes
        assert "2 of 2 contacts (100%) matched no step" in note and "step 'other'" in note
        assert f"cxmon stats --db {db} --config FILE" in note
    else:
        assert notes == []


def test_an_import_that_rejected_a_line_exits_3_and_says_it_is_not_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file read to the end with one bad row exits 3, not 0, and says the row is not in the
    history; the good calls around it are stored. Importing it again adds nothing and exits 0."""
    csv_path = tmp_path / "calls.csv"
    good, bad = TWO_BANK_CALLS.rsplit("AA1,2", 1)
    csv_path.write_text(good + "AA1,3,0,0,NE,2010-08-01,25:61:61,9:01:05,5\n" + "AA1,2" + bad)
    db = tmp_path / "bank.db"
    err = io.StringIO()
    assert import_command(import_records_args(csv_path, db), stderr=err) == 3
    assert f"{csv_path}:3: expected 17 columns, got 9" in caplog.text
    assert f"1 line was rejected (each reported above with its line): they are not in {db}" in err.getvalue()
    assert rows(db, "SELECT DISTINCT queue FROM events ORDER BY 1") == [("NE",), ("PS",)]
    again = io.StringIO()
    assert import_command(import_records_args(csv_path, db), stderr=again) == 0
    assert "imported 0 new events" in again.getvalue() and "0 errors" in again.getvalue()
    assert "was rejected" not in again.getvalue()


def test_import_command_reports_a_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is exit code 1 with a message, and no database is made."""
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="queue_log", file=str(tmp_path / "nope"), config=None, db=str(tmp_path / "x.db"),
        name=None, quiet=True,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 1
    assert "no such file" in err.getvalue() and not (tmp_path / "x.db").exists()


def test_import_command_says_a_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory given as the file is exit code 1 saying it is a directory, not that it does not
    exist."""
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="queue_log", file=str(tmp_path), config=None, db=str(tmp_path / "x.db"),
        name=None, quiet=True,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 1
    assert err.getvalue() == f"{tmp_path}: is a directory, not a file\n"


def test_import_command_refuses_an_unknown_preset(tmp_path: Path) -> None:
    """An unknown preset is a configuration problem: exit code 2 with the reason."""
    (tmp_path / "c.csv").write_text("a\n")
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="records", file=str(tmp_path / "c.csv"), config=None, db=str(tmp_path / "x.db"),
        preset="bank", mapping=None, speed=None, name=None, quiet=True,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 2
    assert "unknown preset 'bank'" in err.getvalue()


@pytest.mark.parametrize("kind", ["queue_log", "records"])
def test_cli_has_the_import_verbs(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cxmon import queue_log|records` parse to a handler that runs the import command with them."""
    import cxmon.importer
    from cxmon.cli import build_parser

    extra = ["--preset", "anonymous-bank"] if kind == "records" else []
    args = build_parser().parse_args(["import", kind, "f", "--db", "x.db", *extra])
    assert args.import_kind == kind and args.file == "f"
    ran: list[argparse.Namespace] = []

    def import_command(given: argparse.Namespace) -> int:
        ran.append(given)
        return 7

    monkeypatch.setattr(cxmon.importer, "import_command", import_command)
    assert args.handler(args) == 7 and ran == [args]


# ---------------------------------------------------------------------- the simulator, through a queue_log


async def test_simulated_calls_written_as_a_queue_log_import_to_the_same_counts(tmp_path: Path) -> None:
    """The real Engine runs the simulator ("max"); its voice calls, written as a queue_log and imported,
    give the same offered/answered/abandoned/resolved counts per queue as the simulator's own events."""
    from cxmon.engine import Engine

    text = CONFIG_TEXT.replace(
        "speed = 10 ", 'speed = "max"\nduration = "20m"\nstart = "2026-01-05T08:00:00Z" '
    )
    cfg = loads(text)
    sim_db = tmp_path / "sim.db"
    async with Engine(cfg, db_path=str(sim_db)) as engine:
        await engine.run()
    events = rows(
        sim_db,
        "SELECT ts, kind, contact_id, queue, wait, duration FROM events WHERE source = 'sim' "
        "AND channel = 'voice' AND kind IN ('arrived', 'answered', 'abandoned', 'resolved') ORDER BY ts, id",
    )
    assert len(events) > 100
    verb = {
        "arrived": "ENTERQUEUE",
        "answered": "CONNECT",
        "abandoned": "ABANDON",
        "resolved": "COMPLETECALLER",
    }
    lines = []
    for ts, kind, cid, queue, wait, duration in events:
        data = {
            "arrived": "|555|1",
            "answered": f"{wait or 0:g}|x|1",
            "abandoned": f"1|1|{wait or 0:g}",
            "resolved": f"0|{duration or 0:g}|1",
        }[str(kind)]
        lines.append(f"{ts}|{cid}|{queue}|SIP/1|{verb[str(kind)]}|{data}\n")
    log = tmp_path / "queue_log"
    log.write_text("".join(lines))
    result = await import_queue_log(cfg, log, tmp_path / "imported.db")
    assert result.errors == 0
    count = (
        "SELECT queue, kind, COUNT(*) FROM events "
        "WHERE kind IN ('arrived', 'answered', 'abandoned', 'resolved') AND source != 'engine' "
        "AND channel = 'voice' GROUP BY queue, kind ORDER BY queue, kind"
    )
    from_sim = rows(sim_db, count.replace("source != 'engine'", "source = 'sim'"))
    assert rows(tmp_path / "imported.db", count) == from_sim


# ---------------------------------------------------------------------- records, exactly once

BANK_HEADER = (
    "vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,"
    "q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server\n"
)


def bank_rows(first: int, n: int) -> str:
    """n bank-format calls, every other one served, numbered from ``first``, a minute apart."""
    out = []
    for i in range(first, first + n):
        h, m = divmod(8 * 60 + i, 60)
        if i % 2:
            out.append(f"AA1,{i},{i % 7},0,PS,2010-08-01,{h}:{m:02d}:00,{h}:{m:02d}:05,5,{h}:{m:02d}:05,"
                       f"{h}:{m:02d}:30,25,AGENT,{h}:{m:02d}:30,{h}:{m:02d}:50,20,DANA\n")  # fmt: skip
        else:
            out.append(f"AA1,{i},0,0,NE,2010-08-01,{h}:{m:02d}:00,{h}:{m:02d}:05,5,{h}:{m:02d}:05,"
                       f"{h}:{m:02d}:40,35,HANG,0:00:00,0:00:00,0,NO_SERVER\n")  # fmt: skip
    return "".join(out)


def import_records_args(path: Path, db: Path) -> argparse.Namespace:
    return argparse.Namespace(
        import_kind="records", file=str(path), config=None, db=str(db), preset="anonymous-bank",
        mapping=None, speed=None, name=None, quiet=True,
    )  # fmt: skip


@pytest.mark.parametrize("speed", ["600", "3000"])
def test_a_paced_import_through_a_quiet_stretch_never_shows_its_source_stale(
    tmp_path: Path, speed: str
) -> None:
    """`--speed 600` (or 3000, where one pacing step is more than stale_after of replayed time)
    over two calls twenty minutes apart: the quiet stretch between them is walked with heartbeats
    often enough in replayed time, so the stored history has no STALE transition (an unpaced import
    has none either). Before, a heartbeat came every two wall seconds, twenty minutes of replayed
    time at 600x, and the stretch went STALE and back."""
    path = tmp_path / "calls.csv"
    path.write_text(
        TWO_BANK_CALLS.splitlines(keepends=True)[0]
        + "AA1,1,7,0,PS,2010-08-01,9:00:00,9:00:05,5,9:00:05,9:00:30,25,AGENT,9:00:30,9:01:30,60,DANA\n"
        + "AA1,2,8,0,PS,2010-08-01,9:20:00,9:20:05,5,9:20:05,9:20:30,25,AGENT,9:20:30,9:21:30,60,DANA\n"
    )
    db = tmp_path / "paced.db"
    args = import_records_args(path, db)
    args.speed = speed
    assert import_command(args, stderr=io.StringIO()) == 0
    assert rows(db, "SELECT count(*) FROM events WHERE kind = 'answered'") == [(2,)]
    stale = "SELECT step, to_state FROM transitions WHERE from_state = 'stale' OR to_state = 'stale'"
    assert rows(db, stale) == []


def test_the_import_summary_says_which_rows_are_not_contacts_and_why(tmp_path: Path) -> None:
    """A bank file with a call served, one that hung up before a queue, a phantom and one answered
    with no queue or service times: the summary counts each kind left out apart, the answered one
    as not counted (before, it was silently one of those that never reached a queue), and the
    import is whole (exit 0)."""
    path = tmp_path / "calls.csv"
    path.write_text(
        TWO_BANK_CALLS.splitlines(keepends=True)[0]
        + "AA1,1,7,0,PS,2010-08-01,9:00:00,9:00:05,5,9:00:05,9:00:30,25,AGENT,9:00:30,9:01:30,60,DANA\n"
        + "AA1,2,0,0,PS,2010-08-01,9:02:00,9:02:09,9,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n"
        + "AA1,3,0,0,PS,2010-08-01,9:03:00,9:03:09,9,0:00:00,0:00:00,0,PHANTOM,0:00:00,0:00:00,0,NO_SERVER\n"
        + "AA1,4,0,0,PS,2010-08-01,9:04:00,9:04:09,9,0:00:00,0:00:00,0,AGENT,0:00:00,0:00:00,0,ELI\n"
    )
    err = io.StringIO()
    assert import_command(import_records_args(path, tmp_path / "calls.db"), stderr=err) == 0
    assert (
        "rows that are not contacts: 1 never reached a queue (not offered), 1 with outcome PHANTOM "
        "(skipped), 1 answered with no queue or service times (not counted)"
    ) in err.getvalue(), err.getvalue()


STORED = (
    "SELECT kind, contact_id, ts FROM events WHERE source = 'records:calls.csv' ORDER BY ts, kind, contact_id"
)


def test_a_records_file_without_the_columns_of_its_preset_is_refused_reading_nothing(tmp_path: Path) -> None:
    """A CSV whose header lacks columns the preset reads exits 2 with one line naming the file's
    header line, the missing columns and the preset, and writes no database (before: "1 error",
    exit 3 and "1 line was rejected", as if the other rows had been stored)."""
    path = tmp_path / "calls.csv"
    path.write_text("id,queue,enter\n1,PS,9:00:00\n2,PS,9:01:00\n")
    db = tmp_path / "h.db"
    err = io.StringIO()
    assert import_command(import_records_args(path, db), stderr=err) == 2
    [line] = err.getvalue().splitlines()
    assert line.startswith(f"{path}:1: columns not in the header: vru_entry, q_start, ")
    assert line.endswith("(--preset anonymous-bank reads them); nothing was imported")
    assert not db.exists()


def test_importing_records_twice_stores_the_calls_once(tmp_path: Path) -> None:
    """`cxmon import records FILE` run a second time on the same file adds nothing."""
    path = tmp_path / "calls.csv"
    path.write_text(BANK_HEADER + bank_rows(0, 40))
    db = tmp_path / "h.db"
    assert import_command(import_records_args(path, db), stderr=io.StringIO()) == 0
    once = rows(db, STORED)
    assert import_command(import_records_args(path, db), stderr=io.StringIO()) == 0
    assert rows(db, STORED) == once and len(once) == 20 * 3 + 20 * 2


def test_records_appended_later_are_the_only_ones_added(tmp_path: Path) -> None:
    """Rows appended after an import are added by the next one; the result equals one import of it all."""
    path = tmp_path / "calls.csv"
    path.write_text(BANK_HEADER + bank_rows(0, 30))
    db = tmp_path / "h.db"
    assert import_command(import_records_args(path, db), stderr=io.StringIO()) == 0
    with open(path, "a") as f:
        f.write(bank_rows(30, 25))
    assert import_command(import_records_args(path, db), stderr=io.StringIO()) == 0
    whole = tmp_path / "whole" / "calls.csv"
    whole.parent.mkdir()
    whole.write_text(path.read_text())
    assert import_command(import_records_args(whole, tmp_path / "w.db"), stderr=io.StringIO()) == 0
    assert rows(db, STORED) == rows(tmp_path / "w.db", STORED)


class _Killed(Exception):
    """Stands for a kill -9 right after a commit."""


class _StoreSink:
    """The engine's side of a source reduced to the store: each batch is committed with its offset."""

    def __init__(self, store: Store, name: str, limit: int) -> None:
        self.store, self.name, self.limit = store, name, limit
        self.batches = 0

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        await self.store.add(events, source=self.name, offset=offset)
        await self.store.flush()
        self.batches += 1
        if self.batches >= self.limit:
            raise _Killed

    def error(self, where: str, msg: str) -> None:
        raise AssertionError(f"{where}: {msg}")

    def set_up(self, up: bool) -> None:
        pass

    async def load_offset(self) -> Offset | None:
        return await self.store.load_offset(self.name)


async def test_interrupted_records_import_resumes_without_loss_or_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A records import killed after some committed batches resumes after them: every call stored once."""
    monkeypatch.setattr(records_source_module, "MAX_BATCH", 7)  # several batches from a small file
    path = tmp_path / "calls.csv"
    path.write_text(BANK_HEADER + bank_rows(0, 60))
    db = tmp_path / "h.db"
    for limit in (2, 3, 1, 1000):
        async with Store(db) as store:
            src = records_source(str(path), "anonymous-bank", None, None)
            with contextlib.suppress(_Killed):
                await src.run(_StoreSink(store, src.name, limit))
    stored = rows(db, STORED)
    assert len(stored) == len(set(stored)) == 30 * 3 + 30 * 2
    whole = tmp_path / "w.db"
    await run_import(config(), records_source(str(path), "anonymous-bank", None, None), str(whole))
    assert stored == rows(whole, STORED)


def _damaged_database(path: Path) -> bytes:
    """An SQLite database cut after its third page, as a full disk or a bad copy leaves one."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 200,) for _ in range(500)])
        conn.commit()
    return path.read_bytes()[: 3 * 4096]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (lambda _: b"hello, not a database\n", "file is not a database"),
        (_damaged_database, "database disk image is malformed"),
    ],
    ids=["text", "damaged"],
)
def test_an_import_into_a_file_that_is_not_a_history_says_so_in_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], content: Callable[[Path], bytes], why: str
) -> None:
    """`--db` naming a file that is not an SQLite database (or a damaged one) is exit 2 with one line
    naming the file and why, not a traceback; the file is left as it was."""
    log = tmp_path / "queue_log"
    log.write_bytes(shared_data("asterisk", "asterisk_queue_log_issue759.log").read_bytes())
    db = tmp_path / "h.db"
    data = content(tmp_path / "whole.db")
    db.write_bytes(data)
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="queue_log", file=str(log), config=None, db=str(db), name=None, quiet=True,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 2
    [line] = err.getvalue().splitlines()
    assert line.startswith(f"cxmon: {db}: cannot open the history database: ") and why in line
    assert "Traceback" not in capfd.readouterr().err
    assert db.read_bytes() == data


def test_an_import_into_a_directory_names_the_option_to_change(tmp_path: Path) -> None:
    """`--db` naming a directory is exit 2 with one line saying it is one and which option to change."""
    log = tmp_path / "queue_log"
    log.write_bytes(shared_data("asterisk", "asterisk_queue_log_issue759.log").read_bytes())
    err = io.StringIO()
    args = argparse.Namespace(
        import_kind="queue_log", file=str(log), config=None, db=str(tmp_path), name=None, quiet=True,
    )  # fmt: skip
    assert import_command(args, stderr=err) == 2
    assert err.getvalue() == (
        f"cxmon: {tmp_path}: cannot write the history database: is a directory; check its permissions, "
        "or pick another file with --db FILE\n"
    )


def test_an_import_of_a_grown_queue_log_counts_only_the_new_lines_as_imported(tmp_path: Path) -> None:
    """Imported again after it grew, a queue_log's summary counts as imported only the lines after
    the stored offset, and says how many before it were read again to resume."""
    log = tmp_path / "queue_log"
    log.write_text("100|c1|sales|NONE|ENTERQUEUE||555|1\n110|c2|sales|NONE|ENTERQUEUE||556|1\n")
    db = tmp_path / "h.db"
    args = argparse.Namespace(
        import_kind="queue_log", file=str(log), config=None, db=str(db), name=None, quiet=True,
    )  # fmt: skip
    first = io.StringIO()
    assert import_command(args, stderr=first) == 0
    assert first.getvalue().startswith(f"imported 2 lines from {log}: 2 events, 0 errors, ")
    with open(log, "a") as f:
        f.write("130|c1|sales|NONE|ABANDON|1|1|30\n")
    again = io.StringIO()
    assert import_command(args, stderr=again) == 0
    assert again.getvalue().startswith(
        f"imported 1 new line from {log} (after the 2 imported before, read again to resume): "
        "1 event, 0 errors, "
    )


def test_the_summary_counts_one_line_one_event_and_one_error_in_the_singular(tmp_path: Path) -> None:
    """A queue_log of one good line and one bad one: "imported 2 lines …: 1 event, 1 error" and
    "1 line was rejected" (before: "1 events, 1 errors")."""
    log = tmp_path / "queue_log"
    log.write_text("100|c1|sales|NONE|ENTERQUEUE||555|1\ngarbage\n")
    args = argparse.Namespace(
        import_kind="queue_log", file=str(log), config=None, db=str(tmp_path / "h.db"), name=None, quiet=True,
    )  # fmt: skip
    err = io.StringIO()
    assert import_command(args, stderr=err) == 3
    assert f"imported 2 lines from {log}: 1 event, 1 error, " in err.getvalue()
    assert "1 line was rejected" in err.getvalue()


def test_a_records_import_run_again_counts_the_events_it_skipped(tmp_path: Path) -> None:
    """Imported again, a records file's summary counts the new events as imported and says how
    many events of the rows read again were imported before and skipped."""
    path = tmp_path / "calls.csv"
    path.write_text(BANK_HEADER + bank_rows(0, 4))
    db = tmp_path / "h.db"
    first = io.StringIO()
    assert import_command(import_records_args(path, db), stderr=first) == 0
    assert first.getvalue().startswith(f"imported 4 lines from {path}: 10 events, 0 errors, ")
    with open(path, "a") as f:
        f.write(bank_rows(4, 2))
    again = io.StringIO()
    assert import_command(import_records_args(path, db), stderr=again) == 0
    assert again.getvalue().startswith(
        f"imported 5 new events from {path} (6 lines read; the 10 events of them imported before "
        "were skipped): 0 errors, "
    )


def test_a_paced_import_neither_stores_nor_counts_its_heartbeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paced import (`--speed N`) beats through the quiet stretch between two calls; the beats
    keep the source alive but are not events: the stored events and the count reported are the
    unpaced import's (before, each beat was stored in `events` as a "heartbeat" row and counted)."""
    monkeypatch.setattr(records_source_module, "HEARTBEAT_EVERY", 0.0)
    csv_path = tmp_path / "calls.csv"
    csv_path.write_text(TWO_BANK_CALLS)
    counts = []
    for speed in (None, "60"):
        db = tmp_path / f"bank-{speed}.db"
        err = io.StringIO()
        args = import_records_args(csv_path, db)
        args.speed, args.quiet = speed, False
        assert import_command(args, stderr=err) == 0
        assert rows(db, "SELECT count(*) FROM events WHERE kind = 'heartbeat'") == [(0,)]
        counts.append((rows(db, "SELECT count(*) FROM events"), err.getvalue().count("5 events")))
    assert counts == [([(5,)], 1), ([(5,)], 1)], counts
