"""Delta: what changed between two snapshots, as a JSON-ready dict, and how to apply it exactly.

A delta names only the top-level fields that changed. Steps, series and sources are keyed (by
name, or (step, channel, queue)) and a changed one carries only its changed fields; a tuple that
grew at the end and lost items at the start (the recent transitions, a series' minute history)
carries ``{"drop": n, "add": [...]}``. ``apply_delta(old, snapshot_delta(old, new)) == new``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Hashable
from typing import Any

from cxmon.hub.codec import CodecError, _hints, decoder, encoder
from cxmon.snapshot import SeriesFigures, Snapshot, SourceStatus, StepStatus

KEYS: dict[str, tuple[type, Callable[[Any], Hashable]]] = {
    "steps": (StepStatus, lambda s: s.name),
    "series": (SeriesFigures, lambda s: s.key),
    "sources": (SourceStatus, lambda s: s.name),
}
"""Snapshot fields that are tuples of records with a key: diffed record by record."""

_SNAPSHOT_HINTS = _hints(Snapshot)
_SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(Snapshot) if f.init)


def _is_sequence(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _slide(old: tuple[Any, ...], new: tuple[Any, ...]) -> int | None:
    """Return n such that ``new`` starts with ``old[n:]`` (items dropped at the front), or None."""
    if not old:
        return 0
    if not new:
        return None
    first = new[0]
    for n, item in enumerate(old):
        if item is first or item == first:
            rest = old[n:]
            if len(rest) <= len(new) and all(a is b or a == b for a, b in zip(rest, new, strict=False)):
                return n
            return None
    return len(old)


def _diff_value(old: Any, new: Any, tp: Any) -> Any:
    """Encode ``new`` (a full value), or a slide of a sequence when that is smaller."""
    if _is_sequence(tp) and old:
        n = _slide(old, new)
        if n is not None:
            item = encoder(typing.get_args(tp)[0])
            return {"drop": n, "add": [item(x) for x in new[len(old) - n :]]}
    return encoder(tp)(new)


def _apply_value(old: Any, value: Any, tp: Any) -> Any:
    if isinstance(value, dict) and _is_sequence(tp):
        drop, add = value.get("drop"), value.get("add")
        if not isinstance(drop, int) or not isinstance(add, list) or not 0 <= drop <= len(old):
            raise CodecError(f"bad slide {value!r}")
        item = decoder(typing.get_args(tp)[0])
        return (*old[drop:], *(item(x) for x in add))
    return decoder(tp)(value)


def _diff_record(old: Any, new: Any, cls: type) -> dict[str, Any]:
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a is b or a == b:
            continue
        out[f.name] = _diff_value(a, b, hints[f.name])
    return out


def _apply_record(old: Any, changes: Any, cls: type) -> Any:
    if not isinstance(changes, dict):
        raise CodecError(f"expected changed fields, got {type(changes).__name__}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in hints:
            raise CodecError(f"{cls.__name__} has no field {name!r}")
        values[name] = _apply_value(getattr(old, name), value, hints[name])
    return dataclasses.replace(old, **values)


def _diff_keyed(old: tuple[Any, ...], new: tuple[Any, ...], cls: type, key: Callable[[Any], Hashable]) -> Any:
    before = {key(x): x for x in old}
    put: list[Any] = []
    enc = encoder(cls)
    for item in new:
        k = key(item)
        prev = before.get(k)
        if prev is item:
            continue
        if prev is None:
            put.append([_encode_key(k), enc(item)])
        elif prev != item:
            put.append([_encode_key(k), _diff_record(prev, item, cls)])
    out: dict[str, Any] = {"put": put}
    if len(old) != len(new) or any(key(a) != key(b) for a, b in zip(old, new, strict=True)):
        out["order"] = [_encode_key(key(x)) for x in new]
    return out


def _encode_key(k: Hashable) -> Any:
    return list(k) if isinstance(k, tuple) else k


def _decode_key(k: Any) -> Hashable:
    if isinstance(k, list):
        return tuple(k)
    if isinstance(k, str):
        return k
    raise CodecError(f"bad key {k!r}")


def _apply_keyed(
    old: tuple[Any, ...], value: Any, cls: type, key: Callable[[Any], Hashable]
) -> tuple[Any, ...]:
    if not isinstance(value, dict) or not isinstance(value.get("put"), list):
        raise CodecError("expected {put, order}")
    items = {key(x): x for x in old}
    dec = decoder(cls)
    for pair in value["put"]:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CodecError(f"expected [key, value], got {pair!r}")
        k, v = _decode_key(pair[0]), pair[1]
        if isinstance(v, list):
            items[k] = dec(v)
        elif k in items:
            items[k] = _apply_record(items[k], v, cls)
        else:
            raise CodecError(f"change to unknown record {k!r}")
    order = value.get("order")
    if order is None:
        return tuple(items[key(x)] for x in old)
    if not isinstance(order, list):
        raise CodecError("order: expected a list")
    try:
        return tuple(items[_decode_key(k)] for k in order)
    except KeyError as exc:
        raise CodecError(f"order names unknown record {exc.args[0]!r}") from None


def snapshot_delta(old: Snapshot, new: Snapshot) -> dict[str, Any]:
    """Return the changes that turn ``old`` into ``new`` (field name → encoded change)."""
    out: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if a is b or a == b:
            continue
        if name in KEYS:
            cls, key = KEYS[name]
            out[name] = _diff_keyed(a, b, cls, key)
        else:
            out[name] = _diff_value(a, b, _SNAPSHOT_HINTS[name])
    return out


def apply_delta(old: Snapshot, changes: Any) -> Snapshot:
    """Return ``old`` with ``changes`` (from :func:`snapshot_delta`) applied.

    Raises:
        CodecError: the changes are malformed or do not fit ``old``.
    """
    if not isinstance(changes, dict):
        raise CodecError("changes: expected an object")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in _SNAPSHOT_HINTS:
            raise CodecError(f"Snapshot has no field {name!r}")
        try:
            if name in KEYS:
                cls, key = KEYS[name]
                values[name] = _apply_keyed(getattr(old, name), value, cls, key)
            else:
                values[name] = _apply_value(getattr(old, name), value, _SNAPSHOT_HINTS[name])
        except CodecError as exc:
            raise CodecError(str(exc), f"changes.{name}") from None
        except (TypeError, ValueError) as exc:
            raise CodecError(str(exc), f"changes.{name}") from None
    return dataclasses.replace(old, **values)
