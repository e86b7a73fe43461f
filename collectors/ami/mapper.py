"""AMI queue events → ContactEvents, with the waiting calls and queue members they imply."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from collectors.ami.protocol import Message
from cxmon.events import ContactEvent, EventKind

# Device states (Asterisk's AST_DEVICE_*) of a queue member.
NOT_INUSE = "1"
INVALID = "4"
UNAVAILABLE = "5"
_UNKNOWN_CALLER = ("", "<unknown>", "unknown", "anonymous")


@dataclass(slots=True)
class _Waiting:
    queue: str
    ts: float
    customer: str | None


@dataclass(slots=True)
class _Member:
    status: str = NOT_INUSE
    paused: bool = False
    in_call: bool = False


class AmiMapper:
    """Turns AMI messages into events.

    Choices:
        * HoldTime, RingTime and TalkTime are seconds (the real trace shows ``HoldTime: 9`` for a
          nine-second wait).
        * QueueCallerAbandon is the abandon (reason ``hangup``). A QueueCallerLeave that no
          AgentConnect follows within ``leave_grace`` seconds is an exit without an agent (timeout,
          key or empty queue; AMI does not say which): an abandon with reason ``timeout``.
        * AgentComplete with ``Reason: transfer`` is a transfer; otherwise the call is resolved
          with the talk time.
        * AgentCalled and AgentRingNoAnswer are not outcomes: they are counted.
        * After a (re)connect the QueueStatus snapshot is authoritative: entries we did not know
          become arrivals dated ``Wait`` seconds back, and calls we thought were waiting but that
          are gone left while we were disconnected: they are ``lost`` (reason ``unseen``), since
          their outcome cannot be known.
        * An event whose ``Timestamp`` is not a finite number, or lies more than ``max_skew``
          seconds ahead of our clock, is reported (``on_error``), counted under ``bad_timestamp``
          and skipped whole: its other fields cannot be trusted to belong to a real moment either.
          Events without a Timestamp are dated by our clock.
        * A duration (HoldTime, TalkTime, Wait) that is not a finite non-negative number counts
          as absent (``bad_number``); the event itself is kept.
    """

    def __init__(
        self,
        source: str = "ami",
        channels: Mapping[str, str] | None = None,
        default_channel: str = "voice",
        leave_grace: float = 2.0,
        clock: Callable[[], float] = time.time,
        max_skew: float = 300.0,
    ) -> None:
        """Build a mapper.

        Args:
            source: the collector name put on every event.
            channels: queue name → channel, for queues that are not ``default_channel``.
            default_channel: the channel of every other queue.
            leave_grace: seconds a QueueCallerLeave waits for an AgentConnect before it is an abandon.
            clock: our clock (epoch seconds): dates events without a Timestamp, bounds those with one.
            max_skew: seconds a Timestamp may lie ahead of ``clock``.
        """
        self.source = source
        self.channels = dict(channels or {})
        self.default_channel = default_channel
        self.leave_grace = leave_grace
        self.clock = clock
        self.max_skew = max_skew
        self.on_error: Callable[[str], None] | None = None
        """Called with why, for each message that is skipped as malformed."""
        self._stamp = 0.0
        """The time of the message being mapped."""
        self.out: list[ContactEvent] = []
        self.counts: Counter[str] = Counter()
        self._waiting: dict[str, _Waiting] = {}
        """Uniqueid → the call waiting in a queue."""
        self._left: dict[str, tuple[_Waiting, float]] = {}
        """Uniqueid → (call, when it left the queue) until we know whether an agent took it."""
        self._members: dict[str, dict[str, _Member]] = {}
        self._staffing: dict[str, tuple[int, int]] = {}
        self._snapshot: dict[str, tuple[str, float, str | None]] | None = None
        self._snapshot_members: dict[str, dict[str, _Member]] = {}

    # ------------------------------------------------------------------ helpers

    def _channel(self, queue: str) -> str:
        return self.channels.get(queue, self.default_channel)

    def _emit(
        self, ts: float, kind: EventKind, cid: str, queue: str, customer: str | None, **kw: object
    ) -> None:
        self.out.append(
            ContactEvent(ts, kind, cid, self._channel(queue), queue, self.source, customer, **kw)  # type: ignore[arg-type]
        )

    def _ts(self, msg: Message) -> float:
        """The time of the message being mapped (checked by :meth:`feed`)."""
        return self._stamp

    def _stamp_of(self, msg: Message) -> float | None:
        """Return the message's time, or None (reported and counted) when it is not believable."""
        now = self.clock()
        stamp = msg.get("Timestamp")
        if not stamp:
            return now
        try:
            ts = float(stamp)
        except ValueError:
            ts = math.nan
        if math.isfinite(ts) and 0.0 <= ts <= now + self.max_skew:
            return ts
        if not math.isfinite(ts):
            why = "not a finite number"
        elif ts < 0:
            why = "before 1970"
        else:
            why = f"{ts - now:.0f} s ahead of our clock (allowed: {self.max_skew:.0f} s)"
        self.counts["bad_timestamp"] += 1
        if self.on_error is not None:
            self.on_error(
                f"{msg.get('Event')} {msg.get('Uniqueid', '')}".rstrip()
                + f": Timestamp {stamp[:40]!r} is {why}; event skipped"
            )
        return None

    def _seconds(self, msg: Message, key: str) -> float | None:
        text = msg.get(key)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
        self.counts["bad_number"] += 1
        return None

    @property
    def waiting_now(self) -> int:
        """Calls in a queue, as far as AMI has told us."""
        return len(self._waiting)

    # ------------------------------------------------------------------ feeding

    def feed(self, msg: Message) -> None:
        """Take one AMI message (events; responses are ignored)."""
        event = msg.get("Event")
        if event is None:
            return
        handler = _HANDLERS.get(event)
        if handler is None:
            self.counts["other"] += 1
            return
        stamp = self._stamp_of(msg)
        if stamp is None:
            return
        self._stamp = stamp
        self.counts[event] += 1
        handler(self, msg)

    def expire(self, now: float | None = None) -> None:
        """Turn queue leaves that no agent took within the grace period into abandons."""
        now = self.clock() if now is None else now
        for uid, (call, left) in list(self._left.items()):
            if now - left >= self.leave_grace:
                del self._left[uid]
                self._emit(left, EventKind.ABANDONED, uid, call.queue, call.customer,
                           wait=max(left - call.ts, 0.0), reason="timeout")  # fmt: skip

    # ------------------------------------------------------------------ calls

    def _join(self, msg: Message) -> None:
        uid, queue = msg.get("Uniqueid", ""), msg.get("Queue", "")
        if not uid or not queue:
            self.counts["bad"] += 1
            return
        caller = msg.get("CallerIDNum", "")
        customer = None if caller.lower() in _UNKNOWN_CALLER else caller
        ts = self._ts(msg)
        self._waiting[uid] = _Waiting(queue, ts, customer)
        self._emit(ts, EventKind.ARRIVED, uid, queue, customer)

    def _abandon(self, msg: Message) -> None:
        uid = msg.get("Uniqueid", "")
        call = self._waiting.pop(uid, None) or self._left_call(uid)
        ts = self._ts(msg)
        queue = msg.get("Queue") or (call.queue if call else "")
        wait = self._seconds(msg, "HoldTime")
        if wait is None and call is not None:
            wait = max(ts - call.ts, 0.0)
        self._emit(
            ts, EventKind.ABANDONED, uid, queue, call.customer if call else None, wait=wait, reason="hangup"
        )

    def _left_call(self, uid: str) -> _Waiting | None:
        hit = self._left.pop(uid, None)
        return hit[0] if hit else None

    def _leave(self, msg: Message) -> None:
        uid = msg.get("Uniqueid", "")
        call = self._waiting.pop(uid, None)
        if call is not None:
            self._left[uid] = (call, self._ts(msg))

    def _connect(self, msg: Message) -> None:
        uid = msg.get("Uniqueid", "")
        queue = msg.get("Queue", "")
        call = self._waiting.pop(uid, None) or self._left_call(uid)
        ts = self._ts(msg)
        wait = self._seconds(msg, "HoldTime")
        if wait is None:
            wait = max(ts - call.ts, 0.0) if call is not None else None
        if call is None:
            # Joined before we connected and answered before the QueueStatus snapshot came.
            call = _Waiting(queue, ts - (wait or 0.0), None)
            self._emit(call.ts, EventKind.ARRIVED, uid, queue, None, reason="inferred")
        self._emit(ts, EventKind.ANSWERED, uid, queue or call.queue, call.customer, wait=wait)

    def _complete(self, msg: Message) -> None:
        uid = msg.get("Uniqueid", "")
        queue = msg.get("Queue", "")
        caller = msg.get("CallerIDNum", "")
        customer = None if caller.lower() in _UNKNOWN_CALLER else caller
        ts = self._ts(msg)
        if msg.get("Reason", "").lower() == "transfer":
            self._emit(ts, EventKind.TRANSFERRED, uid, queue, customer, reason="transfer")
        else:
            self._emit(ts, EventKind.RESOLVED, uid, queue, customer, duration=self._seconds(msg, "TalkTime"))

    # ------------------------------------------------------------------ members

    def _member_update(self, msg: Message) -> None:
        queue = msg.get("Queue", "")
        name = (
            msg.get("Interface") or msg.get("StateInterface") or msg.get("MemberName") or msg.get("Name", "")
        )
        if not queue or not name:
            self.counts["bad"] += 1
            return
        members = self._members.setdefault(queue, {})
        if msg.get("Event") == "QueueMemberRemoved":
            members.pop(name, None)
        else:
            m = members.setdefault(name, _Member())
            _apply(m, msg)
        self._report(queue, self._ts(msg))

    def _report(self, queue: str, ts: float) -> None:
        members = self._members.get(queue, {}).values()
        staffed = sum(1 for m in members if m.status not in (INVALID, UNAVAILABLE))
        available = sum(1 for m in members if m.status == NOT_INUSE and not m.paused and not m.in_call)
        if self._staffing.get(queue) == (staffed, available):
            return
        self._staffing[queue] = (staffed, available)
        self._emit(
            ts, EventKind.STAFFING, "", queue, None, agents_staffed=staffed, agents_available=available
        )

    # ------------------------------------------------------------------ QueueStatus snapshot

    def begin_snapshot(self) -> None:
        """A QueueStatus action was sent: collect its entries and members until it completes."""
        self._snapshot = {}
        self._snapshot_members = {}

    def _params(self, msg: Message) -> None:
        if self._snapshot is not None:
            self._snapshot_members.setdefault(msg.get("Queue", ""), {})

    def _snap_member(self, msg: Message) -> None:
        if self._snapshot is None:
            return
        queue = msg.get("Queue", "")
        name = msg.get("StateInterface") or msg.get("Location") or msg.get("Name", "")
        m = _Member()
        _apply(m, msg)
        self._snapshot_members.setdefault(queue, {})[name] = m

    def _entry(self, msg: Message) -> None:
        if self._snapshot is None:
            return
        uid = msg.get("Uniqueid", "")
        wait = self._seconds(msg, "Wait") or 0.0
        caller = msg.get("CallerIDNum", "")
        customer = None if caller.lower() in _UNKNOWN_CALLER else caller
        if uid:
            self._snapshot[uid] = (msg.get("Queue", ""), wait, customer)

    def _snapshot_done(self, msg: Message) -> None:
        if self._snapshot is None:
            return
        now = self._ts(msg)
        seen, self._snapshot = self._snapshot, None
        for uid, call in list(self._waiting.items()):
            if uid not in seen:
                del self._waiting[uid]
                self._emit(now, EventKind.LOST, uid, call.queue, call.customer, reason="unseen")
        for uid, (queue, wait, customer) in seen.items():
            known = self._waiting.get(uid)
            if known is not None and known.queue == queue:
                continue
            self._waiting[uid] = _Waiting(queue, now - wait, customer)
            self._emit(now - wait, EventKind.ARRIVED, uid, queue, customer, reason="snapshot")
        for queue, members in self._snapshot_members.items():
            if not queue:
                continue
            self._members[queue] = members
            self._report(queue, now)
        self._snapshot_members = {}


