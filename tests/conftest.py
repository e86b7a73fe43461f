"""Shared test fixtures (dashboard ones first; others append below)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from textual.widgets import Input

from cxmon import compiled

# A compiled module older than its source would run its old code in place of the source under test
# (its .so shadows the .py): then the session runs the sources (CXMON_PURE=1, which the processes it
# starts inherit too), says so, and tests/test_compiled.py fails until `make install` compiles again.
STALE = compiled.stale(compiled.built_modules())
if STALE and not compiled.pure_requested():
    os.environ[compiled.PURE_ENV] = "1"
    compiled.install_switch()

# CI replays the same examples every run (a red CI means the change broke something); a
# developer's run draws new ones, so property tests keep looking for counterexamples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stop text cursors blinking, so screenshots do not depend on when they were taken."""
    original = Input.__init__

    def still(self: Input, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cursor_blink = False

    monkeypatch.setattr(Input, "__init__", still)
    yield


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    """A tmux command prefix on a server of this test's own, killed afterwards.

    Its socket is new for every test: a server whose last session has just ended is still going away
    for a moment, and a new session asked of it then fails ("server exited unexpectedly")."""
    # Imported here, not above: tests.helpers loads cxmon.config, which must wait for the build's switch.
    from tests.helpers import require_binary

    # A short directory of its own, not tmp_path: a unix socket's path must fit in 108 bytes.
    home = Path(tempfile.mkdtemp(prefix="cxmon-tmux-"))
    prefix = [require_binary("tmux"), "-S", str(home / "socket"), "-f", os.devnull]
    try:
        yield prefix
    finally:
        subprocess.run([*prefix, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a compiled build, leave the tests marked ``pure_python`` to tests/test_compiled.py, which runs
    them on pure Python in a second interpreter (and fails if they do): they replace a method or read a
    signature inside a compiled module, which compiled callers do not go through and compiled closures
    do not carry. They are reported as deselected, and the header says where they run."""
    if not compiled.compiled_modules():
        return
    elsewhere = [item for item in items if item.get_closest_marker("pure_python") is not None]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item.get_closest_marker("pure_python") is None]


def _build() -> str:
    stale = f"; compiled modules older than their sources, not run: {', '.join(STALE)}" if STALE else ""
    elsewhere = "; tests marked pure_python run on pure Python by tests/test_compiled.py"
    return f"cxmon build: {compiled.describe()}{stale}{elsewhere if compiled.compiled_modules() else ''}"


def pytest_report_header() -> str:
    """Name the build the suite runs on: compiled with mypyc, or pure Python (and why)."""
    return _build()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the build again at the end, where ``-q`` (which hides the header) shows it too."""
    terminalreporter.write_line(_build())
