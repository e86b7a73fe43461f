"""AmiSource: a live Asterisk Manager Interface client that reconnects with backoff."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collectors.ami.mapper import AmiMapper
from collectors.ami.protocol import AmiConnection, AmiProtocolError
from collectors.base import checked_options
from collectors.queue_log.options import queue_channels
from cxmon.events import ContactEvent, EventKind
from cxmon.validation import Problems, Section, integer, positive_duration, string

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

SECRET_ENV = "CXMON_AMI_SECRET"
REPORT_EVERY = 600.0
"""A connection that keeps failing for the same reason is reported again at most this often."""


@dataclass(frozen=True, slots=True)
class AmiOptions:
    """A validated ``[[collectors]]`` table of type "ami"."""

    host: str = "127.0.0.1"
    port: int = 5038
    user: str = "cxmon"
    secret: str = field(default="", repr=False)
    channels: dict[str, str] = field(default_factory=dict)
    channel: str = "voice"
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    ping_interval: float = 15.0
    """Seconds of silence before a Ping. Its reply (or any message) is the heartbeat that keeps a
    quiet queue from going STALE; no reply within ``timeout`` ends the connection."""
    leave_grace: float = 2.0
    timeout: float = 10.0
    max_skew: float = 300.0
    """Seconds an event's Timestamp may lie ahead of our clock before it is refused."""


def parse_options(options: dict[str, Any], path: str) -> tuple[AmiOptions | None, list[str]]:
    """Validate an AMI collector table; the secret may come from ``CXMON_AMI_SECRET`` instead.

    Returns:
        (options, problems): options is None when there are problems.
    """
    problems = Problems()
    sec = Section(options, path, problems)
    host = sec.get("host", string, "127.0.0.1", "a host name")
    port = sec.get("port", integer(1), 5038, "a port number")
    if port > 65535:
        problems.add(sec.key("port"), f"expected a port number, got {port}")
    user = sec.get("user", string, "", "a user name", required=True)
    secret = sec.get("secret", string, "", "a string") or os.environ.get(SECRET_ENV, "")
    if not secret:
        problems.add(sec.key("secret"), f"required (or set {SECRET_ENV})")
    channel = sec.get("channel", string, "voice", "a channel name")
    channels = queue_channels(sec)
    backoff_min = sec.get("backoff_min", positive_duration, 0.5, 'a duration like "500ms"')
    backoff_max = sec.get("backoff_max", positive_duration, 30.0, 'a duration like "30s"')
    ping = sec.get("ping_interval", positive_duration, 15.0, 'a duration like "15s"')
    grace = sec.get("leave_grace", positive_duration, 2.0, 'a duration like "2s"')
    timeout = sec.get("timeout", positive_duration, 10.0, 'a duration like "10s"')
    skew = sec.get("max_skew", positive_duration, 300.0, 'a duration like "5m"')
    sec.finish()
    if problems.items:
        return None, problems.items
    return (
        AmiOptions(
            host=host,
            port=port,
            user=user,
            secret=secret,
            channels=channels,
            channel=channel,
            backoff_min=backoff_min,
            backoff_max=max(backoff_max, backoff_min),
            ping_interval=ping,
            leave_grace=grace,
            timeout=timeout,
            max_skew=skew,
        ),
        [],
    )


