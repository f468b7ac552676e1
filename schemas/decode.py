"""Canonical events back from their JSON, as `commerce_events.payload` stores them.

Postgres keeps the payload as jsonb, which reorders keys, so its text is not what the worker
published. Rebuilding the record and encoding it with `to_json` again gives the bytes the
worker sent; `from_json` refuses a payload that would not come out the same.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.catalogue import EVENT_RECORDS, AnyEvent
from schemas.events import to_json

# Record schema (`commerce.order/v1`, ...) -> its record; every event names its schema.
RECORDS_BY_SCHEMA: dict[str, type[AnyEvent]] = {
    f.default: record
    for record in EVENT_RECORDS
    for f in dataclasses.fields(record)
    if f.name == "schema" and isinstance(f.default, str)
}


class EventDecodeError(ValueError):
    """A payload that is not one of the catalogue's events, or would not encode the same."""


def from_json(data: bytes | str) -> AnyEvent:
    """The event record a stored payload describes, chosen by its `schema` field."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise EventDecodeError("not a JSON object")
    record = RECORDS_BY_SCHEMA.get(str(raw.get("schema")))
    if record is None:
        raise EventDecodeError(f"unknown event schema {raw.get('schema')!r}")
    try:
        event = _value(record, raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise EventDecodeError(f"not a valid {record.__name__}: {exc!r}") from None
    if orjson.loads(to_json(event)) != raw:
        raise EventDecodeError(f"{record.__name__} would not encode back to the stored payload")
    return typing.cast(AnyEvent, event)


def _value(hint: Any, raw: Any) -> Any:
    """`raw` (decoded JSON) as the type `hint` names."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{raw!r} is not one of {args}")
        return raw
    if origin in (types.UnionType, typing.Union):
        if raw is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None)]
        return _value(members[0], raw)  # the catalogue only has `X | None`
    if origin is tuple:
        return tuple(_value(args[0], item) for item in raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, raw)
    return _scalar(hint, raw)


def _record(cls: type[Any], raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise TypeError(f"{cls.__name__} needs an object, not {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    extra = set(raw) - fields
    if extra:
        raise ValueError(f"{cls.__name__} has no fields {sorted(extra)}")
    return cls(**{name: _value(hints[name], value) for name, value in raw.items()})


def _scalar(hint: Any, raw: Any) -> Any:
    if hint is uuid.UUID:
        return uuid.UUID(raw)
    if hint is datetime:
        return datetime.fromisoformat(raw)
    if hint is Decimal:
        return Decimal(raw)
    if hint in (str, int, bool) and type(raw) is hint:
        return raw
    raise TypeError(f"{raw!r} is not a {hint!r}")
