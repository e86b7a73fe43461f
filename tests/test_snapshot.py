"""A published Snapshot never changes, whatever happens to the live state it was made from."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collectors.base import Sink
from cxmon.alerts import AlertDispatcher
from cxmon.engine import Engine
from cxmon.engine.sinks import SourceSink
from cxmon.importer import import_status, queue_log_source, run_import
from cxmon.snapshot import Snapshot
from tests.helpers import one_step_config, shared_data


class _Importing:
    """A source that is never started (the test ticks the engine by hand), with an importer's
    live status dict and progress, as a queue_log source being imported keeps them."""

    name = "feed"
    type = "queue_log"

    def __init__(self) -> None:
        self.status: dict[str, Any] = {"lines": 10, "bad_lines": 0, "verbs": {"ENTERQUEUE": 4}}
        self.done = 100

    def progress(self) -> tuple[int, int, int]:
        return self.done, 1000, self.status["lines"]

    async def run(self, sink: Sink) -> None:  # pragma: no cover - never started
        raise AssertionError("not started")


def _immutable(value: Any, path: str = "snapshot") -> list[str]:
    """Paths of the values inside ``value`` that could change in place (empty: none can)."""
    if value is None or isinstance(value, str | int | float | bool | enum.Enum):
        return []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # typeshed leaves __dataclass_params__ (set on every dataclass) out of its stubs.
        if not type(value).__dataclass_params__.frozen:  # type: ignore[attr-defined]
            return [f"{path} ({type(value).__name__} is not frozen)"]
        return [
            p
            for f in dataclasses.fields(value)
            for p in _immutable(getattr(value, f.name), f"{path}.{f.name}")
        ]
    if isinstance(value, MappingProxyType):
        return [p for k, v in value.items() for p in _immutable(v, f"{path}[{k!r}]")]
    if isinstance(value, tuple | frozenset):
        return [p for i, v in enumerate(value) for p in _immutable(v, f"{path}[{i}]")]
    return [f"{path} ({type(value).__name__})"]


def _engine_with_live_status() -> tuple[Engine, _Importing, AlertDispatcher, SourceSink]:
    """An engine importing ``feed``, with an alert dispatcher (log sink) attached."""
    config = one_step_config()
    source = _Importing()
    engine = Engine(config, store=False, sources=[source], clock=lambda: 1000.0)
    engine.import_status = lambda: import_status(source)  # as cxmon import does
    dispatcher = AlertDispatcher(config)
    dispatcher.attach(engine)
    return engine, source, dispatcher, SourceSink(engine, source)


def test_a_published_snapshot_keeps_the_statuses_it_was_published_with() -> None:
    """A source's health, the import's status and the alert sinks' counters all change after a
    snapshot is published; the snapshot still shows them as they were."""
    engine, source, dispatcher, sink = _engine_with_live_status()
    snap = engine._tick(1000.0)
    assert snap.imports is not None and snap.alerts is not None
    before = (snap.sources, snap.imports, snap.alerts)
    assert snap.imports.counts["verbs.ENTERQUEUE"] == 4.0 and snap.imports.lines == 10

    sink.error("queue_log:12", "bad line")  # the source's health
    source.status["lines"] = 20  # the importer's live status
    source.status["verbs"]["ENTERQUEUE"] = 9
    source.status["verbs"]["ABANDON"] = 1
    source.done = 900
    dispatcher.log_stats.sent += 3  # the alert sinks' live counters
    dispatcher.log_stats.ok = False

    assert (snap.sources, snap.imports, snap.alerts) == before
    assert snap.sources[0].errors_total == 0 and snap.sources[0].last_error is None
    assert dict(snap.imports.counts) == {"lines": 10.0, "bad_lines": 0.0, "verbs.ENTERQUEUE": 4.0}
    assert (snap.imports.done, snap.imports.lines) == (100, 10)
    log_sink = snap.alerts.sink("log")
    assert log_sink is not None and (log_sink.sent, log_sink.ok) == (0, True)


def test_the_next_snapshot_shows_the_statuses_as_they_are_now() -> None:
    """What changed after one snapshot is in the next one."""
    engine, source, dispatcher, sink = _engine_with_live_status()
    engine._tick(1000.0)
    logged = dispatcher.log_stats.sent  # the first tick's transition (to STALE) was logged
    sink.error("queue_log:12", "bad line")
    source.status["verbs"]["ENTERQUEUE"] = 9
    dispatcher.log_stats.sent += 3
    later = engine._tick(1001.0)
    assert later.sources[0].errors_total == 1
    assert later.imports is not None and later.imports.counts["verbs.ENTERQUEUE"] == 9.0
    log_sink = None if later.alerts is None else later.alerts.sink("log")
    assert log_sink is not None and log_sink.sent == logged + 3


def test_nothing_in_a_published_snapshot_can_change_in_place() -> None:
    """Every value reachable from a snapshot with every status filled in is a frozen dataclass, a
    tuple, a read-only mapping or a plain value: no dict, list or set a live object shares."""
    engine, _, _, sink = _engine_with_live_status()
    sink.error("queue_log:12", "bad line")
    snap = engine._tick(1000.0)
    assert snap.imports is not None and snap.alerts is not None
    assert _immutable(snap) == []


def test_the_check_finds_a_live_dict() -> None:
    """The immutability check above is not vacuous: a snapshot holding a plain dict is caught."""
    # A dict where the type says a read-only mapping: the mistake the check is there to catch.
    snap = dataclasses.replace(Snapshot(0, 0.0, (), "", (), (), ()), windows=({"a": 1},))  # type: ignore[arg-type]
    assert _immutable(snap) == ["snapshot.windows[0] (dict)"]


async def test_an_imports_final_snapshot_keeps_its_status(tmp_path: Path) -> None:
    """`cxmon import`'s last snapshot carries the import's status as it was, read-only: the
    source's status changing afterwards does not reach it."""
    config = one_step_config()
    source = queue_log_source(config, str(shared_data("asterisk", "asterisk_queue_log_issue759.log")))
    result = await run_import(config, source, str(tmp_path / "h.db"))
    final = result.final.imports
    assert final is not None and final.lines == result.lines == 8
    assert final.counts["lines"] == 8.0 and final.done == final.total > 0
    kept = dict(final.counts)
    source.status["lines"] = 99
    source.status.setdefault("verbs", {})["ENTERQUEUE"] = 99
    assert dict(final.counts) == kept
    assert _immutable(result.final) == []
