"""``cxmon watch URL…``: the dashboard attached to one or more daemons' hubs instead of an engine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from cxmon.localtime import check_timezone

if TYPE_CHECKING:
    from cxmon.hub.client import HubClient
    from cxmon.hub.sites import SitesFeed
    from cxmon.tui.feed import Feed

# The hub's client and the dashboard are imported by the functions that run them: the command line
# adds this command's options from here, and every cxmon command builds that command line.

CONNECT_TIMEOUT = 15.0


def add_watch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cxmon watch`` to the command line."""
    watch = sub.add_parser("watch", help="the dashboard attached to one or more daemons' hubs")
    watch.add_argument(
        "urls", nargs="+", metavar="URL", help="ws://HOST:PORT of a hub; add #NAME to name the site"
    )
    add_client_options(watch)
    watch.add_argument("--wallboard", action="store_true", help="big-number wall view for a TV screen")
    watch.add_argument(
        "--timezone",
        metavar="ZONE",
        help='the zone times are shown in, e.g. "Europe/London" or "local" (this machine\'s); default: '
        "the hub's [display] timezone (the one all the hubs share), else this machine's",
    )
    watch.set_defaults(handler=watch_command)


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """Options every hub watcher takes: the token and how long to wait for the first answer."""
    parser.add_argument(
        "--token", help="bearer token for the hub (default: CXMON_HUB_TOKEN; none on loopback)"
    )
    parser.add_argument(
        "--connect-timeout",
        type=seconds_above_zero,
        default=CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up when no hub answers the first time within this (default {CONNECT_TIMEOUT:g})",
    )


def seconds_above_zero(text: str) -> float:
    """``--connect-timeout``'s type: a number of seconds above zero ("inf": wait as long as it takes).

    Raises:
        argparse.ArgumentTypeError: not a number, or not above zero (nan included).
    """
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a hub's address to connect to (None: it is), as the websocket client reads it."""
    from websockets.exceptions import InvalidURI
    from websockets.uri import parse_uri

    expected = f"{url!r}: expected ws://HOST:PORT"
    try:
        if urlsplit(url).scheme not in ("ws", "wss"):
            return expected
        parse_uri(without_fragment(url))
    except InvalidURI as exc:
        return f"{expected} ({exc.msg})"
    except ValueError as exc:
        return f"{expected} ({exc})"
    return None


def without_fragment(url: str) -> str:
    """``url`` without its ``#site`` name (what the websocket connects to)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(fragment=""))


async def open_feed(
    urls: list[str], token: str | None, timeout: float, slow: Callable[[str], None] | None = None
) -> tuple[Feed, list[HubClient], SitesFeed | None]:
    """Connect to every hub and return the feed to show (one hub, or the sites merged) and the clients.

    ``slow`` is told, for each hub that has not answered after a second, why not.

    Raises:
        HubError: a hub refused, or did not answer within ``timeout``.
    """
    from cxmon.hub.client import HubClient
    from cxmon.hub.sites import SitesFeed, site_name

    clients = [HubClient(without_fragment(u), token=token) for u in urls]
    try:
        for client in clients:
            await client.start()
        for client in clients:
            await client.wait_ready(timeout, slow)
    except BaseException:
        for client in clients:
            await client.aclose()
        raise
    if len(clients) == 1:
        return clients[0], clients, None
    sites = SitesFeed(clients, [site_name(u) for u in urls])
    return sites, clients, sites


def watch_command(args: argparse.Namespace) -> int:
    """Run ``cxmon watch``; return the exit code (2 when a hub cannot be reached at start)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for url in args.urls:
        problem = url_problem(url)
        if problem is not None:
            print(f"cxmon watch: {problem}", file=sys.stderr)
            return 2
    if args.timezone is not None:
        try:
            check_timezone(args.timezone)
        except ValueError as exc:
            print(f"cxmon watch: --timezone: {exc}", file=sys.stderr)
            return 2
    token = args.token or os.environ.get("CXMON_HUB_TOKEN")
    return asyncio.run(_watch(args.urls, token, args.connect_timeout, args.wallboard, args.timezone))


async def _watch(
    urls: list[str], token: str | None, timeout: float, wallboard: bool, timezone: str | None = None
) -> int:
    from cxmon.hub.client import HubError
    from cxmon.terminal import stop_on_hangup
    from cxmon.tui.run import run_dashboard

    def slow(why: str) -> None:
        # Said before the dashboard takes the screen: a watcher left facing a blank terminal would not
        # know whether the hub is starting or the address is wrong.
        print(f"cxmon watch: {why}", file=sys.stderr, flush=True)

    try:
        feed, clients, sites = await open_feed(urls, token, timeout, slow)
    except HubError as exc:
        print(f"cxmon watch: {exc}", file=sys.stderr)
        return 2
    dashboard = asyncio.create_task(
        run_dashboard(feed, wallboard=wallboard, timezone=timezone), name="dashboard"
    )

    def stop() -> None:
        dashboard.cancel()

    try:
        # The terminal gone ends the watch (exit code 0: a watcher holds nothing to lose) instead of
        # leaving it hung on writes to a terminal that is not there.
        with stop_on_hangup(asyncio.get_running_loop(), stop):
            try:
                return await dashboard
            except asyncio.CancelledError:
                if dashboard.cancelled() and not _cancelling():
                    return 0
                raise
    finally:
        if sites is not None:
            await sites.aclose()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not only the dashboard it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
