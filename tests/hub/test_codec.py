"""The hub's snapshot codec and deltas: exact round trips, and malformed input refused cleanly."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon.hub.codec import CodecError, decode, dumps, encode, loads
from cxmon.hub.delta import apply_delta, snapshot_delta
from cxmon.snapshot import Snapshot, State, StepStatus
from tests.hub.strategies import series, snapshots, steps, transitions


def _wire(snap: Snapshot) -> Snapshot:
    decoded: Snapshot = decode(loads(dumps(encode(snap, Snapshot))), Snapshot)
    return decoded


@given(snapshots)
@settings(max_examples=100, deadline=None)
def test_snapshot_round_trips_through_json(snap: Snapshot) -> None:
    """Any snapshot encoded to JSON bytes and decoded is equal to the original."""
    assert _wire(snap) == snap


@given(snapshots, snapshots)
@settings(max_examples=100, deadline=None)
def test_delta_between_unrelated_snapshots_applies_exactly(old: Snapshot, new: Snapshot) -> None:
    """Applying the delta of any two snapshots to the first, after JSON, gives the second."""
    changes = orjson.loads(dumps(snapshot_delta(old, new)))
    assert apply_delta(old, changes) == new


@st.composite
def evolved(draw: st.DrawFn) -> tuple[Snapshot, Snapshot]:
    """A snapshot and a successor sharing most of it, as consecutive ticks do."""
    old = draw(snapshots)
    changed_series = []
    for s in old.series:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            changed_series.append(s)
        elif choice == 1:
            changed_series.append(dataclasses.replace(s, state=draw(st.sampled_from(list(State)))))
        elif choice == 2:
            extra = draw(series)
            point = extra.history[:1]
            changed_series.append(dataclasses.replace(s, history=(*s.history[1:], *point)))
        # choice 3: the series is gone
    added = draw(st.lists(series, max_size=2))
    keys = {s.key for s in changed_series}
    for s in added:
        if s.key not in keys:
            keys.add(s.key)
            changed_series.append(s)
    changed_steps = [
        dataclasses.replace(s, reason=draw(st.text(max_size=5))) if draw(st.booleans()) else s
        for s in old.steps
    ]
    new_tr = draw(st.lists(transitions, max_size=3))
    recent = (*old.recent_transitions[draw(st.integers(0, 2)) :], *new_tr)
    new = dataclasses.replace(
        old,
        version=old.version + 1,
        ts=old.ts + 1.0,
        series=tuple(changed_series),
        steps=tuple(reversed(changed_steps)) if draw(st.booleans()) else tuple(changed_steps),
        recent_transitions=recent,
        transitions=tuple(new_tr),
    )
    return old, new


@given(evolved())
@settings(max_examples=100, deadline=None)
def test_delta_between_consecutive_ticks_applies_exactly(pair: tuple[Snapshot, Snapshot]) -> None:
    """Record-level and sliding-window changes (the common case) apply exactly too."""
    old, new = pair
    changes = orjson.loads(dumps(snapshot_delta(old, new)))
    assert apply_delta(old, changes) == new


@given(snapshots)
@settings(max_examples=50, deadline=None)
def test_delta_of_a_quiet_tick_names_only_what_changed(snap: Snapshot) -> None:
    """A tick where only time moved carries the version and the clock, nothing else."""
    later = dataclasses.replace(snap, version=snap.version + 1, ts=snap.ts + 0.5)
    assert set(snapshot_delta(snap, later)) <= {"version", "ts"}
    assert "version" in snapshot_delta(snap, later)


@given(steps)
@settings(max_examples=10, deadline=None)
def test_non_finite_floats_round_trip(step: StepStatus) -> None:
    """NaN and infinities (which JSON cannot hold) come back as themselves."""
    snap = dataclasses.replace(
        Snapshot(version=1, ts=0.0, windows=(), service_level_formula="", steps=(), series=(), sources=()),
        steps=(dataclasses.replace(step, trend=math.inf, since=-math.inf, headline_value=math.nan),),
    )
    back = _wire(snap).steps[0]
    assert back.trend == math.inf and back.since == -math.inf
    assert back.headline_value is not None and math.isnan(back.headline_value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda i: st.lists(i, max_size=4) | st.dictionaries(st.text(max_size=3), i, max_size=4),
        max_leaves=30,
    )
)
@settings(max_examples=100, deadline=None)
def test_garbage_decodes_to_a_codec_error_or_a_snapshot(value: Any) -> None:
    """Whatever JSON a peer sends, decoding raises CodecError or gives a snapshot: never another error."""
    with contextlib.suppress(CodecError):
        decode(value, Snapshot)


@given(
    snapshots,
    st.dictionaries(
        st.sampled_from(["steps", "series", "recent_transitions", "ts", "nope"]),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=3),
            lambda i: (
                st.lists(i, max_size=3)
                | st.dictionaries(st.sampled_from(["put", "order", "drop", "add"]), i, max_size=3)
            ),
            max_leaves=10,
        ),
    ),
)
@settings(max_examples=100, deadline=None)
def test_garbage_delta_raises_codec_error_only(snap: Snapshot, changes: dict[str, Any]) -> None:
    """A malformed delta raises CodecError, never another exception."""
    with contextlib.suppress(CodecError):
        apply_delta(snap, changes)
