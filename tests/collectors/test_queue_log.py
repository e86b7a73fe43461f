"""Tests for the queue_log parser: every verb, the real sample lines, malformed input."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from collectors.base import Offset
from collectors.queue_log.parser import KNOWN_VERBS, QueueLogParser
from cxmon.events import ContactEvent, EventKind
from cxmon.rows import Row, decode_rows
from tests.helpers import shared_data

ROOT = Path(__file__).resolve().parents[2]


class MemorySink:
    """A Sink that keeps events and the offset together, the way the store commits them."""

    def __init__(self, offset: Offset | None = None) -> None:
        self.events: list[ContactEvent] = []
        self.offset = offset
        self.errors: list[tuple[str, str]] = []
        self.up: list[bool] = []
        self.batches = 0

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        self.events.extend(events)
        self.batches += 1
        if offset is not None:
            self.offset = offset

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        await self.emit(decode_rows(rows), offset)

    def error(self, where: str, msg: str) -> None:
        self.errors.append((where, msg))

    def set_up(self, up: bool) -> None:
        self.up.append(up)

    async def load_offset(self) -> Offset | None:
        return self.offset

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events if e.kind is not EventKind.HEARTBEAT]


def parse(
    text: str, channels: Mapping[str, str] | None = None
) -> tuple[QueueLogParser, list[tuple[int, str]]]:
    parser = QueueLogParser(channels=channels)
    errors: list[tuple[int, str]] = []
    parser.on_error = lambda lineno, why: errors.append((lineno, why))
    parser.feed(text.encode())
    return parser, errors


def only(parser: QueueLogParser, kind: EventKind) -> list[ContactEvent]:
    return [e for e in parser.out if e.kind is kind]


CALL = "100|c1|sales|NONE|ENTERQUEUE||5551234|1\n"


def test_enterqueue_is_an_arrival_with_the_caller_as_customer() -> None:
    """ENTERQUEUE makes an arrived event on the voice channel, customer = caller id."""
    parser, _ = parse(CALL)
    [ev] = parser.out
    assert (ev.kind, ev.contact_id, ev.queue, ev.channel, ev.customer_id, ev.ts) == (
        EventKind.ARRIVED,
        "c1",
        "sales",
        "voice",
        "5551234",
        100.0,
    )
    assert ev.source == "queue_log"


def test_connect_is_answered_with_the_hold_time_as_wait() -> None:
    """CONNECT's data1 (hold time) is the wait of the answered event."""
    parser, _ = parse(CALL + "112|c1|sales|SIP/7|CONNECT|12|c2|3\n")
    [ev] = only(parser, EventKind.ANSWERED)
    assert (ev.wait, ev.ts, ev.customer_id) == (12.0, 112.0, "5551234")


@pytest.mark.parametrize("verb", ["COMPLETECALLER", "COMPLETEAGENT"])
def test_complete_is_resolved_with_talk_time(verb: str) -> None:
    """COMPLETECALLER/COMPLETEAGENT are resolved, duration = talk time (data2)."""
    parser, _ = parse(CALL + "112|c1|sales|SIP/7|CONNECT|12|c2|3\n" + f"300|c1|sales|SIP/7|{verb}|12|188|1\n")
    [ev] = only(parser, EventKind.RESOLVED)
    assert (ev.duration, ev.ts) == (188.0, 300.0)


@pytest.mark.parametrize(
    ("line", "reason", "wait"),
    [
        ("150|c1|sales|NONE|ABANDON|1|1|50\n", "hangup", 50.0),
        ("400|c1|sales|NONE|EXITWITHTIMEOUT|1|1|300\n", "timeout", 300.0),
        ("130|c1|sales|NONE|EXITEMPTY|1|1|30\n", "empty", 30.0),
        ("120|c1|sales|NONE|EXITWITHKEY|5|1|1|20\n", "key", 20.0),
    ],
)
def test_exits_are_abandons_with_reason_and_wait(line: str, reason: str, wait: float) -> None:
    """Each exit verb is an abandon with its reason and the wait from the right field."""
    parser, errors = parse(CALL + line)
    [ev] = only(parser, EventKind.ABANDONED)
    assert (ev.reason, ev.wait, ev.customer_id) == (reason, wait, "5551234")
    assert errors == []
    assert parser.waiting_now == 0


@pytest.mark.parametrize("verb", ["TRANSFER", "BLINDTRANSFER"])
def test_transfers_name_extension_and_context_as_target(verb: str) -> None:
    """TRANSFER/BLINDTRANSFER are transferred events targeting extension@context."""
    transfer = f"200|c1|sales|SIP/7|{verb}|2000|from-internal|12|88|1\n"
    parser, _ = parse(CALL + "112|c1|sales|SIP/7|CONNECT|12|c2|3\n" + transfer)
    [ev] = only(parser, EventKind.TRANSFERRED)
    assert (ev.contact_id, ev.target, ev.queue) == ("c1", "2000@from-internal", "sales")


