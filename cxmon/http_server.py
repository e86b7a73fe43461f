"""The daemon's one HTTP server (aiohttp): /metrics, /healthz and the routes sources contribute.

aiohttp parses the requests: a maintained HTTP/1.1 parser with limits on the request line, header
size and header count. On top of it this module bounds what a hostile client can hold: a connection
that does not complete a request within ``idle_timeout`` is closed, and past ``max_connections``
the oldest connection without a request in flight is closed to let the new one in, so idle or
half-open connections can neither exhaust file descriptors nor lock out a Prometheus scrape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from cxmon.config import Config, HttpConfig, ListenConfig
from cxmon.errors import StartupError
from cxmon.exporter import EngineLike, Exporter
from cxmon.serving_metrics import HttpCounts

log = logging.getLogger(__name__)

MAX_LINE = 8190
"""Longest request line or header line accepted (aiohttp answers 400 beyond it)."""
MAX_HEADERS = 64
"""Most header fields in one request."""


@runtime_checkable
class RouteSource(Protocol):
    """A source that receives pushed data over HTTP (webhooks) implements this.

    ``cxmon serve`` and ``cxmon run`` call :meth:`http_routes` once, before the sources start, and
    mount the routes on the ``[http] listen`` server beside ``/healthz`` (and ``/metrics``, unless
    ``[prometheus] listen`` gives it an address of its own). Paths must not clash with another
    source's or with ``/metrics`` and ``/healthz``. Handlers run on the engine's event loop: they must
    not block, should queue their work rather than do it inline, and answer for themselves (status,
    authentication). A handler bounds the body it reads: ``request.read()`` stops at aiohttp's
    ``client_max_size`` (1 MiB); reading ``request.content`` in chunks is bounded only by the handler.
    The server bounds the rest: request line and headers (8 KiB each, 64 headers), idle connections
    (``[http] idle_timeout``) and open connections (``[http] max_connections``).
    """

    name: str

    def http_routes(self) -> list[web.RouteDef]:
        """Return the routes this source serves, e.g. ``[web.post("/webhooks/zendesk", self._post)]``."""


@runtime_checkable
class CountsRejections(Protocol):
    """A source that refuses requests and counts them by reason (exported as
    ``cxmon_webhook_rejected_total{collector,reason}``; reasons are
    :data:`cxmon.catalogue.WEBHOOK_REJECTIONS`)."""

    name: str
    rejected: Mapping[str, int]


def source_routes(sources: Iterable[object]) -> list[web.RouteDef]:
    """Return every route the sources contribute (see :class:`RouteSource`)."""
    routes: list[web.RouteDef] = []
    for source in sources:
        if isinstance(source, RouteSource):
            routes.extend(source.http_routes())
    return routes


@dataclass(slots=True)
class Listener:
    """One address to listen on, the routes served there, and what they are (for messages)."""

    host: str
    port: int
    routes: list[web.RouteDef] = field(default_factory=list)
    serves: list[str] = field(default_factory=list)
    """What is served here, in words, e.g. ``["/metrics", "webhooks"]``."""
    fix: str = ""
    """How to pick another address or turn the listener off (said when binding fails)."""


class _HttpLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, where malformed requests are counted and logged at debug level.

    aiohttp logs a request it cannot parse as an error with a traceback; from a hostile or confused
    client that is noise which can fill a disk. Failures inside handlers stay errors.
    """

    def __init__(self) -> None:
        super().__init__(logging.getLogger("cxmon.http"))
        self.bad_requests = 0
        """Requests refused because they could not be parsed (oversized, malformed, not HTTP)."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self._refused(exc_info)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):  # aiohttp's word for "not HTTP at all"
            self._refused(exc)
            return
        self.logger.debug(msg, *args, **kwargs)

    def _refused(self, exc: HttpProcessingError) -> None:
        self.bad_requests += 1
        self.logger.debug("refused a malformed request: %s", exc.message)


class _CappedSite(web.BaseSite):
    """A TCP site whose protocol factory makes room when ``cap`` connections are already open."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, cap: int, busy: set[Any]) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._cap = cap
        self._busy = busy
        self.evicted = 0
        """Connections closed to make room for new ones."""

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._server is not None:
            sockets = getattr(self._server, "sockets", None)
            if sockets:
                port: int = sockets[0].getsockname()[1]
                return port
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def factory() -> asyncio.Protocol:
            self._make_room(server)
            protocol: asyncio.Protocol = server()
            return protocol

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, self._host, self._port, reuse_address=True)

    def _make_room(self, server: web.Server) -> None:
        open_now = server.connections
        excess = len(open_now) - self._cap + 1
        if excess <= 0:
            return
        # Oldest first; a connection with a request in flight is closed only if nothing else can go.
        idle = [c for c in open_now if c not in self._busy]
        for conn in (idle + [c for c in open_now if c in self._busy])[:excess]:
            conn.force_close()
            self.evicted += 1


