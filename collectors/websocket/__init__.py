"""Websocket collector: live feeds (cxmon's native events, Genesys Cloud notifications)."""

from __future__ import annotations

from collectors.websocket.source import WebsocketSource

__all__ = ["WebsocketSource"]
