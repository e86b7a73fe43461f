"""The engine: sources → aggregator and store → detector → Snapshots, each concept in a module here.

- :mod:`cxmon.engine.core` — the Engine: the bounded queue, its consumer, task ownership, shutdown;
- :mod:`cxmon.engine.sinks` — the sink each source talks to, and newest-only snapshot streams;
- :mod:`cxmon.engine.health` — source health: running figures, staleness and its reasons;
- :mod:`cxmon.engine.tick` — the one tick path, driven by what changed (publishing or not);
- :mod:`cxmon.engine.assembly` — the Snapshot assembled from a tick, rebuilt where things changed.
"""

from __future__ import annotations

from cxmon.config import OTHER
from cxmon.engine.core import Engine, SourceHealth, Subscription

__all__ = ["OTHER", "Engine", "SourceHealth", "Subscription"]