@pytest.mark.parametrize("verb", ["RINGNOANSWER", "RINGCANCELED", "AGENTDUMP"])
def test_ring_verbs_are_counted_not_outcomes(verb: str) -> None:
    """RINGNOANSWER, RINGCANCELED and AGENTDUMP make no event but are counted."""
    parser, errors = parse(CALL + f"105|c1|sales|SIP/7|{verb}|4000\n")
    assert [e.kind for e in parser.out] == [EventKind.ARRIVED]
    assert parser.verbs[verb] == 1 and errors == []


def test_ringnoanswer_milliseconds_are_summed() -> None:
    """RINGNOANSWER's data1 is milliseconds and is kept as a running total."""
    parser, _ = parse("1|c|q|SIP/1|RINGNOANSWER|1000\n2|c|q|SIP/1|RINGNOANSWER|2500\n")
    assert parser.ring_ms == 3500


def test_unknown_verbs_are_counted_not_errors() -> None:
    """Verbs other systems add (DID, INFO) are counted under other_verbs and are not errors."""
    parser, errors = parse("1|c|q|NONE|DID|123\n2|c|q|NONE|INFO|x\n3|c|q|NONE|DID|\n")
    assert errors == [] and parser.out == []
    assert parser.other_verbs == {"DID": 2, "INFO": 1}


def test_configreload_is_passed_over() -> None:
    """CONFIGRELOAD leaves calls in flight alone (the engine times out any that never finish)."""
    parser, _ = parse(CALL + "101|NONE|NONE|NONE|CONFIGRELOAD|\n")
    assert [e.kind for e in parser.out] == [EventKind.ARRIVED]
    assert parser.waiting_now == 1


def test_queuestart_makes_calls_in_flight_lost() -> None:
    """QUEUESTART (Asterisk restarted) turns every call waiting or talking into a lost event."""
    text = CALL + "101|c9|sales|NONE|ENTERQUEUE||777|2\n" + "105|c9|sales|SIP/7|CONNECT|4|x|1\n"
    parser, _ = parse(text + "500|NONE|NONE|NONE|QUEUESTART|\n")
    lost = only(parser, EventKind.LOST)
    assert sorted(e.contact_id for e in lost) == ["c1", "c9"]
    assert {e.reason for e in lost} == {"restart"} and parser.waiting_now == 0


RESTART_SCRIPT = """
import sys
from collectors.queue_log.parser import QueueLogParser
from cxmon.events import EventKind
p = QueueLogParser()
p.feed(sys.stdin.buffer.read())
print([(e.queue, e.agents_available) for e in p.out if e.kind is EventKind.STAFFING])
"""


def test_restart_gives_staffing_in_the_same_order_whatever_the_hash_seed() -> None:
    """After QUEUESTART the freed agents' queues are reported in one order, not the set's.

    Eight agents, each a member of its own three queues, are on calls when Asterisk restarts; the
    staffing events that follow must come out in the same order under different string hash seeds.
    """
    lines = []
    for i in range(8):
        for q in ("red", "green", "blue"):
            lines.append(f"{i + 1}|NONE|{q}{i}|SIP/{i}|ADDMEMBER|")
        lines.append(f"{20 + i}|c{i}|red{i}|NONE|ENTERQUEUE||77{i}|1")
        lines.append(f"{40 + i}|c{i}|red{i}|SIP/{i}|CONNECT|2|x|1")
    lines.append("100|NONE|NONE|NONE|QUEUESTART|")
    text = ("\n".join(lines) + "\n").encode()
    outputs = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", RESTART_SCRIPT], input=text, capture_output=True, env=env,
            cwd=ROOT, check=True, timeout=60,
        )  # fmt: skip
        outputs.add(done.stdout)
    assert len(outputs) == 1, outputs
    restart = ast.literal_eval(next(iter(outputs)).decode())[-24:]
    assert restart == sorted((f"{q}{i}", 1) for i in range(8) for q in ("red", "green", "blue"))


def test_member_verbs_track_staffed_and_available() -> None:
    """ADDMEMBER/PAUSE/UNPAUSE/REMOVEMEMBER give staffing events with staffed and available agents."""
    text = (
        "1|NONE|sales|SIP/1|ADDMEMBER|\n"
        "2|NONE|sales|SIP/2|ADDMEMBER|\n"
        "3|NONE|sales|SIP/1|PAUSE|lunch\n"
        "4|NONE|sales|SIP/1|UNPAUSE|\n"
        "5|NONE|sales|SIP/2|REMOVEMEMBER|\n"
    )
    parser, _ = parse(text)
    figures = [(e.agents_staffed, e.agents_available) for e in only(parser, EventKind.STAFFING)]
    assert figures == [(1, 1), (2, 2), (2, 1), (2, 2), (1, 1)]


