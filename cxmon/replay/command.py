"""``cxmon replay DB``: parse the range and speed, read the recorded journey, run the replay dashboard."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from cxmon.errors import ConfigError, CxmonError
from cxmon.localtime import TIME_HELP

if TYPE_CHECKING:
    from cxmon.config import Config

# The config, the store and the replay are imported by the functions that use them: the command line
# adds this command's options from here, and every cxmon command builds that command line.


def add_replay_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cxmon replay`` to the command line."""
    replay = sub.add_parser("replay", help="recorded history back through the engine and the dashboard")
    replay.add_argument("db", metavar="DB", help="history database written by cxmon run/serve/import")
    replay.add_argument("--from", dest="from_", metavar="TIME", help=TIME_HELP)
    replay.add_argument("--to", metavar="TIME", help=TIME_HELP)
    replay.add_argument("--speed", default="1", help='1, 10, 60 (× real time), any number, or "max"')
    replay.add_argument(
        "--config", metavar="FILE", help="judge by this journey instead of the one recorded in DB"
    )
    replay.add_argument("--wallboard", action="store_true", help="big-number wall view for a TV screen")
    replay.set_defaults(handler=replay_command)


def parse_speed(text: str) -> float | None:
    """``"max"`` → None, else a number above 0.

    Raises:
        ValueError: neither.
    """
    if text == "max":
        return None
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def journey(db: str, config_path: str | None) -> Config:
    """The journey to judge the replay by: ``--config`` when given, else the one recorded in ``db``.

    Raises:
        ConfigError: no journey recorded and no --config, or either is invalid.
        StoreError: ``db`` is not a readable history database.
    """
    from cxmon.config import load
    from cxmon.recorded_config import config_from_db

    if config_path:
        return load(config_path)
    config = config_from_db(db)
    if config is None:
        raise ConfigError([f"{db}: records no journey (written by an older cxmon): pass --config FILE"])
    return config


def replay_command(args: argparse.Namespace) -> int:
    """Run ``cxmon replay``; return the exit code (2 on a bad argument or database)."""
    from cxmon.replay.source import stored_range
    from cxmon.stats import time_range

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        speed = parse_speed(args.speed)
    except ValueError:
        print(f'--speed: expected a number above 0 or "max", got {args.speed!r}', file=sys.stderr)
        return 2
    try:
        time_range(args, None)  # a time that does not parse is said before the database is read
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        config = journey(args.db, args.config)
        # A time without a zone is the clock time the replay's dashboard shows.
        start, end = time_range(args, config)
        stored = asyncio.run(stored_range(args.db))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (CxmonError, OSError) as exc:
        print(f"cxmon replay: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # aiosqlite/sqlite3 errors on a file that is not a database
        print(f"cxmon replay: {args.db}: cannot read the history: {exc}", file=sys.stderr)
        return 2
    if stored is None:
        print(f"cxmon replay: {args.db}: no events recorded", file=sys.stderr)
        return 2
    lo = start if start is not None else stored[0]
    hi = end if end is not None else stored[1] + 1.0
    if hi <= lo:
        print(f"cxmon replay: {_empty_range(args, lo, hi, stored)}", file=sys.stderr)
        return 2
    return asyncio.run(_replay(config, args.db, lo, hi, speed, args.wallboard))


def _empty_range(args: argparse.Namespace, lo: float, hi: float, stored: tuple[float, float]) -> str:
    """Why the range ``lo``..``hi`` holds no time, naming only the options given: an end not given
    is the history's."""
    from cxmon.stats import iso

    if args.from_ and args.to:
        return (
            f"--from {args.from_} ({iso(lo)}) is not before --to {args.to} ({iso(hi)}): "
            "the range holds no time"
        )
    if args.from_:
        return (
            f"--from {args.from_} ({iso(lo)}) is after the last event of {args.db} ({iso(stored[1])}): "
            "nothing to replay (give --to as well to replay a span with no events)"
        )
    return (
        f"--to {args.to} ({iso(hi)}) is not after the first event of {args.db} ({iso(stored[0])}): "
        "nothing to replay (give --from as well to replay a span with no events)"
    )


async def _replay(
    config: Config, db: str, start: float, end: float, speed: float | None, wallboard: bool
) -> int:
    from cxmon.replay.session import ReplaySession
    from cxmon.tui.replay import ReplayApp

    session = ReplaySession(config, db, start, end, speed=speed)
    runner = asyncio.create_task(session.run(), name="replay")
    app = ReplayApp(session, wallboard=wallboard)
    try:
        await app.run_async()
    finally:
        session.close()
        await asyncio.gather(runner, return_exceptions=True)
    return 0 if not app.return_code else 2
