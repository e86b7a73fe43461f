"""Fuzzing the queue_log parser: whatever the bytes, no crash, and every line accounted for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.queue_log.parser import KNOWN_VERBS, QueueLogParser

GOOD = [
    b"100|c1|sales|NONE|ENTERQUEUE||5551234|1",
    b"112|c1|sales|SIP/7|CONNECT|12|c2|3",
    b"300|c1|sales|SIP/7|COMPLETEAGENT|12|188|1",
    b"150|c3|sales|NONE|ABANDON|1|1|50",
    b"1|NONE|sales|SIP/1|ADDMEMBER|",
]

verbs = st.sampled_from(sorted(KNOWN_VERBS | {"DID", "INFO", ""}))
field = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="|\n\r"), max_size=12),
    st.integers(-5, 10**12).map(str),
    st.sampled_from(["nan", "inf", "-1", "1e400", "12.5", "NONE"]),
)


@st.composite
def queue_log_line(draw: st.DrawFn) -> bytes:
    """A line with the right shape but arbitrary field values and field counts."""
    head = [draw(field), draw(field), draw(field), draw(field), draw(verbs)]
    tail = draw(st.lists(field, max_size=7))
    cut = draw(st.integers(0, len(head)))
    parts = head[: max(cut, 0)] if draw(st.booleans()) else head + tail
    return "|".join(parts).encode("utf-8", "surrogatepass")[:300]


def _run(lines: list[bytes]) -> tuple[QueueLogParser, list[int]]:
    parser = QueueLogParser()
    bad: list[int] = []
    parser.on_error = lambda lineno, why: bad.append(lineno)
    parser.feed(b"\n".join(lines) + b"\n")
    return parser, bad


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_and_every_line_is_counted(data: bytes) -> None:
    """Arbitrary bytes parse without an exception; errors carry valid, increasing line numbers."""
    data = data.replace(b"\r", b"")
    parser, bad = _run(data.split(b"\n"))
    n = data.count(b"\n") + 1
    assert parser.lines == n
    assert bad == sorted(set(bad)) and all(1 <= ln <= n for ln in bad)
    assert parser.bad == len(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(queue_log_line(), st.sampled_from(GOOD)), min_size=1, max_size=40))
def test_shaped_lines_with_wrong_fields_never_crash(lines: list[bytes]) -> None:
    """Lines with wrong field counts, bad numbers and odd verbs never raise; events are well formed."""
    lines = [ln.replace(b"\n", b" ").replace(b"\r", b" ") for ln in lines]
    parser, bad = _run(lines)
    assert parser.lines == len(lines)
    assert all(1 <= ln <= len(lines) for ln in bad)
    for ev in parser.out:
        assert ev.ts == ev.ts and ev.ts >= 0
        assert ev.wait is None or ev.wait >= 0
        assert ev.duration is None or ev.duration >= 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(GOOD), min_size=1, max_size=10),
    st.integers(0, 9),
    st.binary(min_size=1, max_size=40),
)
def test_a_bad_line_never_hides_the_good_ones(good: list[bytes], where: int, junk: bytes) -> None:
    """A truncated or non-UTF-8 line among good ones: the good lines make the same events as alone."""
    junk = junk.replace(b"\n", b"").replace(b"\r", b"") or b"\xff"
    where = min(where, len(good))
    alone, _ = _run(good)
    lines = [*good[:where], junk, *good[where:]]
    mixed, bad = _run(lines)
    assert bad in ([], [where + 1])
    # Junk that happens to parse (e.g. a bare DID) may add events, but none of the good ones go missing.
    mixed_keys = [(e.kind, e.contact_id, e.queue) for e in mixed.out]
    for ev in alone.out:
        assert (ev.kind, ev.contact_id, ev.queue) in mixed_keys
