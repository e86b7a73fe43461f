"""queue_log bytes → lines → fields: splitting a block, decoding, reading a field as text or a number."""

from __future__ import annotations

NO_QUEUE = ("NONE", "")
"""Queue fields that name no queue."""


def split_block(block: bytes) -> list[str]:
    """Split a block of complete lines into decoded lines without their line ends.

    Args:
        block: lines each ending in a newline (a missing last one is allowed).

    Returns:
        One string per line; bytes that are not UTF-8 become replacement characters in their
        own line only.
    """
    try:
        text = block.decode()
    except UnicodeDecodeError:
        # Some line is not UTF-8: decode line by line so only that line gets replacements.
        raws = block.split(b"\n")
        if raws and raws[-1] == b"":
            raws.pop()
        return [decode(raw) for raw in raws]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    return lines


def decode(raw: bytes) -> str:
    """Decode a line, replacing bytes that are not UTF-8, and drop a CR line end."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = raw.decode(errors="replace")
    return text.rstrip("\r")


def extension(agent: str) -> str:
    """The dialable extension of a member interface: ``PJSIP/7009`` → ``7009``,
    ``Local/7009@from-queue/n`` → ``7009``."""
    return agent.partition("/")[2].partition("@")[0] or agent


def field(f: list[str], i: int) -> str:
    """Return field ``i``, or ``""`` when the line is shorter."""
    return f[i] if len(f) > i else ""


def number(f: list[str], i: int) -> float | None:
    """Return field ``i`` as a non-negative finite number, or None."""
    if len(f) <= i:
        return None
    try:
        value = float(f[i])
    except ValueError:
        return None
    if not (0.0 <= value < 1e10):
        return None
    return value


def bad_stamp(text: str, value: float, latest: float, max_skew: float | None) -> str:
    """Say why a line's timestamp was refused.

    Args:
        text: the timestamp field.
        value: its value (NaN, negative, or above ``latest``).
        latest: the latest timestamp allowed: the clock plus ``max_skew``, or 1e11.
        max_skew: seconds a timestamp may lie ahead of the clock (None: no bound but 1e11).

    Returns:
        The reason reported for the line.
    """
    if value == value and latest < value < 1e11:
        ahead = value - (latest - (max_skew or 0.0))
        return (
            f"timestamp {text[:40]!r} is {ahead:,.0f} s ahead of the clock "
            f"(allowed: {max_skew:.0f} s); line skipped"
        )
    return f"timestamp out of range: {text[:40]!r}"
