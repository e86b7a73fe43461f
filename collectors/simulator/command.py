"""``cxmon simulate``: headless, reproducible event generation to JSON lines."""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TextIO

from collectors.simulator.model import simulate_events
from collectors.simulator.options import parse_options, parse_start
from cxmon.errors import ConfigError
from cxmon.events import ContactEvent

DEFAULT_START = "2026-01-05T08:00:00Z"
"""Start of the simulation when the config has no ``start``, so the output is reproducible."""


def simulate_command(args: argparse.Namespace) -> int:
    """Run ``cxmon simulate``: write the simulator's events as JSON lines.

    Args:
        args: ``config`` (path or None), ``minutes``, ``seed`` (None: the config's), ``out`` ("-" for
            stdout) and ``no_incidents``.

    Returns:
        0 on success, 2 when the config is invalid or has no simulator.
    """
    from cxmon.config import default_config_path, load

    path = args.config or default_config_path()
    try:
        config = load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 2
    if not args.minutes > 0:
        print(f"--minutes: expected a number > 0, got {args.minutes:g}", file=sys.stderr)
        return 2
    streams: list[Iterator[ContactEvent]] = []
    seeds: list[int] = []
    first_start: float | None = None
    for cc in config.collectors:
        if cc.type != "simulator":
            continue
        options, problems = parse_options(cc.options, cc.path)
        if options is None:  # validated by load(); kept for type narrowing
            for problem in problems:
                print(problem, file=sys.stderr)
            return 2
        if args.seed is not None:
            options = replace(options, seed=args.seed)
        start = options.start if options.start is not None else parse_start(DEFAULT_START)
        first_start = start if first_start is None else min(first_start, start)
        seeds.append(options.seed)
        streams.append(
            simulate_events(
                options,
                start,
                start + args.minutes * 60.0,
                source=cc.name,
                incidents=False if args.no_incidents else None,
            )
        )
    if not streams:
        print(f'{path}: no [[collectors]] table of type "simulator"', file=sys.stderr)
        return 2

    began = time.perf_counter()
    events = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda e: e.ts)
    if args.out == "-":
        count = _write(events, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8") as out:
            count = _write(events, out)
    elapsed = time.perf_counter() - began
    moment = dt.datetime.fromtimestamp(first_start or 0.0, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(
        f"cxmon simulate: {count} events, {args.minutes:g} simulated minutes from {moment}, "
        f"seed {', '.join(map(str, seeds))}, incidents {'off' if args.no_incidents else 'as configured'}, "
        f"{elapsed:.2f} s → {'stdout' if args.out == '-' else args.out}",
        file=sys.stderr,
    )
    return 0


def _write(events: Iterator[ContactEvent], out: TextIO) -> int:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    count = 0
    lines: list[str] = []
    for event in events:
        lines.append(dumps(event.to_dict()))
        if len(lines) >= 4096:
            out.write("\n".join(lines) + "\n")
            count += len(lines)
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
        count += len(lines)
    return count
