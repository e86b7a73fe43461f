"""Benchmark: `cxmon import queue_log` (store on) against Google's mtail on the same log, two shapes.

* dense: a seeded, generated Asterisk queue_log of 2,000,000 lines over about a week (FreePBX-style
  DID lines, rings that are not answered, pauses, transfers, abandons and timeouts);
* bank: a real contact centre's shape, sparse and long: the Anonymous Bank month of the shared
  data written as a queue_log by bench/bank_queue_log.py and tiled over 28 months (about
  2,000,000 lines over two and a half years), imported with config/anonymous-bank.toml (its
  steps and thresholds).

For each shape, in the same run and alternately:

* ``cxmon import queue_log FILE --db DB`` in a subprocess: parse, aggregate, judge, store every event;
* ``mtail --one_shot`` with an equivalent program (lines per queue and verb, histogram of waits).

Each runs ``--runs`` times; prints the median lines per second of both (with the range, peak RSS
and CPU seconds) and the ratio of the medians. It names the build it measured (``cxmon --version``:
compiled with mypyc, or pure Python); ``--also-pure`` times the pure-Python path too
(``CXMON_PURE=1``), alternately with the others, and prints its ratio.
Usage: ``python bench/queue_log.py [--lines N] [--months N] [--runs N] [--shape dense|bank|both]
[--also-pure]``.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bank_queue_log  # noqa: E402  (the converter beside this file)

BANK_CONFIG = ROOT / "config" / "anonymous-bank.toml"

MTAIL_PROG = r"""
counter cxmon_bench_lines_total by queue, verb
histogram cxmon_bench_wait_seconds by queue buckets 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800

/^\d+\|[^|]*\|(?P<queue>[^|]*)\|[^|]*\|(?P<verb>[A-Z]+)/ {
  cxmon_bench_lines_total[$queue][$verb]++
}
/^\d+\|[^|]*\|(?P<queue>[^|]*)\|[^|]*\|CONNECT\|(?P<wait>\d+)/ {
  cxmon_bench_wait_seconds[$queue] = $wait
}
/^\d+\|[^|]*\|(?P<queue>[^|]*)\|[^|]*\|(ABANDON|EXITWITHTIMEOUT|EXITEMPTY)\|[^|]*\|[^|]*\|(?P<wait>\d+)/ {
  cxmon_bench_wait_seconds[$queue] = $wait
}
"""

QUEUES = ["sales", "billing", "tech", "tier2", "retention", "1501", "1509", "vip"]


def generate(path: Path, lines: int, seed: int = 42) -> int:
    """Write a queue_log of about ``lines`` lines; return the exact count."""
    rng = random.Random(seed)
    out: list[tuple[float, int, str]] = []
    seq = 0
    t0 = 1_717_000_000
    agents = {q: [f"PJSIP/{7000 + i * 10 + j}" for j in range(8)] for i, q in enumerate(QUEUES)}

    def put(ts: float, text: str) -> None:
        nonlocal seq
        seq += 1
        out.append((ts, seq, text))

    for q, members in agents.items():
        for a in members:
            put(t0, f"{t0}|NONE|{q}|{a}|ADDMEMBER|")
    t = float(t0)
    call = 0
    while seq < lines:
        t += rng.expovariate(1 / 1.5)
        call += 1
        q = rng.choice(QUEUES)
        cid = f"{int(t)}.{call}"
        ts = int(t)
        caller = f"0{rng.randrange(10**9):09d}"
        put(ts, f"{ts}|{cid}|{q}|NONE|DID|{rng.randrange(10**6)}")
        put(ts, f"{ts}|{cid}|{q}|NONE|ENTERQUEUE||{caller}|1")
        wait = int(rng.expovariate(1 / 35))
        agent = rng.choice(agents[q])
        for r in range(rng.choice((0, 0, 0, 1, 2))):
            rang = ts + min(wait, 15 * (r + 1))
            put(rang, f"{rang}|{cid}|{q}|{agent}|RINGNOANSWER|15000")
        fate = rng.random()
        if fate < 0.12:
            put(ts + wait, f"{ts + wait}|{cid}|{q}|NONE|ABANDON|1|1|{wait}")
            continue
        if fate < 0.14:
            put(ts + wait, f"{ts + wait}|{cid}|{q}|NONE|EXITWITHTIMEOUT|1|1|{wait}")
            continue
        put(ts + wait, f"{ts + wait}|{cid}|{q}|{agent}|CONNECT|{wait}|{cid}9|{rng.randrange(1, 9)}")
        talk = int(rng.lognormvariate(5.2, 0.6))
        end = ts + wait + talk
        if fate < 0.18:
            put(end, f"{end}|{cid}|{q}|{agent}|BLINDTRANSFER|2000|from-internal|{wait}|{talk}|1")
        else:
            verb = "COMPLETECALLER" if fate < 0.6 else "COMPLETEAGENT"
            put(end, f"{end}|{cid}|{q}|{agent}|{verb}|{wait}|{talk}|1")
        if rng.random() < 0.02:
            put(end, f"{end}|NONE|{q}|{agent}|PAUSE|lunch")
            put(end + 900, f"{end + 900}|NONE|{q}|{agent}|UNPAUSE|")
    heapq.heapify(out)
    with open(path, "w") as f:
        n = 0
        while out and n < lines:
            f.write(heapq.heappop(out)[2] + "\n")
            n += 1
    return n


def run_measured(cmd: list[str], **kwargs: Any) -> tuple[float, float | None, float | None, str]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB or None, CPU seconds or None, its stdout).

    Peak RSS and CPU time (user + system, the command and every process it waited for) come from
    GNU time (``/usr/bin/time``) when it is installed: the rusage of a child forked from this
    process would count the generator's memory copied into the fork.
    """
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = [gnu_time, "-f", "%M %U %S", "-o", rss_file.name, *cmd] if gnu_time else cmd
        started = time.perf_counter()
        result = subprocess.run(full, stdout=subprocess.PIPE, text=True, check=True, **kwargs)
        elapsed = time.perf_counter() - started
        text = rss_file.read().strip().splitlines()
    rss = cpu = None
    if gnu_time and text:
        fields = text[-1].split()
        if len(fields) == 3:
            rss, cpu = int(fields[0]) / 1024, float(fields[1]) + float(fields[2])
    return elapsed, rss, cpu, result.stdout


