"""The queue_log parser gives the same output however its input is cut into blocks."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.queue_log.parser import QueueLogParser

# Lines sharing stamps (the parser parses each stamp once per run of equal ones), bad stamps
# between good ones, and every kind of verb, including members on calls and a restart.
LINES = [
    "100|NONE|sales|SIP/7|ADDMEMBER|",
    "100|NONE|billing|SIP/7|ADDMEMBER|",
    "100|c1|sales|NONE|DID|555",
    "100|c1|sales|NONE|ENTERQUEUE||5551234|1",
    "100|c1|sales|NONE|ENTERQUEUE||5551234|1",
    "1e12|c2|sales|NONE|ENTERQUEUE||1|1",
    "nan|c2|sales|NONE|ENTERQUEUE||1|1",
    "100|c2|sales|NONE|ENTERQUEUE||5550000|1",
    "105|c1|sales|SIP/7|RINGNOANSWER|5000",
    "112|c1|sales|SIP/7|CONNECT|12|c9|3",
    "112|c2|sales|SIP/8|CONNECT|soon|c9|3",
    "113|NONE|NONE|SIP/7|PAUSEALL|",
    "114|c3|sales|NONE|EXITWITHKEY|1|1|1|14",
    "115|c2|sales|NONE|ABANDON|1|1|15",
    "116|NONE|sales|SIP/7|UNPAUSEALL|",
    "300|c1|sales|SIP/7|COMPLETEAGENT|12|188|1",
    "301|c4|sales|SIP/8|CONNECT|4|c9|3",
    "302|c4|sales|SIP/8|BLINDTRANSFER|2000|from-internal|4|1|1",
    "303|c5|billing|SIP/7|CONNECT|0|c9|3",
    "304|NONE|NONE|NONE|QUEUESTART|",
    "305|c6|NONE|NONE|ENTERQUEUE||1|1",
    "305|c6|sales|NONE||",
    "305|c6|sales|NONE|SOMETHINGNEW|",
    "305|c6|sales",
    "306|NONE|NONE|NONE|CONFIGRELOAD|",
]

Run = tuple[list[object], list[tuple[int, str, int]], dict[str, object], list[object], list[object]]


def _run(blocks: list[bytes], per_line: bool = False) -> Run:
    """Feed ``blocks`` (or each of their lines through ``feed_line``); return everything it made."""
    parser = QueueLogParser(forget_after=50.0)
    errors: list[tuple[int, str, int]] = []
    parser.on_error = lambda lineno, why: errors.append((lineno, why, parser.lines))
    events: list[object] = []
    for block in blocks:
        if per_line:
            for raw in block.splitlines():
                parser.feed_line(raw)
        else:
            parser.feed(block)
        events += parser.out
        parser.out = []
    return events, errors, parser.status(), list(parser.verbs.items()), list(parser.other_verbs.items())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=60), st.data())
def test_block_cuts_change_nothing(lines: list[str], data: st.DataObject) -> None:
    """Whole, line by line or cut anywhere between lines: same events, errors, counters and their order."""
    raws = [line.encode() + b"\n" for line in lines]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raws) - 1))) if len(raws) > 1 else set())
    bounds = [0, *cuts, len(raws)]
    blocks = [b"".join(raws[a:b]) for a, b in pairwise(bounds)]
    whole = _run([b"".join(raws)])
    assert _run(blocks) == whole
    assert _run(blocks, per_line=True) == whole


def test_errors_are_reported_while_lines_is_their_line_number() -> None:
    """on_error runs with ``parser.lines`` equal to the line it reports, mid-block too."""
    _, errors, *_ = _run(["\n".join(LINES).encode()])
    assert errors and all(lineno == lines_then for lineno, _, lines_then in errors)


def test_a_bad_timestamp_is_not_taken_for_the_good_one_before_it() -> None:
    """After a line with a bad timestamp, lines with the last good stamp keep their own time."""
    parser = QueueLogParser()
    errors: list[int] = []
    parser.on_error = lambda lineno, why: errors.append(lineno)
    parser.feed(
        b"100|c1|sales|NONE|ENTERQUEUE||1|1\n"
        b"1e12|c2|sales|NONE|ENTERQUEUE||1|1\n"
        b"1e12|c3|sales|NONE|ENTERQUEUE||1|1\n"
        b"100|c4|sales|NONE|ENTERQUEUE||1|1\n"
    )
    assert errors == [2, 3]
    assert [(e.contact_id, e.ts) for e in parser.out] == [("c1", 100.0), ("c4", 100.0)]
