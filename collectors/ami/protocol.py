"""The Asterisk Manager Interface wire format: CRLF ``Key: Value`` lines, a blank line ends a message."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

Message = dict[str, str]

LINE_LIMIT = 64 * 1024
"""Longest line kept (the stream's buffer limit); a longer one spoils its message, which is skipped."""

BANNER_PREFIX = b"Asterisk Call Manager"


class AmiProtocolError(ConnectionError):
    """The peer does not speak AMI, or refused the login."""


def encode(fields: Message) -> bytes:
    """Return one AMI message on the wire (CRLF line ends, blank line at the end)."""
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n"


class AmiConnection:
    """One AMI session over an asyncio stream: read messages, send actions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = ""
        self.noise = 0
        """Lines that were not ``Key: Value`` (CLI output copied into a trace), skipped."""
        self.oversized = 0
        """Messages skipped because one of their lines was longer than ``LINE_LIMIT``."""
        self.on_error: Callable[[str], None] | None = None
        """Called with why, once per skipped message."""
        self._ids = itertools.count(1)
        self._msg: Message = {}
        """The message being read: kept here so a read cancelled by a timeout loses nothing."""
        self._spoiled = False
        """The message being read had a line over the limit: skip to its end."""
        self._long = False
        """In the middle of a line over the limit."""

    @classmethod
    async def open(cls, host: str, port: int, timeout: float = 10.0) -> AmiConnection:
        """Connect and read the banner.

        Raises:
            OSError: cannot connect.
            AmiProtocolError: the peer did not greet as an Asterisk manager.
            TimeoutError: no banner in time.
        """
        # asyncio.timeout rather than wait_for throughout: Python 3.11's wait_for drops a
        # cancellation that comes as the awaited call completes, and the caller runs on.
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        except TimeoutError:
            raise TimeoutError(f"no connection within {timeout:g} s") from None
        conn = cls(reader, writer)
        try:
            async with asyncio.timeout(timeout):
                line = await reader.readline()
        except ValueError:  # a first line over the limit
            line = b""
        except TimeoutError:  # the socket is ours to close
            writer.close()
            raise TimeoutError(f"connected, but no AMI banner within {timeout:g} s") from None
        except BaseException:  # cancelled: the socket is ours to close
            writer.close()
            raise
        if not line.startswith(BANNER_PREFIX):
            writer.close()
            raise AmiProtocolError(f"not an AMI banner: {line[:60]!r}")
        conn.banner = line.decode(errors="replace").strip()
        return conn

    async def read(self) -> Message:
        """Return the next message (event or response).

        A line longer than ``LINE_LIMIT`` is never held whole: it is discarded as it comes, with
        the rest of its message (up to the blank line that ends it), and reported once.

        Raises:
            ConnectionError: the peer closed the connection.
        """
        while True:
            line = await self._line()
            if not line:
                raise ConnectionError("connection closed by the AMI server")
            text = line.decode(errors="replace").rstrip("\r\n")
            if not text:
                if self._spoiled:
                    self._spoiled = False
                    continue
                if self._msg:
                    msg, self._msg = self._msg, {}
                    return msg
                continue
            if self._spoiled:
                continue
            key, sep, value = text.partition(":")
            if not sep or not key or key[0].isspace() or " " in key:
                self.noise += 1
                continue
            self._msg[key] = value.strip()

    async def _line(self) -> bytes:
        """Return the next line (b"" at the end of the stream); a line over the limit spoils its
        message and is dropped piece by piece as it comes."""
        reader = self.reader
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return b"" if self._long else exc.partial
            except asyncio.LimitOverrunError as exc:
                if not self._long:
                    self._long = True
                    self._msg = {}
                    if not self._spoiled:
                        self._spoiled = True
                        self.oversized += 1
                        if self.on_error is not None:
                            self.on_error(f"a line longer than {LINE_LIMIT} bytes: its message is skipped")
                # What is buffered (up to the line end, when it has come) goes; then wait for more.
                await reader.readexactly(exc.consumed)
                continue
            if self._long:
                self._long = False  # the end of the long line
                continue
            return line

    async def send(self, action: str, **fields: str) -> str:
        """Send an action; return its ActionID."""
        action_id = f"cxmon-{next(self._ids)}"
        self.writer.write(encode({"Action": action, "ActionID": action_id, **fields}))
        await self.writer.drain()
        return action_id

    async def login(self, user: str, secret: str, timeout: float = 10.0) -> None:
        """Log in, skipping any event that arrives before the response.

        Raises:
            AmiProtocolError: the login was refused.
            TimeoutError: no answer to the login in time.
        """
        action_id = await self.send("Login", Username=user, Secret=secret)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await self.read()
                    if msg.get("ActionID") == action_id and "Response" in msg:
                        if msg["Response"].lower() != "success":
                            raise AmiProtocolError(f"login refused: {msg.get('Message', msg['Response'])}")
                        return
        except TimeoutError:
            raise TimeoutError(f"no answer to Login within {timeout:g} s") from None

    async def close(self) -> None:
        """Close the connection (without waiting on a peer that is gone)."""
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
