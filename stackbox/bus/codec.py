"""The wire form of bus messages: frozen dataclasses to JSON-safe values and back.

Every record on the bus is a frozen dataclass deriving from ``Record``; it is
registered under its class name, which travels as ``"_type"``. Decoding is
tolerant in the two directions a rolling upgrade needs: a field the receiver
does not know is dropped (a newer sender), a field the sender did not send gets
its default (an older sender) — which is why new fields must have defaults.
Sequences decode to tuples so records stay immutable; free-form mappings
(an agent's ``configurations``) travel as plain JSON objects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

TYPE_KEY = "_type"


class DecodeError(ValueError):
    """A payload that is not a record this side knows."""


class Record:
    """Base of every bus record (the dataclass decorator is applied by each subclass)."""

    registry: ClassVar[dict[str, type[Record]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in Record.registry:
            raise TypeError(f"two bus records are named {cls.__name__}")
        Record.registry[cls.__name__] = cls


def encode(value: Any) -> Any:
    """A record (or anything inside one) as JSON-safe values."""
    if isinstance(value, Record) and dataclasses.is_dataclass(value):
        out: dict[str, Any] = {TYPE_KEY: type(value).__name__}
        for field in dataclasses.fields(value):
            out[field.name] = encode(getattr(value, field.name))
        return out
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} cannot travel on the bus")


def decode(value: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(value, Mapping):
        if TYPE_KEY not in value:
            return dict(value)
        name = value[TYPE_KEY]
        cls = Record.registry.get(name)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise DecodeError(f"unknown bus record {name!r}")
        known = {field.name for field in dataclasses.fields(cls)}
        kwargs = {key: decode(item) for key, item in value.items() if key in known}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise DecodeError(f"bad {name}: {exc}") from None
    if isinstance(value, list | tuple):
        return tuple(decode(item) for item in value)
    return value


def dumps(record: Record) -> bytes:
    return json.dumps(encode(record), separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    try:
        return decode(json.loads(data))
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