def test_pauseall_applies_to_every_queue_of_the_agent() -> None:
    """PAUSEALL/UNPAUSEALL change the agent in every queue it is a member of."""
    text = "1|NONE|a|SIP/1|ADDMEMBER|\n2|NONE|b|SIP/1|ADDMEMBER|\n3|NONE|NONE|SIP/1|PAUSEALL|\n"
    parser, _ = parse(text)
    last = {e.queue: e.agents_available for e in only(parser, EventKind.STAFFING)}
    assert last == {"a": 0, "b": 0}
    parser.feed(b"4|NONE|NONE|SIP/1|UNPAUSEALL|\n")
    last = {e.queue: e.agents_available for e in only(parser, EventKind.STAFFING)}
    assert last == {"a": 1, "b": 1}


def test_agent_login_and_logoff_change_staffing() -> None:
    """AGENTLOGIN adds the agent to the queue; AGENTLOGOFF with queue NONE removes it everywhere."""
    parser, _ = parse("1|NONE|q|Agent/1|AGENTLOGIN|SIP/1\n2|NONE|NONE|Agent/1|AGENTLOGOFF|SIP/1|60\n")
    assert [e.agents_staffed for e in only(parser, EventKind.STAFFING)] == [1, 0]


def test_an_agent_on_a_call_is_not_available() -> None:
    """While a member talks to a caller it counts as staffed but not available."""
    text = "1|NONE|sales|SIP/7|ADDMEMBER|\n" + CALL + "112|c1|sales|SIP/7|CONNECT|12|c2|3\n"
    parser, _ = parse(text + "300|c1|sales|SIP/7|COMPLETEAGENT|12|188|1\n")
    figures = [(e.ts, e.agents_available) for e in only(parser, EventKind.STAFFING)]
    assert figures == [(1.0, 1), (112.0, 0), (300.0, 1)]


def test_channel_comes_from_the_queue_table() -> None:
    """A queue mapped to another channel in config gets that channel."""
    text = "1|c|webchat|NONE|ENTERQUEUE||x|1\n2|d|sales|NONE|ENTERQUEUE||y|1\n"
    parser, _ = parse(text, channels={"webchat": "chat"})
    assert [e.channel for e in parser.out] == ["chat", "voice"]


def test_connect_without_enterqueue_infers_the_arrival() -> None:
    """A CONNECT in a queue the call never entered also makes an arrival dated back by the wait."""
    parser, _ = parse("100|c1|sales|SIP/1|CONNECT|30|x|2\n")
    arrived, answered = parser.out
    assert (arrived.kind, arrived.ts, arrived.reason) == (EventKind.ARRIVED, 70.0, "inferred")
    assert (answered.kind, answered.wait) == (EventKind.ANSWERED, 30.0)


def test_repeated_enterqueue_is_one_offer() -> None:
    """An ENTERQUEUE repeated for a call already waiting there is not offered twice."""
    parser, _ = parse(CALL + CALL)
    assert len(only(parser, EventKind.ARRIVED)) == 1


def test_every_standard_verb_is_known() -> None:
    """Every verb of Asterisk's Queue Logs documentation has a meaning in the parser."""
    documented = {
        "ABANDON", "ADDMEMBER", "AGENTDUMP", "AGENTLOGIN", "AGENTLOGOFF", "ATTENDEDTRANSFER",
        "BLINDTRANSFER", "COMPLETEAGENT", "COMPLETECALLER", "CONFIGRELOAD", "CONNECT", "ENTERQUEUE",
        "EXITEMPTY", "EXITWITHKEY", "EXITWITHTIMEOUT", "PAUSE", "PAUSEALL", "QUEUESTART",
        "REMOVEMEMBER", "RINGCANCELED", "RINGNOANSWER", "TRANSFER", "UNPAUSE", "UNPAUSEALL",
    }  # fmt: skip
    assert documented <= KNOWN_VERBS


# ---------------------------------------------------------------------- the real sample lines


def test_real_freepbx_sample_transfer_is_followed_into_the_second_queue() -> None:
    """In the issue #759 log the consult call's entry in 1509 is answered and resolved for the caller.

    The ATTENDEDTRANSFER row carries the consult call's id; the caller then CONNECTs in 1509 with no
    ENTERQUEUE of its own. Every queue entry must end (none left waiting), 1501 shows the transfer,
    and 1509 the answer (wait 7 s) and the resolution (talk 173 s) for the original customer.
    """
    parser = QueueLogParser()
    parser.feed(shared_data("asterisk", "asterisk_queue_log_issue759.log").read_bytes())
    got = [(e.kind.value, e.queue, e.contact_id, e.wait, e.duration, e.target) for e in parser.out]
    caller, consult = "1717397243.239826", "1717397390.239830"
    assert got == [
        ("arrived", "1501", caller, None, None, None),
        ("answered", "1501", caller, 12.0, None, None),
        ("arrived", "1509", consult, None, None, None),
        ("transferred", "1501", caller, None, None, "1509"),
        ("answered", "1509", consult, 7.0, None, None),
        ("resolved", "1509", consult, None, 173.0, None),
    ]
    assert parser.waiting_now == 0
    assert parser.other_verbs == {"DID": 2}


