"""Alert sinks: signed JSON requests delivered in order by one task per sink, with backoff on failure."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from cxmon.snapshot import AlertSinkStatus

log = logging.getLogger("cxmon.alerts")

SIGNATURE_HEADER = "X-Cxmon-Signature"
"""Header carrying ``sha256=<hex HMAC-SHA256 of the body>`` on every webhook request."""
EVENT_HEADER = "X-Cxmon-Event"
QUEUE_SIZE = 256
HTTP_TIMEOUT = 5.0


def sign(secret: str, body: bytes) -> str:
    """Return the signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Return whether ``header`` is the right signature of ``body`` (constant-time compare)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class HTTPError(Exception):
    """A request got an error status or no answer."""


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float = HTTP_TIMEOUT,
    session: aiohttp.ClientSession | None = None,
) -> int:
    """POST a JSON ``body`` to ``url`` with aiohttp.

    Args:
        url: an http or https URL.
        body: the JSON bytes.
        headers: extra headers (signature, event type).
        timeout: seconds for the whole request, answer included.
        session: the session to send it with (a sink keeps one); a new one when None.

    Returns:
        The status code (2xx).

    Raises:
        HTTPError: a non-2xx status, an unsupported URL, or a network error.
        TimeoutError: no complete answer within ``timeout`` seconds.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPError(f"unsupported URL {url!r}")
    sent = {"Content-Type": "application/json", "User-Agent": "cxmon", **headers}
    try:
        async with contextlib.AsyncExitStack() as stack:
            if session is None:
                session = await stack.enter_async_context(aiohttp.ClientSession())
            async with session.post(
                url, data=body, headers=sent, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                await resp.read()
                status = resp.status
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error.strerror or str(exc.os_error)
        raise HTTPError(f"cannot connect to {parts.netloc}: {why}") from None
    except aiohttp.ClientError as exc:
        raise HTTPError(f"{parts.netloc}: {exc}") from None
    if not 200 <= status < 300:
        raise HTTPError(f"{parts.netloc}: HTTP {status}")
    return status


Request = Callable[[], tuple[str, bytes, dict[str, str]]]
"""Builds (url, body, headers) when it is sent, so timestamps are those of the attempt."""


@dataclass(slots=True)
class SinkStats:
    """Counters one sink keeps (exported as metrics and shown in the status bar)."""

    sent: int = 0
    failures: int = 0
    dropped: int = 0
    last_error: str | None = None
    ok: bool = True

    def frozen(self, name: str, queued: int) -> AlertSinkStatus:
        """Return the counters as they are now, for sink ``name`` with ``queued`` notifications waiting."""
        return AlertSinkStatus(
            name=name,
            sent=self.sent,
            failures=self.failures,
            dropped=self.dropped,
            queued=queued,
            ok=self.ok,
            last_error=self.last_error,
        )


class HttpSink:
    """A bounded queue of requests and one task delivering them in order, with backoff on failure.

    Nothing here ever blocks the caller: ``put`` appends (dropping the oldest when full) and returns.
    """

    def __init__(
        self,
        name: str,
        *,
        queue_size: int = QUEUE_SIZE,
        timeout: float = HTTP_TIMEOUT,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self.name = name
        self.stats = SinkStats()
        self._queue: deque[tuple[str, Request]] = deque()
        self._size = queue_size
        self._timeout = timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def queued(self) -> int:
        """Requests waiting to be delivered."""
        return len(self._queue)

    def put(self, request: Request, coalesce: str = "") -> None:
        """Queue a request. A non-empty ``coalesce`` key replaces a queued request with the same key."""
        if coalesce and any(key == coalesce for key, _ in self._queue):
            self._queue = deque((k, request if k == coalesce else r) for k, r in self._queue)
            return
        if len(self._queue) >= self._size:
            self._queue.popleft()
            self.stats.dropped += 1
        self._queue.append((coalesce, request))
        self._wake.set()

    def start(self) -> None:
        """Start the delivery task."""
        if self._task is None:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._run(), name=f"cxmon-alerts-{self.name}")

    async def aclose(self, drain: float = 0.0) -> None:
        """Stop the delivery task, first giving it up to ``drain`` seconds to empty the queue."""
        if self._task is None:
            return
        if drain > 0 and self._queue:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain):
                    while self._queue and self.stats.ok:
                        await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            _key, request = self._queue[0]
            try:
                url, body, headers = request()
                await post(url, body, headers, self._timeout, self._session)
            except (HTTPError, TimeoutError, ValueError) as exc:
                self.stats.failures += 1
                self.stats.ok = False
                self.stats.last_error = str(exc) or type(exc).__name__
                log.warning("alert sink %s: %s (retrying in %.1fs)", self.name, self.stats.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            if self._queue and self._queue[0][1] is request:
                self._queue.popleft()
            self.stats.sent += 1
            self.stats.ok = True
            delay = self._retry_initial
