"""The pipeline's producer: aiokafka's idempotent producer, replaced when it cannot recover.

After a broker outage longer than the request timeout, aiokafka 0.14 can expire batches that
already hold idempotence sequence numbers without sending them; from then on the broker refuses
every batch with OutOfOrderSequenceNumber and aiokafka never resets its sequence
(aio-libs/aiokafka#1017). Seen here: the ingress answered 503 for minutes after Kafka was back
and the worker's publishes retried forever. A new producer gets a new producer id and works.

The ingress starts without Kafka (`start(wait=False)`): it answers 503 until the producer
connects in the background, as it does when Kafka goes away later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaConnectionError,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from pipeline.retry import Backoff

log = logging.getLogger("pipeline.producer")

# Errors after which this producer's idempotence state is unusable: only a new producer helps.
PRODUCER_FATAL = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


class Producer:
    """Delegates to an aiokafka producer; swaps in a fresh one after a fatal send error."""

    def __init__(
        self, factory: Callable[[], AIOKafkaProducer], *, backoff: Backoff | None = None
    ) -> None:
        self._factory = factory
        self._inner = factory()
        self._backoff = backoff or Backoff(first_s=0.5, cap_s=10.0)
        self._replacing: asyncio.Task[None] | None = None
        self._connected = False
        self.replacements = 0

    @property
    def client(self) -> Any:
        return self._inner.client

    @property
    def connected(self) -> bool:
        """False until a producer reached Kafka once; sends fail fast until then."""
        return self._connected

    @property
    def healthy(self) -> bool:
        """False while a broken producer is being replaced (readiness reports it)."""
        return self._replacing is None

    async def start(self, *, wait: bool = True) -> None:
        """Connect to Kafka. With `wait=False` a Kafka that is away is connected to in the
        background instead of raising; `connected` says when it is done."""
        try:
            await self._inner.start()
        except (KafkaError, OSError) as exc:
            if wait:
                raise
            log.warning(
                "kafka unreachable at start; connecting in the background",
                extra={"error": repr(exc)},
            )
            with suppress(Exception):
                await self._inner.stop()
            self._replacing = asyncio.get_running_loop().create_task(self._replace())
            return
        self._connected = True

    async def stop(self) -> None:
        if self._replacing is not None:
            self._replacing.cancel()
            with suppress(asyncio.CancelledError):
                await self._replacing
        await self._inner.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Enqueue; the returned future resolves when Kafka acknowledged (or failed)."""
        if not self._connected:
            raise KafkaConnectionError("not connected to Kafka yet")
        sent: asyncio.Future[Any] = await self._inner.send(topic, value, key=key, headers=headers)
        sent.add_done_callback(self._watch)
        return sent

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        return await (await self.send(topic, value, key=key, headers=headers))

    def _watch(self, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled() or not isinstance(sent.exception(), PRODUCER_FATAL):
            return
        if self._replacing is None:
            log.error(
                "producer cannot recover its sequence; replacing it",
                extra={"error": repr(sent.exception())},
            )
            self._replacing = asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        attempt = 0
        while True:
            fresh = self._factory()
            try:
                await fresh.start()
                break
            except (KafkaError, OSError) as exc:
                with suppress(Exception):
                    await fresh.stop()
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning(
                    "kafka producer could not start, will retry",
                    extra={"error": repr(exc), "delay_s": round(delay, 2)},
                )
                await asyncio.sleep(delay)
        old, self._inner = self._inner, fresh
        self._replacing = None
        if self._connected:
            self.replacements += 1
            log.info("producer replaced", extra={"replacements": self.replacements})
        else:
            self._connected = True
            log.info("kafka connected")
        with suppress(Exception):
            await old.stop()