def cxmon_env(pure: bool) -> dict[str, str]:
    """The environment of a cxmon run: the installed build, or pure Python with ``CXMON_PURE=1``."""
    env = {k: v for k, v in os.environ.items() if k != "CXMON_PURE"}
    return env | {"CXMON_PURE": "1"} if pure else env


def build_name(pure: bool = False) -> str:
    """The build a cxmon run measures, as ``cxmon --version`` names it."""
    cmd = [sys.executable, "-m", "cxmon", "--version"]
    out = subprocess.run(cmd, cwd=ROOT, env=cxmon_env(pure), stdout=subprocess.PIPE, text=True, check=True)
    return out.stdout.strip().partition(", ")[2]


def time_cxmon(
    log: Path, db: Path, config: Path | None = None, pure: bool = False
) -> tuple[float, float | None, float | None]:
    """Wall seconds, peak RSS (MB) and CPU seconds of `cxmon import queue_log` with the store on."""
    cmd = [sys.executable, "-m", "cxmon", "import", "queue_log", str(log), "--db", str(db), "--quiet"]
    if config is not None:
        cmd += ["--config", str(config)]
    elapsed, rss, cpu, _ = run_measured(cmd, cwd=ROOT, env=cxmon_env(pure), stderr=subprocess.DEVNULL)
    return elapsed, rss, cpu


def time_mtail(log: Path, work: Path) -> tuple[float, float | None, float | None] | None:
    """Wall seconds, peak RSS (MB) and CPU seconds of mtail --one_shot, or None without mtail."""
    mtail = shutil.which("mtail")
    if mtail is None:
        return None
    progs = work / "progs"
    progs.mkdir(exist_ok=True)
    (progs / "queue_log.mtail").write_text(MTAIL_PROG)
    cmd = [mtail, "--one_shot", "--one_shot_format", "prometheus", "--progs", str(progs), "--logs", str(log),
           "--logtostderr=false", "--disable_fsnotify"]  # fmt: skip
    elapsed, rss, cpu, out = run_measured(cmd, stderr=subprocess.DEVNULL)
    if "cxmon_bench_lines_total" not in out:
        raise RuntimeError("mtail printed no metrics")
    return elapsed, rss, cpu


