"""One process at a time feeds a source into a database: real `cxmon import` and `cxmon serve` processes."""

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
from cxmon.errors import StartupError
from cxmon.source_lock import SourceLocks, lock_path

ROOT = Path(__file__).resolve().parents[1]

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
enabled = false

[http]
listen = "127.0.0.1:0"

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
"""


def make_log(n_calls: int, seed: int) -> bytes:
    """A queue_log of ``n_calls`` calls (joins, answers and completions, abandons)."""
    rng = random.Random(seed)
    lines = ["1700000000|NONE|sales|SIP/1|ADDMEMBER|"]
    t = 1_700_000_000
    for i in range(n_calls):
        t += rng.randrange(1, 20)
        cid = f"{t}.{i}"
        lines.append(f"{t}|{cid}|sales|NONE|ENTERQUEUE||0{rng.randrange(10**8)}|1")
        wait = rng.randrange(0, 90)
        if rng.random() < 0.25:
            lines.append(f"{t + wait}|{cid}|sales|NONE|ABANDON|1|1|{wait}")
        else:
            lines.append(f"{t + wait}|{cid}|sales|SIP/1|CONNECT|{wait}|x|1")
            lines.append(f"{t + wait + 60}|{cid}|sales|SIP/1|COMPLETECALLER|{wait}|60|1")
    return ("\n".join(lines) + "\n").encode()


def expected(content: bytes, name: str) -> list[tuple[object, ...]]:
    """The events the file holds, as :func:`stored` reads them."""
    parser = QueueLogParser(name)
    parser.feed(content)
    return sorted((e.kind.value, e.contact_id, e.ts) for e in parser.out)


def stored(db: Path, source: str) -> list[tuple[object, ...]]:
    """The source's events in the database (a duplicate shows up twice)."""
    with sqlite3.connect(db, timeout=10) as conn:
        rows = conn.execute(
            "SELECT kind, contact_id, ts FROM events WHERE source = ? AND kind != 'heartbeat'", (source,)
        ).fetchall()
    return sorted(rows)


def cxmon(*args: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "cxmon", *args, "--config", str(config)]


def start(*args: str, config: Path) -> subprocess.Popen[bytes]:
    """``cxmon ARGS`` started in the background, its stderr kept."""
    return subprocess.Popen(
        cxmon(*args, config=config), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def run(*args: str, config: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``cxmon ARGS`` run to its end, its output kept."""
    return subprocess.run(
        cxmon(*args, config=config), cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def wait_for_holder(db: Path, source: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until ``proc`` holds ``source``'s lock in ``db`` (its pid is in the lock file)."""
    path = lock_path(str(db), source)
    assert path is not None
    deadline = time.monotonic() + 60
    while True:
        try:
            if path.read_text().strip() == str(proc.pid):
                return
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before it was seen holding the lock of {source}")
        if time.monotonic() > deadline:
            pytest.fail(f"{source}'s lock was not taken")
        time.sleep(0.005)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie has closed its files, so it counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return found


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path, bytes]:
    """(config, database, queue_log file, its content): a queue_log long enough to take a while."""
    content = make_log(20_000, 7)
    qlog = tmp_path / "calls.log"
    qlog.write_bytes(content)
    config = tmp_path / "cxmon.toml"
    config.write_text(CONFIG.replace("PATH", str(tmp_path / "live.log")))
    return config, tmp_path / "history.db", qlog, content


def test_a_second_import_of_a_file_being_imported_stops_and_nothing_is_stored_twice(
    setup: tuple[Path, Path, Path, bytes],
) -> None:
    """While one import feeds a file into a database, a second import of it exits 2 with one line
    naming the source, the database and the first one's pid, before reading anything; the first
    goes on, and the database holds each of the file's events once."""
    config, db, qlog, content = setup
    source = f"queue_log:{qlog.name}"
    first = start("import", "queue_log", str(qlog), "--db", str(db), "--quiet", config=config)
    try:
        wait_for_holder(db, source, first)
        first.send_signal(signal.SIGSTOP)  # held mid-import, whatever the machine's speed
        second = run("import", "queue_log", str(qlog), "--db", str(db), "--quiet", config=config)
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err.decode()
    assert second.returncode == 2
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr
    assert f"source {source} is already being fed into {db} by process {first.pid}" in lines[0]
    assert stored(db, source) == expected(content, source)


def test_an_import_killed_with_sigkill_leaves_no_lock_behind(setup: tuple[Path, Path, Path, bytes]) -> None:
    """An import killed with SIGKILL mid-file keeps no one out: once it and its child processes are
    gone, the next import takes the source, goes on from the stored offset and ends with each event once."""
    config, db, qlog, content = setup
    source = f"queue_log:{qlog.name}"
    args = cxmon("import", "queue_log", str(qlog), "--db", str(db), "--quiet", config=config)
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_holder(db, source, first)
    first.send_signal(signal.SIGSTOP)  # its children cannot end while it is stopped: list them
    helpers = children(first.pid)
    first.kill()
    first.wait()
    deadline = time.monotonic() + 60
    while not all(gone(pid) for pid in helpers):  # the writer commits the batch in hand, then ends
        assert time.monotonic() < deadline, "the import's child processes did not end"
        time.sleep(0.01)
    path = lock_path(str(db), source)
    assert path is not None and path.exists()  # nobody removed it: the kernel let go of the lock
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert stored(db, source) == expected(content, source)
    assert not path.exists()  # removed by the import that ended


def test_serve_and_an_import_of_another_source_share_a_database(
    setup: tuple[Path, Path, Path, bytes], tmp_path: Path
) -> None:
    """`cxmon serve` following its queue_log and an import of another file into the same database
    both run: each holds its own source's lock, and each source's events are stored once."""
    config, db, qlog, content = setup
    live = make_log(300, 8)
    (tmp_path / "live.log").write_bytes(live)
    serve = start("serve", "--db", str(db), config=config)
    try:
        wait_for_holder(db, "pbx", serve)
        imported = run("import", "queue_log", str(qlog), "--db", str(db), "--quiet", config=config)
        assert imported.returncode == 0, imported.stderr
        deadline = time.monotonic() + 60
        while len(stored(db, "pbx")) < len(expected(live, "pbx")):
            assert serve.poll() is None and time.monotonic() < deadline, "serve did not store its file"
            time.sleep(0.05)
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err.decode()[-3000:]
    assert stored(db, "pbx") == expected(live, "pbx")
    assert stored(db, f"queue_log:{qlog.name}") == expected(content, f"queue_log:{qlog.name}")


def test_an_import_under_the_name_serve_reads_stops(
    setup: tuple[Path, Path, Path, bytes], tmp_path: Path
) -> None:
    """An import given the source name a running `cxmon serve` feeds (``--name pbx``) exits 2 with
    one line naming the source and the database, and stores nothing."""
    config, db, qlog, _ = setup
    (tmp_path / "live.log").write_bytes(b"")
    serve = start("serve", "--db", str(db), config=config)
    try:
        wait_for_holder(db, "pbx", serve)
        imported = run(
            "import", "queue_log", str(qlog), "--db", str(db), "--name", "pbx", "--quiet", config=config
        )
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert imported.returncode == 2
    assert imported.stderr.splitlines() == [imported.stderr.strip()]
    assert f"source pbx is already being fed into {db} by process {serve.pid}" in imported.stderr
    assert stored(db, "pbx") == []


def test_a_second_serve_on_the_same_database_stops_before_it_binds(
    setup: tuple[Path, Path, Path, bytes], tmp_path: Path
) -> None:
    """A second `cxmon serve` with the same collector on the same database exits 2 with one line,
    before it binds any port or reads anything (no traceback, no "serving" line)."""
    config, db, _, _ = setup
    (tmp_path / "live.log").write_bytes(make_log(50, 9))
    first = start("serve", "--db", str(db), config=config)
    try:
        wait_for_holder(db, "pbx", first)
        second = run("serve", "--db", str(db), config=config, timeout=60)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"cxmon: source pbx is already being fed into {db} by process {first.pid} "
        f"(lock {lock_path(str(db), 'pbx')}); one process at a time feeds a source into a database, "
        "or every event would be stored twice: wait for that one to end, or stop it"
    ]


