"""Asterisk queue_log lines → ContactEvents, with the call state the verbs need.

The verbs are named in collectors.queue_log.verbs, lines are split into fields by
collectors.queue_log.lines, and queue members and their staffing figures are kept by
collectors.queue_log.staffing.

Over 500 lines for a reason: every call verb reads and changes the same call state (calls waiting
and connected, the agents on them), and the per-line loop (``_parse_into``) binds that state to
locals once per block and handles the common verbs inline; split further, that state would be
handed across modules on the hot path.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collectors.queue_log.lines import NO_QUEUE as _NO_QUEUE
from collectors.queue_log.lines import bad_stamp, decode, split_block
from collectors.queue_log.lines import extension as _extension
from collectors.queue_log.lines import field as _field
from collectors.queue_log.lines import number as _number
from collectors.queue_log.staffing import Staffing
from collectors.queue_log.verbs import CALL_VERBS as _CALL_VERBS
from collectors.queue_log.verbs import COMPLETES as _COMPLETES
from collectors.queue_log.verbs import EXITS as _EXITS
from collectors.queue_log.verbs import KNOWN_VERBS
from collectors.queue_log.verbs import MEMBER as _MEMBER
from cxmon.customers import normalize_phone
from cxmon.events import ContactEvent, EventKind

__all__ = ["KNOWN_VERBS", "QueueLogParser"]

ARRIVED = EventKind.ARRIVED
ANSWERED = EventKind.ANSWERED
ABANDONED = EventKind.ABANDONED
RESOLVED = EventKind.RESOLVED
TRANSFERRED = EventKind.TRANSFERRED
STAFFING = EventKind.STAFFING
LOST = EventKind.LOST

_EXTENSION_DIGITS = 6
"""A caller id this short may be an internal extension (an agent's consult call); customers' numbers
are longer."""
_PRUNE_EVERY = 4096
"""Lines between sweeps of calls that have had no event for longer than ``forget_after``."""
_NAMES_KEPT = 4096
"""Queue names kept to share one object per name (a log naming more starts the set again)."""


@dataclass(slots=True)
class _Call:
    """A call's entry in one queue."""

    contact_id: str
    """The id the engine knows this queue entry by (the caller's uniqueid, or the consult call's)."""
    customer: str | None
    ts: float
    """When it entered the queue, or was answered once connected."""
    agent: str = ""


class QueueLogParser:
    """Parses queue_log lines into events, keeping the state some verbs need.

    One parser follows one log from its first line; its output for a line depends only on the
    lines before it, so replaying a file's prefix quietly (``quiet=True``) restores the exact state
    an uninterrupted run would have had (the tailer does this after a restart).

    Output choices:
        * RINGNOANSWER, RINGCANCELED and AGENTDUMP are not contact outcomes: they are counted
          (``rings`` per verb, ``ring_ms`` for RINGNOANSWER's milliseconds) and no event is made.
        * QUEUESTART means Asterisk restarted, so every call it had in flight is gone: those get a
          ``lost`` event (reason ``restart``). CONFIGRELOAD is only counted; calls usually survive
          a reload, and the engine times out any that do not (``monitor.lost_after``).
        * A CONNECT in a queue the call never entered (a transfer the log does not show) gets an
          ``arrived`` event dated ``wait`` seconds earlier, so answered never exceeds offered.
        * An ATTENDEDTRANSFER row may carry the consult call's id (the real FreePBX sample does):
          the transferred caller is then the call the agent was talking to in that queue, and it
          takes over the consult call's place in the target queue, so its later CONNECT and
          COMPLETE* there are reported under the consult call's contact id, which closes it.
        * An ENTERQUEUE whose caller id is the extension of an agent on a call (``7009`` while
          ``PJSIP/7009`` is connected; only caller ids of up to six characters are looked at) is
          that agent's consult call for an attended transfer (the FreePBX sample shows it a second
          before its ATTENDEDTRANSFER row): its customer is the customer of the call the agent is
          on, so the caller's journey does not split.
        * Bytes that are not UTF-8 are decoded with replacement characters; the line still counts.
        * A timestamp that is not a number, negative, or more than ``max_skew`` seconds ahead of
          ``clock`` (the wall clock: a log cannot hold lines from the future, whether it is tailed
          or imported) makes the line an error; it never moves time forward.
    """

    def __init__(
        self,
        source: str = "queue_log",
        channels: Mapping[str, str] | None = None,
        default_channel: str = "voice",
        forget_after: float = 86400.0,
        region: str | None = None,
        max_skew: float | None = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build a parser.

        Args:
            source: the collector name put on every event.
            channels: queue name → channel, for queues that are not voice.
            default_channel: the channel of every other queue.
            forget_after: seconds after which a call with no further event is dropped from memory
                (the engine has counted it lost by then).
            region: default region of caller ids without a country code (cxmon.customers).
            max_skew: seconds a line's timestamp may lie ahead of ``clock``; None: no bound but
                the year 5138 (1e11).
            clock: the wall clock, read once per block of lines.
        """
        self.source = source
        self.channels = dict(channels or {})
        self.default_channel = default_channel
        self.forget_after = forget_after
        self.region = region
        self.max_skew = max_skew
        self.clock = clock
        self.out: list[Any] = []
        """Events made since the caller last took them (built by ``make_event``)."""
        self.make_event: Callable[..., Any] = ContactEvent
        """What builds each event, with ContactEvent's arguments: a reader in a child process
        (cxmon.ingest) builds store rows instead."""
        self.on_error: Callable[[int, str], None] | None = None
        """Called with (line number, why) for each malformed line."""
        self.lines = 0
        """Lines seen (good or bad); the line number of the last one."""
        self.bad = 0
        self.verbs: Counter[str] = Counter()
        self.other_verbs: Counter[str] = Counter()
        self.ring_ms = 0
        self.quiet = False
        """When True lines update state and counters but make no events and report no errors."""
        self._waiting: dict[tuple[str, str], _Call] = {}
        """(callid, queue) → the call waiting there."""
        self._waiting_queue: dict[str, str] = {}
        self._names: dict[str, str] = {}
        """Each queue name seen, as the one object its events carry."""
        """callid → the queue it waits in most recently."""
        self._connected: dict[tuple[str, str], _Call] = {}
        """(callid, queue) → the answered call."""
        self._agent_call: dict[tuple[str, str], str] = {}
        """(agent, queue) → callid the agent is talking to."""
        self._takes_over: dict[tuple[str, str], _Call] = {}
        """(caller's callid, target queue) → the consult call's entry it took over."""
        self._staffing = Staffing(self._staffing_changed)
        """Queue members and the staffed/available figures that follow."""
        self._set_busy = self._staffing.set_busy
        self._last_ts = 0.0
        self._next_prune = _PRUNE_EVERY

    # ------------------------------------------------------------------ helpers

    def _channel(self, queue: str) -> str:
        return self.channels.get(queue, self.default_channel)

    def _error(self, why: str) -> None:
        self.bad += 1
        if not self.quiet and self.on_error is not None:
            self.on_error(self.lines, why)

    def _event(self, ts: float, kind: EventKind, call: _Call, queue: str, **extra: object) -> None:
        if self.quiet:
            return
        self.out.append(
            self.make_event(
                ts,
                kind,
                call.contact_id,
                self._channel(queue),
                queue,
                self.source,
                call.customer,
                **extra,
            )
        )

    def new_file(self) -> None:
        """Restart line numbering (the log was rotated); calls and members carry over."""
        self.lines = 0
        self._next_prune = _PRUNE_EVERY

    # ------------------------------------------------------------------ feeding

    def feed(self, block: bytes) -> int:
        """Parse a block of complete lines (each ending in a newline; a missing last one is allowed).

        Returns:
            The number of lines in the block.
        """
        lines = split_block(block)
        self._parse_lines(lines)
        return len(lines)

    def feed_line(self, raw: bytes) -> None:
        """Parse one line (without its newline)."""
        self._parse_lines([decode(raw)])

    def skip_line(self, why: str) -> None:
        """Count one line that was not parsed (too long to read) as a malformed line, reported as ``why``."""
        self.lines += 1
        self._error(why)

    def _parse_lines(self, lines: list[str]) -> None:
        """Parse decoded lines (without their line ends).

        This runs for every line, so it is shaped for speed: the state it reads is bound to locals
        once per block, the common verbs are handled inline (the rest in methods), and verbs are
        counted in a plain dict that is added to ``verbs`` and ``other_verbs`` when the block ends
        (in the same order, so the Counters come out as if counted line by line). ``self.lines`` is
        kept current line by line: ``on_error`` and ``_prune`` read it.
        """
        counts: dict[str, int] = {}
        others: dict[str, int] = {}
        try:
            self._parse_into(lines, counts, others)
        finally:
            verbs = self.verbs
            for verb, count in counts.items():
                verbs[verb] += count
            other_verbs = self.other_verbs
            for verb, count in others.items():
                other_verbs[verb] += count

    def _parse_into(self, lines: list[str], counts: dict[str, int], others: dict[str, int]) -> None:
        """Parse lines, counting verbs into ``counts`` and unknown ones into ``others``."""
        out = self.out
        event = self.make_event
        quiet = self.quiet
        count = counts.get
        waiting = self._waiting
        waiting_queue = self._waiting_queue
        connected = self._connected
        takes_over = self._takes_over
        agent_call = self._agent_call
        channel_of = self.channels.get
        default_channel = self.default_channel
        source = self.source
        region = self.region
        error = self._error
        set_busy = self._set_busy
        end_connected = self._end_connected
        last_ts = self._last_ts
        names = self._names
        next_prune = self._next_prune
        # One bound for the block (a block is read in a moment): the hot loop pays no extra test.
        latest = 1e11 if self.max_skew is None else min(1e11, self.clock() + self.max_skew)
        # Lines come in bursts stamped with the same second: each stamp is parsed once.
        stamp: str | None = None
        ts = 0.0
        call: _Call | None
        for text in lines:
            self.lines = lineno = self.lines + 1
            f = text.split("|")
            n = len(f)
            if n < 5:
                error(f"expected at least 5 '|'-separated fields, got {n}")
                continue
            if f[0] != stamp:
                try:
                    value = float(f[0])
                except ValueError:
                    error(f"timestamp is not a number: {f[0][:40]!r}")
                    continue
                if not (0.0 <= value <= latest):  # also false for NaN
                    error(bad_stamp(f[0], value, latest, self.max_skew))
                    continue
                stamp, ts = f[0], value
                if ts > last_ts:
                    self._last_ts = last_ts = ts
            callid, queue, agent, verb = f[1], f[2], f[3], f[4]
            # One object per queue name: rows then share it, so the pipe to the engine carries a
            # reference where it carried the name again, and the engine finds its series by identity.
            known = names.get(queue)
            if known is None:
                if len(names) >= _NAMES_KEPT:
                    names.clear()
                names[queue] = queue
            else:
                queue = known
            if lineno >= next_prune:
                self._prune()
                next_prune = self._next_prune

            if verb in _CALL_VERBS:
                if not callid or callid == "NONE" or queue in _NO_QUEUE:
                    error(f"{verb} without a call id or queue")
                    continue
                if verb == "ENTERQUEUE":
                    key = (callid, queue)
                    if key in waiting:
                        # A repeated ENTERQUEUE (seen after a reload) is the same entry, not a new offer.
                        counts["ENTERQUEUE_repeat"] = count("ENTERQUEUE_repeat", 0) + 1
                        continue
                    if n > 6 and f[6]:
                        customer = normalize_phone(f[6], region)
                        if len(f[6]) <= _EXTENSION_DIGITS:
                            customer = self._consulted(f[6], customer)
                    else:
                        customer = None
                    waiting[key] = _Call(callid, customer, ts)
                    waiting_queue[callid] = queue
                    counts[verb] = count(verb, 0) + 1
                    if not quiet:
                        channel = channel_of(queue, default_channel)
                        out.append(event(ts, ARRIVED, callid, channel, queue, source, customer))
                elif verb == "CONNECT":
                    # This is _number(f, 5) inlined, as for the other numbers of call verbs.
                    try:
                        wait = float(f[5])
                    except (IndexError, ValueError):
                        wait = -1.0
                    if not (0.0 <= wait < 1e10):
                        error(f"CONNECT hold time is not a number: {_field(f, 5)!r}")
                        continue
                    key = (callid, queue)
                    counts[verb] = count(verb, 0) + 1
                    call = waiting.pop(key, None)
                    if call is None:
                        call = takes_over.pop(key, None)
                        if call is not None:
                            waiting.pop((call.contact_id, queue), None)
                            waiting_queue.pop(call.contact_id, None)
                    else:
                        waiting_queue.pop(callid, None)
                    if call is None:
                        previous = connected.get(key)
                        call = _Call(callid, previous.customer if previous else None, ts)
                        self._event(max(ts - wait, 0.0), ARRIVED, call, queue, reason="inferred")
                    call.ts = ts
                    call.agent = agent
                    connected[key] = call
                    agent_call[(agent, queue)] = callid
                    if not quiet:
                        channel = channel_of(queue, default_channel)
                        out.append(
                            event(ts, ANSWERED, call.contact_id, channel, queue, source, call.customer, wait)
                        )
                    set_busy(agent, True, last_ts)
                elif verb in _COMPLETES:
                    try:
                        talk = float(f[6])
                    except (IndexError, ValueError):
                        talk = -1.0
                    if not (0.0 <= talk < 1e10):
                        error(f"{verb} talk time is not a number: {_field(f, 6)!r}")
                        continue
                    counts[verb] = count(verb, 0) + 1
                    call = end_connected(callid, queue, agent)
                    if not quiet:
                        channel = channel_of(queue, default_channel)
                        out.append(
                            event(
                                ts,
                                RESOLVED,
                                call.contact_id,
                                channel,
                                queue,
                                source,
                                call.customer,
                                None,
                                talk,
                            )
                        )
                elif verb in _EXITS:
                    reason, pos = _EXITS[verb]
                    try:
                        wait = float(f[4 + pos])
                    except (IndexError, ValueError):
                        wait = -1.0
                    if not (0.0 <= wait < 1e10):
                        error(f"{verb} wait time is not a number: {_field(f, 4 + pos)!r}")
                        continue
                    counts[verb] = count(verb, 0) + 1
                    call = waiting.pop((callid, queue), None)
                    if call is None:
                        call = _Call(callid, None, ts)
                    else:
                        waiting_queue.pop(callid, None)
                    if not quiet:
                        channel = channel_of(queue, default_channel)
                        out.append(
                            event(
                                ts,
                                ABANDONED,
                                call.contact_id,
                                channel,
                                queue,
                                source,
                                call.customer,
                                wait,
                                None,
                                reason,
                            )
                        )
                else:  # a transfer
                    counts[verb] = count(verb, 0) + 1
                    self._transfer(ts, verb, f, callid, queue, agent)
            elif verb == "RINGNOANSWER":
                counts[verb] = count(verb, 0) + 1
                ms = _number(f, 5)
                if ms is not None:
                    self.ring_ms += int(ms)
            elif verb not in KNOWN_VERBS:
                if verb:
                    verb = verb[:40]
                    others[verb] = others.get(verb, 0) + 1
                else:
                    error("empty verb")
            else:
                counts[verb] = count(verb, 0) + 1
                if verb in _MEMBER:
                    self._staffing.member(ts, verb, queue, agent)
                elif verb == "QUEUESTART":
                    self._restart(ts)
                # Other rings and CONFIGRELOAD are only counted.

    # ------------------------------------------------------------------ calls

    def _end_connected(self, callid: str, queue: str, agent: str) -> _Call:
        call = self._connected.pop((callid, queue), None)
        if call is None:
            call = _Call(callid, None, 0.0)
        who = call.agent or agent
        key = (who, queue)
        agent_call = self._agent_call
        if agent_call.get(key) == callid:
            del agent_call[key]
        self._set_busy(who, False, self._last_ts)
        return call

    def _transfer(self, ts: float, verb: str, f: list[str], callid: str, queue: str, agent: str) -> None:
        key = (callid, queue)
        target = ""
        consult: _Call | None = None
        if key not in self._connected and verb == "ATTENDEDTRANSFER":
            # The row carries the consult call's id: the caller is whoever this agent was talking to.
            caller = self._agent_call.get((agent, queue))
            consult_queue = self._waiting_queue.get(callid)
            if consult_queue is not None:
                consult = self._waiting.get((callid, consult_queue))
                target = consult_queue
            if caller is not None:
                callid = caller
                key = (callid, queue)
        call = self._end_connected(callid, queue, agent)
        if consult is not None:
            if call.customer:
                # The consult call's caller id is the agent's extension, not the customer.
                consult.customer = call.customer
            self._takes_over[(callid, target)] = consult
        if not target:
            ext, ctx = _field(f, 5), _field(f, 6)
            target = f"{ext}@{ctx}" if ext and ctx else ext
        self._event(ts, TRANSFERRED, call, queue, target=target or None, reason=verb.lower())

    def _restart(self, ts: float) -> None:
        calls = [(q, c) for (_, q), c in self._waiting.items()]
        calls += [(q, c) for (_, q), c in self._connected.items()]
        for queue, call in calls:
            self._event(ts, LOST, call, queue, reason="restart")
        self._waiting.clear()
        self._waiting_queue.clear()
        self._connected.clear()
        self._agent_call.clear()
        self._takes_over.clear()
        self._staffing.all_free(ts)

    def _prune(self) -> None:
        self._next_prune = self.lines + _PRUNE_EVERY
        limit = self._last_ts - self.forget_after
        for table in (self._waiting, self._connected, self._takes_over):
            old = [k for k, c in table.items() if c.ts < limit]
            for k in old:
                del table[k]
        live = {cid for cid, _ in self._waiting}
        for cid in [c for c in self._waiting_queue if c not in live]:
            del self._waiting_queue[cid]

    def _consulted(self, caller: str, customer: str | None) -> str | None:
        """Return the customer of the call the agent whose extension is ``caller`` is on, or
        ``customer`` when no agent on a call has that extension."""
        for (agent, queue), callid in self._agent_call.items():
            if _extension(agent) == caller:
                call = self._connected.get((callid, queue))
                if call is not None and call.customer:
                    return call.customer
        return customer

    def _staffing_changed(self, ts: float, queue: str, staffed: int, available: int) -> None:
        if self.quiet:
            return
        # Positional arguments: ContactEvent's __init__ takes keywords more slowly (and this runs for
        # most CONNECT and COMPLETE* lines).
        self.out.append(
            self.make_event(
                ts,
                STAFFING,
                "",
                self._channel(queue),
                queue,
                self.source,
                None,
                None,
                None,
                None,
                None,
                None,
                staffed,
                available,
            )
        )

    # ------------------------------------------------------------------ status

    @property
    def waiting_now(self) -> int:
        """Calls waiting in a queue, as far as this log says."""
        return len(self._waiting)

    def status(self) -> dict[str, object]:
        """Return small counters for the engine's status (lines, bad lines, verbs)."""
        return {
            "lines": self.lines,
            "bad_lines": self.bad,
            "verbs": dict(self.verbs),
            "other_verbs": dict(self.other_verbs.most_common(10)),
            "ring_no_answer_ms": self.ring_ms,
            "waiting": len(self._waiting),
            "talking": len(self._connected),
        }
