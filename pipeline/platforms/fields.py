"""Reading payload fields defensively, shared by every adapter: ids, text, money, times, counts.

Each payload reader returns None for an absent value and raises InvalidPayload (naming the
field) for one that is present but unusable, so a bad delivery is dead-lettered with a reason.
The ingress-side readers (`body_object`, `body_shop_id`, `token`, `safe_ident`, `whole_number`,
`epoch_iso`) never raise InvalidPayload: they refuse with Rejection(400) or return None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import orjson

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Rejection
from schemas.events import Source, entity_key

_MAX_MONEY: Final = Decimal("1e15")
# Seconds since the epoch above this are milliseconds (year 33658 in seconds; Lazada sends both).
_MS_THRESHOLD: Final = 10**12
_MAX_EPOCH_S: Final = 253_402_300_799  # 9999-12-31T23:59:59Z
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; InvalidPayload otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("body is not a JSON object")
    return payload


def obj(value: object, name: str) -> dict[str, Any]:
    """A nested JSON object (absent means empty)."""
    if value is None:
        return {}
    return required_obj(value, name)


def required_obj(value: object, name: str) -> dict[str, Any]:
    """A JSON object that must be there, such as a list element (absent is refused)."""
    if not isinstance(value, dict):
        raise InvalidPayload(f"{name} is not an object")
    return value


def items(value: object, name: str) -> list[Any]:
    """A JSON array (absent means empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPayload(f"{name} is not a list")
    return value


def ident(value: object, name: str) -> str | None:
    """A platform id: an integer or a short string."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidPayload(f"{name} is not an id")
    text = str(value).strip()
    if not text or len(text) > 100:
        raise InvalidPayload(f"{name} is not an id")
    return text


def required_ident(value: object, name: str) -> str:
    """An id that must be there."""
    found = ident(value, name)
    if found is None:
        raise InvalidPayload(f"{name} is missing")
    return found


def nonzero_ident(value: object, name: str) -> str | None:
    """An id where 0 means none (WooCommerce's variation_id and parent_id, Shopee's variation
    and model ids)."""
    found = ident(value, name)
    return None if found == "0" else found


def text(value: object) -> str | None:
    """Free text, cut to 500 characters; empty means absent."""
    if value is None or value == "":
        return None
    return str(value)[:500]


def money(value: object, name: str) -> Decimal | None:
    """A decimal amount (string or number), finite and below 10^15."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidPayload(f"{name} is not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidPayload(f"{name} is not an amount") from None
    if not amount.is_finite() or abs(amount) >= _MAX_MONEY:
        raise InvalidPayload(f"{name} is out of range")
    return amount


def count(value: object, name: str, *, signed: bool = False) -> int | None:
    """A whole number of units (stock may be negative when `signed`)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPayload(f"{name} is not a whole number")
    low = -(2**31) if signed else 0
    if not low <= value < 2**31:
        raise InvalidPayload(f"{name} is out of range")
    return value


def iso_time(value: object, name: str) -> datetime | None:
    """An ISO 8601 time; a naive one is read as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidPayload(f"{name} is not an ISO 8601 timestamp in range") from None


def epoch_time(value: object, name: str) -> datetime | None:
    """Seconds (or milliseconds, told apart by size) since the epoch, as sent by Shopee, Lazada
    and TikTok Shop."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidPayload(f"{name} is not a time in seconds")
    seconds = value / 1000 if value >= _MS_THRESHOLD else value
    if not 0 <= seconds <= _MAX_EPOCH_S:
        raise InvalidPayload(f"{name} is out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


def received_at(received_at_ms: int) -> datetime:
    """When the ingress received the delivery (the envelope's milliseconds) as a UTC time."""
    return datetime.fromtimestamp(received_at_ms / 1000, tz=UTC)


def version_of(moment: datetime | None, fallback: str) -> str:
    """The version part of an event id: the source's own time, else something stable."""
    return moment.isoformat() if moment is not None else fallback


def content_id(*parts: object) -> str:
    """A delivery id derived from content, for platforms without one (WooCommerce, Lazada):
    the same change re-sent gets the same id, so dedupe catches it."""
    canonical = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return "c-" + hashlib.sha256(canonical).hexdigest()[:40]


def hmac_sha256(secret: str, message: bytes) -> bytes:
    """The raw HMAC-SHA256 of `message` under `secret` (UTF-8)."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def signed_by_any(
    secrets: Sequence[str], message: bytes, given: str, encoding: Literal["base64", "hex"]
) -> bool:
    """Does `given` (the signature header) match HMAC-SHA256 of `message` under any secret?

    Every secret is tried (two during a rotation), each compared in constant time.
    """
    given = given.strip()
    if not given:
        return False
    wanted = (
        given.lower().encode("ascii", "replace")
        if encoding == "hex"
        else given.encode("ascii", "replace")
    )
    found = False
    for secret in secrets:
        digest = hmac_sha256(secret, message)
        mine = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")
        found |= hmac.compare_digest(mine.encode("ascii"), wanted)
    return found


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header's value without surrounding white space; empty when absent."""
    return headers.get(name, "").strip()


# -- provenance and keys ---------------------------------------------------------------------


def source_of(platform: str, envelope: Envelope) -> Source:
    """Where an event made from `envelope` came from: the delivery that carried it."""
    return Source(
        platform=platform,
        shop_id=envelope.shop_id,
        topic=envelope.topic,
        delivery_id=envelope.delivery_id,
        received_at=received_at(envelope.received_at_ms),
    )


def delivery_key(
    platform: str, shop_id: str, delivery_id: str, entity: tuple[str, str] | None
) -> str:
    """The Kafka key of a delivery: its entity's (type, id) when it names one, else its own, so
    one entity's deliveries stay on one partition and the rest spread."""
    kind, key = entity if entity is not None else ("delivery", delivery_id)
    return entity_key(platform, shop_id, kind, key)


# -- ingress side: refuse with a 400 or make do, never InvalidPayload ------------------------


def body_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; Rejection(400) otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejection(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Rejection(400, "body is not a JSON object")
    return payload


def body_shop_id(body: bytes, field: str, what: str, pattern: re.Pattern[str] | None = None) -> str:
    """The shop an app-signed delivery names in its body (an `ident`, matching `pattern` when
    given); Rejection(400) naming the field, and saying it is not `what`, otherwise."""
    raw = body_object(body).get(field)
    if raw is None:
        raise Rejection(400, f"body has no {field}")
    shop = safe_ident(raw)
    if shop is None or (pattern is not None and not pattern.fullmatch(shop)):
        raise Rejection(400, f"body {field} is not {what}")
    return shop


def safe_ident(value: object) -> str | None:
    """An `ident`, or None when unusable: the delivery is then keyed by itself and normalize
    names the field."""
    try:
        return ident(value, "id")
    except InvalidPayload:
        return None


def token(value: object) -> str | None:
    """An id fit for keys and logs (an integer, or a string of letters, digits and `._-`, up to
    100), white space around it dropped; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    found = str(value).strip()
    return found if _TOKEN_RE.fullmatch(found) else None


def whole_number(value: object) -> int | None:
    """A push kind (Shopee's `code`, TikTok Shop's `type`): a whole number below 2^31, a digit
    string tolerated; None otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        return None
    return value


def epoch_iso(value: object) -> str | None:
    """An `epoch_time` as ISO 8601 for DeliveryInfo.triggered_at; an unreadable one is dropped,
    not refused."""
    try:
        moment = epoch_time(value, "timestamp")
    except InvalidPayload:
        return None
    return moment.isoformat() if moment is not None else None
