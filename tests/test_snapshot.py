"""A published Snapshot never changes, whatever happens to the live state it was made from."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from collectors.base import Sink
from cxmon.engine import Engine
from tests.helpers import one_step_config


class _Idle:
    """A source that is never started (the test ticks the engine by hand)."""

    name = "feed"
    type = "test"

    async def run(self, sink: Sink) -> None:  # pragma: no cover - never started
        raise AssertionError("not started")


def test_snapshot_keeps_the_status_it_was_published_with() -> None:
    """An importer's and the alert sinks' status dicts change after a snapshot is published; the
    snapshot still shows them as they were, and cannot itself be changed."""
    engine = Engine(one_step_config(), store=False, sources=[_Idle()], clock=lambda: 1000.0)
    source_status: dict[str, Any] = {"counts": {"bad": 0, "lines": 10}, "files": ["queue_log"]}
    alerts: dict[str, Any] = {"sinks": {"webhook": {"sent": 1, "failed": 0}}}
    engine.extra_status["feed"] = source_status  # as cxmon import hands its source's live status
    engine.extra_status["alerts"] = alerts  # as the alert dispatcher keeps its own
    snap = engine._tick(1000.0)
    as_published = copy.deepcopy({k: _thawed(v) for k, v in snap.extra.items()})

    source_status["counts"]["bad"] = 5
    source_status["counts"]["lines"] = 20
    source_status["files"].append("queue_log.1")
    alerts["sinks"]["webhook"]["sent"] = 9
    alerts["sinks"]["log"] = {"sent": 1}
    engine.extra_status["late"] = {"x": 1}

    assert {k: _thawed(v) for k, v in snap.extra.items()} == as_published
    assert as_published["feed"] == {"counts": {"bad": 0, "lines": 10}, "files": ["queue_log"]}
    with pytest.raises(TypeError):
        snap.extra["feed"]["counts"]["bad"] = 7  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.extra["feed"]["files"].append("x")
    # The next snapshot shows the status as it is now.
    later = engine._tick(1001.0)
    assert later.extra["feed"]["counts"]["bad"] == 5
    assert later.extra["alerts"]["sinks"]["webhook"]["sent"] == 9


def _thawed(value: Any) -> Any:
    """Plain dicts and lists of a frozen value (for comparing and copying)."""
    if hasattr(value, "items"):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thawed(v) for v in value]
    return value
