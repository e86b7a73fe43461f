"""The engine: sources → aggregator and store → detector → Snapshots, each concept in a module here.

- :mod:`cxmon.engine.core` — the Engine: the bounded queue, its consumer, task ownership, shutdown;
- :mod:`cxmon.engine.tick` — the one tick path, driven by what changed.
"""

from __future__ import annotations

from cxmon.config import OTHER
from cxmon.engine.core import Engine, SourceHealth, Subscription

__all__ = ["OTHER", "Engine", "SourceHealth", "Subscription"]