def test_real_freepbx_sample_keeps_the_caller_as_customer_in_the_second_queue() -> None:
    """In the issue #759 log the consult call enters 1509 with the agent's extension (7009) as caller
    id; every event of the path, that arrival included, belongs to the caller 9031396745."""
    parser = QueueLogParser()
    parser.feed(shared_data("asterisk", "asterisk_queue_log_issue759.log").read_bytes())
    assert [(e.kind.value, e.queue, e.customer_id) for e in parser.out] == [
        ("arrived", "1501", "9031396745"),
        ("answered", "1501", "9031396745"),
        ("arrived", "1509", "9031396745"),
        ("transferred", "1501", "9031396745"),
        ("answered", "1509", "9031396745"),
        ("resolved", "1509", "9031396745"),
    ]


def test_an_internal_caller_that_is_no_busy_agent_stays_the_customer() -> None:
    """An ENTERQUEUE from extension 7009 while no agent 7009 is on a call keeps 7009 as its customer."""
    parser, _ = parse(
        "100|c1|sales|NONE|ENTERQUEUE||555|1\n"
        "101|c1|sales|PJSIP/7009|CONNECT|1|c9|1\n"
        "160|c1|sales|PJSIP/7009|COMPLETECALLER|1|59|1\n"
        "200|c2|sales|NONE|ENTERQUEUE||7009|1\n"
    )
    assert [e.customer_id for e in only(parser, EventKind.ARRIVED)] == ["555", "7009"]


def test_real_docs_example_ringnoanswer() -> None:
    """The documentation's RINGNOANSWER line is counted with its 1000 ms and makes no event."""
    parser = QueueLogParser()
    parser.feed(shared_data("asterisk", "asterisk_queue_log_docs_example.log").read_bytes())
    assert parser.out == [] and parser.verbs["RINGNOANSWER"] == 1 and parser.ring_ms == 1000


# ---------------------------------------------------------------------- malformed input


def test_bad_lines_are_reported_with_their_line_number_and_good_ones_still_count() -> None:
    """Malformed lines are errors at their line number; the good lines around them make events."""
    text = (
        CALL
        + "garbage without pipes\n"
        + "notanumber|c2|sales|NONE|ENTERQUEUE||1|1\n"
        + "112|c1|sales|SIP/7|CONNECT|soon|c2|3\n"
        + "113|c1|sales|SIP/7|CONNECT|13|c2|3\n"
        + "1|2|3\n"
    )
    parser, errors = parse(text)
    assert [ln for ln, _ in errors] == [2, 3, 4, 6]
    assert [e.kind for e in parser.out] == [EventKind.ARRIVED, EventKind.ANSWERED]
    assert parser.bad == 4 and parser.lines == 6


def test_non_utf8_bytes_are_replaced_and_the_line_counts() -> None:
    """Bytes that are not UTF-8 are decoded with replacement characters; the line is still parsed."""
    parser = QueueLogParser()
    parser.feed(b"100|c1|ventes\xe9|NONE|ENTERQUEUE||555|1\n")
    [ev] = parser.out
    assert ev.queue == "ventes\ufffd" and parser.bad == 0


def test_crlf_line_ends_are_accepted() -> None:
    """A queue_log copied through Windows (CRLF) parses the same."""
    parser, errors = parse(CALL.replace("\n", "\r\n") + "112|c1|sales|SIP/7|CONNECT|12|c2|3\r\n")
    assert errors == [] and [e.kind for e in parser.out] == [EventKind.ARRIVED, EventKind.ANSWERED]


def test_quiet_replay_restores_state_without_events() -> None:
    """Lines fed quietly make no events or errors but leave the same state for the lines after."""
    loud = QueueLogParser()
    loud.feed((CALL + "bad\n").encode())
    quiet = QueueLogParser()
    errors: list[tuple[int, str]] = []
    quiet.on_error = lambda ln, why: errors.append((ln, why))
    quiet.quiet = True
    quiet.feed((CALL + "bad\n").encode())
    quiet.quiet = False
    assert quiet.out == [] and errors == []
    tail = b"112|c1|sales|SIP/7|CONNECT|12|c2|3\n"
    loud.out.clear()
    loud.feed(tail)
    quiet.feed(tail)
    assert quiet.out == loud.out and quiet.lines == loud.lines == 3
