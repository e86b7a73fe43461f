"""Tests for the AMI collector against a small AMI server on 127.0.0.1 replaying the real trace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from collectors.ami import AmiMapper, AmiOptions, AmiSource, encode, parse_options
from collectors.ami import source as ami_source
from collectors.ami.protocol import AmiConnection
from collectors.base import Offset
from cxmon.events import ContactEvent, EventKind
from tests.collectors.test_queue_log import MemorySink
from tests.helpers import shared_data

Msg = dict[str, str]


def trace_messages(path: Path) -> list[Msg]:
    """The AMI messages of a captured trace, without the CLI noise lines around them."""
    out: list[Msg] = []
    cur: Msg = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
                cur = {}
            continue
        if line[0].isspace() or line.startswith("<--"):
            continue
        key, _, value = line.partition(":")
        cur[key] = value.strip()
    if cur:
        out.append(cur)
    return out


class AmiServer:
    """A small AMI server: banner, Login, QueueStatus (scripted), Ping, then whatever the test pushes."""

    def __init__(self, secret: str = "s3cret", status: list[Msg] | None = None, mute: bool = False) -> None:
        self.secret = secret
        self.mute = mute
        """After the login, answer nothing (a hung PBX)."""
        self.status = status or []
        self.logins = 0
        self.actions: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> AmiServer:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/5.0.1\r\n")
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                action = fields.get("Action", "")
                self.actions.append(action)
                aid = fields.get("ActionID", "")
                if self.mute and action != "Login":
                    continue
                if action == "Login":
                    self.logins += 1
                    if fields.get("Secret") == self.secret:
                        writer.write(
                            encode(
                                {"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"}
                            )
                        )
                        self.connected.set()
                    else:
                        writer.write(
                            encode({"Response": "Error", "ActionID": aid, "Message": "Authentication failed"})
                        )
                elif action == "QueueStatus":
                    writer.write(encode({"Response": "Success", "ActionID": aid, "EventList": "start"}))
                    for msg in self.status:
                        writer.write(encode({**msg, "ActionID": aid}))
                    writer.write(
                        encode({"Event": "QueueStatusComplete", "ActionID": aid, "EventList": "Complete"})
                    )
                elif action == "Ping":
                    writer.write(encode({"Response": "Success", "ActionID": aid, "Ping": "Pong"}))
                await writer.drain()

    async def push(self, *messages: Msg, raw: bytes = b"") -> None:
        """Send events to every connected client."""
        for w in self.writers:
            if w.is_closing():
                continue
            w.write(raw + b"".join(encode(m) for m in messages))
            await w.drain()

    def drop(self) -> None:
        """Close every client connection (the PBX restarted)."""
        for w in self.writers:
            w.close()
        self.connected.clear()


class Timings(TypedDict, total=False):
    """The AmiOptions a test sets beside :func:`options`'s own."""

    ping_interval: float
    leave_grace: float
    timeout: float


def options(port: int, **kw: Unpack[Timings]) -> AmiOptions:
    base = AmiOptions(
        host="127.0.0.1",
        port=port,
        user="cxmon",
        secret="s3cret",
        backoff_min=0.01,
        backoff_max=0.05,
        leave_grace=0.2,
        timeout=2.0,
    )
    return replace(base, **kw)


