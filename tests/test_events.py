"""ContactEvent: its constructor, immutability and JSON form."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from cxmon.events import ContactEvent, EventKind


def test_constructor_matches_the_fields() -> None:
    """The hand-written __init__ takes exactly the dataclass fields, in order, with their defaults."""
    params = list(inspect.signature(ContactEvent.__init__).parameters.values())[1:]
    fields = dataclasses.fields(ContactEvent)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        expected = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == expected, f.name


def test_every_field_is_set_and_events_are_frozen() -> None:
    """Each argument lands in its own field, equal events hash alike, and nothing can change one."""
    values = (1.5, EventKind.ANSWERED, "c", "chat", "q", "s", "u", 2.0, 3.0, "r", 4.0, "t", 5, 6, 7)
    ev = ContactEvent(*values)
    assert dataclasses.astuple(ev) == values
    assert ev == ContactEvent(*values) and hash(ev) == hash(ContactEvent(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.ts = 2.0  # type: ignore[misc]  # the assignment mypy rightly refuses, tried at run time


def test_dict_round_trip_and_bad_fields_are_named() -> None:
    """to_dict/from_dict round-trip; a bad field is named in the error."""
    ev = ContactEvent(1.0, EventKind.RESOLVED, "c", "voice", "q", customer_id="u", duration=30.0)
    assert ContactEvent.from_dict(ev.to_dict()) == ev
    with pytest.raises(ValueError, match="wait has the wrong type"):
        ContactEvent.from_dict({**ev.to_dict(), "wait": "soon"})
    with pytest.raises(ValueError, match="unknown kind"):
        ContactEvent.from_dict({**ev.to_dict(), "kind": "exploded"})


@pytest.mark.parametrize("value", [1e300, -1, 2.5, True, "3"])
def test_a_staffing_count_must_be_a_whole_number_in_range(value: object) -> None:
    """An agents or contacts count that is not a whole number from 0 to MAX_COUNT is refused, naming it."""
    data = {"ts": 1.0, "kind": "staffing", "channel": "voice", "queue": "q", "agents_available": value}
    with pytest.raises(ValueError, match="agents_available"):
        ContactEvent.from_dict(data)


@pytest.mark.parametrize("name", ["wait", "duration"])
def test_a_negative_wait_or_duration_is_refused(name: str) -> None:
    """A wait or duration below 0 seconds is refused, naming it (it used to be taken, and a wait of
    -50 s counted as answered within any target)."""
    data = {"ts": 1.0, "kind": "answered", "contact_id": "c", "channel": "voice", "queue": "q", name: -50}
    with pytest.raises(ValueError, match=f"{name} is negative"):
        ContactEvent.from_dict(data)
