"""Helpers for tests that drive real external binaries (promtool, Prometheus, Alertmanager)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tomllib
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cxmon.config import Config, validate
from tests.helpers import free_port as free_port  # re-exported for the tests here
from tests.helpers import require_binary as require_binary  # re-exported for the tests here

ROOT = Path(__file__).resolve().parents[2]


def sim_config(speed: str | float = "max", duration: str = "30m", **alerts: object) -> Config:
    """config/default.toml with its simulator at ``speed`` for ``duration``; ``alerts`` override [alerts]."""
    raw = tomllib.loads((ROOT / "config" / "default.toml").read_text(encoding="utf-8"))
    raw["collectors"][0].update(speed=speed, duration=duration)
    raw.setdefault("alerts", {}).update(alerts)
    return validate(raw, "config/default.toml (test)")


async def wait_until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``pred`` every 0.2 s until it holds; fail the test with ``what`` after ``timeout`` s."""
    try:
        async with asyncio.timeout(timeout):
            while not await pred():
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


async def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` (from a worker thread) and decode its JSON body."""

    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())

    return await asyncio.to_thread(fetch)


async def is_ready(url: str) -> bool:
    """True when ``url`` answers 200 (a server's readiness endpoint)."""

    def fetch() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    return await asyncio.to_thread(fetch)


class Daemon:
    """A real server binary run as a subprocess for a test, always terminated afterwards."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_tail(self) -> str:
        """The last lines the server logged (for failure messages)."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
