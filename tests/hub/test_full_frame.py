"""Full snapshot frames: the protocol's bytes, built once per version, in slices, re-encoding only changes."""

from __future__ import annotations

import asyncio
import dataclasses

from hypothesis import given, settings
from websockets.asyncio.client import ClientConnection

from cxmon.hub.deflate import Deflated
from cxmon.hub.full_frame import FullFrames
from cxmon.hub.protocol import snapshot_frame
from cxmon.hub.server import Hub
from cxmon.snapshot import Snapshot
from tests.hub.helpers import frame, memory_feed, raw_watcher, snapshot
from tests.hub.strategies import snapshots


async def _built(full: FullFrames, snap: Snapshot) -> Deflated:
    return (await full.frame(lambda: snap))[1]


@given(snapshots)
@settings(max_examples=60, deadline=None)
def test_the_frame_is_byte_for_byte_the_protocols_snapshot_frame(snap: Snapshot) -> None:
    """Built from pieces, the frame is exactly what snapshot_frame encodes whole."""
    assert asyncio.run(_built(FullFrames(), snap)) == snapshot_frame(snap)


async def test_a_rebuild_encodes_only_the_records_that_changed() -> None:
    """After one series changes, the next version's frame encodes that one series again, and is right."""
    full = FullFrames()
    first = snapshot(1, 40)
    await _built(full, first)
    assert full.records_encoded == 40 + 1 + 1  # series, the step, the source
    changed = list(first.series)
    changed[7] = dataclasses.replace(changed[7], reason="changed")
    second = dataclasses.replace(first, version=2, series=tuple(changed))
    data = await _built(full, second)
    assert full.records_encoded == 42 + 1
    assert data == snapshot_frame(second)


async def test_a_build_gives_the_loop_back_between_slices() -> None:
    """Encoding 40 series 4 at a time, another task runs between the slices: it sees the build
    part-way through at least 9 times (some records encoded, not all)."""
    full = FullFrames(slice_records=4)
    seen: list[int] = []
    done = False

    async def other() -> None:
        while not done:
            seen.append(full.records_encoded)
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await _built(full, snapshot(1, 40))
    done = True
    await task
    part_way = {n for n in seen if 0 < n < 42}
    assert len(part_way) >= 9


async def test_watchers_connecting_together_share_one_encode() -> None:
    """Eight watchers connecting at once all get the snapshot, and it is encoded once."""
    feed = memory_feed(60)
    async with Hub(feed, port=0) as hub:
        watchers = await asyncio.gather(*(raw_watcher(hub.port) for _ in range(8)))
        firsts = await asyncio.gather(*(_second_frame(ws) for ws in watchers))
        for ws in watchers:
            await ws.close()
    assert [f["type"] for f in firsts] == ["snapshot"] * 8
    assert {f["version"] for f in firsts} == {1}
    assert hub.full.builds == 1


async def _second_frame(ws: ClientConnection) -> dict[str, object]:
    await frame(ws)
    return await frame(ws)
