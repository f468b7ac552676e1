"""The envelope the ingress wraps around a verified webhook: raw bytes plus what was learned."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from pipeline.errors import EnvelopeError

ENVELOPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    """One verified delivery on the raw topic; `body` is exactly the bytes received."""

    platform: str
    shop_id: str
    topic: str
    delivery_id: str
    received_at_ms: int
    entity_key: str
    body: bytes
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: str | None = None
    malformed: bool = False
    # Set by the worker, never by the ingress: which processing attempt this is, whether an
    # operator replayed it (replays skip the dedupe table), and when the first attempt failed.
    attempt: int = 1
    replay: bool = False
    first_failed_at_ms: int | None = None
    # Which `pipeline replay`/`rebuild` run re-read it from the raw topic (None otherwise).
    replay_run: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.platform}|{self.shop_id}|{self.delivery_id}"


def encode(envelope: Envelope) -> bytes:
    """Serialize; the body stays a readable string when it is UTF-8 and base64 otherwise."""
    fields: dict[str, Any] = asdict(envelope)
    body: bytes = fields.pop("body")
    try:
        fields["body"] = body.decode("utf-8")
        fields["body_encoding"] = "utf-8"
    except UnicodeDecodeError:
        fields["body"] = base64.b64encode(body).decode("ascii")
        fields["body_encoding"] = "base64"
    if fields["replay_run"] is None:  # absent unless a replay set it, as before the field existed
        del fields["replay_run"]
    fields["v"] = ENVELOPE_VERSION
    return orjson.dumps(fields)


_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant datetime can hold
_REQUIRED = ("platform", "shop_id", "topic", "delivery_id", "received_at_ms", "entity_key", "body")
_OPTIONAL = ("event_id", "api_version", "triggered_at")


def decode(raw: bytes) -> Envelope:
    """Parse a raw-topic value; anything that is not a v1 envelope raises EnvelopeError."""
    data = _envelope_object(raw)
    received = data["received_at_ms"]
    if not _is_ms(received):
        raise EnvelopeError("envelope received_at_ms is not a time in milliseconds")
    attempt = data.get("attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= 1000:
        raise EnvelopeError("envelope attempt is not a small positive number")
    first_failed = data.get("first_failed_at_ms")
    if first_failed is not None and not _is_ms(first_failed):
        raise EnvelopeError("envelope first_failed_at_ms is not a time in milliseconds")
    try:
        return Envelope(
            platform=str(data["platform"]),
            shop_id=str(data["shop_id"]),
            topic=str(data["topic"]),
            delivery_id=str(data["delivery_id"]),
            received_at_ms=int(received),
            entity_key=str(data["entity_key"]),
            body=_body(data),
            malformed=bool(data.get("malformed", False)),
            attempt=attempt,
            replay=bool(data.get("replay", False)),
            first_failed_at_ms=first_failed,
            replay_run=_opt_str(data.get("replay_run")),
            **{name: _opt_str(data.get(name)) for name in _OPTIONAL},
        )
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"envelope field has the wrong type: {exc}") from None


def _envelope_object(raw: bytes) -> dict[str, Any]:
    """The envelope's JSON object, with its version checked and every required field there."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"envelope is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("envelope is not a JSON object")
    if data.get("v") != ENVELOPE_VERSION:
        raise EnvelopeError(f"unsupported envelope version {data.get('v')!r}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
    return data


def _is_ms(value: object) -> bool:
    """An integer time in milliseconds that datetime can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_MS


def _body(data: dict[str, Any]) -> bytes:
    body_text = data["body"]
    if not isinstance(body_text, str):
        raise EnvelopeError("envelope body is not a string")
    encoding = data.get("body_encoding", "utf-8")
    if encoding == "utf-8":
        return body_text.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(body_text, validate=True)
        except binascii.Error:
            raise EnvelopeError("envelope body is not valid base64") from None
    raise EnvelopeError(f"unknown body encoding {encoding!r}")


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
