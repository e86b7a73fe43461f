"""The engine: sources → aggregator and store → detector → Snapshots, each concept in a module here.

- :mod:`cxmon.engine.core` — the Engine: the bounded queue, its consumer, task ownership, shutdown;
- :mod:`cxmon.engine.clock` — engine time, tick spacing, and where ticks fall in a backfill's batches;
- :mod:`cxmon.engine.sinks` — the sink each source talks to (checks at the engine's door);
- :mod:`cxmon.engine.supervision` — each source run to its end, a live one restarted after a backoff;
- :mod:`cxmon.engine.health` — source health: running figures, staleness and its reasons;
- :mod:`cxmon.engine.tick` — the one tick path, driven by what changed (publishing or not);
- :mod:`cxmon.engine.assembly` — the Snapshot assembled from a tick, rebuilt where things changed;
- :mod:`cxmon.engine.publish` — the Snapshot stamped, kept as the latest, handed to listeners and
  newest-only subscriptions; the recent transitions; a failed tick published as such;
- :mod:`cxmon.engine.acks` — acknowledgements of pot holes;
- :mod:`cxmon.engine.retention` — the hourly retention purge and a backfill's GC thresholds.
"""

from __future__ import annotations

from cxmon.config import OTHER
from cxmon.engine.core import Engine, SourceHealth, Subscription

__all__ = ["OTHER", "Engine", "SourceHealth", "Subscription"]