class AmiSource:
    """Follows queue events over AMI; down (so its steps go STALE) while disconnected."""

    type = "ami"

    def __init__(self, name: str, options: AmiOptions) -> None:
        """Create the source.

        Args:
            name: collector name, put into every event's ``source``.
            options: validated options.
        """
        self.name = name
        self.options = options
        self.mapper = AmiMapper(
            name, options.channels, options.channel, options.leave_grace, max_skew=options.max_skew
        )
        self.connects = 0
        """Successful logins so far."""
        self.status: dict[str, Any] = {}
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        """Waits out a reconnect delay (a test records the delays asked for)."""
        self._now: Callable[[], float] = time.monotonic
        """Times the reports of a failure that repeats (a test moves it on)."""

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with an AMI ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> AmiSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        return cls(collector.name, options)

    async def run(self, sink: Sink) -> None:
        """Connect, log in, snapshot the queues and follow events; reconnect with backoff forever."""
        opts = self.options
        where = f"ami://{opts.host}:{opts.port}"
        delay = opts.backoff_min
        loop = asyncio.get_running_loop()
        sink.set_up(False)
        self.mapper.on_error = lambda why: sink.error(where, why)
        report = _FailureReport(sink, where, self._now)
        while True:
            conn: AmiConnection | None = None
            try:
                conn = await AmiConnection.open(opts.host, opts.port, opts.timeout)
                conn.on_error = self.mapper.on_error
                await conn.login(opts.user, opts.secret, opts.timeout)
                self.connects += 1
                sink.set_up(True)
                logged_in = loop.time()
                try:
                    await self._follow(conn, sink)
                finally:
                    # Only a session that lasted is a recovery: a server that drops every session
                    # right after the login is backed off like one that refuses, not hammered
                    # every backoff_min (each session flapping its steps STALE and back).
                    if loop.time() - logged_in >= opts.ping_interval:
                        delay = opts.backoff_min
                        report.recovered()
            except AmiProtocolError as exc:
                report.failed(str(exc))
            except (OSError, TimeoutError) as exc:
                # an exception is always true: its text is what may be empty
                report.failed(f"disconnected: {str(exc) or type(exc).__name__}")
            finally:
                sink.set_up(False)
                if conn is not None:
                    await conn.close()
            # Whatever left the queue while we were away is settled by the next snapshot.
            await self._flush(sink)
            await self._sleep(delay)
            delay = min(delay * 2, opts.backoff_max)

    async def _follow(self, conn: AmiConnection, sink: Sink) -> None:
        """Map messages until the connection ends; a server that stops answering Ping ends it.

        Only what the server sends is a sign of life: a message that makes no event (a Pong, a
        ring) is turned into a heartbeat, at most one per ``ping_interval``.

        Raises:
            TimeoutError: a Ping went unanswered (and nothing else came) for ``timeout`` seconds.
        """
        mapper = self.mapper
        opts = self.options
        self.mapper.begin_snapshot()
        await conn.send("QueueStatus")
        loop = asyncio.get_running_loop()
        heard = loop.time()
        # The first message after a (re)connect is a heartbeat at once: the source was down, and
        # a quiet queue would otherwise stay STALE for a ping interval after the server answered.
        beat = heard - opts.ping_interval
        pinged: float | None = None
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a read that completes
                # as the task is cancelled and drops the cancellation, so the source never stops.
                async with asyncio.timeout(min(opts.ping_interval, opts.leave_grace)):
                    msg = await conn.read()
            except TimeoutError:
                mapper.expire()
                await self._flush(sink)
                now = loop.time()
                if pinged is not None and now - pinged >= opts.timeout:
                    raise TimeoutError(f"no reply to Ping for {now - pinged:.0f} s") from None
                if pinged is None and now - heard >= opts.ping_interval:
                    pinged = now
                    await conn.send("Ping")
                continue
            heard = loop.time()
            pinged = None
            mapper.feed(msg)
            mapper.expire()
            if await self._flush(sink):
                beat = heard
            elif heard - beat >= opts.ping_interval:
                beat = heard
                await sink.emit(
                    [ContactEvent(time.time(), EventKind.HEARTBEAT, "", opts.channel, "", self.name)]
                )

    async def _flush(self, sink: Sink) -> int:
        mapper = self.mapper
        n = len(mapper.out)
        if n:
            events, mapper.out = mapper.out, []
            await sink.emit(events)
        self.status.update(connects=self.connects, waiting=mapper.waiting_now, **dict(mapper.counts))
        return n


class _FailureReport:
    """Reports the failures of the connection: the first, then the same reason again only once
    every ``REPORT_EVERY`` with how many attempts failed so since (a server that refuses for hours
    is not a warning per retry); a new reason at once."""

    def __init__(self, sink: Sink, where: str, now: Callable[[], float]) -> None:
        self._sink = sink
        self._where = where
        self._now = now
        self._why = ""
        self._at = 0.0
        self._since = 0
        """Attempts that failed for the same reason since it was last reported."""

    def failed(self, why: str) -> None:
        """One attempt failed for ``why``."""
        now = self._now()
        if why != self._why:
            self._sink.error(self._where, why)
        elif now - self._at >= REPORT_EVERY:
            self._sink.error(
                self._where,
                f"{why} (again: {self._since + 1} attempts failed so in the {now - self._at:.0f} s "
                "since it was last reported)",
            )
        else:
            self._since += 1
            return
        self._why, self._at, self._since = why, now, 0

    def recovered(self) -> None:
        """A session lasted: the next failure is news."""
        self._why = ""
