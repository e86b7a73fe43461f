"""Shared permessage-deflate: one compression per delta whatever the watchers, and every watcher reads it."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from websockets.frames import Frame, Opcode

from cxmon.hub.deflate import MIN_COMPRESSED, Deflated, SharedDeflate
from cxmon.hub.protocol import apply_delta_frame, decode_snapshot
from cxmon.hub.server import Hub
from cxmon.snapshot import Snapshot
from tests.hub.helpers import frame, memory_feed, raw_watcher, snapshot


class _Counted:
    """A zlib compressor that counts its ``compress`` calls."""

    calls = 0

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def compress(self, data: bytes) -> bytes:
        _Counted.calls += 1
        return bytes(self._inner.compress(data))

    def flush(self, mode: int = zlib.Z_FINISH) -> bytes:
        return bytes(self._inner.flush(mode))


async def _follow(ws: Any, ticks: int) -> list[int]:
    await frame(ws)
    have: Snapshot = decode_snapshot(await frame(ws))
    versions = [have.version]
    for _ in range(ticks):
        have = apply_delta_frame(have, await frame(ws))
        versions.append(have.version)
    return versions


async def test_each_delta_is_compressed_once_for_all_watchers(monkeypatch: pytest.MonkeyPatch) -> None:
    """With six watchers, three deltas cost three compressions, and every watcher applies all three."""
    real = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj", lambda *a, **k: _Counted(real(*a, **k)))
    feed = memory_feed(30)
    async with Hub(feed, port=0) as hub:
        watchers = [await raw_watcher(hub.port) for _ in range(6)]
        readers = [asyncio.create_task(_follow(ws, 3)) for ws in watchers]
        for _ in range(400):
            if len(hub.watchers) == 6 and all(w.version == 1 for w in hub.watchers):
                break
            await asyncio.sleep(0.02)
        _Counted.calls = 0
        for v in range(2, 5):
            feed.publish(snapshot(v, 30, seed=v))
            await asyncio.sleep(0.05)
        versions = await asyncio.wait_for(asyncio.gather(*readers), 30)
        compressions = _Counted.calls
        for ws in watchers:
            await ws.close()
    assert versions == [[1, 2, 3, 4]] * 6
    assert compressions == 3


async def test_a_watcher_with_a_smaller_window_gets_frames_compressed_for_it() -> None:
    """A watcher that limits the hub's window to 2^10 cannot take the shared copies (2^15): it gets
    frames compressed on its own connection, and rebuilds every snapshot."""
    feed = memory_feed(30)
    before = SharedDeflate.shared_frames
    async with Hub(feed, port=0) as hub:
        small = await raw_watcher(
            hub.port, compression=None, extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=10)]
        )
        reader = asyncio.create_task(_follow(small, 3))
        for _ in range(400):
            if hub.watchers and all(w.version == 1 for w in hub.watchers):
                break
            await asyncio.sleep(0.02)
        for v in range(2, 5):
            feed.publish(snapshot(v, 30, seed=v))
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reader, 30) == [1, 2, 3, 4]
        await small.close()
    assert SharedDeflate.shared_frames == before


def _extension() -> SharedDeflate:
    return SharedDeflate(False, True, 12, 15, {"level": 1})


def test_small_frames_go_uncompressed() -> None:
    """A frame under the threshold (a pong) is sent as it is, without the compressed bit."""
    pong = Frame(Opcode.TEXT, b'{"type":"pong","id":1}')
    assert len(pong.data) < MIN_COMPRESSED
    sent = _extension().encode(pong)
    assert (sent.rsv1, sent.data) == (False, pong.data)


def test_a_shared_copy_reads_back_as_the_frame() -> None:
    """The shared copy of a frame, sent as the extension sends it, decodes to the frame (zlib reference)."""
    data = b'{"type":"delta","changes":' + b"[1.25,2.5,null]," * 200 + b"0}"
    sent = _extension().encode(Frame(Opcode.TEXT, Deflated.of(data, 6)))
    assert sent.rsv1
    reader = PerMessageDeflate(True, False, 15, 12)
    assert reader.decode(sent).data == data
    assert zlib.decompressobj(-15).decompress(bytes(sent.data) + b"\x00\x00\xff\xff") == data
