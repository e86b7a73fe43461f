"""Shared test fixtures (dashboard ones first; others append below)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import Input


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stop text cursors blinking, so screenshots do not depend on when they were taken."""
    original = Input.__init__

    def still(self: Input, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cursor_blink = False

    monkeypatch.setattr(Input, "__init__", still)
    yield
