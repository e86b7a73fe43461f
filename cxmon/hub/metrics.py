"""The hub's counters as ``cxmon_hub_*`` metrics on the daemon's ``/metrics``.

Sample output::

    # HELP cxmon_hub_watchers Watchers connected now, by role.
    # TYPE cxmon_hub_watchers gauge
    cxmon_hub_watchers{role="view"} 12.0
    # HELP cxmon_hub_sent_bytes_total Payload bytes sent to watchers, after compression, by frame kind.
    # TYPE cxmon_hub_sent_bytes_total counter
    cxmon_hub_sent_bytes_total{kind="delta"} 1.234e+06
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxmon.hub.protocol import ACK, VIEW
from cxmon.metric_text import Family

if TYPE_CHECKING:
    from cxmon.exporter import Exporter
    from cxmon.hub.server import Hub

KINDS = ("hello", "snapshot", "delta", "reply")
"""Values of the ``kind`` label: the frames the hub sends."""


def _one(name: str, kind: str, help_: str, value: float) -> Family:
    fam = Family(True, name, kind, help_)
    fam.add((), float(value), "")
    return fam


def hub_families(hub: Hub) -> list[Family]:
    """Return the hub's metric families (text format), from its counts now."""
    stats = hub.stats
    roles = {VIEW: 0, ACK: 0}
    for watcher in hub.watchers:
        roles[watcher.role] = roles.get(watcher.role, 0) + 1
    watchers = Family(True, "cxmon_hub_watchers", "gauge", "Watchers connected now, by role.", ("role",))
    for role, count in roles.items():
        watchers.add((role,), float(count))
    frames = Family(True, "cxmon_hub_frames_sent", "counter", "Frames sent to watchers, by kind.", ("kind",))
    sent = Family(
        True,
        "cxmon_hub_sent_bytes",
        "counter",
        "Payload bytes sent to watchers, after compression, by frame kind.",
        ("kind",),
    )
    for kind in KINDS:
        frames.add((kind,), float(stats.frames_sent.get(kind, 0)))
        sent.add((kind,), float(stats.bytes_sent.get(kind, 0)))
    resyncs = Family(
        True,
        "cxmon_hub_resyncs",
        "counter",
        "Full snapshots sent again to a watcher: it fell behind the kept deltas (lagging) or asked.",
        ("reason",),
    )
    resyncs.add(("lagging",), float(stats.lagging_total))
    resyncs.add(("requested",), float(stats.requested_total))
    return [
        watchers,
        _one(
            "cxmon_hub_lagging_watchers",
            "gauge",
            "Watchers further behind than the hub keeps deltas (resynced when their socket takes more).",
            hub.lagging(),
        ),
        _one("cxmon_hub_connections", "counter", "Watchers accepted.", stats.connections_total),
        _one(
            "cxmon_hub_refused_connections",
            "counter",
            "Handshakes refused: no or an unknown token, or not loopback with no token configured.",
            stats.refused_total,
        ),
        frames,
        sent,
        resyncs,
        _one("cxmon_hub_deltas_encoded", "counter", "Deltas encoded, once per tick.", stats.deltas_total),
        _one(
            "cxmon_hub_snapshots_encoded",
            "counter",
            "Full snapshots encoded, at most once per version.",
            hub.full.builds,
        ),
        _one(
            "cxmon_hub_bad_frames",
            "counter",
            "Frames from watchers refused as malformed.",
            stats.bad_frames_total,
        ),
        _one("cxmon_hub_acks", "counter", "Acknowledgements stored for watchers.", stats.acks_total),
        _one(
            "cxmon_hub_acks_refused",
            "counter",
            "Acknowledgements refused to watchers holding the viewer token.",
            stats.acks_refused_total,
        ),
        _one("cxmon_hub_queries", "counter", "Customer questions answered.", stats.queries_total),
        _one(
            "cxmon_hub_replies_dropped",
            "counter",
            "Replies dropped: a watcher had too many waiting.",
            stats.replies_dropped_total,
        ),
    ]


def hub_text(hub: Hub) -> list[bytes]:
    """Return the hub's metrics as text-format byte chunks."""
    return [chunk for fam in hub_families(hub) for chunk in fam.chunks()]


def export(hub: Hub, exporter: Exporter) -> None:
    """Add the hub's counters to every render of ``exporter``'s ``/metrics``."""
    exporter.more_text.append(lambda: hub_text(hub))
