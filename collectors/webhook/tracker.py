"""ContactTracker: vendor updates → ContactEvents, each contact's story told once and in order.

Vendors deliver late, twice, and out of order. The tracker keeps a little state per contact so that:
an arrival is counted once (a second "created" is a duplicate); the first public agent reply is the
answer and later ones are not; a status change older than the one already applied is stale and
ignored; a reply or a close that overtakes the contact's creation counts the arrival first, at the
time the payload gives for it; a reopen only follows a close. State is bounded: the least recently
touched contacts are forgotten first.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.webhook.model import Update
from cxmon.business_time import Calendar
from cxmon.events import ContactEvent, EventKind

if TYPE_CHECKING:
    from cxmon.config import Config

CONTACTS_MAX = 100_000
PAUSES_KEPT = 32
"""Ended pauses kept per contact; older ones count whole for any later update."""

ClockFor = Callable[[str, str], "tuple[Calendar | None, float | None]"]
"""(channel, queue) → the step's calendar and next-reply target."""


def step_clocks(config: Config) -> ClockFor:
    """The ClockFor of a configuration: each contact's step's calendar and next-reply target."""

    def clock_for(channel: str, queue: str) -> tuple[Calendar | None, float | None]:
        step = config.step_for(channel, queue)
        return (step.calendar, step.next_reply) if step is not None else (None, None)

    return clock_for


@dataclass(slots=True)
class _Contact:
    opened: float
    channel: str
    queue: str
    customer: str | None
    answered: bool = False
    closed_at: float | None = None
    status_ts: float = -math.inf
    paused_at: float | None = None
    calendar: Calendar | None = None
    next_target: float | None = None
    pauses: list[tuple[float, float]] = field(default_factory=list)
    """Pauses (pending, on hold) that have ended, as (start, end), oldest first: an update delivered
    late is clocked by the pauses before its own time, not by those that came after it."""
    paused: float = 0.0
    """Business seconds of the oldest pauses, folded out of :attr:`pauses` to keep it short."""
    awaiting: float | None = None
    """Since when the customer's latest message waits for an agent's reply (after the first)."""
    awaiting_paused: float = 0.0

    def business(self, start: float, end: float) -> float:
        """Seconds of [start, end) that count: business time in the step's calendar, or all of them."""
        if self.calendar is None:
            return max(0.0, end - start)
        return self.calendar.between(start, end)

    def paused_by(self, ts: float) -> float:
        """Business seconds paused up to ``ts`` (the pause going on included)."""
        total = self.paused
        for start, end in self.pauses:
            if start < ts:
                total += self.business(start, min(end, ts))
        if self.paused_at is not None and self.paused_at < ts:
            total += self.business(self.paused_at, ts)
        return total

    def end_pause(self, ts: float) -> None:
        """The pause going on, if any, ended at ``ts``."""
        if self.paused_at is None:
            return
        self.pauses.append((self.paused_at, max(self.paused_at, ts)))
        self.paused_at = None
        if len(self.pauses) > PAUSES_KEPT:
            start, end = self.pauses.pop(0)
            self.paused += self.business(start, end)

    def clock(self, start: float, ts: float, paused_at_start: float = 0.0) -> float:
        """Business seconds from ``start`` to ``ts`` with the clock stopped while paused."""
        return max(0.0, self.business(start, ts) - (self.paused_by(ts) - paused_at_start))


