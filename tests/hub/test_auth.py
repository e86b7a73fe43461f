"""Hub auth: the decision function, and real refused and accepted connections."""

from __future__ import annotations

import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from cxmon.hub.auth import authorize, bearer, is_loopback
from cxmon.hub.protocol import SUBPROTOCOL
from cxmon.hub.server import Hub
from tests.helpers import skip_unless_ci
from tests.hub.helpers import frame, memory_feed, raw_watcher


@pytest.mark.parametrize(
    ("peer", "token", "viewer", "ack", "role", "status"),
    [
        ("127.0.0.1", None, None, None, "ack", 200),
        ("127.0.0.2", None, None, None, "ack", 200),
        ("::1", None, None, None, "ack", 200),
        ("::ffff:127.0.0.1", None, None, None, "ack", 200),
        ("192.0.2.7", None, None, None, None, 403),
        ("192.0.2.7", "anything", None, None, None, 403),
        ("::ffff:192.0.2.7", None, None, None, None, 403),
        ("not-an-address", None, None, None, None, 403),
        ("192.0.2.7", None, "v", "a", None, 401),
        ("127.0.0.1", None, "v", "a", None, 401),
        ("192.0.2.7", "wrong", "v", "a", None, 401),
        ("192.0.2.7", "v", "v", "a", "view", 200),
        ("192.0.2.7", "a", "v", "a", "ack", 200),
        ("192.0.2.7", "a", None, "a", "ack", 200),
        ("192.0.2.7", "v", "v", None, "view", 200),
    ],
)
def test_authorize_decides_role_or_refusal(
    peer: str, token: str | None, viewer: str | None, ack: str | None, role: str | None, status: int
) -> None:
    """Without tokens only loopback is let in (and may ack); with tokens, the token decides the role."""
    decision = authorize(peer, token, viewer, ack)
    assert (decision.role, decision.status) == (role, status)


def test_bearer_reads_only_the_bearer_scheme() -> None:
    """The token is taken from ``Bearer <token>`` only."""
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None


def test_loopback_is_127_slash_8_and_colon_colon_1() -> None:
    """Loopback means the loopback networks, not just 127.0.0.1."""
    assert is_loopback("127.0.0.1") and is_loopback("127.3.4.5") and is_loopback("::1")
    assert not is_loopback("192.0.2.2") and not is_loopback("0.0.0.0") and not is_loopback("")


def _non_loopback_address() -> str:
    """An address of this machine that is not loopback (the interface of its default route)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        host: str = probe.getsockname()[0]
    except OSError:
        host = ""
    finally:
        probe.close()
    if not host or is_loopback(host):
        skip_unless_ci("this machine has no non-loopback IPv4 address")
    return host


async def test_a_non_loopback_watcher_without_token_is_refused() -> None:
    """A watcher reaching the hub over a real non-loopback interface, with no token configured, gets 403."""
    host = _non_loopback_address()
    async with Hub(memory_feed(), host=host, port=0) as hub:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{host}:{hub.port}", subprotocols=[Subprotocol(SUBPROTOCOL)])
    assert refused.value.response.status_code == 403
    assert hub.stats.refused_total == 1


async def test_a_non_loopback_watcher_with_a_token_is_accepted() -> None:
    """The same non-loopback peer is let in once tokens are configured and it presents one."""
    host = _non_loopback_address()
    async with Hub(memory_feed(), host=host, port=0, viewer_token="see") as hub:
        ws = await connect(
            f"ws://{host}:{hub.port}",
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers={"Authorization": "Bearer see"},
        )
        hello = await frame(ws)
        await ws.close()
    assert hello["role"] == "view"


async def test_with_tokens_configured_loopback_needs_one_too() -> None:
    """Configured tokens apply to every peer: loopback without a token gets 401."""
    async with Hub(memory_feed(), port=0, viewer_token="see", ack_token="fix") as hub:
        with pytest.raises(InvalidStatus) as refused:
            await raw_watcher(hub.port)
        with pytest.raises(InvalidStatus) as wrong:
            await raw_watcher(hub.port, token="guess")
    assert refused.value.response.status_code == 401
    assert wrong.value.response.status_code == 401


async def test_a_watcher_of_the_previous_protocol_is_refused_at_the_handshake() -> None:
    """Watchers that offer only ``cxmon.v1`` (whose snapshots carried ``extra``), ``cxmon.v2``
    (whose projections carried every step of the queue-state projection) or ``cxmon.v3`` (whose
    projections had no chance of a breach) get no connection: they cannot misread version 4's
    frames."""
    async with Hub(memory_feed(), host="127.0.0.1", port=0) as hub:
        refused = []
        for old in ("cxmon.v1", "cxmon.v2", "cxmon.v3"):
            with pytest.raises(InvalidStatus) as refusal:
                await connect(f"ws://127.0.0.1:{hub.port}", subprotocols=[Subprotocol(old)])
            refused.append(refusal.value.response.status_code)
        ws = await connect(f"ws://127.0.0.1:{hub.port}", subprotocols=[Subprotocol(SUBPROTOCOL)])
        hello = await frame(ws)
        await ws.close()
    assert refused == [400, 400, 400]
    assert SUBPROTOCOL == "cxmon.v4" and hello["protocol"] == 4
