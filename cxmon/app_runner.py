"""``cxmon run`` and ``cxmon serve``: build the engine from config, wire its consumers, run, shut down."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from cxmon.config import Config, ListenConfig, default_config_path, load, parse_listen
from cxmon.engine import Engine
from cxmon.errors import ConfigError, CxmonError
from cxmon.exporter import Exporter
from cxmon.http_server import HttpServices, bind_failed
from cxmon.preflight import check_files
from cxmon.run_summary import RunTally
from cxmon.snapshot import Snapshot, State
from cxmon.terminal import stop_on_hangup
from cxmon.units import parse_duration

log = logging.getLogger("cxmon")

# Source types whose speed --speed sets.
_SPEED_TYPES = ("simulator", "records")
_STATE_WORD = {State.OK: "OK", State.WATCH: "WATCH", State.POTHOLE: "POTHOLE", State.STALE: "STALE"}


def load_config(path: str | None) -> Config:
    """Load ``path``, or the default config when None.

    Raises:
        ConfigError: with every problem listed.
    """
    return load(path if path else default_config_path())


def apply_overrides(config: Config, *, speed: str | None = None, metrics_listen: str | None = None) -> Config:
    """Return ``config`` with command-line overrides applied (simulator/replay speed, /metrics address).

    Raises:
        ConfigError: an override is not valid.
    """
    if speed is not None:
        value: Any = speed
        if speed != "max":
            try:
                value = float(speed)
            except ValueError:
                raise ConfigError([f'--speed: expected a number or "max", got {speed!r}']) from None
            if value <= 0:
                raise ConfigError([f"--speed: must be above 0, got {speed!r}"])
        collectors = tuple(
            dataclasses.replace(c, options={**c.options, "speed": value}) if c.type in _SPEED_TYPES else c
            for c in config.collectors
        )
        config = dataclasses.replace(config, collectors=collectors)
    if metrics_listen is not None:
        try:
            host, port = parse_listen(metrics_listen)
        except ValueError:
            raise ConfigError([f"--metrics-listen: expected HOST:PORT, got {metrics_listen!r}"]) from None
        config = dataclasses.replace(config, prometheus=ListenConfig(host=host, port=port, enabled=True))
    return config


def summary_line(snap: Snapshot) -> str:
    """One compact line for ``--headless``: engine time, events, and every step with its state."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(snap.ts))
    steps = "  ".join(
        f"{s.name} {_STATE_WORD[s.state]}"
        + (f" ({s.reason})" if s.state in (State.WATCH, State.POTHOLE) else "")
        for s in snap.steps
    )
    stale = "  [STALE]" if snap.stale else ""
    return f"{stamp}Z  events {snap.events_total}  {steps}{stale}"


