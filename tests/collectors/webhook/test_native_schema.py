"""The README's JSON Schema for native webhook events is the one the adapter reads."""

from __future__ import annotations

import json
import re
from typing import Any

from collectors.webhook.adapters.native import _FIELDS, VERSION
from cxmon.events import EventKind
from tests.helpers import REPO


def schema() -> dict[str, Any]:
    """The README's JSON Schema (JSON of any shape below its top object)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Native events") :]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    loaded: dict[str, Any] = json.loads(block.group(1))
    return loaded


def test_schema_names_every_event_kind() -> None:
    """The schema's ``kind`` enum is exactly EventKind's values."""
    event = schema()["$defs"]["event"]
    assert event["properties"]["kind"]["enum"] == [k.value for k in EventKind]


def test_schema_fields_are_the_adapters() -> None:
    """The schema's event properties are the fields the adapter accepts (plus ``version``)."""
    event = schema()["$defs"]["event"]
    assert set(event["properties"]) == {*_FIELDS, "version"}
    assert event["properties"]["version"] == {"const": VERSION}
