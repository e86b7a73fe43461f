"""Projections whose steady states and queue-state steps are worked out only when first read."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import TypedDict

import pytest

from cxmon.forecast.breach import Projection
from cxmon.forecast.transient import ExitSteps, QueueState
from cxmon.hub import codec

STATE = QueueState((95.0, 60.0, 31.0, 12.0), 8, 180.0, 240.0, 0.05, 0.7)
EXITS = ExitSteps(STATE, 20.0, 5.0, 300.0)


class Known(TypedDict, total=False):
    """Projection's fields a test gives (``**KNOWN``), beside the deferred ones."""

    measure: str
    window: float
    breach: float
    direction: str
    agents: int
    agents_needed: int | None
    model: str
    computed: float
    waits: tuple[float, ...]
    outcomes: float


KNOWN: Known = {
    "measure": "service_level",
    "window": 300.0,
    "breach": 0.8,
    "direction": "below",
    "agents": 8,
    "agents_needed": 11,
    "model": "erlang_a",
    "computed": 1_000.0,
    "waits": STATE.waits,
    "outcomes": 40.0,
}


class Counted:
    """Gives projected, sure or exits, as asked, and counts the calls per field."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.asked)

    def __call__(self, name: str) -> float | ExitSteps | tuple[float, float] | None:
        self.asked.append(name)
        answers: dict[str, float | ExitSteps | tuple[float, float] | None] = {
            "projected": 0.62,
            "sure": 0.71,
            "exits": ExitSteps(STATE, 20.0, 5.0, 300.0),
            "risk": (0.1, 0.001),
        }
        return answers[name]


def eager() -> Projection:
    return Projection(projected=0.62, sure=0.71, exits=EXITS, risk=(0.1, 0.001), **KNOWN)


def deferred(steady: Counted | None = None) -> Projection:
    return Projection.deferred(steady or Counted(), **KNOWN)


def test_nothing_is_worked_out_until_a_deferred_field_is_read() -> None:
    """Reading the fields given does not call the work; each deferred field is worked out on its
    own when first read, once."""
    steady = Counted()
    p = deferred(steady)
    assert (p.measure, p.agents_needed, p.computed, p.waits, p.rests_on) == (
        "service_level",
        11,
        1_000.0,
        STATE.waits,
        "",
    )
    assert steady.calls == 0
    assert p.worked_out("agents_needed") and not p.worked_out("sure")
    assert p.sure == p.sure == 0.71
    assert steady.asked == ["sure"]
    assert p.worked_out("sure") and not p.worked_out("projected") and not p.worked_out("exits")
    assert (p.projected, p.exits, p.projected) == (0.62, EXITS, 0.62)
    assert steady.asked == ["sure", "projected", "exits"]


def test_a_time_to_breach_that_sure_settles_leaves_projected_unworked() -> None:
    """A confident projection past the breach settles how soon it comes: the measured one is not
    worked out (a wait percentile's costs a search of the model's tail)."""
    steady = Counted()
    p = Projection.deferred(steady, **(KNOWN | {"breach": 0.75}))
    assert p.eta(0.78) is not None
    assert "projected" not in steady.asked and "sure" in steady.asked


def test_a_deferred_projection_is_the_projection_with_its_values_given() -> None:
    """Equal, with the same hash, repr, time to breach and reason, as one built with the values."""
    p, q = deferred(), eager()
    assert p == q and hash(p) == hash(q) and repr(p) == repr(q)
    assert p.eta(0.85) == q.eta(0.85) is not None
    assert p.reason(60.0) == q.reason(60.0)


@pytest.mark.parametrize(
    "trip",
    [
        pickle.loads,
        copy.deepcopy,
        copy.copy,
        lambda p: dataclasses.replace(p),
        lambda p: codec.decoder(Projection)(codec.loads(codec.dumps(codec.encoder(Projection)(p)))),
    ],
    ids=["pickle", "deepcopy", "copy", "replace", "hub codec"],
)
def test_an_unread_deferred_projection_travels_with_its_values(
    trip: Callable[[Projection | bytes], Projection],
) -> None:
    """Pickled, copied, replaced or sent through the hub's codec before anything was read, it arrives
    equal to the projection with its values given."""
    p = deferred()
    sent = pickle.dumps(p) if trip is pickle.loads else p
    got = trip(sent)
    assert got == eager()
    assert got.sure == 0.71


def test_deferred_needs_every_field_without_a_default() -> None:
    """A field with no default left out, or a deferred field given, is refused."""
    known = KNOWN.copy()
    del known["agents"]
    with pytest.raises(TypeError, match="agents"):
        Projection.deferred(Counted(), **known)
    with pytest.raises(TypeError, match="sure"):
        Projection.deferred(Counted(), sure=0.5, **KNOWN)


def test_an_unknown_attribute_is_still_an_attribute_error() -> None:
    """Only the deferred fields are worked out on demand: any other missing name raises."""
    with pytest.raises(AttributeError):
        _ = deferred().no_such_field  # type: ignore[attr-defined]  # the name the test looks up in vain


def test_agents_needed_are_worked_out_on_their_own_when_read() -> None:
    """Deferred agents needed are worked out, once, when read, without the steady states; the
    steady states without them; and the whole equals the projection with every value given."""
    steady, asked = Counted(), []
    known = {k: v for k, v in KNOWN.items() if k != "agents_needed"}

    def needed() -> int | None:
        asked.append(1)
        return 11

    p = Projection.deferred(steady, needed, **known)
    assert p.sure == 0.71 and not asked
    assert not p.worked_out("agents_needed") and p.worked_out("sure")
    assert p.agents_needed == p.agents_needed == 11
    assert len(asked) == 1 and steady.asked == ["sure"]
    assert p.worked_out("agents_needed")
    assert (
        p == eager()
        and pickle.loads(pickle.dumps(Projection.deferred(Counted(), needed, **known))) == eager()
    )


def test_a_field_another_thread_worked_out_meanwhile_is_read_as_it_is() -> None:
    """A reader that found a deferred field unset, while another thread then worked every field
    out, gets the value (not an AttributeError) when it goes on to look for the work."""
    needed_known = {k: v for k, v in KNOWN.items() if k != "agents_needed"}
    p = Projection.deferred(Counted(), lambda: 11, **needed_known)
    assert (p.sure, p.agents_needed) == (0.71, 11)  # the other thread's reads
    # Projection hides its __getattr__ from mypy (breach.py), which would take every attribute for Any.
    assert p.__getattr__("exits") == EXITS  # type: ignore[attr-defined]
    assert p.__getattr__("agents_needed") == 11  # type: ignore[attr-defined]
