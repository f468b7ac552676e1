"""Publishing a batch's canonical events and dead letters to Kafka, waiting for every ack."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pipeline import envelope as envelopes
from pipeline.outcomes import DeadLetter, Outcome
from pipeline.producer import Producer
from pipeline.topics import TopicNames
from schemas.events import CanonicalEvent, to_json


def canonical_message(names: TopicNames, event: CanonicalEvent) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of a canonical event: the worker and `pipeline reemit` both send
    exactly this, so a re-emitted event is byte for byte what consumers saw the first time."""
    return names.canonical(event.stream), event.entity_key.encode(), to_json(event)


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka headers that say where a dead letter came from and why it died."""
    src = letter.source
    return [
        ("x-original-topic", src.topic.encode()),
        ("x-original-partition", str(src.partition).encode()),
        ("x-original-offset", str(src.offset).encode()),
        ("x-error-class", letter.error_class.encode()),
        ("x-error", letter.error[:2000].encode("utf-8", "replace")),
        ("x-attempts", str(letter.attempts).encode()),
        ("x-first-failure-at", letter.first_failure.isoformat().encode()),
        ("x-last-failure-at", letter.failed_at.isoformat().encode()),
    ]


class Publisher:
    """Sends with the shared idempotent producer; `publish` returns once Kafka holds everything."""

    def __init__(self, producer: Producer, names: TopicNames) -> None:
        self._producer = producer
        self._names = names

    async def publish(self, outcomes: Sequence[Outcome]) -> int:
        pending = []
        for outcome in outcomes:
            for event in outcome.events:
                topic, key, value = canonical_message(self._names, event)
                pending.append(await self._producer.send(topic, value, key=key))
            letter = outcome.dead_letter
            if letter is not None:
                pending.append(
                    await self._producer.send(
                        self._names.dead_letters,
                        letter.source.value,
                        key=letter.source.key,
                        headers=dead_letter_headers(letter),
                    )
                )
            if outcome.retry is not None:
                tier = outcome.retry.attempt - 1  # attempt 2 waits in tier 1, and so on
                pending.append(
                    await self._producer.send(
                        self._names.retry(tier),
                        envelopes.encode(outcome.retry),
                        key=outcome.source.key,
                    )
                )
        await asyncio.gather(*pending)
        return len(pending)