async def until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def running(src: AmiSource, sink: MemorySink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(src.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        # Bounded: a source that ignores its cancellation fails the test instead of hanging the run.
        done, _ = await asyncio.wait({task}, timeout=30.0)
        assert done, "the source did not stop when cancelled"


def contact_events(sink: MemorySink) -> list[tuple[str, str, str, float | None]]:
    return [
        (e.kind.value, e.contact_id, e.queue, e.wait)
        for e in sink.events
        if e.kind not in (EventKind.HEARTBEAT, EventKind.STAFFING)
    ]


# ---------------------------------------------------------------------- the real trace


async def test_real_trace_join_then_connect_is_arrival_and_answer_after_9_seconds() -> None:
    """Real trace, CRLF on the wire: QueueCallerJoin is an arrival, AgentConnect an answer (HoldTime 9 s)."""
    part1 = trace_messages(shared_data("asterisk", "asterisk_ami_trace_part1_join_to_agentcalled.txt"))
    part2 = trace_messages(shared_data("asterisk", "asterisk_ami_trace_part2_leave_to_agentconnect.txt"))
    sink = MemorySink()
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink):
            await until(lambda: "QueueStatus" in server.actions, "login and snapshot")
            await server.push(*part1)
            await until(lambda: src.mapper.counts["AgentCalled"] == 1, "the first excerpt")
            await server.push(*part2)
            await until(lambda: len(contact_events(sink)) == 2, "the answer")
    assert contact_events(sink) == [
        ("arrived", "1514295827.372", "Q1", None),
        ("answered", "1514295827.372", "Q1", 9.0),
    ]
    assert {e.customer_id for e in sink.events if e.contact_id} == {"123"}
    assert {e.channel for e in sink.events if e.contact_id} == {"voice"}
    assert src.mapper.counts["other"] > 0 and src.mapper.waiting_now == 0


async def test_cli_noise_lines_on_the_wire_are_skipped() -> None:
    """Lines that are not Key: Value (CLI output in a capture) are skipped, the event around them kept."""
    sink = MemorySink()
    noisy = (
        b"    -- Started music on hold, class 'default'\r\n"
        b"<-- Examining AMI event: -->\r\n"
        b"Event: QueueCallerJoin\r\nQueue: Q1\r\n  == Using SIP RTP CoS mark 5\r\nUniqueid: u1\r\n"
        b"CallerIDNum: 42\r\n\r\n"
    )
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink):
            await until(lambda: "QueueStatus" in server.actions, "login")
            await server.push(raw=noisy)
            await until(lambda: len(contact_events(sink)) == 1, "the join")
    assert contact_events(sink) == [("arrived", "u1", "Q1", None)]


# ---------------------------------------------------------------------- connection handling


async def test_wrong_secret_is_reported_and_retried_while_down() -> None:
    """A refused login is an error; the source stays down and tries again with backoff."""
    sink = MemorySink()
    async with AmiServer(secret="other") as server, running(AmiSource("pbx", options(server.port)), sink):
        await until(lambda: server.logins >= 3, "retries")
    assert True not in sink.up
    assert any("login refused: Authentication failed" in msg for _, msg in sink.errors)


async def test_reconnects_after_the_server_drops_and_takes_a_new_snapshot() -> None:
    """After a dropped connection the source is down, reconnects, logs in and asks for QueueStatus again."""
    sink = MemorySink()
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink):
            await until(lambda: src.connects == 1 and sink.up[-1:] == [True], "first login")
            server.drop()
            await until(lambda: src.connects == 2, "second login")
            await until(lambda: server.actions.count("QueueStatus") == 2, "second snapshot")
    ups = sink.up
    first_up = ups.index(True)
    assert False in ups[first_up:] and ups[first_up:].count(True) >= 2


class CancelOnEmit(MemorySink):
    """A sink that cancels its source ``turns`` loop turns after the source first hands it events."""

    def __init__(self, turns: int) -> None:
        super().__init__()
        self.turns = turns
        self.task: asyncio.Task[None] | None = None

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        await super().emit(events, offset)
        if self.batches == 1:
            assert self.task is not None
            self._cancel_after(self.turns)

    def _cancel_after(self, turns: int) -> None:
        assert self.task is not None
        if turns == 0:
            self.task.cancel()
        else:
            asyncio.get_running_loop().call_soon(self._cancel_after, turns - 1)


@pytest.mark.parametrize("turns", range(6))
async def test_a_source_cancelled_as_messages_stream_in_stops(turns: int) -> None:
    """Cancelled at any loop turn while messages are already waiting to be read, the source stops:
    a read that completes as the cancellation comes does not swallow it."""
    burst = [{"Event": "QueueCallerJoin", "Queue": "Q1", "Uniqueid": f"u{i}"} for i in range(200)]
    sink = CancelOnEmit(turns)
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port, leave_grace=5.0))
        sink.task = task = asyncio.create_task(src.run(sink))
        try:
            await until(lambda: "QueueStatus" in server.actions, "login and snapshot")
            await server.push(*burst)
            done, _ = await asyncio.wait({task}, timeout=30.0)
        finally:
            task.cancel()
            await asyncio.wait({task}, timeout=30.0)
    assert done and task.cancelled(), f"the source went on after {sink.batches} batches"


