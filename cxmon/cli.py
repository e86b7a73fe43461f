"""The ``cxmon`` command line: one verb per subcommand (DESIGN.md, "Command line")."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cxmon import __version__
from cxmon.localtime import TIME_HELP

Handler = Callable[[argparse.Namespace], int]


def _add_common(p: argparse.ArgumentParser, *, db: bool = True) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config (default: config/default.toml)")
    if db:
        p.add_argument("--db", metavar="FILE", help="history database (default: [store] path)")


class _Version(argparse.Action):
    """``--version``: the version and which build runs (compiled with mypyc or pure Python)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs["help"]))

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        # The build is looked up only when asked for: it imports the compiled modules to see them.
        from cxmon.compiled import describe

        print(f"cxmon {__version__}, {describe()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cxmon", description="Live service-level monitor for contact centres."
    )
    parser.add_argument("--version", action=_Version, help="show the version and the build, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ------------------------------------------------------------------ engine commands (core)
    run = sub.add_parser("run", help="collectors + engine + dashboard in one process")
    _add_common(run)
    run.add_argument("--headless", action="store_true", help="print a live summary line per second, no TUI")
    run.add_argument("--wallboard", action="store_true", help="big-number wall view for a TV screen")
    run.add_argument("--speed", help='simulator speed: a number (simulated seconds per second) or "max"')
    run.add_argument("--duration", help='stop after this much engine time, e.g. "30m"')
    run.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="serve /metrics here (overrides [prometheus])"
    )
    run.set_defaults(handler=_cmd_run)

    serve = sub.add_parser("serve", help="headless daemon: collectors, store, exporter, alerts")
    _add_common(serve)
    serve.add_argument("--speed", help='simulator speed: a number or "max"')
    serve.add_argument("--duration", help='stop after this much engine time, e.g. "30m"')
    serve.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="serve /metrics here (overrides [prometheus])"
    )
    serve.set_defaults(handler=_cmd_serve)

    stats = sub.add_parser("stats", help="per-series figures over the stored history")
    _add_common(stats)
    stats.add_argument("--json", action="store_true", help="print JSON (the default is a table)")
    stats.add_argument("--from", dest="from_", metavar="TIME", help=TIME_HELP)
    stats.add_argument("--to", metavar="TIME", help=TIME_HELP)
    stats.set_defaults(handler=_cmd_stats)

    simulate = sub.add_parser("simulate", help="headless event generation to JSON lines")
    _add_common(simulate, db=False)
    simulate.add_argument("--minutes", type=float, default=60.0, help="simulated minutes (default 60)")
    simulate.add_argument("--seed", type=int, help="random seed (default: the config's)")
    simulate.add_argument("--out", metavar="FILE", default="-", help="output file (default stdout)")
    simulate.add_argument("--no-incidents", action="store_true", help="leave out the scripted incidents")
    simulate.set_defaults(handler=_cmd_simulate)

    check = sub.add_parser("check", help="validate a config; exit 0, or 2 with every problem listed")
    check.add_argument("file", metavar="CONFIG")
    check.set_defaults(handler=_cmd_check)

    # ------------------------------------------------------------------ importers (collectors)
    # (section: import)
    _add_import_parser(sub)

    # ------------------------------------------------------------------ prometheus and alerting
    # (section: rules, grafana)
    def _cmd_rules(args: argparse.Namespace) -> int:
        from cxmon.rules import rules_command

        return rules_command(args)

    def _cmd_grafana(args: argparse.Namespace) -> int:
        from cxmon.grafana import grafana_command

        return grafana_command(args)

    rules = sub.add_parser("rules", help="Prometheus alerting rules (YAML) from the configured thresholds")
    _add_common(rules, db=False)
    rules.set_defaults(handler=_cmd_rules)
    grafana = sub.add_parser("grafana", help="a Grafana dashboard (JSON) for cxmon's metrics")
    _add_common(grafana, db=False)
    grafana.set_defaults(handler=_cmd_grafana)

    from cxmon.forecast.command import add_staffing_parser

    add_staffing_parser(sub)

    # ------------------------------------------------------------------ dashboard clients
    # (section: watch, replay)
    from cxmon.hub.watch import add_watch_parser
    from cxmon.hub.web import add_web_parser
    from cxmon.replay.command import add_replay_parser

    add_watch_parser(sub)
    add_web_parser(sub)
    add_replay_parser(sub)

    return parser


def _add_import_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import queue_log`` and ``import records`` to the ``cxmon`` subcommands."""
    imp = sub.add_parser("import", help="backfill history from a file, with a progress bar")
    kinds = imp.add_subparsers(dest="import_kind", metavar="KIND", required=True)

    ql = kinds.add_parser("queue_log", help="an Asterisk queue_log file")
    ql.add_argument("file", metavar="FILE")
    _add_common(ql)

    rec = kinds.add_parser("records", help="a call-record CSV file")
    rec.add_argument("file", metavar="FILE")
    _add_common(rec)
    how = rec.add_mutually_exclusive_group(required=True)
    how.add_argument("--preset", help='built-in column mapping: "anonymous-bank"')
    how.add_argument("--mapping", metavar="FILE.toml", help="column mapping: a [mapping] table")
    rec.add_argument("--speed", help='replay paced at this many seconds per second (default "max")')

    for p in (ql, rec):
        p.add_argument("--name", help="source name the file's offset is kept under")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(handler=_cmd_import)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _cmd_run(args: argparse.Namespace) -> int:
    from cxmon.app_runner import run_command

    return run_command(args, serve=False)


def _cmd_serve(args: argparse.Namespace) -> int:
    from cxmon.app_runner import run_command

    return run_command(args, serve=True)


def _cmd_import(args: argparse.Namespace) -> int:
    from cxmon.importer import import_command

    return import_command(args)


def _cmd_stats(args: argparse.Namespace) -> int:
    from cxmon.stats import stats_command

    return stats_command(args)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from collectors.simulator import simulate_command

    return simulate_command(args)


def _cmd_check(args: argparse.Namespace) -> int:
    from cxmon.config import load
    from cxmon.errors import ConfigError

    try:
        config = load(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 2
    print(f"{args.file}: ok ({len(config.steps)} steps, {len(config.collectors)} collectors)")
    return 0
