"""Turn one raw-topic message into an Outcome: decode, normalize, classify what went wrong."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from pipeline import envelope as envelopes
from pipeline.errors import InvalidPayload
from pipeline.outcomes import AuditRecord, DeadLetter, Outcome, RawMessage
from pipeline.platforms.base import PlatformAdapter
from pipeline.platforms.registry import adapter_for

log = logging.getLogger("pipeline.processing")

AdapterLookup = Callable[[str], PlatformAdapter | None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def process_message(
    message: RawMessage,
    *,
    is_seen: Callable[[str], bool] = lambda key: False,
    adapters: AdapterLookup = adapter_for,
    now: Callable[[], datetime] = utcnow,
) -> Outcome | None:
    """None for a delivery already handled; bad input comes back as a dead letter, never raised."""
    try:
        item = envelopes.decode(message.value)
    except InvalidPayload as exc:
        letter = DeadLetter(message, type(exc).__name__, str(exc), now())
        return Outcome(source=message, dedupe_key=None, audit=None, dead_letter=letter)
    if is_seen(item.dedupe_key):
        return None

    audit = AuditRecord(
        platform=item.platform,
        shop_id=item.shop_id,
        topic=item.topic,
        delivery_id=item.delivery_id,
        source_event_id=item.event_id,
        entity_key=item.entity_key,
        received_at=datetime.fromtimestamp(item.received_at_ms / 1000, tz=UTC),
        status="COMPLETED",
        error=None,
        source=message,
    )
    outcome = Outcome(source=message, dedupe_key=item.dedupe_key, audit=audit)
    adapter = adapters(item.platform)
    if adapter is None:
        return outcome.failed("InvalidPayload", f"no adapter for platform {item.platform!r}", now())
    if item.malformed:
        return outcome.failed("InvalidPayload", "body is not valid JSON", now())
    try:
        normalized = adapter.normalize(item)
    except InvalidPayload as exc:
        return outcome.failed(type(exc).__name__, str(exc), now())
    except Exception as exc:  # a normalizer bug must isolate this delivery, not stop the partition
        log.exception("normalizer failed", extra={"delivery_id": item.delivery_id})
        return outcome.failed(type(exc).__name__, str(exc), now())
    if normalized.ignored is not None:
        ignored = replace(audit, status="IGNORED", error=normalized.ignored)
        return Outcome(source=message, dedupe_key=item.dedupe_key, audit=ignored)
    return Outcome(
        source=message, dedupe_key=item.dedupe_key, audit=audit, events=tuple(normalized.events)
    )
