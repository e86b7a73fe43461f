"""Durations as people read them: whole seconds rounded to even, the unit chosen by the value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxmon.units import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (9.95, "9.9s"),
        (42.0, "42s"),
        (60.0, "1m"),
        (90.5, "1m30s"),  # half to even
        (91.5, "1m32s"),
        (185.0, "3m05s"),
        (3599.4, "59m59s"),
        (3599.6, "60m"),  # chosen as minutes before rounding, as always
        (3600.0, "1h"),
        (7830.0, "2h10m"),
        (86399.6, "24h"),
        (90000.0, "1d01h"),
        (-61.5, "-1m02s"),
    ],
)
def test_a_duration_reads_as_it_always_has(seconds: float | None, text: str) -> None:
    """Known durations, edges of each unit and halves included, give their known text."""
    assert format_duration(seconds) == text


def reference(seconds: float) -> str:
    """The formatting with Python's round(), divmod and format specs (what the table stands in for)."""
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m" if secs == 0 else f"{minutes}m{secs:02d}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h" if rest < 60 else f"{hours}h{rest // 60:02d}m"


@given(
    st.one_of(
        st.floats(min_value=60.0, max_value=86399.99),
        st.integers(min_value=120, max_value=172_797).map(lambda k: k / 2),
    )
)
def test_minutes_and_hours_round_as_round_does(seconds: float) -> None:
    """From a minute to a day, any duration (halves included) reads as Python's round() gives it."""
    assert format_duration(seconds) == reference(seconds)