async def test_unreachable_server_is_down_with_an_error() -> None:
    """No server listening: the source reports the failure and never claims to be up."""
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sink = MemorySink()
    async with running(AmiSource("pbx", options(port)), sink):
        await until(lambda: len(sink.errors) >= 1, "a failed attempt")
    assert True not in sink.up and all(w == f"ami://127.0.0.1:{port}" for w, _ in sink.errors)


async def closed_port() -> int:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    return port


async def test_a_refused_connection_is_reported_once_not_at_every_retry() -> None:
    """A server that refuses every connection is reported at the first attempt, not once per retry
    (a warning each backoff_max, for as long as it lasts)."""
    port = await closed_port()
    attempts: list[float] = []

    async def record(delay: float) -> None:
        attempts.append(delay)
        await asyncio.sleep(0.001)

    sink = MemorySink()
    src = AmiSource("pbx", options(port))
    src._sleep = record
    src._now = lambda: 0.0  # no time passes: none of the retries is due for a new report
    async with running(src, sink):
        await until(lambda: len(attempts) >= 6, "six failed attempts")
    assert len(sink.errors) == 1
    assert "disconnected: " in sink.errors[0][1] and "Connect call failed" in sink.errors[0][1]


async def test_a_refusal_that_lasts_is_reported_again_with_the_count_of_attempts() -> None:
    """A refusal that goes on is reported again once REPORT_EVERY has passed, saying how many
    attempts failed since the last report."""
    port = await closed_port()
    clock = [0.0]

    async def record(delay: float) -> None:
        clock[0] += ami_source.REPORT_EVERY / 6  # each retry comes a sixth of the period later
        await asyncio.sleep(0.001)

    sink = MemorySink()
    src = AmiSource("pbx", options(port))
    src._sleep = record
    src._now = lambda: clock[0]
    async with running(src, sink):
        await until(lambda: len(sink.errors) >= 2, "a second report")
    first, again = (msg for _, msg in sink.errors[:2])
    every = f"{ami_source.REPORT_EVERY:.0f}"
    assert again == f"{first} (again: 6 attempts failed so in the {every} s since it was last reported)"


async def test_queue_status_on_connect_restores_waiting_calls_and_members() -> None:
    """The QueueStatus snapshot makes arrivals for calls already waiting (dated back) and staffing figures."""
    status = [
        {"Event": "QueueParams", "Queue": "sales"},
        {
            "Event": "QueueMember",
            "Queue": "sales",
            "Name": "A",
            "StateInterface": "SIP/1",
            "Status": "1",
            "Paused": "0",
        },
        {
            "Event": "QueueMember",
            "Queue": "sales",
            "Name": "B",
            "StateInterface": "SIP/2",
            "Status": "2",
            "Paused": "0",
        },
        {
            "Event": "QueueMember",
            "Queue": "sales",
            "Name": "C",
            "StateInterface": "SIP/3",
            "Status": "1",
            "Paused": "1",
        },
        {"Event": "QueueEntry", "Queue": "sales", "Uniqueid": "w1", "CallerIDNum": "555", "Wait": "40"},
    ]
    sink = MemorySink()
    async with AmiServer(status=status) as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink):
            await until(lambda: len(sink.events) >= 2, "snapshot events")
    [arrived] = [e for e in sink.events if e.kind is EventKind.ARRIVED]
    [staffing] = [e for e in sink.events if e.kind is EventKind.STAFFING]
    assert (arrived.contact_id, arrived.customer_id, arrived.reason) == ("w1", "555", "snapshot")
    assert (staffing.agents_staffed, staffing.agents_available) == (3, 1)
    assert src.mapper.waiting_now == 1


