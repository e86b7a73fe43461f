"""``cxmon web`` in a real headless Chromium on loopback: the page loads, tiles render, it follows live."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cxmon.hub.web import watch_command_line
from tests.helpers import REPO
from tests.hub.cdp import Browser, chromium_path
from tests.hub.helpers import free_port, start_daemon, until
from tests.snapshot_app import sim_config_text

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMc])")
CLOCK = re.compile(r"\b\d{2}:\d{2}:\d{2}\b")
# Records what the page's websocket receives: the terminal output xterm.js draws onto its canvas.
HOOK = """
(() => {
  const Original = window.WebSocket;
  const decoder = new TextDecoder();
  window.__screen = [];
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const push = (text) => window.__screen.push(text);
        if (typeof event.data === "string") push(event.data);
        else if (event.data instanceof ArrayBuffer) push(decoder.decode(event.data));
        else if (event.data instanceof Blob) event.data.text().then(push);
      });
    }
  };
})();
"""


def test_watch_command_line_quotes_every_part() -> None:
    """The shell command textual-serve runs is built from quoted parts: a URL cannot inject a command."""
    line = watch_command_line(["ws://h:1#a; rm -rf /"], wallboard=True, connect_timeout=5)
    assert "'ws://h:1#a; rm -rf /'" in line and line.endswith("--wallboard")


async def test_web_dashboard_renders_in_chromium_and_follows_live(tmp_path: Path) -> None:
    """Chromium opens `cxmon web`: the journey tiles are drawn (screenshot kept), hub live, time moves."""
    chromium_path()
    hub_port, web_port = free_port(), free_port()
    config = tmp_path / "cxmon.toml"
    text = sim_config_text(speed="30").replace(
        'listen = "127.0.0.1:8765"', f'listen = "127.0.0.1:{hub_port}"', 1
    )
    config.write_text(text, encoding="utf-8")
    daemon = start_daemon(config, tmp_path / "cxmon.db")
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cxmon",
            "web",
            f"ws://127.0.0.1:{hub_port}",
            "--listen",
            f"127.0.0.1:{web_port}",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser = Browser(tmp_path / "profile")
    try:
        url = f"http://127.0.0.1:{web_port}/"

        def page_served() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status: int = r.status
                    return status == 200
            except OSError:
                return False

        await until(page_served, tries=600, step=0.1)
        await browser.start()
        await browser.send("Page.enable")
        await browser.send("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
        await browser.send("Page.navigate", url=url)

        async def screen() -> str:
            raw = await browser.evaluate("(window.__screen || []).join('')")
            return ANSI.sub("", raw or "")

        labels = ("Pre-sale enquiry", "Ordering", "Getting help", "Escalation", "Resolution", "Feedback")
        shown = ""
        for _ in range(600):
            shown = await screen()
            if all(label in shown for label in labels) and "hub ● live" in shown:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the dashboard never drew its tiles: {shown[-2000:]!r}")
        assert await browser.evaluate("document.querySelector('.textual-terminal canvas') !== null")
        shot = tmp_path / "web-dashboard.png"
        await browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        seen = set(CLOCK.findall(shown))
        for _ in range(600):
            later = await screen()
            if set(CLOCK.findall(later[len(shown) :])) - seen:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the page never showed a newer engine time")
    finally:
        await browser.close()
        for proc in (web, daemon):
            proc.terminate()
            proc.wait(30)
