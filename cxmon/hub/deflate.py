"""Shared permessage-deflate: a frame compressed once and the same bytes sent to every watcher.

permessage-deflate (RFC 7692) compresses each message on its own connection, so a hub sending one
delta to 200 watchers would deflate it 200 times. With ``server_no_context_takeover`` (which the hub
always declares) every message the hub sends is a deflate stream of its own, independent of what
the connection sent before, so one compressed copy is valid on every connection whose window is at
least as large. :class:`Deflated` carries that copy beside the frame; :class:`SharedDeflate` sends
it instead of compressing again. Frames below :data:`MIN_COMPRESSED` bytes (pongs, errors, a quiet
tick's delta) are sent uncompressed: the RFC lets a sender leave any message uncompressed, and
deflating a hundred bytes without context saves next to nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from websockets.frames import CONT, CTRL_OPCODES, Frame
from websockets.typing import ExtensionParameter

WINDOW_BITS = 15
"""LZ77 window of the shared copies; a connection that negotiated a smaller one compresses itself."""
MIN_COMPRESSED = 256
"""Frames shorter than this (bytes) go uncompressed."""
_TAIL = b"\x00\x00\xff\xff"


def deflate(data: bytes, level: int) -> bytes:
    """``data`` as one permessage-deflate message payload: raw deflate, sync-flushed, tail removed.

    zlib lets go of the GIL while it compresses, so a large frame can be deflated in a worker thread
    without holding up the event loop.
    """
    comp = zlib.compressobj(level, zlib.DEFLATED, -WINDOW_BITS)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(_TAIL) else out


class Deflated(bytes):
    """A frame's bytes with their deflated copy (made once, sent to every watcher as it is)."""

    deflated: bytes | None
    """The payload :func:`deflate` made of these bytes (None: send them uncompressed)."""

    @classmethod
    def of(cls, data: bytes, level: int) -> Deflated:
        """``data`` with its deflated copy (none when ``data`` is under :data:`MIN_COMPRESSED`)."""
        frame = cls(data)
        frame.deflated = deflate(data, level) if len(data) >= MIN_COMPRESSED else None
        return frame

    @classmethod
    def with_copy(cls, data: bytes, deflated: bytes | None) -> Deflated:
        """``data`` with a copy already deflated (in a worker thread, say)."""
        frame = cls(data)
        frame.deflated = deflated
        return frame


class SharedDeflate(PerMessageDeflate):
    """permessage-deflate that sends a :class:`Deflated` frame's copy and leaves small frames alone.

    Only ever built with ``local_no_context_takeover`` (see :class:`SharedDeflateFactory`): with
    context takeover a message compressed elsewhere would desynchronise this connection's stream.
    """

    shared_frames = 0
    """Frames sent as a shared copy (for tests and the benchmark; process-wide)."""

    def encode(self, frame: Frame) -> Frame:
        """Encode an outgoing frame: the shared copy, the frame as it is, or compressed here."""
        if frame.opcode in CTRL_OPCODES or frame.opcode is CONT or not frame.fin:
            return super().encode(frame)
        data = frame.data
        copy = data.deflated if isinstance(data, Deflated) else None
        if copy is not None and self.local_max_window_bits >= WINDOW_BITS:
            SharedDeflate.shared_frames += 1
            return Frame(frame.opcode, copy, frame.fin, True, frame.rsv2, frame.rsv3)
        if len(data) < MIN_COMPRESSED or (isinstance(data, Deflated) and copy is None):
            return frame
        return super().encode(frame)


class SharedDeflateFactory(ServerPerMessageDeflateFactory):
    """The server side of permessage-deflate, always without server context takeover.

    Args:
        client_max_window_bits: the window watchers compress their (few, small) frames with, which
            is what the hub keeps per connection to read them.
        compress_settings: zlib settings for frames compressed on their own connection.
    """

    def __init__(
        self, *, client_max_window_bits: int = 12, compress_settings: dict[str, Any] | None = None
    ) -> None:
        super().__init__(
            server_no_context_takeover=True,
            client_max_window_bits=client_max_window_bits,
            compress_settings=compress_settings,
        )

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Negotiate as permessage-deflate does; return the shared-copy extension."""
        response, ext = super().process_request_params(params, accepted_extensions)
        assert ext.local_no_context_takeover  # declared by every response of this factory
        return response, SharedDeflate(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
            ext.compress_settings,
        )