async def test_secret_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a secret in the table, CXMON_AMI_SECRET is used; without both the table is refused."""
    assert parse_options({"user": "cxmon"}, "collectors[0]")[1] == [
        "collectors[0].secret: required (or set CXMON_AMI_SECRET)"
    ]
    monkeypatch.setenv("CXMON_AMI_SECRET", "from-env")
    opts, problems = parse_options({"user": "cxmon", "port": 5039}, "collectors[0]")
    assert problems == [] and opts is not None and opts.secret == "from-env"
    assert "from-env" not in repr(opts)


# ---------------------------------------------------------------------- the mapper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def join(uid: str, queue: str = "sales") -> Msg:
    return {"Event": "QueueCallerJoin", "Queue": queue, "Uniqueid": uid, "CallerIDNum": "555"}


def test_abandon_carries_hold_time_and_hangup() -> None:
    """QueueCallerAbandon is an abandon (wait = HoldTime, reason hangup); the Leave after it adds nothing."""
    clock = Clock()
    m = AmiMapper(clock=clock)
    m.feed(join("u1"))
    clock.now += 30
    m.feed({"Event": "QueueCallerAbandon", "Queue": "sales", "Uniqueid": "u1", "HoldTime": "30"})
    m.feed({"Event": "QueueCallerLeave", "Queue": "sales", "Uniqueid": "u1"})
    clock.now += 10
    m.expire()
    assert [(e.kind, e.wait, e.reason) for e in m.out[1:]] == [(EventKind.ABANDONED, 30.0, "hangup")]


def test_leave_without_an_agent_is_a_timeout_after_the_grace() -> None:
    """A QueueCallerLeave that no AgentConnect follows within leave_grace is an abandon (timeout)."""
    clock = Clock()
    m = AmiMapper(clock=clock, leave_grace=2.0)
    m.feed(join("u1"))
    clock.now += 300
    m.feed({"Event": "QueueCallerLeave", "Queue": "sales", "Uniqueid": "u1"})
    m.expire()
    assert len(m.out) == 1
    clock.now += 2
    m.expire()
    assert [(e.kind, e.wait, e.reason, e.ts) for e in m.out[1:]] == [
        (EventKind.ABANDONED, 300.0, "timeout", 1300.0)
    ]


@pytest.mark.parametrize(
    ("reason", "kind"), [("caller", EventKind.RESOLVED), ("transfer", EventKind.TRANSFERRED)]
)
def test_agent_complete_is_resolved_or_transferred(reason: str, kind: EventKind) -> None:
    """AgentComplete is resolved with TalkTime as duration, or a transfer when its Reason says so."""
    m = AmiMapper(clock=Clock())
    m.feed(join("u1"))
    m.feed({"Event": "AgentConnect", "Queue": "sales", "Uniqueid": "u1", "HoldTime": "5", "RingTime": "2"})
    m.feed({"Event": "AgentComplete", "Queue": "sales", "Uniqueid": "u1", "CallerIDNum": "555",
            "HoldTime": "5", "TalkTime": "120", "Reason": reason})  # fmt: skip
    last = m.out[-1]
    assert last.kind is kind
    assert last.duration == (120.0 if kind is EventKind.RESOLVED else None)


def test_member_pause_and_status_change_staffing() -> None:
    """QueueMemberStatus/QueueMemberPause update staffed and available agents of the queue."""
    m = AmiMapper(clock=Clock())
    m.feed(
        {"Event": "QueueMemberAdded", "Queue": "sales", "Interface": "SIP/1", "Status": "1", "Paused": "0"}
    )
    m.feed({"Event": "QueueMemberPause", "Queue": "sales", "Interface": "SIP/1", "Paused": "1"})
    m.feed(
        {"Event": "QueueMemberStatus", "Queue": "sales", "Interface": "SIP/1", "Status": "5", "Paused": "0"}
    )
    assert [(e.agents_staffed, e.agents_available) for e in m.out] == [(1, 1), (1, 0), (0, 0)]


def test_snapshot_after_reconnect_settles_calls_gone_meanwhile() -> None:
    """A call waiting before a disconnect and absent from the next snapshot is lost (reason unseen)."""
    m = AmiMapper(clock=Clock())
    m.feed(join("gone"))
    m.feed(join("still"))
    m.begin_snapshot()
    m.feed({"Event": "QueueEntry", "Queue": "sales", "Uniqueid": "still", "Wait": "20"})
    m.feed({"Event": "QueueStatusComplete"})
    assert [(e.kind, e.contact_id, e.reason) for e in m.out[2:]] == [(EventKind.LOST, "gone", "unseen")]
    assert m.waiting_now == 1


def test_event_timestamps_are_used_when_asterisk_sends_them() -> None:
    """With timestampevents=yes the Timestamp header dates the event instead of our clock."""
    clock = Clock()
    clock.now = 1514295830.0
    m = AmiMapper(clock=clock)
    m.feed({**join("u1"), "Timestamp": "1514295827.123"})
    assert m.out[0].ts == 1514295827.123


@pytest.mark.parametrize("stamp", ["inf", "-inf", "nan", "NaN", "1e400", "-5", "soon"])
def test_a_timestamp_that_is_not_a_finite_time_skips_the_event_with_a_report(stamp: str) -> None:
    """A Timestamp of inf, nan, a negative or no number at all is reported, counted, and its event skipped."""
    m = AmiMapper(clock=Clock())
    errors: list[str] = []
    m.on_error = errors.append
    m.feed({**join("u1"), "Timestamp": stamp})
    m.feed({**join("u2"), "Timestamp": "999.5"})
    assert [(e.contact_id, e.ts) for e in m.out] == [("u2", 999.5)]
    assert m.counts["bad_timestamp"] == 1 and m.waiting_now == 1
    assert len(errors) == 1 and errors[0].startswith("QueueCallerJoin u1: Timestamp")


def test_a_timestamp_far_ahead_of_the_clock_is_refused() -> None:
    """A Timestamp more than max_skew ahead of our clock is refused; one within it is kept."""
    m = AmiMapper(clock=Clock(), max_skew=300.0)
    errors: list[str] = []
    m.on_error = errors.append
    m.feed({**join("late"), "Timestamp": "9999999999"})
    m.feed({**join("ok"), "Timestamp": "1299"})
    assert [e.contact_id for e in m.out] == ["ok"]
    assert len(errors) == 1 and "ahead of our clock" in errors[0]


def test_a_hold_time_that_is_not_finite_is_not_a_wait() -> None:
    """HoldTime: inf on an AgentConnect is counted as bad; the wait comes from the join instead."""
    clock = Clock()
    m = AmiMapper(clock=clock)
    m.feed(join("u1"))
    clock.now += 12
    m.feed({"Event": "AgentConnect", "Queue": "sales", "Uniqueid": "u1", "HoldTime": "inf"})
    assert [(e.kind, e.wait) for e in m.out[1:]] == [(EventKind.ANSWERED, 12.0)]
    assert m.counts["bad_number"] == 1


# ---------------------------------------------------------------------- hostile servers


async def test_infinite_timestamp_on_the_wire_is_reported_where_it_came_from() -> None:
    """Timestamp: inf from the server is an error at ami://host:port; the next event still arrives."""
    sink = MemorySink()
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink):
            await until(lambda: "QueueStatus" in server.actions, "login")
            await server.push({**join("u1"), "Timestamp": "inf"}, join("u2"))
            await until(lambda: len(contact_events(sink)) == 1, "the second join")
    assert contact_events(sink) == [("arrived", "u2", "sales", None)]
    assert [w for w, msg in sink.errors if "Timestamp 'inf'" in msg] == [f"ami://127.0.0.1:{server.port}"]


