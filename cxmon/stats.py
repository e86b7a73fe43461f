"""``cxmon stats``: per-series figures over the stored history, computed by the engine's own code."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from cxmon.config import Config
from cxmon.errors import ConfigError, CxmonError
from cxmon.localtime import parse_time, zone
from cxmon.recorded_config import config_from_db
from cxmon.store import Store
from cxmon.windows import Aggregator, window_measures

_ALL_TIME = 1e12
"""A window longer than any history: one pane holds everything."""

FIELDS = (
    ("offered", "offered"),
    ("answered", "answered"),
    ("abandoned", "abandoned"),
    ("short_abandoned", "short_abandoned"),
    ("lost", "lost"),
    ("service_level", "service_level"),
    ("asa_seconds", "asa"),
    ("wait_p50_seconds", "wait_p50"),
    ("wait_p90_seconds", "wait_p90"),
    ("wait_p99_seconds", "wait_p99"),
    ("abandon_rate", "abandon_rate"),
    ("resolution_p50_seconds", "resolution_p50"),
    ("resolution_p90_seconds", "resolution_p90"),
    ("escalated", "escalations"),
    ("transferred", "transfers"),
    ("next_replies", "next_replies"),
    ("next_reply_in_target", "next_reply_in_target"),
)
_COUNTS = {
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "lost",
    "escalated",
    "transferred",
    "next_replies",
}


def time_range(args: argparse.Namespace, config: Config | None) -> tuple[float | None, float | None]:
    """``--from`` and ``--to`` as epoch seconds (None where not given), a time without a zone read
    in ``config``'s ``[display] timezone`` (the machine's zone when it sets none; UTC without a
    config, which only checks that the times parse).

    Raises:
        ValueError: a time that is neither ISO 8601 nor epoch seconds, or not one a date can be
            given for (``nan``, ``inf``, ``1e400``); the message starts with the option at fault.
    """
    tz = UTC if config is None else zone(config.display_timezone)
    return _option_time("--from", args.from_, tz), _option_time("--to", args.to, tz)


def _option_time(option: str, text: str | None, tz: tzinfo | None) -> float | None:
    """``text`` as epoch seconds (None when not given), or a ValueError naming ``option``."""
    if not text:
        return None
    expected = f"{option}: expected ISO 8601 or epoch seconds, got {text!r}"
    try:
        value = parse_time(text, tz)
    except ValueError as exc:
        raise ValueError(f"{expected} ({exc})") from None
    try:
        datetime.fromtimestamp(value, UTC)  # the figures name their range as dates
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{expected}: not a time a date can be given for") from None
    return value


def iso(ts: float) -> str:
    """Format epoch seconds as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def compute_stats(
    config: Config, db_path: str, start: float | None = None, end: float | None = None
) -> dict[str, Any]:
    """Return ``{"series": [...], "transitions": [...]}`` over the stored history.

    The stored events are replayed through the same aggregator the live engine uses, with one
    window covering the whole range, so the figures mean exactly what the live ones mean.
    """
    flat = dataclasses.replace(
        config, monitor=dataclasses.replace(config.monitor, windows=(_ALL_TIME,), panes=1)
    )
    agg = Aggregator(flat, time_out_lost=False)
    store = Store(db_path)
    await store.open()
    try:
        async for rows in store.iter_rows(start, end):
            agg.add_rows(rows)
        transitions = await store.transitions(start, end)
    finally:
        await store.close()
    series = []
    formula = config.monitor.service_level_formula
    for key in sorted(agg.series):
        s = agg.series[key]
        figures = window_measures(s.windows[0].total, formula)
        row: dict[str, Any] = {"step": key[0], "channel": key[1], "queue": key[2]}
        for out, measure in FIELDS:
            value = figures.get(measure)
            row[out] = int(value) if out in _COUNTS and value is not None else value
        series.append(row)
    return {
        "service_level_formula": formula,
        "from": iso(start) if start is not None else None,
        "to": iso(end) if end is not None else None,
        "series": series,
        "transitions": [
            {
                "ts": iso(t.ts),
                "step": t.step,
                "from": t.from_state.value,
                "to": t.to_state.value,
                "reason": t.reason,
            }
            for t in transitions  # each is a step's (channel/queue name the series driving it)
        ],
    }


def _table(doc: dict[str, Any]) -> str:
    cols = [
        "step",
        "channel",
        "queue",
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "asa_seconds",
        "wait_p90_seconds",
        "abandon_rate",
        "escalated",
    ]
    rows = [cols]
    for s in doc["series"]:
        row = []
        for c in cols:
            v = s[c]
            if v is None:
                row.append("—")
            elif isinstance(v, float):
                row.append(f"{v:.1%}" if c in ("service_level", "abandon_rate") else f"{v:.1f}")
            else:
                row.append(str(v))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"transitions: {len(doc['transitions'])}")
    return "\n".join(lines)


def _recorded_or_default(db: str) -> Config:
    """The journey ``db`` recorded; the default config (said on stderr) when it records none.

    Raises:
        ConfigError, StoreError: the recorded journey, or the default config, cannot be used.
    """
    from cxmon.app_runner import load_config

    config = config_from_db(db)
    if config is None:
        print(
            f"{db} does not record the journey it was written with (an older cxmon wrote it): "
            "judging it by the default config; pass --config to name the one it was written with",
            file=sys.stderr,
        )
        return load_config(None)
    return config


def stats_command(args: argparse.Namespace) -> int:
    """Implement ``cxmon stats``; return the exit code."""
    from cxmon.app_runner import load_config

    try:
        # --config overrides the journey the database recorded; without --db, the config names it
        config = load_config(args.config) if args.config or not args.db else None
        time_range(args, None)  # a time that does not parse is said before the database is read
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    db = args.db or (config.store.path if config is not None else "")
    if not Path(db).is_file():
        why = "a directory, not a history database" if Path(db).is_dir() else "no such history database"
        print(f"{db}: {why}", file=sys.stderr)
        return 2
    try:
        if config is None:
            config = _recorded_or_default(db)
        start, end = time_range(args, config)
        if start is not None and end is not None and start >= end:
            # an empty range would print empty figures and exit 0, as if nothing had happened
            print(
                f"--from {args.from_} ({iso(start)}) is not before --to {args.to} ({iso(end)}): "
                "the range holds no time",
                file=sys.stderr,
            )
            return 2
        doc = asyncio.run(compute_stats(config, db, start, end))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except CxmonError as exc:
        print(f"cxmon: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2) if args.json else _table(doc))
    return 0
