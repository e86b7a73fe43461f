"""Helpers for tests that drive real external binaries (promtool, Prometheus, Alertmanager)."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def require_binary(name: str) -> str:
    """Return the path of ``name``; skip when it is absent, but fail under CI (``CI`` set)."""
    path = shutil.which(name)
    if path is not None:
        return path
    msg = f"{name} is not installed (Debian package; `make system-deps` installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"{msg}, and CI is set: integration tests must run under CI")
    pytest.skip(msg)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot take port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