async def test_a_server_that_ignores_ping_never_looks_alive() -> None:
    """After the login a server that answers nothing (not QueueStatus, not Ping) yields no heartbeat;
    the unanswered Ping ends the connection (down) and the source logs in again."""
    sink = MemorySink()
    async with AmiServer(mute=True) as server:
        src = AmiSource("pbx", options(server.port, ping_interval=0.05, timeout=0.2))
        async with running(src, sink):
            await until(lambda: server.actions.count("Ping") >= 1, "a ping")
            await until(lambda: server.logins >= 2, "the second login")
    assert [e for e in sink.events if e.kind is EventKind.HEARTBEAT] == []
    assert any("no reply to Ping" in msg for _, msg in sink.errors)
    first_up = sink.up.index(True)
    assert False in sink.up[first_up:]


async def test_a_server_that_answers_ping_gives_heartbeats() -> None:
    """A quiet server that answers Ping: each Pong is a heartbeat, and the source stays up."""
    sink = MemorySink()
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port, ping_interval=0.05, timeout=5.0))
        async with running(src, sink):
            await until(
                lambda: sum(e.kind is EventKind.HEARTBEAT for e in sink.events) >= 2, "two heartbeats"
            )
    assert server.logins == 1 and sink.errors == []


async def test_the_first_answer_after_a_login_is_a_heartbeat() -> None:
    """A quiet server's answer to the QueueStatus sent at each (re)connect is a heartbeat at once,
    not a ping interval later: a source back from an outage is not left STALE meanwhile."""
    sink = MemorySink()
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port, ping_interval=3600.0))
        async with running(src, sink):
            await until(lambda: any(e.kind is EventKind.HEARTBEAT for e in sink.events), "a heartbeat")
            assert server.actions == ["Login", "QueueStatus"]


