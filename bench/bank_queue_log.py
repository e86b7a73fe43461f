"""Deterministic converter: the Anonymous Bank call records (one real month) as an Asterisk queue_log.

A real contact centre's log is sparse: a few calls a minute while the centre is open, nothing at
night, months of it. This writes the shared data's month (``calls-1999-08.csv``) as the queue_log
lines Asterisk would have written for those calls, tiled ``months`` times 32 days apart (each copy
of the month starts where the previous one ended, so the tiles never overlap and the file stays in
time order).

Each call that queued becomes ``ENTERQUEUE`` (queue = the call type), then ``CONNECT`` (with
its wait) and ``COMPLETECALLER``/``COMPLETEAGENT`` (with its talk time) when an agent took it, or
``ABANDON`` (with its wait) when the caller hung up. The call times come from the records reader
(``collectors/records``, preset "anonymous-bank"), so the log means what ``cxmon import records``
reads from the CSV; the agent is the record's ``server`` column.
Usage: ``python bench/bank_queue_log.py OUT [--months N]``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BANK_CSV = ROOT.parent / "shared" / "data" / "anonymous-bank" / "calls-1999-08.csv"
"""The public sample data, cloned beside the repository (as tests/helpers.py finds it)."""
TILE = 32 * 86400
"""Seconds between two copies of the month: longer than the month, so copies never overlap."""
MONTHS = 28


def _queued_calls(path: Path) -> dict[tuple[str, str], str]:
    """(month-day, call id) → the server (agent) who took the call, for the calls that queued.

    A call that went from the voice-response unit straight to an agent never entered a queue, so
    Asterisk would have written no queue_log line for it.
    """
    out: dict[tuple[str, str], str] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["q_start"].strip() != "0:00:00":
                out[(row["date"].strip()[5:], row["call_id"].strip())] = row["server"].strip()
    return out


def month_lines(path: Path = BANK_CSV) -> list[tuple[int, str]]:
    """The month's calls as (epoch second, queue_log line with ``{ts}`` and ``{n}`` left to fill)."""
    from collectors.records.mapping import ANONYMOUS_BANK
    from collectors.records.reader import read_records
    from cxmon.events import EventKind

    agents = _queued_calls(path)
    out: list[tuple[int, str]] = []
    waits: dict[str, int] = {}
    for ev in read_records(path, ANONYMOUS_BANK, source="bank"):
        ts = int(ev.ts)
        day, _, call = ev.contact_id.partition("/")
        call = call.partition("#")[0]
        agent = agents.get((day[5:], call))
        if agent is None:
            continue
        agent = "NONE" if agent in ("", "NO_SERVER") else f"Agent/{agent}"
        callid = "{n}." + ev.contact_id.replace("/", "-").replace("#", "-")
        q = ev.queue
        if ev.kind is EventKind.ARRIVED:
            caller = ev.customer_id or "anonymous"
            out.append((ts, f"{{ts}}|{callid}|{q}|NONE|ENTERQUEUE||{caller}|1"))
        elif ev.kind is EventKind.ANSWERED:
            wait = int(ev.wait or 0)
            waits[ev.contact_id] = wait
            out.append((ts, f"{{ts}}|{callid}|{q}|{agent}|CONNECT|{wait}|{callid}9|1"))
        elif ev.kind is EventKind.RESOLVED:
            verb = "COMPLETEAGENT" if int(ev.duration or 0) % 3 == 0 else "COMPLETECALLER"
            wait = waits.pop(ev.contact_id, 0)
            out.append((ts, f"{{ts}}|{callid}|{q}|{agent}|{verb}|{wait}|{int(ev.duration or 0)}|1"))
        elif ev.kind is EventKind.ABANDONED:
            out.append((ts, f"{{ts}}|{callid}|{q}|NONE|ABANDON|1|1|{int(ev.wait or 0)}"))
    return out


def write(out: Path, months: int = MONTHS, path: Path = BANK_CSV) -> tuple[int, float]:
    """Write the month tiled ``months`` times to ``out``; return (lines, seconds of history spanned)."""
    lines = month_lines(path)
    first, last = lines[0][0], lines[-1][0]
    if last - first >= TILE:
        raise ValueError("the month spans more than a tile")
    n = 0
    with out.open("w") as fh:
        for k in range(months):
            shift = k * TILE
            fh.writelines(text.format(ts=ts + shift, n=k) + "\n" for ts, text in lines)
            n += len(lines)
    return n, (months - 1) * TILE + last - first


def main() -> int:
    """Write the tiled log and say how long it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--months", type=int, default=MONTHS)
    args = parser.parse_args()
    n, span = write(args.out, args.months)
    print(f"{n:,} lines over {span / 86400:,.0f} days in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
