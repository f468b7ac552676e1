"""Retry topics: a delivery's next attempt waits in tier n for its delay, then goes back to the
raw topic and takes the normal path (where the version check keeps newer state safe)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from pipeline.outcomes import RawMessage
from pipeline.producer import Producer


class RetryForwarder:
    """Forwards one tier's messages to the raw topic once each has waited `delay_s`.

    A tier holds messages of one delay in arrival order, so waiting for the head never delays
    a message that is already due.
    """

    def __init__(
        self,
        producer: Producer,
        raw_topic: str,
        delay_s: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._producer = producer
        self._raw_topic = raw_topic
        self._delay = delay_s
        self._clock = clock
        self._sleep = sleep

    async def forward(self, messages: Sequence[tuple[RawMessage, float]]) -> int:
        """(message, the time it entered this tier) pairs; returns once Kafka has them all."""
        pending = []
        for message, entered_at in messages:
            wait = entered_at + self._delay - self._clock()
            if wait > 0:
                await self._sleep(wait)
            pending.append(
                await self._producer.send(self._raw_topic, message.value, key=message.key)
            )
        await asyncio.gather(*pending)
        return len(pending)
