"""JSON Schemas (draft 2020-12) of the canonical event records, derived from their dataclasses so
the published contract cannot drift from the code that emits it.

The schemas describe events as `schemas.events.to_json` writes them: Decimals are strings,
datetimes RFC 3339 strings, UUIDs strings, tuples arrays and nested records objects.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from schemas.catalogue import EVENT_RECORDS

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX: Final = "urn:commerce-pipeline:"
# str(Decimal) of a finite number: "12.50", "-3", "1E+2", "1E-7". NaN and infinities never occur.
DECIMAL_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"

_SCALARS: Final[dict[type, dict[str, Any]]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    Decimal: {"type": "string", "pattern": DECIMAL_PATTERN},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
# Keywords that constrain only strings, so a null alongside them needs no anyOf.
_STRING_ONLY: Final = frozenset({"type", "format", "pattern"})


def schema_name(record: type[Any]) -> str:
    """The record's schema name, the default of its `schema` field (e.g. "commerce.order/v1")."""
    for f in dataclasses.fields(record):
        if f.name == "schema" and isinstance(f.default, str):
            return f.default
    raise TypeError(f"{record.__name__} has no `schema` field with a default")


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _summary(cls: type[Any]) -> str:
    return (cls.__doc__ or "").strip().split("\n", 1)[0].strip()


def _nullable(inner: dict[str, Any]) -> dict[str, Any]:
    kind = inner.get("type")
    if isinstance(kind, str) and set(inner) <= _STRING_ONLY:
        return {**inner, "type": [kind, "null"]}
    return {"anyOf": [inner, {"type": "null"}]}


def _literal(values: tuple[Any, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"enum": list(values)}
    kinds = {type(v) for v in values}
    if kinds == {str}:
        schema = {"type": "string", **schema}
    return schema


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of one type hint; nested dataclasses go into `defs` and are referenced."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _type(args[0], defs)
    if origin is typing.Literal:
        return _literal(args)
    if origin in (types.UnionType, typing.Union):
        members = [a for a in args if a is not type(None)]
        inner = (
            _type(members[0], defs)
            if len(members) == 1
            else {"anyOf": [_type(m, defs) for m in members]}
        )
        return _nullable(inner) if len(members) < len(args) else inner
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _type(args[0], defs)}
    if origin is list:
        return {"type": "array", "items": _type(args[0], defs)}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in defs:
            defs[name] = {"$comment": _qualified(hint)}  # placeholder: recursion terminates
            defs[name] = _object(hint, defs)
        elif defs[name].get("$comment") != _qualified(hint):
            raise TypeError(f"two different records named {name} in one schema")
        return {"$ref": f"#/$defs/{name}"}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    raise TypeError(f"no JSON Schema for type {hint!r}")


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _object(cls: type[Any], defs: dict[str, Any], *, record: bool = False) -> dict[str, Any]:
    """An object schema for a dataclass: every field a property, those without a default
    required, nothing else allowed. On a record, `schema` is fixed to its default."""
    hints = typing.get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if record and f.name == "schema":
            properties[f.name] = {"type": "string", "const": f.default}
            required.append(f.name)  # always written, and it tells consumers what they hold
            continue
        properties[f.name] = _type(hints[f.name], defs)
        if not _has_default(f):
            required.append(f.name)
    return {
        "$comment": _qualified(cls),
        "title": cls.__name__,
        "description": _summary(cls),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def record_schema(record: type[Any]) -> dict[str, Any]:
    """The complete JSON Schema document of one event record."""
    name = schema_name(record)
    defs: dict[str, Any] = {}
    body = _object(record, defs, record=True)
    document: dict[str, Any] = {"$schema": DIALECT, "$id": f"{ID_PREFIX}{name}", **body}
    if defs:
        document["$defs"] = defs
    return document


def event_schemas() -> dict[str, dict[str, Any]]:
    """Every canonical event record's schema, keyed by schema name ("commerce.order/v1")."""
    return {schema_name(r): record_schema(r) for r in EVENT_RECORDS}


def schema_filename(name: str) -> str:
    """The file a schema is exported to: its name with '/' as '.' ("commerce.order.v1.json")."""
    return name.replace("/", ".") + ".json"


def write_schemas(schemas: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """Write one `<schema name>.json` per schema into `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas.items():
        path = out / schema_filename(name)
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
