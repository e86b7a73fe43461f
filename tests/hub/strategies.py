"""Hypothesis strategies for snapshots, shared by the hub's codec and delta tests."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from cxmon.snapshot import (
    Ack,
    AlertSinkStatus,
    AlertStatus,
    BaselineStatus,
    Histogram,
    HubLink,
    HubStatus,
    ImportStatus,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
    StoreStatus,
    Transition,
)

names = st.sampled_from(["enquire", "order", "help", "resolve", "other", "ünïcode step", ""])
texts = st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
value = st.none() | finite | st.integers(-(2**53), 2**53).map(float)
states = st.sampled_from(list(State))
measures = st.dictionaries(
    st.sampled_from(["wait_p90", "asa", "offered", "service_level"]), value, max_size=4
)


def _proxy(d: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(d)


histograms = st.integers(0, 4).flatmap(
    lambda n: st.builds(
        Histogram,
        bounds=st.tuples(*[finite] * n),
        counts=st.tuples(*[st.integers(0, 10**9)] * (n + 1)),
        total=finite,
        count=st.integers(0, 10**9),
    )
)
history = st.lists(st.tuples(finite, measures.map(_proxy)), max_size=4).map(tuple)

series = st.builds(
    SeriesFigures,
    step=names,
    channel=st.sampled_from(["voice", "chat", "email"]),
    queue=st.sampled_from(["q1", "q2", "billing"]),
    windows=st.dictionaries(st.sampled_from([300.0, 900.0, 3600.0]), measures.map(_proxy), max_size=3).map(
        _proxy
    ),
    instant=measures.map(_proxy),
    totals=st.dictionaries(st.sampled_from(["offered", "answered"]), st.integers(0, 10**12)).map(_proxy),
    wait_histogram=histograms,
    resolution_histogram=histograms,
    state=states,
    reason=texts,
    history=history,
)
acks = st.builds(Ack, step=names, who=texts, note=texts, ts=finite, until=finite)
steps = st.builds(
    StepStatus,
    name=names,
    label=texts,
    state=states,
    reason=texts,
    since=finite,
    moment_of_truth=st.booleans(),
    headline_measure=texts,
    headline_value=value,
    trend=finite,
    affected=st.integers(0, 10**6),
    ack=st.none() | acks,
    headline_window=finite,
)
transitions = st.builds(
    Transition,
    ts=finite,
    step=names,
    channel=texts,
    queue=texts,
    from_state=states,
    to_state=states,
    reason=texts,
    measure=texts,
    value=value,
)
sources = st.builds(
    SourceStatus,
    name=st.sampled_from(["sim", "pbx", "desk"]),
    type=texts,
    up=st.booleans(),
    stale=st.booleans(),
    events_total=st.integers(0, 10**12),
    errors_total=st.integers(0, 10**12),
    last_event_ts=st.none() | finite,
    events_per_second=finite,
    errors_per_second=finite,
    last_error=st.none() | texts,
    finished=st.booleans(),
)
alert_status = st.builds(
    AlertStatus,
    firing=st.integers(0, 99),
    sinks=st.lists(
        st.builds(
            AlertSinkStatus,
            name=st.sampled_from(["log", "alertmanager", "webhook"]),
            sent=st.integers(0, 10**9),
            failures=st.integers(0, 10**9),
            dropped=st.integers(0, 10**9),
            queued=st.integers(0, 256),
            ok=st.booleans(),
            last_error=st.none() | texts,
        ),
        max_size=3,
    ).map(tuple),
)
import_status = st.builds(
    ImportStatus,
    source=texts,
    done=st.integers(0, 2**53),
    total=st.integers(0, 2**53),
    lines=st.integers(0, 2**53),
    counts=st.dictionaries(texts, finite, max_size=4).map(_proxy),
)
hub_status = st.builds(
    HubStatus,
    links=st.lists(
        st.builds(
            HubLink,
            url=texts,
            state=st.sampled_from(["connecting", "live", "disconnected"]),
            since=st.none() | finite,
            retry_at=st.none() | finite,
            heard=st.none() | finite,
            error=st.none() | texts,
            site=texts,
        ),
        max_size=3,
    ).map(tuple),
)


def _unique(key: Any) -> Any:
    return lambda xs: tuple({key(x): x for x in xs}.values())


snapshots = st.builds(
    Snapshot,
    version=st.integers(0, 2**62),
    ts=finite,
    windows=st.lists(finite, max_size=3).map(tuple),
    service_level_formula=texts,
    steps=st.lists(steps, max_size=4).map(_unique(lambda s: s.name)),
    series=st.lists(series, max_size=5).map(_unique(lambda s: s.key)),
    sources=st.lists(sources, max_size=3).map(_unique(lambda s: s.name)),
    transitions=st.lists(transitions, max_size=3).map(tuple),
    recent_transitions=st.lists(transitions, max_size=5).map(tuple),
    strikes=st.integers(0, 10**6),
    events_total=st.integers(0, 10**12),
    events_per_second=finite,
    errors_total=st.integers(0, 10**12),
    stale=st.booleans(),
    acks=st.lists(acks, max_size=2).map(tuple),
    tick_error=st.none() | texts,
    store=st.none()
    | st.builds(StoreStatus, st.integers(0, 10**9), st.booleans(), st.integers(0, 99), st.none() | texts),
    alerts=st.none() | alert_status,
    imports=st.none() | import_status,
    baseline=st.none() | st.builds(BaselineStatus, st.integers(0, 9), st.integers(0, 9)),
    hub=st.none() | hub_status,
)
