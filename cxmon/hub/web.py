"""``cxmon web``: the dashboard (or wallboard) served to browsers with textual-serve.

Each browser session gets its own ``cxmon watch`` process behind textual-serve's web driver, so each
is one more watcher of the hub: the engine runs once, in the daemon, however many TVs look at it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys

from cxmon.hub.watch import add_client_options, url_problem

DEFAULT_LISTEN = "127.0.0.1:8000"


def add_web_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cxmon web`` to the command line."""
    web = sub.add_parser("web", help="the dashboard or wallboard served to browsers (each a hub watcher)")
    web.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help="ws://HOST:PORT of the hub(s) to show (default: the config's [hub] listen)",
    )
    web.add_argument("--config", metavar="FILE", help="TOML config whose [hub] to watch when no URL is given")
    web.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"serve browsers here ({DEFAULT_LISTEN})",
    )
    web.add_argument("--wallboard", action="store_true", help="open on the big-number wall view")
    add_client_options(web)
    web.set_defaults(handler=web_command)


def watch_command_line(urls: list[str], *, wallboard: bool, connect_timeout: float) -> str:
    """The shell command textual-serve runs for each browser session (every part quoted)."""
    parts = [sys.executable, "-m", "cxmon", "watch", *urls, "--connect-timeout", f"{connect_timeout:g}"]
    if wallboard:
        parts.append("--wallboard")
    return shlex.join(parts)


def hub_urls(args: argparse.Namespace) -> list[str]:
    """The URLs given, else the config's hub.

    Raises:
        ConfigError: the config does not load.
    """
    if args.urls:
        return list(args.urls)
    from cxmon.app_runner import load_config

    hub = load_config(args.config).hub
    host = f"[{hub.host}]" if ":" in hub.host else hub.host
    return [f"ws://{host}:{hub.port}"]


def web_command(args: argparse.Namespace) -> int:
    """Run ``cxmon web`` until interrupted; return the exit code (2 on a bad argument)."""
    from cxmon.config import parse_listen
    from cxmon.errors import ConfigError

    try:
        host, port = parse_listen(args.listen)
    except ValueError:
        print(f"--listen: expected HOST:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    try:
        urls = hub_urls(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    for url in urls:
        wrong = url_problem(url)
        if wrong is not None:
            print(f"cxmon web: {wrong}", file=sys.stderr)
            return 2
    if args.token:
        # Handed to each session's watcher through its environment, never on a command line.
        os.environ["CXMON_HUB_TOKEN"] = args.token
    from textual_serve.server import Server

    command = watch_command_line(urls, wallboard=args.wallboard, connect_timeout=args.connect_timeout)
    title = "cxmon wallboard" if args.wallboard else "cxmon"
    try:
        # Tried first, so a taken address is said before textual-serve announces that it serves there;
        # serve() raising the same (another program took the address meanwhile) is said the same way.
        try_bind(host, port)
        Server(command, host=host, port=port, title=title).serve()
    except OSError as exc:
        from cxmon.http_server import bind_failed

        fix = "pick a free address with --listen HOST:PORT"
        print(f"cxmon web: {bind_failed(host, port, 'the browsers', fix, exc)}", file=sys.stderr)
        return 2
    return 0


def try_bind(host: str, port: int) -> None:
    """Bind every address ``host`` names on ``port`` as the web server will, and let go at once.

    Raises:
        OSError: an address is in use, not on this machine, or ``host`` does not resolve.
    """
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