def _apply(m: _Member, msg: Message) -> None:
    if "Status" in msg:
        m.status = msg["Status"]
    if "Paused" in msg:
        m.paused = msg["Paused"] == "1"
    if "InCall" in msg:
        m.in_call = msg["InCall"] == "1"


def _counted(mapper: AmiMapper, msg: Message) -> None:
    """Ring events are not outcomes."""


_HANDLERS: dict[str, Callable[[AmiMapper, Message], None]] = {
    "QueueCallerJoin": AmiMapper._join,
    "QueueCallerAbandon": AmiMapper._abandon,
    "QueueCallerLeave": AmiMapper._leave,
    "AgentConnect": AmiMapper._connect,
    "AgentComplete": AmiMapper._complete,
    "AgentCalled": _counted,
    "AgentRingNoAnswer": _counted,
    "AgentDump": _counted,
    "QueueMemberStatus": AmiMapper._member_update,
    "QueueMemberPause": AmiMapper._member_update,
    "QueueMemberPaused": AmiMapper._member_update,
    "QueueMemberAdded": AmiMapper._member_update,
    "QueueMemberRemoved": AmiMapper._member_update,
    "QueueParams": AmiMapper._params,
    "QueueMember": AmiMapper._snap_member,
    "QueueEntry": AmiMapper._entry,
    "QueueStatusComplete": AmiMapper._snapshot_done,
}
