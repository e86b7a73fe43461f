"""Hub auth: who may connect (bearer tokens, or loopback when none is configured) and who may acknowledge."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from cxmon.hub.protocol import ACK, VIEW


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one connecting watcher: a role, or an HTTP status and why not."""

    role: str | None
    """``view``, ``ack``, or None when refused."""
    status: int = 200
    reason: str = ""


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (a peer address as the socket reports it) is this machine's loopback.

    127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``) are; anything unparsable is not.
    """
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _same(a: str, b: str | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode(), b.encode())


def authorize(peer_host: str, token: str | None, viewer_token: str | None, ack_token: str | None) -> Decision:
    """Decide whether a watcher may connect, and with which role.

    With no token configured only loopback peers are accepted, and they may acknowledge. With
    tokens configured every peer must present one: the ack token gives ``ack``, the viewer token
    ``view``; anything else is refused.

    Args:
        peer_host: the peer's address.
        token: the bearer token the watcher presented, if any.
        viewer_token: ``[hub] viewer_token``.
        ack_token: ``[hub] ack_token``.

    Returns:
        The decision.
    """
    if viewer_token is None and ack_token is None:
        if is_loopback(peer_host):
            return Decision(ACK)
        return Decision(None, 403, "no token is configured: only loopback watchers are accepted")
    if token is None:
        return Decision(None, 401, "a bearer token is required")
    if _same(token, ack_token):
        return Decision(ACK)
    if _same(token, viewer_token):
        return Decision(VIEW)
    return Decision(None, 401, "unknown token")
