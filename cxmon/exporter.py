"""The exporter: ``/metrics`` and ``/healthz`` over the engine's latest Snapshot, rendered off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from cxmon import __version__
from cxmon.config import Config
from cxmon.exposition import CONTENT_TYPE, Payload, render_payload
from cxmon.serving_metrics import HttpCounts
from cxmon.snapshot import Snapshot

log = logging.getLogger(__name__)

FROZEN_TICKS = 10
"""A snapshot older than this many ticks (wall time, and at least :data:`FROZEN_FLOOR`) means frozen."""
FROZEN_FLOOR = 10.0
"""Seconds: the least publication gap called frozen, so a busy machine's slow tick is not an outage."""


def frozen_limit(tick: float) -> float:
    """Return the wall seconds without a new snapshot after which an engine ticking every ``tick``
    seconds counts as frozen (``/healthz``, and the ``CxmonEngineDown`` rule of ``cxmon rules``)."""
    return max(FROZEN_TICKS * tick, FROZEN_FLOOR)


class EngineLike(Protocol):
    """What the exporter needs from the engine."""

    config: Config

    @property
    def latest(self) -> Snapshot: ...

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None: ...


class Exporter:
    """Serves ``/metrics`` from bytes rendered in a worker thread, and ``/healthz`` from the snapshot.

    A render runs each time a new snapshot is published; a scrape only writes the cached bytes
    (plain, or gzip when the scraper accepts it, as Prometheus does). After a render that took ``t``
    seconds the next one waits at least ``t * (1 / max_render_share - 1)``, so rendering a huge
    exposition never takes more than that share of a core. Nobody scraping for ``idle_after``
    seconds stops the renders until the next scrape.

    The engine is watched for freezing: when no snapshot has been published for
    ``frozen_after`` seconds of wall time, ``/healthz`` answers 503 ``"frozen"``, and every
    exposition carries ``cxmon_snapshot_published_timestamp_seconds`` (wall time of publication)
    so Prometheus can see a frozen engine behind a target that still answers.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        max_render_share: float = 0.25,
        idle_after: float = 300.0,
        frozen_after: float | None = None,
    ) -> None:
        self._engine = engine
        self._config = engine.config
        self._share = max_render_share
        self._idle_after = idle_after
        self.frozen_after = (
            frozen_after if frozen_after is not None else frozen_limit(engine.config.monitor.tick)
        )
        """Wall seconds without a new snapshot after which the engine counts as frozen."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._rendered = asyncio.Condition()
        self._payload: Payload | None = None
        self._last_scrape = -math.inf
        self._published_wall = time.time()
        self._published_mono = time.monotonic()
        self.http_counts: Callable[[], HttpCounts] | None = None
        """The serving HTTP server's counts, exported with each render (set by the server)."""
        self.more_text: list[Callable[[], list[bytes]]] = []
        """Other parts of the daemon (the hub) whose counters join each render: called on the loop,
        each returns text-format families as byte chunks."""
        self.renders = 0
        """Renders done so far."""
        self.last_render_seconds = 0.0
        """Wall time the newest render took (in its worker thread)."""

    def health_routes(self) -> list[web.RouteDef]:
        """Return the ``/healthz`` route (GET, and HEAD; other methods 405)."""
        return [web.get("/healthz", self.handle_healthz)]

    def metrics_routes(self) -> list[web.RouteDef]:
        """Return the ``/metrics`` route (GET, and HEAD; other methods 405)."""
        return [web.get("/metrics", self.handle_metrics)]

    async def start(self) -> None:
        """Watch the engine's snapshots and start the render task."""
        self._engine.add_listener(self._on_snapshot)
        self._task = asyncio.create_task(self._render_loop(), name="cxmon-exporter-render")

    async def close(self) -> None:
        """Stop the render task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ------------------------------------------------------------------ rendering

    def _on_snapshot(self, _snap: Snapshot) -> None:
        self._published_wall = time.time()
        self._published_mono = time.monotonic()
        self._wake.set()

    def _active(self) -> bool:
        return time.monotonic() - self._last_scrape < self._idle_after

    async def _render_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snap = self._engine.latest
            if snap.version == self._version or (not self._active() and self._payload is not None):
                continue
            t0 = time.perf_counter()
            try:
                counts = self.http_counts() if self.http_counts is not None else None
                more = [chunk for part in self.more_text for chunk in part()]
                payload = await asyncio.to_thread(
                    render_payload, snap, self._config, published=self._published_wall, http=counts, more=more
                )
            except Exception:  # a render bug must not kill the exporter; keep the last good bytes
                log.exception("rendering metrics failed")
                await asyncio.sleep(1.0)
                continue
            took = time.perf_counter() - t0
            self.renders += 1
            self.last_render_seconds = took
            async with self._rendered:
                self._payload = payload
                self._rendered.notify_all()
            await asyncio.sleep(took * (1.0 / self._share - 1.0))

    @property
    def _version(self) -> int:
        return -1 if self._payload is None else self._payload.version

    async def payload(self, timeout: float = 10.0) -> Payload | None:
        """Return what a scrape serves now: cached, or freshly rendered after an idle spell.

        Returns:
            The payload, or None when none could be rendered within ``timeout``.
        """
        was_active = self._active()
        self._last_scrape = time.monotonic()
        if self._payload is not None and was_active:
            return self._payload
        wanted = self._engine.latest.version
        self._wake.set()
        async with self._rendered:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._rendered.wait_for(lambda: self._version >= wanted)
        return self._payload

    async def body(self, timeout: float = 10.0) -> bytes | None:
        """Return the uncompressed exposition a scrape serves now (see :meth:`payload`)."""
        payload = await self.payload(timeout)
        return None if payload is None else payload.body

    # ------------------------------------------------------------------ health

    def health(self) -> tuple[int, dict[str, Any]]:
        """Return the ``/healthz`` status code and document.

        ``status`` is ``ok`` (200), or with 503: ``starting`` (no snapshot yet: the engine is
        starting, reading its history back), ``failing`` (the engine's last tick failed; its
        error is ``tick_error``), ``frozen`` (no snapshot published for ``frozen_after`` seconds of
        wall time) or ``stale`` (every source has gone silent). ``snapshot`` is the snapshot's
        number, ``version`` the software's.
        """
        snap = self._engine.latest
        age = time.monotonic() - self._published_mono
        if snap.version == 0:
            status = "starting"
        elif snap.tick_error:
            status = "failing"
        elif age > self.frozen_after:
            status = "frozen"
        elif snap.stale:
            status = "stale"
        else:
            status = "ok"
        doc: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "snapshot": snap.version,
            "ts": snap.ts,
            "snapshot_age_seconds": round(age, 3),
            "tick_error": snap.tick_error,
            "rendered_snapshot": self._version,
            "last_render_seconds": round(self.last_render_seconds, 6),
        }
        return (200 if status == "ok" else 503), doc

    # ------------------------------------------------------------------ handlers

    async def handle_healthz(self, request: web.Request) -> web.Response:
        """``GET /healthz``: the document of :meth:`health` as JSON."""
        code, doc = self.health()
        return web.json_response(doc, status=code)

    async def handle_metrics(self, request: web.Request) -> web.StreamResponse:
        """``GET /metrics``: the cached exposition, gzip-compressed when the scraper accepts gzip."""
        payload = await self.payload()
        if payload is None:
            return web.Response(status=503, text="no snapshot rendered yet\n")
        gzip_ok = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        if gzip_ok:
            return web.Response(
                body=payload.gzip,
                headers={
                    "Content-Type": CONTENT_TYPE,
                    "Content-Encoding": "gzip",
                    "Vary": "Accept-Encoding",
                },
            )
        resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"})
        resp.content_length = payload.length
        await resp.prepare(request)
        if request.method != "HEAD":
            for chunk in payload.chunks:  # each write waits for the socket: a slow reader costs no memory
                await resp.write(chunk)
        await resp.write_eof()
        return resp
