"""Hub protocol: the frames hub and watchers exchange, their version, and the journey a hello carries.

Every frame is one JSON object (orjson) in a text message with a ``type``. Hub to watcher:
``hello``, ``snapshot``, ``delta``, ``ack_result``, ``customers_result``, ``path_result``, ``pong``,
``error``. Watcher to hub: ``ack``, ``customers``, ``path``, ``ping``, ``resync``. README.md ("Hub
protocol") is the reference for their fields.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from websockets.typing import Subprotocol

from cxmon import __version__
from cxmon.config import AlertsConfig, Config, HubConfig, ListenConfig, MonitorConfig, Step, StoreConfig
from cxmon.events import ContactEvent
from cxmon.hub.codec import CodecError, decode, dumps, encode
from cxmon.hub.delta import apply_delta, snapshot_delta
from cxmon.localtime import check_timezone
from cxmon.snapshot import Ack, Snapshot

PROTOCOL = 4
"""Bumped on any change a watcher of the previous version would misread."""
SUBPROTOCOL = Subprotocol(f"cxmon.v{PROTOCOL}")
"""The websocket subprotocol hub and watchers agree on (the protocol's version in its name)."""

log = logging.getLogger(__name__)

VIEW = "view"
ACK = "ack"
"""Roles: a viewer sees; an acknowledger also acknowledges pot holes."""


def journey_of(config: Config) -> dict[str, Any]:
    """The journey a hello carries: steps (with match rules and thresholds), channels, queues, monitor,
    and the zone the site's times are shown in (``[display] timezone``; null: each watcher's own)."""
    return {
        "steps": encode(config.steps, tuple[Step, ...]),
        "channels": list(config.channels),
        "queues": list(config.queues),
        "monitor": encode(config.monitor, MonitorConfig),
        "timezone": config.display_timezone,
    }


def config_of(journey: Any, source: str) -> Config:
    """Rebuild a Config (journey and monitor; no collectors, store or servers) from a hello's journey.

    Raises:
        CodecError: the journey is malformed.
    """
    if not isinstance(journey, dict):
        raise CodecError("journey: expected an object")
    try:
        steps = decode(journey.get("steps"), tuple[Step, ...])
        channels = decode(journey.get("channels"), tuple[str, ...])
        queues = decode(journey.get("queues"), tuple[str, ...])
        monitor = decode(journey.get("monitor"), MonitorConfig)
    except CodecError as exc:
        raise CodecError(str(exc), "journey") from None
    return bare_config(
        source,
        monitor=monitor,
        steps=steps,
        channels=channels,
        queues=queues,
        display_timezone=_known_zone(journey.get("timezone")),
    )


def _known_zone(name: object) -> str | None:
    """The hub's display zone where this machine knows it, else None (the watcher's own zone): a
    zone missing from this machine's time zone database is no reason to refuse the hub.

    A hub before this field sends none: its watchers keep their own zone, as they did."""
    if name is None:
        return None
    try:
        return check_timezone(name)
    except ValueError as exc:
        log.warning("the hub shows times in a zone this machine does not know; using its own: %s", exc)
        return None


def bare_config(
    source: str,
    *,
    monitor: MonitorConfig | None = None,
    steps: tuple[Step, ...] = (),
    channels: tuple[str, ...] = (),
    queues: tuple[str, ...] = (),
    display_timezone: str | None = None,
) -> Config:
    """A Config holding only a journey (and the zone its times are shown in): no collectors, store,
    servers or alert sinks."""
    return Config(
        monitor=monitor or MonitorConfig(),
        store=StoreConfig(),
        prometheus=ListenConfig(enabled=False),
        hub=HubConfig(enabled=False),
        alerts=AlertsConfig(log=False),
        steps=steps,
        channels=channels,
        queues=queues,
        collectors=(),
        source=source,
        display_timezone=display_timezone,
    )


def hello_frame(config: Config, role: str) -> bytes:
    """The first frame to a watcher: protocol and software versions, its role, and the journey."""
    return dumps(
        {
            "type": "hello",
            "protocol": PROTOCOL,
            "software": __version__,
            "role": role,
            "journey": journey_of(config),
        }
    )


def snapshot_frame(snap: Snapshot) -> bytes:
    """A full snapshot."""
    return dumps({"type": "snapshot", "version": snap.version, "snapshot": encode(snap, Snapshot)})


def delta_frame(old: Snapshot, new: Snapshot) -> bytes:
    """What changed from ``old`` (the watcher's version, ``base``) to ``new``."""
    return dumps(
        {"type": "delta", "base": old.version, "version": new.version, "changes": snapshot_delta(old, new)}
    )


def error_frame(code: str, message: str, request_id: Any = None) -> bytes:
    """An error about a frame the watcher sent (``id`` echoes the request's, when it had one)."""
    return dumps({"type": "error", "code": code, "message": message, "id": request_id})


def ack_result_frame(ack: Ack, request_id: Any) -> bytes:
    """The acknowledgement as the daemon stored it."""
    return dumps({"type": "ack_result", "id": request_id, "ack": encode(ack, Ack)})


def customers_result_frame(leaders: list[tuple[str, int]], request_id: Any) -> bytes:
    """The strikes list: ``[customer_id, strikes in 24 h]`` pairs, most strikes first."""
    return dumps({"type": "customers_result", "id": request_id, "leaders": [[c, n] for c, n in leaders]})


def path_result_frame(customer_id: str, events: list[ContactEvent], request_id: Any) -> bytes:
    """One customer's path: their events over the last 24 h, oldest first."""
    return dumps(
        {
            "type": "path_result",
            "id": request_id,
            "customer": customer_id,
            "events": encode(events, list[ContactEvent]),
        }
    )


def pong_frame(request_id: Any) -> bytes:
    """The answer to a ``ping``."""
    return dumps({"type": "pong", "id": request_id})


def decode_snapshot(frame: dict[str, Any]) -> Snapshot:
    """The snapshot in a ``snapshot`` frame.

    Raises:
        CodecError: malformed.
    """
    snap: Snapshot = decode(frame.get("snapshot"), Snapshot)
    return snap


def apply_delta_frame(base: Snapshot, frame: dict[str, Any]) -> Snapshot:
    """Apply a ``delta`` frame to ``base`` (whose version must be the frame's ``base``).

    Raises:
        CodecError: malformed, or it does not apply to ``base``.
    """
    if frame.get("base") != base.version:
        raise CodecError(f"delta from version {frame.get('base')!r}, have {base.version}")
    snap = apply_delta(base, frame.get("changes"))
    if snap.version != frame.get("version"):
        raise CodecError(f"delta gives version {snap.version}, frame says {frame.get('version')!r}")
    return snap


@dataclasses.dataclass(frozen=True, slots=True)
class AckRequest:
    """A watcher's ``ack`` frame, checked."""

    id: Any
    step: str
    who: str
    note: str
    until: float | None


def parse_ack(frame: dict[str, Any]) -> AckRequest:
    """Check an ``ack`` frame's fields.

    Raises:
        CodecError: a field is missing or of the wrong type (``where`` names it).
    """
    step, who, note, until = frame.get("step"), frame.get("who"), frame.get("note", ""), frame.get("until")
    if not isinstance(step, str) or not step:
        raise CodecError("expected a step name", "ack.step")
    if not isinstance(who, str) or not who or len(who) > 200:
        raise CodecError("expected who is acknowledging (1-200 characters)", "ack.who")
    if not isinstance(note, str) or len(note) > 2000:
        raise CodecError("expected a note of at most 2000 characters", "ack.note")
    if until is not None and (isinstance(until, bool) or not isinstance(until, int | float)):
        raise CodecError("expected epoch seconds or null", "ack.until")
    return AckRequest(frame.get("id"), step, who, note, None if until is None else float(until))


MAX_LEADERS = 100
"""Most customers a ``customers`` request may ask for."""


def parse_customers(frame: dict[str, Any]) -> int:
    """The ``limit`` of a ``customers`` frame (20 when absent).

    Raises:
        CodecError: not a whole number from 1 to :data:`MAX_LEADERS`.
    """
    limit = frame.get("limit", 20)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LEADERS:
        raise CodecError(f"expected a whole number from 1 to {MAX_LEADERS}", "customers.limit")
    return limit


def parse_path(frame: dict[str, Any]) -> str:
    """The customer a ``path`` frame asks about.

    Raises:
        CodecError: missing, or not a string of 1-200 characters.
    """
    customer = frame.get("customer")
    if not isinstance(customer, str) or not 1 <= len(customer) <= 200:
        raise CodecError("expected a customer id (1-200 characters)", "path.customer")
    return customer


def decode_leaders(frame: dict[str, Any]) -> list[tuple[str, int]]:
    """The strikes list of a ``customers_result`` frame.

    Raises:
        CodecError: malformed.
    """
    leaders: tuple[tuple[str, int], ...] = decode(frame.get("leaders"), tuple[tuple[str, int], ...])
    return list(leaders)


def decode_path(frame: dict[str, Any]) -> list[ContactEvent]:
    """The events of a ``path_result`` frame.

    Raises:
        CodecError: malformed.
    """
    events: list[ContactEvent] = decode(frame.get("events"), list[ContactEvent])
    return events
