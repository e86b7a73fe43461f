"""Source types by name: their option validators and factories, imported lazily."""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collectors.base import Source
    from cxmon.config import CollectorConfig, Config

# type name → "module:Class". The class has `validate(options, path) -> list[str]` and
# `from_config(collector_config, config) -> Source` class methods.
SOURCE_TYPES: dict[str, str] = {
    "simulator": "collectors.simulator:SimulatorSource",
    "queue_log": "collectors.queue_log:QueueLogSource",
    "ami": "collectors.ami:AmiSource",
    "records": "collectors.records:RecordsSource",
    "jsonl": "collectors.jsonl:JsonlFileSource",
    "webhook": "collectors.webhook:WebhookSource",
    "websocket": "collectors.websocket:WebsocketSource",
}


def _load(type_name: str) -> Any:
    module_name, _, cls_name = SOURCE_TYPES[type_name].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def validate_collector(type_name: object, options: dict[str, Any], path: str) -> list[str]:
    """Return every problem with one ``[[collectors]]`` table (empty when valid)."""
    if not isinstance(type_name, str):
        return [f"{path}.type: required key is missing (one of: {', '.join(SOURCE_TYPES)})"]
    if type_name not in SOURCE_TYPES:
        hint = difflib.get_close_matches(type_name, list(SOURCE_TYPES), n=1)
        return [
            f"{path}.type: unknown collector type {type_name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(SOURCE_TYPES)}")
        ]
    problems: list[str] = _load(type_name).validate(options, path)
    return problems


def create_source(cc: CollectorConfig, config: Config) -> Source:
    """Build the source a validated ``[[collectors]]`` table describes."""
    source: Source = _load(cc.type).from_config(cc, config)
    return source
