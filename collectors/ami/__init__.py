"""Asterisk Manager Interface collector: live queue events over TCP, with a QueueStatus snapshot."""

from __future__ import annotations

from collectors.ami.mapper import AmiMapper
from collectors.ami.protocol import AmiConnection, AmiProtocolError, encode
from collectors.ami.source import SECRET_ENV, AmiOptions, AmiSource, parse_options

__all__ = [
    "SECRET_ENV",
    "AmiConnection",
    "AmiMapper",
    "AmiOptions",
    "AmiProtocolError",
    "AmiSource",
    "encode",
    "parse_options",
]