def _mb(rss: float | None) -> str:
    return "   ?" if rss is None else f"{rss:4.0f} MB"


def _cpu(cpu: float | None) -> str:
    return "?" if cpu is None else f"{cpu:.1f} s"


def _median(runs: list[tuple[float, float | None, float | None]], n: int) -> tuple[str, float]:
    """The median run as a printed line (with the range of all runs), and its wall seconds."""
    wall, rss, cpu = sorted(runs)[len(runs) // 2]
    spread = f"{n / max(r[0] for r in runs):,.0f}–{n / min(r[0] for r in runs):,.0f}"
    line = (
        f"{wall:6.1f} s  {n / wall:>10,.0f} lines/s (median of {len(runs)}: {spread})"
        f"  peak RSS {_mb(rss)}  CPU {_cpu(cpu)}"
    )
    return line, wall


def compare(
    name: str, log: Path, n: int, work: Path, runs: int, config: Path | None, also_pure: bool = False
) -> None:
    """Import ``log`` with cxmon and read it with mtail, alternately; print both and the ratio."""
    # Alternately, several times: this machine's speed wanders by ±15 % from run to run.
    ours: list[tuple[float, float | None, float | None]] = []
    pure: list[tuple[float, float | None, float | None]] = []
    theirs: list[tuple[float, float | None, float | None]] = []
    stored = 0
    for i in range(runs):
        db = work / f"{name}{i}.db"
        ours.append(time_cxmon(log, db, config))
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        db.unlink()
        if also_pure:
            pure.append(time_cxmon(log, db, config, pure=True))
            db.unlink()
        measured = time_mtail(log, work)
        if measured is not None:
            theirs.append(measured)
    line, cx = _median(ours, n)
    print(f"[{name}] cxmon import queue_log: {line}  ({stored:,} events stored)")
    if pure:
        line, px = _median(pure, n)
        print(f"[{name}] ... pure Python:        {line}  (compiled/pure: {px / cx:.2f}x)")
    if not theirs:
        print(f"[{name}] mtail: not installed (make bench-deps); no comparison")
        return
    line, mt = _median(theirs, n)
    print(f"[{name}] mtail --one_shot:       {line}")
    print(f"[{name}] ratio cxmon/mtail (medians): {mt / cx:.2f}x")
    if pure:
        print(f"[{name}] ratio pure Python/mtail (medians): {mt / px:.2f}x")


def main() -> int:
    """Write the logs, run both programs alternately on each, print lines/s and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines of the dense log")
    parser.add_argument("--months", type=int, default=bank_queue_log.MONTHS, help="months of the bank log")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="runs of each, alternately")
    parser.add_argument("--shape", choices=("dense", "bank", "both"), default="both")
    parser.add_argument("--also-pure", action="store_true", help="time the pure-Python path too")
    args = parser.parse_args()
    print(f"cxmon build measured: {build_name()}")
    with tempfile.TemporaryDirectory(prefix="cxmon-bench-") as tmp:
        work = Path(tmp)
        if args.shape in ("dense", "both"):
            log = work / "dense.queue_log"
            started = time.perf_counter()
            n = generate(log, args.lines, args.seed)
            size = log.stat().st_size
            print(
                f"[dense] generated {n:,} lines ({size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - started:.1f} s"
            )
            compare("dense", log, n, work, args.runs, None, args.also_pure)
            log.unlink()
        if args.shape in ("bank", "both"):
            if not bank_queue_log.BANK_CSV.exists():
                print(f"[bank] {bank_queue_log.BANK_CSV} is missing (clone shared/ beside the repo); skipped")
                return 0
            log = work / "bank.queue_log"
            started = time.perf_counter()
            n, span = bank_queue_log.write(log, args.months)
            size = log.stat().st_size
            print(
                f"[bank] wrote {n:,} lines ({size / 1e6:.0f} MB, {span / 86400:,.0f} days of calls) "
                f"in {time.perf_counter() - started:.1f} s"
            )
            compare("bank", log, n, work, args.runs, BANK_CONFIG, args.also_pure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
