"""Exactly once: `cxmon serve` tailing a queue_log is SIGKILLed again and again; nothing lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectors.queue_log.parser import QueueLogParser

ROOT = Path(__file__).resolve().parents[2]
NAME = "pbx"

CONFIG = """
[monitor]
tick = "200ms"
windows = ["5m"]
lost_after = "4h"

[store]
path = "unused.db"
flush_interval = "50ms"
retention = "36500d"                 # the log's calls are from 2023: keep them

[prometheus]
listen = "127.0.0.1:0"
enabled = false

[hub]
listen = "127.0.0.1:0"
enabled = false

[journey]
channels = ["voice"]

[[journey.steps]]
name = "sales"
match = [{ channel = "voice", queue = "sales" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  breach = "60s"

[[collectors]]
type = "queue_log"
name = "pbx"
path = "PATH"
start = "beginning"
poll_interval = "20ms"
batch = 50
"""


def make_log(n_calls: int, rng: random.Random) -> bytes:
    """A queue_log of ``n_calls`` calls (joins, answers, completions, abandons, members, noise)."""
    lines = ["1700000000|NONE|sales|SIP/1|ADDMEMBER|", "1700000000|NONE|sales|SIP/2|ADDMEMBER|"]
    t = 1_700_000_000
    for i in range(n_calls):
        t += rng.randrange(1, 20)
        cid = f"{t}.{i}"
        lines.append(f"{t}|{cid}|sales|NONE|DID|4000")
        lines.append(f"{t}|{cid}|sales|NONE|ENTERQUEUE||0{rng.randrange(10**8)}|1")
        wait = rng.randrange(0, 90)
        if rng.random() < 0.25:
            lines.append(f"{t + wait}|{cid}|sales|NONE|ABANDON|1|1|{wait}")
        else:
            agent = rng.choice(["SIP/1", "SIP/2"])
            lines.append(f"{t + wait}|{cid}|sales|{agent}|CONNECT|{wait}|x|1")
            lines.append(f"{t + wait + 60}|{cid}|sales|{agent}|COMPLETECALLER|{wait}|60|1")
    return ("\n".join(lines) + "\n").encode()


def stored(db: Path) -> tuple[list[tuple[object, ...]], int]:
    """The collector's events in commit order, and its committed offset."""
    if not db.exists():
        return [], 0
    try:
        return _stored(db)
    except sqlite3.OperationalError:  # the tables are not made yet
        return [], 0


def _stored(db: Path) -> tuple[list[tuple[object, ...]], int]:
    with sqlite3.connect(db, timeout=10) as conn:
        events = conn.execute(
            "SELECT kind, contact_id, ts, wait, duration, agents_available FROM events "
            "WHERE source = ? AND kind != 'heartbeat' ORDER BY id",
            (NAME,),
        ).fetchall()
        row = conn.execute("SELECT position FROM source_offsets WHERE source = ?", (NAME,)).fetchone()
    return events, row[0] if row else 0


def start(config: Path, db: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "cxmon", "serve", "--config", str(config), "--db", str(db)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def test_kill_9_at_random_points_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    """20 rounds of SIGKILL while a writer appends (lines cut mid-way too): every event is stored once."""
    rng = random.Random(20240603)
    content = make_log(1500, rng)
    qlog = tmp_path / "queue_log"
    qlog.write_bytes(b"")
    config = tmp_path / "cxmon.toml"
    config.write_text(CONFIG.replace("PATH", str(qlog)))
    db = tmp_path / "history.db"
    errlog = tmp_path / "serve.log"
    written = 0
    kills = 0
    for _round in range(20):
        proc = start(config, db, errlog)
        deadline = time.monotonic() + rng.uniform(0.4, 2.0)
        while time.monotonic() < deadline:
            step = rng.randrange(1, 500)  # arbitrary byte counts: lines are often cut in two
            with open(qlog, "ab") as f:
                f.write(content[written : written + step])
            written = min(written + step, len(content))
            time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is not None:
            pytest.fail(f"cxmon serve exited early ({proc.returncode}):\n{errlog.read_text()[-3000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    with open(qlog, "ab") as f:
        f.write(content[written:])
    proc = start(config, db, errlog)
    try:
        deadline = time.monotonic() + 120
        while stored(db)[1] < len(content):
            if proc.poll() is not None:
                pytest.fail(f"cxmon serve exited ({proc.returncode}):\n{errlog.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"offset stuck at {stored(db)[1]} of {len(content)}")
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    parser = QueueLogParser(NAME)
    parser.feed(content)
    expected = [
        (e.kind.value, e.contact_id, e.ts, e.wait, e.duration, e.agents_available) for e in parser.out
    ]
    events, offset = stored(db)
    assert kills == 20 and offset == len(content)
    assert len(events) == len(expected)
    assert events == expected


def wait_for_offset(
    db: Path, want: int, proc: subprocess.Popen[bytes], errlog: Path, events: int = 0
) -> None:
    """Wait until the committed offset is ``want`` and at least ``events`` events are stored."""
    deadline = time.monotonic() + 120
    while (got := stored(db))[1] != want or len(got[0]) < events:
        if proc.poll() is not None:
            pytest.fail(f"cxmon serve exited ({proc.returncode}):\n{errlog.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            got = stored(db)
            pytest.fail(f"offset {got[1]} of {want}, {len(got[0])} of {events} events: stuck")
        time.sleep(0.1)


def test_copytruncate_while_killed_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    """`cxmon serve` is SIGKILLed; lines are appended, the log is copied to queue_log.1 and truncated,
    new lines are written; after a restart every event is stored exactly once."""
    import shutil

    rng = random.Random(759)
    content = make_log(600, rng)
    lines = content.splitlines(keepends=True)
    first, second, third = (b"".join(lines[a:b]) for a, b in ((0, 800), (800, 1600), (1600, len(lines))))
    qlog = tmp_path / "queue_log"
    qlog.write_bytes(first)
    config = tmp_path / "cxmon.toml"
    config.write_text(CONFIG.replace("PATH", str(qlog)))
    db = tmp_path / "history.db"
    errlog = tmp_path / "serve.log"
    proc = start(config, db, errlog)
    try:
        wait_for_offset(db, len(first), proc, errlog)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with open(qlog, "ab") as f:
        f.write(second)  # never read before the rotation
    shutil.copyfile(qlog, tmp_path / "queue_log.1")
    os.truncate(qlog, 0)
    with open(qlog, "ab") as f:
        f.write(third)
    parser = QueueLogParser(NAME)
    parser.feed(first + second)
    parser.new_file()
    parser.feed(third)
    expected = [
        (e.kind.value, e.contact_id, e.ts, e.wait, e.duration, e.agents_available) for e in parser.out
    ]
    proc = start(config, db, errlog)
    try:
        wait_for_offset(db, len(third), proc, errlog, events=len(expected))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    events, _ = stored(db)
    assert len(events) == len(expected)
    assert events == expected
