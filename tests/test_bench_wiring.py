"""`make bench` runs every benchmark in bench/, and each of them starts without arguments."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_scripts() -> list[str]:
    """The scripts `make bench` would run, read from make's dry run of the target."""
    done = subprocess.run(
        ["make", "-s", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    loop = next(line for line in done.stdout.splitlines() if line.startswith("for b in "))
    return re.findall(r"bench/\w+\.py", loop.split(";", 1)[0])


def test_make_bench_runs_every_benchmark_script() -> None:
    """Each script in bench/ is run, except the converter the queue_log benchmark imports."""
    every = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py"))
    assert bench_scripts() == [p for p in every if p != "bench/bank_queue_log.py"]


def test_every_benchmark_make_bench_runs_needs_no_argument() -> None:
    """A script `make bench` runs bare has no required argument (its usage line names none)."""
    for script in bench_scripts():
        done = subprocess.run(
            [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (script, done.stderr)
        usage = " ".join(done.stdout.split("\n\n", 1)[0].split())
        # every argument in the usage line is optional: [--flag ...]; a bare word would be required
        bare = re.sub(
            r"\[[^\[\]]*(\[[^\[\]]*\][^\[\]]*)*\]",
            "",
            usage.split(" ", 2)[2] if usage.count(" ") >= 2 else "",
        )
        assert not bare.strip(), (script, usage)
