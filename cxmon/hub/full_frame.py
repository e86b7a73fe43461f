"""Full snapshot frames: built at most once per version, from cached per-record pieces, in slices.

A full snapshot of 300 series is about 3 MB of JSON and encoding it whole holds the event loop for
tens to hundreds of milliseconds (orjson and the codec hold the GIL, so a thread would not help).
:class:`FullFrames` keeps each step's, series' and source's encoded JSON and re-encodes only the
records that changed since its last build; it gives the loop back after every few records it
encodes, deflates the result in a worker thread (zlib lets go of the GIL), and shares one build
among every watcher that connects or resyncs while it runs. The bytes are exactly
:func:`cxmon.hub.protocol.snapshot_frame`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

from cxmon.hub.codec import _hints, dumps, encoder
from cxmon.hub.deflate import MIN_COMPRESSED, Deflated, deflate
from cxmon.hub.delta import KEYS
from cxmon.snapshot import Snapshot

SNAPSHOT_LEVEL = 1
"""zlib level of full snapshots: a quarter of level 6's time for about a quarter more bytes."""
SLICE = 8
"""Records encoded between two returns to the event loop (a series takes about 0.3 ms)."""

_HINTS = _hints(Snapshot)
_FIELDS = tuple((f.name, _HINTS[f.name]) for f in dataclasses.fields(Snapshot) if f.init)
"""The snapshot's fields in the codec's order (a dataclass is the list of its init fields)."""


class FullFrames:
    """The latest snapshot as a full ``snapshot`` frame, deflated, for watchers that need one."""

    def __init__(self, *, level: int = SNAPSHOT_LEVEL, slice_records: int = SLICE) -> None:
        """Build the cache (empty until the first :meth:`frame`).

        Args:
            level: zlib level of the deflated copy.
            slice_records: records encoded between two returns to the loop.
        """
        self.level = level
        self.slice_records = slice_records
        self.builds = 0
        """Full frames encoded so far."""
        self.records_encoded = 0
        """Steps, series and sources encoded so far (the unchanged ones are reused)."""
        self._pieces: dict[str, dict[Hashable, tuple[Any, bytes]]] = {name: {} for name in KEYS}
        self._frame: tuple[int, Deflated] | None = None
        self._task: asyncio.Task[tuple[int, Deflated]] | None = None

    async def frame(self, latest: Callable[[], Snapshot]) -> tuple[int, Deflated]:
        """Return ``(version, frame)`` of the latest snapshot, or of the one being built now.

        A build already running is joined rather than a second one started, even when a newer
        snapshot came meanwhile: the watcher gets that version and the deltas after it.
        """
        task = self._task
        if task is None:
            snap = latest()
            if self._frame is not None and self._frame[0] == snap.version:
                return self._frame
            task = self._task = asyncio.create_task(self._build(snap), name="hub-full-frame")
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        """Cancel a build in progress."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _build(self, snap: Snapshot) -> tuple[int, Deflated]:
        try:
            parts: list[bytes] = []
            budget = self.slice_records
            for name, tp in _FIELDS:
                value = getattr(snap, name)
                if name not in KEYS:
                    parts.append(dumps(encoder(tp)(value)))
                    continue
                cls, key = KEYS[name]
                enc = encoder(cls)
                old, new = self._pieces[name], {}
                pieces: list[bytes] = []
                for record in value:
                    k = key(record)
                    hit = old.get(k)
                    if hit is not None and (hit[0] is record or hit[0] == record):
                        piece = hit[1]
                    else:
                        piece = dumps(enc(record))
                        self.records_encoded += 1
                        budget -= 1
                        if budget <= 0:
                            budget = self.slice_records
                            await asyncio.sleep(0)
                    new[k] = (record, piece)
                    pieces.append(piece)
                self._pieces[name] = new
                parts.append(b"[" + b",".join(pieces) + b"]")
            data = b'{"type":"snapshot","version":%d,"snapshot":[%b]}' % (snap.version, b",".join(parts))
            copy = await asyncio.to_thread(deflate, data, self.level) if len(data) >= MIN_COMPRESSED else None
            self.builds += 1
            self._frame = (snap.version, Deflated.with_copy(data, copy))
            return self._frame
        finally:
            self._task = None
