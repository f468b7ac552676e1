"""Builders shared by the unit tests: fixtures on disk, envelopes, raw messages, headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline.envelope import Envelope, encode
from pipeline.outcomes import RawMessage
from pipeline.platforms import shopify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP = "demo.myshopify.com"
SECRET = "shpss_0123456789abcdef"
RECEIVED_AT_MS = 1_710_172_000_000  # 2024-03-11T15:46:40Z


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(fixture_bytes(name))
    return data


def order_body(*, drop: tuple[str, ...] = (), **changes: Any) -> bytes:
    """The paid-order fixture with top-level fields replaced (`changes`) or removed (`drop`)."""
    data = {**fixture("order_paid"), **changes}
    for name in drop:
        del data[name]
    return orjson.dumps(data)


def envelope(
    body: bytes | None = None,
    *,
    topic: str = "orders/updated",
    delivery_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    platform: str = "shopify",
    shop_id: str = SHOP,
    received_at_ms: int = RECEIVED_AT_MS,
    malformed: bool = False,
    order_id: int = 450789469,
) -> Envelope:
    return Envelope(
        platform=platform,
        shop_id=shop_id,
        topic=topic,
        delivery_id=delivery_id,
        received_at_ms=received_at_ms,
        entity_key=f"shopify:{shop_id}:order:{order_id}",
        body=fixture_bytes("order_paid") if body is None else body,
        malformed=malformed,
    )


class Handle:
    """Stands in for a Faust event: anything a weak reference can point at."""

    def __init__(self, name: str = "event") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Handle({self.name!r})"


def raw(
    item: Envelope | bytes, *, partition: int = 0, offset: int = 0, handle: Any = None
) -> RawMessage:
    value = encode(item) if isinstance(item, Envelope) else item
    return RawMessage(
        value=value,
        key=b"key",
        topic="webhooks.raw",
        partition=partition,
        offset=offset,
        handle=handle,
    )


def delivery(delivery_id: str, *, order_id: int = 450789469, offset: int = 0) -> RawMessage:
    """A raw message for an orders/updated delivery of one order."""
    body = order_body(id=order_id, updated_at=f"2024-03-11T11:{offset % 60:02d}:00-05:00")
    return raw(envelope(body, delivery_id=delivery_id, order_id=order_id), offset=offset)


EVENT_ID = "98880550-7158-44d4-b7cd-2c97c8a091b5"
TRIGGERED_AT = "2024-03-11T16:05:17.123Z"


def shopify_headers(
    body: bytes,
    *,
    secret: str = SECRET,
    shop: str = SHOP,
    topic: str = "orders/create",
    webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
) -> dict[str, str]:
    return shopify.delivery_headers(
        secret,
        body,
        shop=shop,
        topic=topic,
        webhook_id=webhook_id,
        api_version="2024-01",
        event_id=EVENT_ID,
        triggered_at=TRIGGERED_AT,
    )
