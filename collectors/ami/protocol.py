"""The Asterisk Manager Interface wire format: CRLF ``Key: Value`` lines, a blank line ends a message."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

Message = dict[str, str]

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
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, host: str, port: int, timeout: float = 10.0) -> AmiConnection:
        """Connect and read the banner.

        Raises:
            OSError: cannot connect.
            AmiProtocolError: the peer did not greet as an Asterisk manager.
            TimeoutError: no banner in time.
        """
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        conn = cls(reader, writer)
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line.startswith(BANNER_PREFIX):
            writer.close()
            raise AmiProtocolError(f"not an AMI banner: {line[:60]!r}")
        conn.banner = line.decode(errors="replace").strip()
        return conn

    async def read(self) -> Message:
        """Return the next message (event or response).

        Raises:
            ConnectionError: the peer closed the connection.
        """
        msg: Message = {}
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("connection closed by the AMI server")
            text = line.decode(errors="replace").rstrip("\r\n")
            if not text:
                if msg:
                    return msg
                continue
            key, sep, value = text.partition(":")
            if not sep or not key or key[0].isspace() or " " in key:
                self.noise += 1
                continue
            msg[key] = value.strip()

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
        """
        action_id = await self.send("Login", Username=user, Secret=secret)
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.read()
                if msg.get("ActionID") == action_id and "Response" in msg:
                    if msg["Response"].lower() != "success":
                        raise AmiProtocolError(f"login refused: {msg.get('Message', msg['Response'])}")
                    return

    async def close(self) -> None:
        """Close the connection (without waiting on a peer that is gone)."""
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
