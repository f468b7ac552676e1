"""Turn one raw-topic message into an Outcome: decode, normalize, classify what went wrong.

Three kinds of failure, three answers:
- can never succeed (bad envelope or body, unknown platform or channel): dead letter at once;
- may pass (`is_transient`, or an unexpected exception, which a fix may cure): the next attempt
  goes to a retry topic, and the delivery is dead-lettered once `max_attempts` is used up;
- a dependency outage is not decided here: the batch processor waits it out in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from pipeline import envelope as envelopes
from pipeline.envelope import Envelope
from pipeline.errors import EnvelopeError, PipelineError, is_transient
from pipeline.outcomes import AuditRecord, DeadLetter, Outcome, RawMessage
from pipeline.platforms.base import PlatformAdapter
from pipeline.platforms.registry import adapter_for

log = logging.getLogger("pipeline.processing")

AdapterLookup = Callable[[str], PlatformAdapter | None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def read_envelope(message: RawMessage, now: datetime) -> Envelope | Outcome:
    """The envelope, or a dead-letter outcome when the message is not one."""
    try:
        return envelopes.decode(message.value)
    except EnvelopeError as exc:
        letter = DeadLetter(message, type(exc).__name__, str(exc), now)
        return Outcome(source=message, dedupe_key=None, audit=None, dead_letter=letter)


def process_message(
    message: RawMessage,
    *,
    is_seen: Callable[[str], bool] = lambda key: False,
    has_channel: Callable[[str, str], bool] = lambda platform, shop: True,
    max_attempts: int = 5,
    adapters: AdapterLookup = adapter_for,
    now: Callable[[], datetime] = utcnow,
) -> Outcome | None:
    """None for a delivery already handled; failures come back as outcomes, never raised."""
    moment = now()
    item = read_envelope(message, moment)
    if isinstance(item, Outcome):
        return item
    return process_envelope(
        message,
        item,
        is_seen=is_seen,
        has_channel=has_channel,
        max_attempts=max_attempts,
        adapters=adapters,
        moment=moment,
    )


def process_envelope(
    message: RawMessage,
    item: Envelope,
    *,
    is_seen: Callable[[str], bool],
    has_channel: Callable[[str, str], bool],
    max_attempts: int,
    adapters: AdapterLookup,
    moment: datetime,
) -> Outcome | None:
    """`process_message` for a message whose envelope was already read."""
    if not item.replay and is_seen(item.dedupe_key):
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
        attempts=item.attempt,
        replay=item.replay,
    )
    outcome = Outcome(source=message, dedupe_key=item.dedupe_key, audit=audit)

    def dead(error_class: str, error: str) -> Outcome:
        return outcome.dead_lettered(
            error_class,
            error,
            moment,
            attempts=item.attempt,
            first_failed_at=_from_ms(item.first_failed_at_ms),
        )

    adapter = adapters(item.platform)
    if adapter is None:
        return dead("InvalidPayload", f"no adapter for platform {item.platform!r}")
    if not has_channel(item.platform, item.shop_id):
        return dead("UnknownChannel", f"no {item.platform} channel for shop {item.shop_id}")
    if item.malformed:
        return dead("InvalidPayload", "body is not valid JSON")
    try:
        normalized = adapter.normalize(item)
    except Exception as exc:
        if isinstance(exc, PipelineError) and not is_transient(exc):
            return dead(type(exc).__name__, str(exc))
        if not isinstance(exc, PipelineError):
            log.exception("normalizer failed", extra={"delivery_id": item.delivery_id})
        if item.attempt >= max_attempts:
            return dead(type(exc).__name__, f"{exc} (after {item.attempt} attempts)")
        failed = replace(audit, status="FAILED", error=f"{type(exc).__name__}: {exc}")
        next_attempt = replace(
            item,
            attempt=item.attempt + 1,
            first_failed_at_ms=item.first_failed_at_ms or _ms(moment),
        )
        return replace(outcome, audit=failed, retry=next_attempt)
    if normalized.ignored is not None:
        ignored = replace(audit, status="IGNORED", error=normalized.ignored)
        return Outcome(source=message, dedupe_key=item.dedupe_key, audit=ignored)
    return Outcome(
        source=message, dedupe_key=item.dedupe_key, audit=audit, events=tuple(normalized.events)
    )