class ContactTracker:
    """Applies :class:`Update`s and returns the ContactEvents they make."""

    def __init__(self, source: str, limit: int = CONTACTS_MAX, clock_for: ClockFor | None = None) -> None:
        """Create an empty tracker for the collector called ``source``.

        ``clock_for`` gives a contact's step calendar and next-reply target: waits and resolution
        times are then business time with the clock stopped while the contact is paused.
        """
        self.source = source
        self.limit = limit
        self.clock_for = clock_for
        self.next_replies = 0
        """Agent replies to a customer's later message (after the first reply)."""
        self.next_reply_breaches = 0
        """Next replies later than the step's ``next_reply`` target (business time)."""
        self.next_reply_seconds: list[float] = []
        """The latest next-reply times (business seconds), at most 1,000."""
        self._contacts: OrderedDict[str, _Contact] = OrderedDict()
        self.stale = 0
        """Updates ignored because a later one for the same contact was already applied."""

    def __len__(self) -> int:
        return len(self._contacts)

    def apply(self, u: Update) -> list[ContactEvent]:
        """Return the events ``u`` makes (none for a duplicate or stale update)."""
        if u.action == "direct":
            return [u.event] if u.event is not None else []
        if u.action == "feedback":
            # On the survey channel, in the contact's queue; no score means a survey was sent.
            c = self._contacts.get(u.contact)
            return [
                ContactEvent(
                    u.ts,
                    EventKind.FEEDBACK,
                    u.contact,
                    u.channel,
                    c.queue if c else u.queue,
                    self.source,
                    u.customer or (c.customer if c else None),
                    reason=u.comment or None,
                    score=u.score,
                )
            ]
        out: list[ContactEvent] = []
        c = self._contacts.get(u.contact)
        if c is None:
            opened = u.ts if u.action == "open" or u.opened_at is None else min(u.opened_at, u.ts)
            c = self._open(u, opened, out)
            if u.action == "open":
                return out
        else:
            self._contacts.move_to_end(u.contact)
            if u.customer and not c.customer:
                c.customer = u.customer
            if u.action == "open":
                return out
        if u.action == "reply":
            if c.answered and c.awaiting is not None:
                out.append(self._next_reply(u.contact, c, u.ts))
            self._answer(u.contact, c, u.ts, out)
        elif u.action == "customer":
            if c.answered and c.awaiting is None and c.closed_at is None:
                c.awaiting, c.awaiting_paused = u.ts, c.paused_by(u.ts)
        elif u.action == "abandon":
            if c.answered or c.closed_at is not None:
                self.stale += 1
            else:
                out.append(
                    self._event(
                        u.ts,
                        EventKind.ABANDONED,
                        u.contact,
                        c,
                        wait=c.clock(c.opened, u.ts),
                        reason=u.reason,
                    )
                )
                c.closed_at = u.ts
                c.status_ts = max(c.status_ts, u.ts)
        elif u.action == "status":
            self._status(u, c, out)
        return out

    def _next_reply(self, cid: str, c: _Contact, ts: float) -> ContactEvent:
        """The ``replied`` event of an agent's reply to the customer's later message (its wait is
        the next-reply time, in business time with the pauses left out)."""
        assert c.awaiting is not None
        seconds = c.clock(c.awaiting, ts, c.awaiting_paused)
        c.awaiting = None
        self.next_replies += 1
        self.next_reply_seconds = [*self.next_reply_seconds[-999:], seconds]
        if c.next_target is not None and seconds > c.next_target:
            self.next_reply_breaches += 1
        return self._event(ts, EventKind.REPLIED, cid, c, wait=seconds)

    def _open(self, u: Update, opened: float, out: list[ContactEvent]) -> _Contact:
        c = _Contact(opened, u.channel, u.queue, u.customer)
        if self.clock_for is not None:
            c.calendar, c.next_target = self.clock_for(u.channel, u.queue)
        self._contacts[u.contact] = c
        while len(self._contacts) > self.limit:
            self._contacts.popitem(last=False)
        out.append(self._event(opened, EventKind.ARRIVED, u.contact, c))
        return c

    def _answer(self, cid: str, c: _Contact, ts: float, out: list[ContactEvent]) -> None:
        if c.answered:
            return
        c.answered = True
        out.append(self._event(ts, EventKind.ANSWERED, cid, c, wait=c.clock(c.opened, ts)))

    def _status(self, u: Update, c: _Contact, out: list[ContactEvent]) -> None:
        if u.ts < c.status_ts:
            self.stale += 1
            return
        c.status_ts = u.ts
        if u.status == "open":
            if c.closed_at is not None and u.ts > c.closed_at:
                c.closed_at = None
                c.paused_at = None
                out.append(self._event(u.ts, EventKind.REOPENED, u.contact, c))
            elif c.paused_at is not None:
                c.end_pause(u.ts)
                out.append(self._event(u.ts, EventKind.RESUMED, u.contact, c))
        elif u.status == "paused":
            if c.closed_at is None and c.paused_at is None:
                c.paused_at = u.ts
                out.append(self._event(u.ts, EventKind.PAUSED, u.contact, c))
        elif u.status == "resolved":
            if c.closed_at is not None:
                return
            if u.answered_at is not None:
                self._answer(u.contact, c, u.answered_at, out)
            duration = u.duration if u.duration is not None else c.clock(c.opened, u.ts)
            out.append(self._event(u.ts, EventKind.RESOLVED, u.contact, c, duration=max(0.0, duration)))
            c.end_pause(u.ts)
            c.closed_at = u.ts
            c.awaiting = None

    def _event(
        self,
        ts: float,
        kind: EventKind,
        cid: str,
        c: _Contact,
        *,
        wait: float | None = None,
        duration: float | None = None,
        reason: str | None = None,
    ) -> ContactEvent:
        return ContactEvent(
            ts,
            kind,
            cid,
            c.channel,
            c.queue,
            self.source,
            c.customer,
            wait=wait,
            duration=duration,
            reason=reason,
        )
