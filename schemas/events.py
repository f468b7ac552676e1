"""What every canonical event shares: provenance, deterministic ids and JSON encoding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

# Fixed forever: changing it would change every event id and break replay idempotence.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c7b1e-2a43-5b0e-9d51-3c0a4f7e8a10")


def deterministic_id(*parts: str) -> uuid.UUID:
    """A UUIDv5 over the parts, so a replay of the same input yields the same id."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, "|".join(parts))


@dataclass(frozen=True, slots=True)
class Source:
    """Where a canonical event came from: the delivery that carried it."""

    platform: str
    shop_id: str
    topic: str
    delivery_id: str
    received_at: datetime


class CanonicalEvent(Protocol):
    """What the sink, the publisher and the audit trail need of any canonical event."""

    @property
    def event_id(self) -> uuid.UUID: ...

    @property
    def type(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def source(self) -> Source: ...

    @property
    def schema(self) -> str: ...

    @property
    def stream(self) -> str:
        """Which canonical topic carries it: `orders`, `products`, `inventory`, `fulfillments`."""
        ...

    @property
    def entity_type(self) -> str: ...

    @property
    def entity_id(self) -> str: ...

    @property
    def entity_key(self) -> str:
        """The Kafka key: platform, shop and entity, so one entity stays on one partition."""
        ...


def entity_key(platform: str, shop_id: str, entity_type: str, entity_id: str) -> str:
    """`<platform>:<shop>:<entity type>:<id>`, the key every topic uses for one entity."""
    return f"{platform}:{shop_id}:{entity_type}:{entity_id}"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def to_json(record: object) -> bytes:
    """Encode a record (dataclasses, datetimes, UUIDs, Decimals as strings) to JSON bytes."""
    return orjson.dumps(record, default=_default)
