"""The event row: a ContactEvent as one flat tuple, the form events take on the fast path.

A reader that parses a backfill, the aggregator and the store all pass events around as rows: one
tuple per event, no object to build and take apart. This module is the row's one definition —
field names and positions, the sentinels that stand for None, and the conversions to and from
ContactEvent and SQL.

Optional fields hold a sentinel instead of None: sqlite3 binds None through its adapter lookup
(about 0.25 µs a value, two seconds per million rows), while an exact str or int binds directly,
and SQL's NULLIF turns the sentinel into NULL. Text fields use :data:`NO_TEXT` (``0``, never a
valid text value), numeric fields :data:`NO_NUMBER` (``""``, never a number).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Final

from cxmon.events import KINDS_BY_VALUE, ContactEvent, EventKind

Row = tuple[Any, ...]
"""One event: the fields below, in this order."""

FIELDS: Final[tuple[str, ...]] = (
    "ts",
    "kind",
    "source",
    "contact_id",
    "channel",
    "queue",
    "customer_id",
    "wait",
    "duration",
    "reason",
    "score",
    "target",
    "agents_staffed",
    "agents_available",
    "contacts_waiting",
)
"""Field names in row order (also the events table's columns)."""

TS: Final = 0
"""Epoch seconds by the source's clock (float)."""
KIND: Final = 1
"""The EventKind's value (str): ``"arrived"``, ``"answered"``…"""
SOURCE: Final = 2
"""The collector that produced it (str)."""
CONTACT_ID: Final = 3
CHANNEL: Final = 4
QUEUE: Final = 5
CUSTOMER_ID: Final = 6
"""Optional text."""
WAIT: Final = 7
"""Optional number: seconds in queue."""
DURATION: Final = 8
"""Optional number: handle or resolution time."""
REASON: Final = 9
"""Optional text."""
SCORE: Final = 10
"""Optional number: feedback score."""
TARGET: Final = 11
"""Optional text: where a transfer or escalation went."""
AGENTS_STAFFED: Final = 12
"""Optional number."""
AGENTS_AVAILABLE: Final = 13
"""Optional number."""
CONTACTS_WAITING: Final = 14
"""Optional number: contacts waiting as the source counts them (staffing events)."""

NO_TEXT: Final = 0
"""Stands for None in an optional text field."""
NO_NUMBER: Final = ""
"""Stands for None in an optional numeric field."""

OPTIONAL_TEXT: Final[tuple[int, ...]] = (CUSTOMER_ID, REASON, TARGET)
OPTIONAL_NUMBER: Final[tuple[int, ...]] = (
    WAIT,
    DURATION,
    SCORE,
    AGENTS_STAFFED,
    AGENTS_AVAILABLE,
    CONTACTS_WAITING,
)


def sentinel(index: int) -> Any:
    """Return what stands for None at ``index`` (None for a required field, which has none)."""
    if index in OPTIONAL_TEXT:
        return NO_TEXT
    if index in OPTIONAL_NUMBER:
        return NO_NUMBER
    return None


def row_maker(source: str) -> Callable[..., Row]:
    """A function taking ContactEvent's arguments that builds the event's row.

    Optional fields become their sentinels, and ``source`` stands in for an event that names none.
    A reader whose only output is rows (cxmon.ingest) calls it instead of ContactEvent, so no event
    is built only to be taken apart; :func:`encode_rows` uses it for events.
    """

    def make(
        ts: float,
        kind: EventKind,
        contact_id: str,
        channel: str,
        queue: str,
        source_: str = "",
        customer_id: str | None = None,
        wait: float | None = None,
        duration: float | None = None,
        reason: str | None = None,
        score: float | None = None,
        target: str | None = None,
        agents_staffed: int | None = None,
        agents_available: int | None = None,
        contacts_waiting: int | None = None,
    ) -> Row:
        return (
            ts,
            kind._value_,  # .value goes through Enum's descriptor: several times slower
            source_ or source,
            contact_id,
            channel,
            queue,
            0 if customer_id is None else customer_id,
            "" if wait is None else wait,
            "" if duration is None else duration,
            0 if reason is None else reason,
            "" if score is None else score,
            0 if target is None else target,
            "" if agents_staffed is None else agents_staffed,
            "" if agents_available is None else agents_available,
            "" if contacts_waiting is None else contacts_waiting,
        )

    return make


def row_of(ev: ContactEvent) -> Row:
    """The row of one event, with the event's own source (what the aggregator reads)."""
    # Built inline rather than through row_maker: the live path makes one per event.
    customer, wait, duration, reason = ev.customer_id, ev.wait, ev.duration, ev.reason
    score, target, staffed, available = ev.score, ev.target, ev.agents_staffed, ev.agents_available
    waiting = ev.contacts_waiting
    return (
        ev.ts,
        ev.kind._value_,
        ev.source,
        ev.contact_id,
        ev.channel,
        ev.queue,
        0 if customer is None else customer,
        "" if wait is None else wait,
        "" if duration is None else duration,
        0 if reason is None else reason,
        "" if score is None else score,
        0 if target is None else target,
        "" if staffed is None else staffed,
        "" if available is None else available,
        "" if waiting is None else waiting,
    )


def encode_rows(events: Iterable[ContactEvent | Row], source: str) -> list[Row]:
    """The rows of ``events`` (``source`` for an event that names none); rows already made by
    :func:`row_maker` are taken as they are."""
    make = row_maker(source)
    return [
        ev
        if isinstance(ev, tuple)
        else make(
            ev.ts,
            ev.kind,
            ev.contact_id,
            ev.channel,
            ev.queue,
            ev.source,
            ev.customer_id,
            ev.wait,
            ev.duration,
            ev.reason,
            ev.score,
            ev.target,
            ev.agents_staffed,
            ev.agents_available,
            ev.contacts_waiting,
        )
        for ev in events
    ]


def decode_rows(rows: Iterable[Sequence[Any]]) -> list[ContactEvent]:
    """Rebuild the events of rows (the sentinels back to None)."""
    kinds = KINDS_BY_VALUE
    event = ContactEvent
    return [
        event(
            r[TS],
            kinds[r[KIND]],
            r[CONTACT_ID],
            r[CHANNEL],
            r[QUEUE],
            r[SOURCE],
            None if r[CUSTOMER_ID] == NO_TEXT else r[CUSTOMER_ID],
            None if r[WAIT] == NO_NUMBER else r[WAIT],
            None if r[DURATION] == NO_NUMBER else r[DURATION],
            None if r[REASON] == NO_TEXT else r[REASON],
            None if r[SCORE] == NO_NUMBER else r[SCORE],
            None if r[TARGET] == NO_TEXT else r[TARGET],
            None if r[AGENTS_STAFFED] == NO_NUMBER else r[AGENTS_STAFFED],
            None if r[AGENTS_AVAILABLE] == NO_NUMBER else r[AGENTS_AVAILABLE],
            None if r[CONTACTS_WAITING] == NO_NUMBER else r[CONTACTS_WAITING],
        )
        for r in rows
    ]


def event_from_columns(row: Sequence[Any]) -> ContactEvent:
    """Rebuild an event from the events table's columns in row order, NULLs as None."""
    return ContactEvent(
        row[TS],
        KINDS_BY_VALUE[row[KIND]],
        row[CONTACT_ID],
        row[CHANNEL],
        row[QUEUE],
        row[SOURCE],
        row[CUSTOMER_ID],
        row[WAIT],
        row[DURATION],
        row[REASON],
        row[SCORE],
        row[TARGET],
        row[AGENTS_STAFFED],
        row[AGENTS_AVAILABLE],
        row[CONTACTS_WAITING],
    )


# ---------------------------------------------------------------------- heartbeats

_BEAT: Final = EventKind.HEARTBEAT.value


def heartbeats(batch: Sequence[Any], as_rows: bool) -> int:
    """How many of a batch's events (``as_rows``: store rows) are heartbeats: every batch the engine
    takes is asked, so this is a plain compiled loop."""
    n = 0
    if as_rows:
        for row in batch:
            if row[KIND] == _BEAT:
                n += 1
    else:
        beat = EventKind.HEARTBEAT
        for ev in batch:
            if ev.kind is beat:
                n += 1
    return n


def without_heartbeats(batch: Sequence[Any], as_rows: bool) -> list[Any]:
    """The batch's events (``as_rows``: store rows) that are not heartbeats, in order."""
    if as_rows:
        return [row for row in batch if row[KIND] != _BEAT]
    beat = EventKind.HEARTBEAT
    return [ev for ev in batch if ev.kind is not beat]


# ---------------------------------------------------------------------- SQL


def sql_columns() -> str:
    """The events table's columns in row order: ``ts, kind, source, …``."""
    return ", ".join(FIELDS)


def sql_insert_values() -> str:
    """``VALUES (…)`` that binds a row, each sentinel turned back into NULL."""
    params = [f"NULLIF(?,{sentinel(i)!r})" if sentinel(i) is not None else "?" for i in range(len(FIELDS))]
    return f"VALUES ({','.join(params)})"


def sql_select_row(present: Collection[str] | None = None) -> str:
    """Select list that reads the events table as rows: each NULL as its sentinel.

    ``present``, when given, names the table's columns: an optional field the table lacks (a
    database of an older schema, opened read-only so it cannot be migrated) is read as its sentinel.
    """
    return ", ".join(
        name
        if sentinel(i) is None
        else f"coalesce({name}, {sentinel(i)!r})"
        if present is None or name in present
        else repr(sentinel(i))
        for i, name in enumerate(FIELDS)
    )
