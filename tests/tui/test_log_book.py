"""The event log's book: each entry once, newest first, bounded with its identities."""

from __future__ import annotations

from cxmon.snapshot import State
from cxmon.tui.log_book import LogBook
from cxmon.tui.widgets.event_log import LogEntry


def _entry(ts: float, step: str = "get_help") -> LogEntry:
    return LogEntry(
        ts=ts, step=step, where="voice/billing", change="OK → WATCH", state=State.WATCH, reason="r"
    )


def test_an_entry_seen_twice_is_kept_once_and_the_newest_is_first() -> None:
    """A transition repeated by a later snapshot is logged once; the entries run newest first."""
    book = LogBook(10)
    assert book.add([_entry(2.0), _entry(1.0)])
    assert not book.add([_entry(1.0)])
    assert [e.ts for e in book.entries()] == [2.0, 1.0]


def test_the_oldest_entries_leave_with_their_identities() -> None:
    """Past the limit the oldest entry leaves, and so does its identity: a long run holds the limit."""
    book = LogBook(3)
    for ts in range(1000):
        book.add([_entry(float(ts))])
    assert [e.ts for e in book.entries()] == [999.0, 998.0, 997.0]
    assert len(book) == 3
