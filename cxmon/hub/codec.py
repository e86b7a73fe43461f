"""Codec: frozen dataclasses (Snapshot, the journey) to JSON-ready values and back, driven by type hints.

Encoders and decoders are built once per type from the dataclass's annotations, so a field added to
:class:`~cxmon.snapshot.Snapshot` is carried without touching this module. Dataclasses become lists
in field order (compact: no repeated key names), mappings become lists of ``[key, value]`` pairs
(keys keep their type and order: window lengths are floats), enums become their value, and floats
that JSON cannot hold (NaN, ±inf) become the strings ``"nan"``, ``"inf"``, ``"-inf"``. Decoding the
encoding gives back an equal object: the hub's snapshots round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import orjson

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class CodecError(ValueError):
    """A value does not decode as its type; ``where`` names the path inside the frame."""

    def __init__(self, msg: str, where: str = "") -> None:
        super().__init__(f"{where}: {msg}" if where else msg)
        self.where = where


def dumps(value: Any) -> bytes:
    """Encode a JSON-ready value with orjson (UTF-8 bytes)."""
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    """Decode JSON text.

    Raises:
        CodecError: the text is not JSON.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON ({exc})") from None


def _encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _decode_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise CodecError(f"expected a number, got {value!r}")


def _decode_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise CodecError(f"expected a whole number, got {value!r}")


def _decode_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise CodecError(f"expected a string, got {value!r}")


def _decode_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise CodecError(f"expected true or false, got {value!r}")


def _identity(value: Any) -> Any:
    return value


def _encode_any(value: Any) -> Any:
    """Untyped values go as JSON: mappings become dicts, tuples lists."""
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): _encode_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_any(v) for v in value]
    return value


def _hints(cls: type) -> dict[str, Any]:
    import sys

    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, vars(module))


@cache
def encoder(tp: Any) -> Encoder:
    """Return the function that turns a value of type ``tp`` into a JSON-ready value."""
    if tp is float:
        return _encode_float
    if tp in (int, str, bool, type(None)):
        return _identity
    if tp is Any or tp is object:
        return _encode_any
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = [(f.name, encoder(hints[f.name])) for f in dataclasses.fields(tp) if f.init]

        def encode_dataclass(value: Any) -> list[Any]:
            return [enc(getattr(value, name)) for name, enc in fields]

        return encode_dataclass
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = encoder(options[0])
            return lambda v: None if v is None else inner(v)
        return _encode_any
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = encoder(args[0])
            return lambda v: [item(x) for x in v]
        parts = [encoder(a) for a in args]
        return lambda v: [enc(x) for enc, x in zip(parts, v, strict=True)]
    if origin is list:
        item = encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin in (dict, types.MappingProxyType, Mapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        key, val = encoder(args[0]), encoder(args[1])
        return lambda v: [[key(k), val(x)] for k, x in v.items()]
    raise TypeError(f"no encoder for {tp!r}")


@cache
def decoder(tp: Any) -> Decoder:
    """Return the function that turns a JSON value back into a value of type ``tp``.

    The decoder raises :class:`CodecError` on a value of the wrong shape.
    """
    if tp is float:
        return _decode_float
    if tp is int:
        return _decode_int
    if tp is str:
        return _decode_str
    if tp is bool:
        return _decode_bool
    if tp is type(None):

        def decode_none(v: Any) -> None:
            if v is not None:
                raise CodecError(f"expected null, got {v!r}")

        return decode_none
    if tp is Any or tp is object:
        return _decode_any
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        enum_type: type[enum.Enum] = tp

        def decode_enum(v: Any) -> Any:
            try:
                return enum_type(v)
            except ValueError:
                raise CodecError(f"expected one of {[m.value for m in enum_type]}, got {v!r}") from None

        return decode_enum
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = decoder(options[0])
            return lambda v: None if v is None else inner(v)
        return _decode_any
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = decoder(args[0])
            return lambda v: tuple(item(x) for x in _list(v))
        parts = [decoder(a) for a in args]

        def decode_fixed(v: Any) -> tuple[Any, ...]:
            seq = _list(v)
            if len(seq) != len(parts):
                raise CodecError(f"expected {len(parts)} items, got {len(seq)}")
            return tuple(dec(x) for dec, x in zip(parts, seq, strict=True))

        return decode_fixed
    if origin is list:
        item = decoder(args[0])
        return lambda v: [item(x) for x in _list(v)]
    if origin in (dict, types.MappingProxyType, Mapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        key, val = decoder(args[0]), decoder(args[1])
        wrap: Callable[[dict[Any, Any]], Any] = dict if origin is dict else types.MappingProxyType

        def decode_mapping(v: Any) -> Any:
            out: dict[Any, Any] = {}
            for pair in _list(v):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise CodecError(f"expected a [key, value] pair, got {pair!r}")
                out[key(pair[0])] = val(pair[1])
            return wrap(out)

        return decode_mapping
    raise TypeError(f"no decoder for {tp!r}")


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise CodecError(f"expected a list, got {type(v).__name__}")
    return v


def _decode_any(v: Any) -> Any:
    # Untyped values come back as JSON gives them (dicts and lists).
    return v


def _dataclass_decoder(cls: type) -> Decoder:
    hints = _hints(cls)
    fields = [(f.name, decoder(hints[f.name])) for f in dataclasses.fields(cls) if f.init]
    required = sum(
        1
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )

    def decode_dataclass(v: Any) -> Any:
        seq = _list(v)
        if not required <= len(seq) <= len(fields):
            raise CodecError(f"{cls.__name__}: expected {len(fields)} fields, got {len(seq)}")
        kwargs: dict[str, Any] = {}
        for (name, dec), x in zip(fields, seq, strict=False):
            try:
                kwargs[name] = dec(x)
            except CodecError as exc:
                raise CodecError(str(exc), f"{cls.__name__}.{name}") from None
        return cls(**kwargs)

    return decode_dataclass


def encode(value: Any, tp: Any) -> Any:
    """Encode ``value`` as type ``tp`` (a dataclass, tuple, mapping... type)."""
    return encoder(tp)(value)


def decode(value: Any, tp: Any) -> Any:
    """Decode ``value`` as type ``tp``.

    Raises:
        CodecError: the value does not have the shape of ``tp``.
    """
    try:
        return decoder(tp)(value)
    except CodecError:
        raise
    except (TypeError, ValueError) as exc:
        raise CodecError(str(exc)) from None
