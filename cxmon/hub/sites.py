"""Several sites on one dashboard: one journey map per site, side by side, each step named by its site.

Sites' journeys need not agree (different steps, thresholds, queues), a pot hole belongs to one
site's floor, and an acknowledgement must reach the daemon that owns the step: so steps are not
merged across sites. Site ``leeds``'s step ``order`` becomes ``leeds-order`` (label "leeds · Ordering"),
its series and sources are renamed the same way, and the journey map shows each site's steps in its
own journey order, site after site.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from cxmon.config import Config
from cxmon.events import ContactEvent
from cxmon.hub.client import DISCONNECTED, HubClient, HubError
from cxmon.hub.protocol import bare_config
from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, HubLink, HubStatus, Snapshot, Transition

RECENT = 200
T = TypeVar("T")


def site_name(url: str) -> str:
    """The site a URL names: its ``#fragment`` when given (``ws://10.0.0.5:8765#leeds``), else HOST:PORT."""
    parts = urlsplit(url)
    return parts.fragment or parts.netloc or url


def slug(name: str) -> str:
    """``name`` reduced to letters, digits, ``_`` and ``-`` (what a widget id may hold)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "site"


class SitesFeed:
    """A Feed over several hubs: their snapshots merged, each step prefixed with its site."""

    def __init__(self, clients: Sequence[HubClient], names: Sequence[str] | None = None) -> None:
        """Combine ``clients`` (started and ready: their journeys are known).

        Args:
            clients: one hub client per site.
            names: site names (default: :func:`site_name` of each client's URL), unique.
        """
        self.clients = list(clients)
        names = list(names) if names is not None else [site_name(c.url) for c in self.clients]
        self.sites = [slug(n) for n in names]
        if len(set(self.sites)) != len(self.sites):
            self.sites = [f"{s}{i + 1}" for i, s in enumerate(self.sites)]
        self.labels = list(names)
        self._owner: dict[str, tuple[HubClient, str, str]] = {}
        self.config = self._merged_config()
        self._seq = 0
        self._latest = EMPTY_SNAPSHOT
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _merged_config(self) -> Config:
        steps, channels, queues = [], [], []
        for client, site, label in zip(self.clients, self.sites, self.labels, strict=True):
            for step in client.config.steps:
                name = f"{site}-{step.name}"
                self._owner[name] = (client, step.name, site)
                steps.append(dataclasses.replace(step, name=name, label=f"{label} · {step.label}"))
            channels += [c for c in client.config.channels if c not in channels]
            queues += [q for q in client.config.queues if q not in queues]
        monitor = self.clients[0].config.monitor if self.clients else None
        # One clock for every site: theirs where they agree, else the watcher's own.
        zones = {c.config.display_timezone for c in self.clients}
        return bare_config(
            " + ".join(c.url for c in self.clients),
            monitor=monitor,
            steps=tuple(steps),
            channels=tuple(channels),
            queues=tuple(queues),
            display_timezone=zones.pop() if len(zones) == 1 else None,
        )

    # ------------------------------------------------------------------ Feed

    @property
    def latest(self) -> Snapshot:
        """The sites' latest snapshots merged."""
        return self._latest

    async def subscribe(self) -> AsyncIterator[Snapshot]:
        """Yield the merged snapshot whenever any site's changes (newest only)."""
        self._start()
        seen = -1
        while True:
            if self._seq != seen:
                seen = self._seq
                yield self._latest
                continue
            self._changed.clear()
            await self._changed.wait()

    def may_acknowledge(self, step: str) -> bool:
        """Whether the step's site lets this watcher's token acknowledge (True for an unknown step:
        :meth:`acknowledge` says why not)."""
        owner = self._owner.get(step)
        return owner is None or owner[0].may_acknowledge(owner[1])

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Acknowledge on the daemon of the step's site.

        Raises:
            HubError: no such step, or that site's hub refused.
        """
        owner = self._owner.get(step)
        if owner is None:
            raise HubError(f"no step {step!r}")
        client, name, site = owner
        ack = await client.acknowledge(name, who, note, until)
        return dataclasses.replace(ack, step=f"{site}-{ack.step}")

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """Every reachable site's strikes list, a customer's strikes added up across the sites.

        Customer keys are normalized the same way by every site, so one customer who called two
        floors is one entry. A site out of reach is left out.

        Raises:
            HubError: no site answered.
        """
        answers = await self._ask_all(lambda c: c.customer_leaders(limit))
        total: dict[str, int] = {}
        for _site, leaders in answers:
            for customer, strikes in leaders:
                total[customer] = total.get(customer, 0) + strikes
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """The customer's events at every reachable site, in time order, sources named by site.

        Raises:
            HubError: no site answered.
        """
        answers = await self._ask_all(lambda c: c.customer_path(customer_id))
        events = [
            dataclasses.replace(ev, source=f"{site}-{ev.source}") for site, path in answers for ev in path
        ]
        events.sort(key=lambda ev: ev.ts)
        return events

    async def _ask_all(self, ask: Callable[[HubClient], Awaitable[T]]) -> list[tuple[str, T]]:
        results = await asyncio.gather(*(ask(c) for c in self.clients), return_exceptions=True)
        answers: list[tuple[str, T]] = []
        errors: list[str] = []
        for site, result in zip(self.sites, results, strict=True):
            if isinstance(result, HubError):
                errors.append(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                answers.append((site, result))
        if errors and not answers:
            raise HubError("; ".join(errors))
        return answers

    async def aclose(self) -> None:
        """Stop following the sites (the clients are closed by their owner)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # ------------------------------------------------------------------ merging

    def _start(self) -> None:
        if not self._tasks:
            self._merge()
            self._tasks = [asyncio.create_task(self._follow(c), name=f"site {c.url}") for c in self.clients]

    async def _follow(self, client: HubClient) -> None:
        async for _ in client.subscribe():
            self._merge()

    def _merge(self) -> None:
        self._seq += 1
        self._latest = merge(
            [(site, c.latest) for site, c in zip(self.sites, self.clients, strict=True)],
            self._seq,
            dict(zip(self.sites, self.labels, strict=True)),
        )
        self._changed.set()


def _ack(ack: Ack | None, site: str) -> Ack | None:
    return None if ack is None else dataclasses.replace(ack, step=f"{site}-{ack.step}")


def _transition(tr: Transition, site: str) -> Transition:
    return dataclasses.replace(tr, step=f"{site}-{tr.step}")


def merge(
    snaps: Sequence[tuple[str, Snapshot]], version: int, labels: Mapping[str, str] | None = None
) -> Snapshot:
    """One snapshot from several sites' (site slug, snapshot) pairs, every name prefixed by its site.

    Each step's label is prefixed too ("leeds · Ordering", the site's label from ``labels``, else its
    slug): the tiles and the matrix show a step's label, and two sites' steps often share one.
    """
    steps, series, sources, transitions, recent, acks = [], [], [], [], [], []
    links: list[HubLink] = []
    for site, snap in snaps:
        label = labels.get(site, site) if labels is not None else site
        steps += [
            dataclasses.replace(
                s, name=f"{site}-{s.name}", label=f"{label} · {s.label}", ack=_ack(s.ack, site)
            )
            for s in snap.steps
        ]
        series += [dataclasses.replace(s, step=f"{site}-{s.step}") for s in snap.series]
        sources += [dataclasses.replace(s, name=f"{site}-{s.name}") for s in snap.sources]
        transitions += [_transition(t, site) for t in snap.transitions]
        recent += [_transition(t, site) for t in snap.recent_transitions]
        acks += [a for a in (_ack(a, site) for a in snap.acks) if a is not None]
        link = snap.hub.links[0] if snap.hub is not None and snap.hub.links else HubLink("", DISCONNECTED)
        links.append(dataclasses.replace(link, site=site))
    recent.sort(key=lambda t: t.ts)
    first = snaps[0][1] if snaps else EMPTY_SNAPSHOT
    return dataclasses.replace(
        first,
        version=version,
        ts=max((s.ts for _, s in snaps), default=0.0),
        steps=tuple(steps),
        series=tuple(series),
        sources=tuple(sources),
        transitions=tuple(transitions),
        recent_transitions=tuple(recent[-RECENT:]),
        strikes=sum(s.strikes for _, s in snaps),
        events_total=sum(s.events_total for _, s in snaps),
        # A site out of reach shows the rate it had when last heard from: not a rate of now.
        events_per_second=sum(s.events_per_second for _, s in snaps if not s.stale),
        errors_total=sum(s.errors_total for _, s in snaps),
        stale=bool(snaps) and all(s.stale for _, s in snaps),
        acks=tuple(acks),
        hub=HubStatus(tuple(links)),
    )