def run_command(args: argparse.Namespace, *, serve: bool) -> int:
    """Implement ``cxmon run`` (``serve=False``) and ``cxmon serve``; return the exit code."""
    logging.basicConfig(
        level=logging.INFO if serve else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        config = apply_overrides(
            config, speed=args.speed, metrics_listen=getattr(args, "metrics_listen", None)
        )
        duration = parse_duration(args.duration) if args.duration else None
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except ValueError:
        print(f'--duration: expected a duration like "30m", got {args.duration!r}', file=sys.stderr)
        return 2
    headless = serve or getattr(args, "headless", False)
    try:
        return asyncio.run(
            _main(
                config,
                args.db,
                duration,
                serve=serve,
                headless=headless,
                wallboard=getattr(args, "wallboard", False),
            )
        )
    except CxmonError as exc:
        print(f"cxmon: {exc}", file=sys.stderr)
        return 2


async def _main(
    config: Config, db: str | None, duration: float | None, *, serve: bool, headless: bool, wallboard: bool
) -> int:
    check_files(config, db)
    engine = Engine(config, db_path=db, duration=duration)
    loop = asyncio.get_running_loop()
    stoppers: list[Callable[[], None]] = [engine.stop]

    def on_signal() -> None:
        for stop in stoppers:
            stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    closers: list[Any] = []
    tally = RunTally()
    if headless and not serve:
        engine.add_listener(tally)
    # The terminal gone (an SSH connection dropped, a tmux session killed) stops cxmon as SIGTERM
    # does, committing what was read, rather than killing it on the spot or leaving it hung.
    with stop_on_hangup(loop, on_signal):
        try:
            # Before any port is bound: another process feeding one of these sources into this
            # database stops this one at once.
            engine.claim_sources()
            # Bound before the engine starts, so a taken port stops nothing half-started.
            http = HttpServices(engine, engine.sources)
            await http.start()
            closers.append(http.aclose)
            async with engine:
                closers += await _start_consumers(engine, config, hub=serve, exporter=http.exporter)
                if headless:
                    printer = asyncio.create_task(_print_summaries(engine, quiet=serve), name="summary")
                    # (serve logs transitions through the alert dispatcher's log sink instead)
                    if engine.paced:
                        tally.started = engine.now()
                    try:
                        await engine.run(duration)
                    finally:
                        printer.cancel()
                        await asyncio.gather(printer, return_exceptions=True)
                    code = 0
                else:
                    code = await _run_with_dashboard(engine, duration, wallboard, stoppers)
                for closer in reversed(closers):
                    await closer()
                closers = []
        finally:
            for closer in reversed(closers):
                await closer()
            engine.release_sources()  # (the engine let go of them as it closed, if it started)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    if headless and not serve:
        # After the engine closed: its last snapshot counts every event, and the store has committed.
        store = engine.store
        print(summary_line(engine.latest), flush=True)
        print(
            tally.summary(
                engine.latest,
                stored=store.rows_written if store is not None else None,
                db=store.path if store is not None else None,
            ),
            flush=True,
        )
    failed = [h for h in engine.health.values() if h.failed]
    for h in failed:
        print(f"cxmon: source {h.name} stopped on an error: {h.last_error}", file=sys.stderr)
    if engine.tick_failures:
        print(f"cxmon: {engine.tick_failures} engine tick(s) failed; see the log", file=sys.stderr)
    return 1 if failed and code == 0 else code


async def _run_with_dashboard(
    engine: Engine, duration: float | None, wallboard: bool, stoppers: list[Callable[[], None]]
) -> int:
    """Run the engine and the dashboard until either ends; return the dashboard's exit code (0 when
    the engine ended first or a signal stopped both)."""
    from cxmon.tui.run import run_dashboard

    runner = asyncio.create_task(engine.run(duration), name="engine-run")
    dashboard = asyncio.create_task(run_dashboard(engine, wallboard=wallboard), name="dashboard")

    def cancel_dashboard() -> None:
        dashboard.cancel()

    stoppers.append(cancel_dashboard)
    done, _ = await asyncio.wait({runner, dashboard}, return_when=asyncio.FIRST_COMPLETED)
    code = dashboard.result() if dashboard in done and not dashboard.cancelled() else 0
    for task in (runner, dashboard):
        task.cancel()
    await asyncio.gather(runner, dashboard, return_exceptions=True)
    return code


async def _start_consumers(
    engine: Engine, config: Config, *, hub: bool = False, exporter: Exporter | None = None
) -> list[Callable[[], Any]]:
    """Start the alert dispatcher and (``hub``) the websocket hub, its counters on ``exporter``'s
    ``/metrics``; return their closers."""
    closers: list[Callable[[], Any]] = []
    if hub and config.hub.enabled:
        from cxmon.hub.server import Hub

        hub_server = Hub.from_config(engine, config)
        try:
            await hub_server.start()
        except OSError as exc:
            fix = "pick a free address with [hub] listen, or run no hub with [hub] enabled = false"
            raise bind_failed(config.hub.host, config.hub.port, "the hub", fix, exc) from None
        log.info("hub on ws://%s:%d", config.hub.host, hub_server.port)
        closers.append(hub_server.aclose)
        if exporter is not None:
            from cxmon.hub.metrics import export

            export(hub_server, exporter)
    from cxmon.alerts import AlertDispatcher

    dispatcher = AlertDispatcher(config)
    dispatcher.attach(engine)
    await dispatcher.start()
    closers.append(dispatcher.aclose)
    return closers


async def _print_summaries(engine: Engine, *, quiet: bool) -> None:
    """Print one summary line per wall second (``cxmon run --headless``); nothing when ``quiet``."""
    if quiet:
        return
    while True:
        await asyncio.sleep(1.0)
        snap = engine.latest
        if snap.version:
            print(summary_line(snap), flush=True)
