"""A small Chrome DevTools Protocol client over websockets, for driving headless Chromium in tests.

CDP is Chromium's own automation protocol: JSON commands over a websocket, which this project already
speaks (websockets). No browser build, Node toolchain or driver package is fetched: the browser is
Debian's ``chromium``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.helpers import skip_unless_ci

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """Debian's chromium (skipped without it, failed under CI)."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        skip_unless_ci("chromium is not installed (Debian package; `make system-deps` installs it)")
    return path


class Browser:
    """Headless Chromium with a fresh profile, and one page driven over CDP."""

    def __init__(self, profile: Path, size: tuple[int, int] = (1400, 900)) -> None:
        self.profile = profile
        self.size = size
        self.process: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    async def start(self) -> None:
        """Start the browser and attach to its first page."""
        self.process = subprocess.Popen(
            [
                chromium_path(),
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets: list[dict[str, Any]] = []
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if targets:
                break
            await asyncio.sleep(0.1)
        self.ws = await connect(targets[0]["webSocketDebuggerUrl"], max_size=None, ping_interval=None)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are dropped).

        Raises:
            RuntimeError: the browser answered with an error.
        """
        assert self.ws is not None
        request_id = next(self._ids)
        await self.ws.send(orjson.dumps({"id": request_id, "method": method, "params": params}), text=True)
        while True:
            reply = orjson.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def screenshot(self, path: Path) -> None:
        """Save a PNG of the page."""
        data = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))

    async def close(self) -> None:
        """Close the connection and end the browser."""
        if self.ws is not None:
            await self.ws.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