async def test_a_server_that_drops_every_session_after_the_login_is_backed_off() -> None:
    """A server that accepts the login and then closes the connection, every time, is reconnected
    with growing delays (backoff_min doubling to backoff_max), as one that refuses is; only a
    session that lasted a ping interval starts the delays again from backoff_min."""
    logins = 0

    async def drop_after_login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal logins
        try:
            writer.write(b"Asterisk Call Manager/5.0.1\r\n")
            raw = await reader.readuntil(b"\r\n\r\n")
            aid = raw.decode().split("ActionID: ", 1)[1].split("\r\n", 1)[0]
            writer.write(encode({"Response": "Success", "ActionID": aid, "Message": "Accepted"}))
            logins += 1
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.001)

    server = await asyncio.start_server(drop_after_login, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = MemorySink()
    src = AmiSource("pbx", options(port))
    src._sleep = record
    async with server, running(src, sink):
        await until(lambda: len(delays) >= 4, "four reconnects")
    assert logins >= 4
    assert delays[:4] == [0.01, 0.02, 0.04, 0.05]


@pytest.mark.parametrize(
    "long_line",
    [
        b"CallerIDName: " + b"x" * 70_000 + b"\r\n",
        b"CallerIDName: " + b"x" * 300_000 + b"\r\n",
        b"Event: AgentCalled\r\nNoLineEnd: " + b"y" * 200_000 + b"\r\n",
    ],
    ids=["70KiB", "300KiB", "200KiB-in-a-second-line"],
)
async def test_a_line_over_64_kib_skips_its_message_and_the_source_goes_on(long_line: bytes) -> None:
    """A line over the 64 KiB limit drops its message (reported once); the events around it arrive and
    the connection stays up."""
    sink = MemorySink()
    bad = b"Event: QueueCallerJoin\r\nQueue: sales\r\nUniqueid: bad\r\n" + long_line + b"\r\n"
    async with AmiServer() as server:
        src = AmiSource("pbx", options(server.port))
        async with running(src, sink) as task:
            await until(lambda: "QueueStatus" in server.actions, "login")
            await server.push(join("before"))
            await server.push(raw=bad)
            await server.push(join("after"))
            await until(lambda: len(contact_events(sink)) == 2 or task.done(), "the join after")
            assert not task.done()
    assert [c for _, c, _, _ in contact_events(sink)] == ["before", "after"]
    assert [msg for _, msg in sink.errors] == ["a line longer than 65536 bytes: its message is skipped"]
    assert src.connects == 1


async def test_a_server_that_never_greets_gets_its_connection_closed() -> None:
    """When the banner does not come in time, the connection is closed, not left open to the peer."""
    seen_eof = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if await reader.read() == b"":
            seen_eof.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError) as raised:
            await AmiConnection.open("127.0.0.1", port, timeout=0.2)
        # the traceback (kept alive here) holds the opener's frame: only an explicit close ends it
        assert raised.traceback
        async with asyncio.timeout(10):
            await seen_eof.wait()
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_never_greets_is_reported_with_why() -> None:
    """A port that accepts but sends no AMI banner: the source is down and its error (shown in the
    log and the STALE alert) says what it waited for, not an empty "disconnected: "."""
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = MemorySink()
    try:
        async with running(AmiSource("pbx", options(port, timeout=0.2)), sink):
            await until(lambda: len(sink.errors) >= 1, "a failed attempt")
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()
    assert True not in sink.up
    assert sink.errors[0] == (
        f"ami://127.0.0.1:{port}",
        "disconnected: connected, but no AMI banner within 0.2 s",
    )