class HttpServer:
    """Serves each :class:`Listener` with an aiohttp application on its own address."""

    def __init__(self, listeners: Sequence[Listener], limits: HttpConfig) -> None:
        self._listeners = list(listeners)
        self._limits = limits
        self._runners: list[web.AppRunner] = []
        self._sites: list[_CappedSite] = []
        self._log = _HttpLog()
        self._busy: set[Any] = set()
        """Connections with a request in flight (held only while the handler runs)."""

    @property
    def ports(self) -> list[int]:
        """The ports bound, in the order of the listeners."""
        return [site.port for site in self._sites]

    @property
    def bad_requests(self) -> int:
        """Requests refused so far because they could not be parsed."""
        return self._log.bad_requests

    @property
    def evicted(self) -> int:
        """Connections closed so far to keep within ``max_connections``."""
        return sum(site.evicted for site in self._sites)

    def open_connections(self) -> int:
        """Connections open now, over every listener."""
        return sum(len(r.server.connections) for r in self._runners if r.server is not None)

    async def start(self) -> None:
        """Bind every listener.

        Raises:
            StartupError: an address cannot be bound; one line saying which, why and how to fix it.
        """
        try:
            for listener in self._listeners:
                await self._start_one(listener)
        except BaseException:
            await self.close()
            raise

    async def _start_one(self, listener: Listener) -> None:
        app = web.Application(middlewares=[self._track_busy])
        app.add_routes(listener.routes)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            logger=self._log,
            keepalive_timeout=self._limits.idle_timeout,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        self._runners.append(runner)
        site = _CappedSite(runner, listener.host, listener.port, self._limits.max_connections, self._busy)
        try:
            await site.start()
        except OSError as exc:
            what = " and ".join(listener.serves) or "HTTP"
            raise bind_failed(listener.host, listener.port, what, listener.fix, exc) from None
        self._sites.append(site)
        log.info("serving %s on http://%s:%d", ", ".join(listener.serves), listener.host, site.port)

    @web.middleware
    async def _track_busy(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        protocol = request.protocol
        self._busy.add(protocol)
        try:
            return await handler(request)
        finally:
            self._busy.discard(protocol)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        runners, self._runners, self._sites = self._runners, [], []
        for runner in reversed(runners):
            await runner.cleanup()


def bind_failed(host: str, port: int, what: str, fix: str, exc: OSError) -> StartupError:
    """Return the one-line error for an address that could not be bound.

    Args:
        host: the address asked for.
        port: the port asked for.
        what: what was to be served there, e.g. ``"/metrics and /healthz"``.
        fix: how to pick another address or do without, e.g. ``"pick a free address with …"``.
        exc: the error binding raised.

    Returns:
        ``cannot listen on HOST:PORT for WHAT: WHY; FIX``.
    """
    if exc.errno == errno.EADDRINUSE:
        why = "the address is already in use (by another program, or another cxmon)"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied (ports below 1024 need privileges)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "no such address on this machine"
    else:
        why = exc.strerror or str(exc)
    return StartupError(f"cannot listen on {host}:{port} for {what}: {why}; {fix}")


_METRICS_FIX = (
    "pick a free address with --metrics-listen HOST:PORT (or [prometheus] listen), "
    "or serve no metrics with [prometheus] enabled = false"
)
_HTTP_FIX = "pick a free address with [http] listen"


def plan_listeners(
    config: Config, health: list[web.RouteDef], metrics: list[web.RouteDef], pushed: list[web.RouteDef]
) -> list[Listener]:
    """Return the listeners the config asks for.

    Routes sources contribute (``pushed``) go on ``[http] listen``; ``/metrics`` goes on
    ``[prometheus] listen``, which is ``[http] listen`` unless set apart, and only while
    ``[prometheus] enabled``. ``/healthz`` is on every listener. With neither, nothing listens.

    Args:
        config: the validated config.
        health: the ``/healthz`` route.
        metrics: the ``/metrics`` route.
        pushed: routes contributed by sources.

    Returns:
        One listener per distinct address.
    """
    by_address: dict[tuple[str, int], Listener] = {}

    def at(host: str, port: int) -> Listener:
        listener = by_address.get((host, port))
        if listener is None:
            listener = by_address[host, port] = Listener(host, port, list(health), ["/healthz"])
        return listener

    if pushed:
        listener = at(config.http.host, config.http.port)
        listener.routes.extend(pushed)
        listener.serves.insert(0, "webhooks")
        listener.fix = _HTTP_FIX
    if config.prometheus.enabled:
        listener = at(config.prometheus.host, config.prometheus.port)
        listener.routes.extend(metrics)
        listener.serves.insert(0, "/metrics")
        listener.fix = f"{listener.fix}, or {_METRICS_FIX}" if listener.fix else _METRICS_FIX
    return list(by_address.values())


class HttpServices:
    """What ``cxmon run``/``serve`` serve over HTTP for one engine: the exporter and the server."""

    def __init__(
        self, engine: EngineLike, sources: Iterable[object] = (), config: Config | None = None
    ) -> None:
        config = config if config is not None else engine.config
        sources = list(sources)
        self._rejecting = [s for s in sources if isinstance(s, CountsRejections)]
        """Sources that refuse requests and count why (webhooks), in config order."""
        self.exporter = Exporter(engine)
        """Renders and serves ``/metrics`` and ``/healthz``."""
        self.listeners = plan_listeners(
            config,
            self.exporter.health_routes(),
            self.exporter.metrics_routes(),
            source_routes(sources),
        )
        self.server = HttpServer(self.listeners, config.http)
        """The listening server (``.ports``)."""
        self.exporter.http_counts = self._counts

    def _counts(self) -> HttpCounts:
        server = self.server
        rejected = tuple((s.name, dict(s.rejected)) for s in self._rejecting)
        return HttpCounts(server.bad_requests, server.evicted, server.open_connections(), rejected)

    @property
    def port(self) -> int:
        """The port of the first listener (the only one unless ``[prometheus] listen`` is set apart)."""
        return self.server.ports[0]

    async def start(self) -> None:
        """Bind every listener, then start rendering metrics.

        Raises:
            StartupError: an address cannot be bound (one line: which, why, how to fix it).
        """
        if not self.listeners:
            return
        await self.server.start()
        await self.exporter.start()

    async def aclose(self) -> None:
        """Stop serving and rendering."""
        await self.server.close()
        await self.exporter.close()


async def start_http(
    engine: EngineLike, host: str | None = None, port: int | None = None, sources: Iterable[object] = ()
) -> HttpServices:
    """Serve ``/metrics``, ``/healthz`` and the sources' routes for ``engine``, and return the services.

    Args:
        engine: gives ``latest`` (the Snapshot), ``add_listener`` and ``config``.
        host: when given with ``port``, serve everything there instead of the configured addresses.
        port: 0 picks a free port (see ``.port``).
        sources: objects that may contribute routes (see :class:`RouteSource`).

    Returns:
        The running services; ``await services.aclose()`` stops them.

    Raises:
        StartupError: an address cannot be bound.
    """
    config = engine.config
    if host is not None and port is not None:
        config = dataclasses.replace(
            config,
            http=dataclasses.replace(config.http, host=host, port=port),
            prometheus=ListenConfig(host=host, port=port, enabled=config.prometheus.enabled),
        )
    services = HttpServices(engine, sources, config)
    await services.start()
    return services