def test_a_source_name_is_one_safe_file_name_of_its_own(tmp_path: Path) -> None:
    """Source names that differ only in characters a file name cannot hold get different lock
    files beside the database, each one plain file name of bounded length."""
    db = str(tmp_path / "h.db")
    names = ["queue_log:a/b.log", "queue_log_a_b.log", "queue_log:a:b.log", "x" * 400, "x" * 401]
    paths = [lock_path(db, name) for name in names]
    assert len({str(p) for p in paths}) == len(names)
    for path in paths:
        assert path is not None and path.parent == tmp_path and path.name.startswith("h.db-")
        assert len(path.name) < 200
    assert lock_path(":memory:", "pbx") is None


def test_the_locks_of_an_engine_are_all_or_none(tmp_path: Path) -> None:
    """When one of its sources is held elsewhere, an engine holds none of the others either."""
    db = str(tmp_path / "h.db")
    other = SourceLocks(db)
    other.take(["b"])
    mine = SourceLocks(db)
    with pytest.raises(
        StartupError, match=f"source b is already being fed into {db} by process {os.getpid()}"
    ):
        mine.take(["a", "b"])
    assert mine.fds == ()
    again = SourceLocks(db)
    again.take(["a"])  # a was let go
    again.release()
    other.release()


def test_a_lock_file_another_user_left_behind_keeps_no_one_out(tmp_path: Path) -> None:
    """A lock file this user may not write, left by another user's process that was killed, is
    taken all the same (flock needs only to read it), replaced by one of this user's own, and
    removed when the import ends."""
    from tests.test_startup_errors import cxmon as run_cxmon

    qlog = tmp_path / "calls.log"
    qlog.write_bytes(make_log(50, 10))
    db = tmp_path / "history.db"
    left = lock_path(str(db), "queue_log:calls.log")
    assert left is not None
    left.write_text("999999\n")
    left.chmod(0o444)
    config = tmp_path / "cxmon.toml"
    config.write_text(CONFIG.replace("PATH", str(tmp_path / "live.log")))
    proc = run_cxmon(
        "import", "queue_log", str(qlog), "--db", str(db), "--config", str(config), "--quiet", drop_root=True
    )
    assert proc.returncode == 0, proc.stderr
    assert stored(db, "queue_log:calls.log") == expected(make_log(50, 10), "queue_log:calls.log")
    assert not left.exists()
