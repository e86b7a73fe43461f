"""The serving's own metrics: when the exported snapshot was published, and what the HTTP server counted.

These describe the daemon that serves ``/metrics`` (requests refused, connections evicted and open,
webhook requests rejected by reason), not the contact centre: :mod:`cxmon.exposition` writes them
after the snapshot's families.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cxmon.catalogue import WEBHOOK_REJECTIONS
from cxmon.metric_text import Family


@dataclass(frozen=True, slots=True)
class HttpCounts:
    """What the HTTP server has counted, exported with the snapshot it serves."""

    refused: int
    """Requests refused because they could not be parsed (oversized, malformed, not HTTP)."""
    evicted: int
    """Connections closed to keep within ``[http] max_connections``."""
    open: int
    """Connections open when the exposition was rendered."""
    webhook_rejected: tuple[tuple[str, Mapping[str, int]], ...] = ()
    """Per webhook collector (name, requests refused by reason), in config order."""


def serving_families(published: float | None, http: HttpCounts | None) -> list[Family]:
    """The serving's own families: when the exported snapshot was published, and what the HTTP server
    counted (none of them when neither is given)."""
    fams = []
    if published is not None:
        fam = Family(
            True,
            "cxmon_snapshot_published_timestamp_seconds",
            "gauge",
            "Wall-clock time the engine published the exported snapshot (old while the engine is frozen).",
        )
        fam.add((), published, "")
        fams.append(fam)
    if http is not None:
        for name, kind, help_, value in (
            ("cxmon_http_refused_requests", "counter", "Requests refused as malformed.", http.refused),
            ("cxmon_http_evicted_connections", "counter", "Connections closed to make room.", http.evicted),
            ("cxmon_http_open_connections", "gauge", "Connections open at the last render.", http.open),
        ):
            fam = Family(True, name, kind, help_)
            fam.add((), float(value), "")
            fams.append(fam)
        if http.webhook_rejected:
            fams.append(rejection_family(http.webhook_rejected))
    return fams


def rejection_family(per_source: tuple[tuple[str, Mapping[str, int]], ...]) -> Family:
    """``cxmon_webhook_rejected_total{collector,reason}``: every reason of every webhook collector,
    zeros included; a reason outside :data:`WEBHOOK_REJECTIONS` is counted as ``other``."""
    fam = Family(
        True,
        "cxmon_webhook_rejected",
        "counter",
        "Webhook requests refused (4xx/503), by collector and reason; none of them changed a figure.",
        ("collector", "reason"),
    )
    for name, rejected in per_source:
        counts = dict.fromkeys(WEBHOOK_REJECTIONS, 0)
        for reason, n in rejected.items():
            key = reason if reason in counts else "other"
            counts[key] += n
        for reason, n in counts.items():
            fam.add((name, reason), float(n))
    return fam
