"""Benchmark: the store's writer process (apsw) against the same commits through the stdlib's sqlite3.

A backfill (``cxmon import``) commits its rows in a child process, ``python -m cxmon.store_writer``.
This imports a real-shaped queue_log once (the bank month of bench/bank_queue_log.py, tiled, or the
dense log of bench/queue_log.py), reads back the rows it stored (events and minute figures), and
sends them again, as the importer sends them (marshalled batches of rows, a frame at a time), to

- cxmon's writer process, and
- a peer: a child that commits the same frames with the same statements and settings through the
  standard library's ``sqlite3``, the module the rest of cxmon reads and writes with.

Each is run ``--runs`` times, alternately; it prints rows/s, the child's CPU time and the ratio
cxmon/peer (above 1: cxmon's writer is faster). Both databases are checked to hold the same rows.

Usage: ``python bench/store_writer.py [--shape bank|dense|both] [--months N] [--lines N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import marshal
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bank_queue_log  # noqa: E402  (the converters beside this file)
from queue_log import generate  # noqa: E402

from cxmon.store_schema import (  # noqa: E402
    MIGRATIONS,
    SELECT_ROWS,
)
from cxmon.store_writer import Frame, commit_frame  # noqa: E402

BATCH = 2048
"""Rows in one marshalled batch (the size the importer's reader sends)."""
FRAME = 16
"""Batches in one frame (one commit)."""


def _peer_child(path: str) -> None:
    """The peer: cxmon.store_writer's protocol and statements, through the standard library's sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA cache_size=-65536")
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while len(head := inp.read(8)) == 8:
        commit_frame(conn, marshal.loads(inp.read(int.from_bytes(head, "big"))))
        out.write(b"ok\n")
        out.flush()
    conn.close()


def _frames(db: Path) -> tuple[list[Frame], int]:
    """The rows an import stored in ``db``, as the frames that would commit them again."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(SELECT_ROWS, (-1e18, 1e18)).fetchall()
        minutes = conn.execute(
            "SELECT minute, step, channel, queue, state, figures FROM snapshots"
        ).fetchall()
    blobs = [marshal.dumps(rows[i : i + BATCH]) for i in range(0, len(rows), BATCH)]
    frames: list[Frame] = []
    n = max(1, -(-len(blobs) // FRAME))
    per = -(-len(minutes) // n)
    for k in range(n):
        frames.append(
            (blobs[k * FRAME : (k + 1) * FRAME], [], [], [], minutes[k * per : (k + 1) * per], False)
        )
    return frames, len(rows) + len(minutes)


def _write(cmd: list[str], db: Path, frames: list[Frame]) -> tuple[float, float]:
    """Send ``frames`` to the writer child ``cmd DB``; return (wall seconds, the child's CPU seconds)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.executescript("".join(MIGRATIONS))
        conn.execute("DROP INDEX events_customer")  # as a backfill: built once, at the end
    payloads = [marshal.dumps(frame) for frame in frames]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([*cmd, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    for payload in payloads:
        proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
        proc.stdin.flush()
        reply = proc.stdout.readline()
        if reply != b"ok\n":
            raise SystemExit(f"{cmd[-1]}: {reply.decode(errors='replace').strip() or 'exited'}")
    proc.stdin.close()
    proc.wait()
    proc.stdout.close()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _digest(db: Path) -> str:
    """A digest of every stored event and minute row, to check both writers stored the same."""
    h = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        for row in conn.execute("SELECT * FROM events ORDER BY id"):
            h.update(repr(row).encode())
        for row in conn.execute("SELECT * FROM snapshots ORDER BY minute, step, channel, queue"):
            h.update(repr(row).encode())
    return h.hexdigest()


def compare(shape: str, log: Path, work: Path, runs: int, config: list[str]) -> None:
    """Import ``log`` once for its rows, then time both writers committing them again."""
    source = work / f"{shape}-import.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cxmon",
            "import",
            "queue_log",
            str(log),
            "--db",
            str(source),
            "--quiet",
            *config,
        ],
        check=True,
        cwd=ROOT,
    )
    frames, count = _frames(source)
    writers: dict[str, list[str]] = {
        "cxmon store_writer (apsw)": [sys.executable, "-m", "cxmon.store_writer"],
        "peer (stdlib sqlite3)": [sys.executable, __file__, "--peer-child"],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
    digests: dict[str, str] = {}
    for _ in range(runs):
        for name, cmd in writers.items():
            db = work / f"{shape}-{len(digests)}.db"
            times[name].append(_write(cmd, db, frames))
            digests.setdefault(name, _digest(db))
    if len(set(digests.values())) != 1:
        raise SystemExit(f"[{shape}] the two writers stored different rows")
    cpu: dict[str, float] = {}
    for name, measured in times.items():
        wall = statistics.median(w for w, _ in measured)
        cpu[name] = statistics.median(c for _, c in measured)
        print(
            f"[{shape}] {name:27s} {count / wall:>10,.0f} rows/s  {wall:5.2f} s  CPU {cpu[name]:5.2f} s"
            f"  (median of {runs}; {count:,} rows in {len(frames)} commits)"
        )
    ours, peer = cpu.values()
    print(f"[{shape}] ratio peer CPU / cxmon CPU: {peer / ours:.2f}x")


def main() -> int:
    """Build the logs, import them once, and compare the two writers on their rows."""
    if sys.argv[1:2] == ["--peer-child"]:
        _peer_child(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("bank", "dense", "both"), default="both")
    parser.add_argument("--months", type=int, default=4, help="months of the bank log")
    parser.add_argument("--lines", type=int, default=400_000, help="lines of the dense log")
    parser.add_argument("--runs", type=int, default=3, help="runs of each writer, alternately")
    args = parser.parse_args()
    if args.shape in ("bank", "both") and not bank_queue_log.BANK_CSV.exists():
        print(f"bank: {bank_queue_log.BANK_CSV} is missing (clone shared/ beside the repo)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cxmon-bench-writer-") as tmp:
        work = Path(tmp)
        if args.shape in ("bank", "both"):
            log = work / "bank.log"
            bank_queue_log.write(log, args.months)
            compare("bank", log, work, args.runs, ["--config", str(ROOT / "config" / "anonymous-bank.toml")])
        if args.shape in ("dense", "both"):
            log = work / "dense.log"
            generate(log, args.lines)
            compare("dense", log, work, args.runs, [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
