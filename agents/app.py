"""The Faust app factory: topics, the dedupe table, the webhook agent and the retry-tier agents."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from functools import partial
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import TP

from agents.dedupe import TableSeenDeliveries
from agents.offsets import OffsetGap, OffsetGuard, Partition
from agents.services import ResourcesService
from pipeline.batch import BatchProcessor
from pipeline.channels import ChannelCache, ChannelStore
from pipeline.kafka import consumer_group, topic_names
from pipeline.outcomes import RawMessage
from pipeline.publish import Publisher
from pipeline.retry import Backoff, until_done
from pipeline.retry_topics import RetryForwarder
from pipeline.settings import Settings
from pipeline.sink import PostgresSink
from pipeline.topics import DEDUPE_TABLE

log = logging.getLogger("agents.app")


def create_faust_app(
    settings: Settings, resources: ResourcesService, on_gap: Callable[[OffsetGap], None]
) -> faust.App:
    """Build the app; nothing connects until a faust.Worker starts it."""
    names = topic_names(settings)
    app = faust.App(
        consumer_group(settings),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store=settings.table_store,
        datadir=settings.table_data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        autodiscover=False,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # How long a crashed worker keeps its partitions before the group moves them.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 4),
        producer_acks=-1,
    )
    raw = app.topic(
        names.raw,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    table = app.Table(DEDUPE_TABLE, default=None, partitions=settings.partitions)
    seen = TableSeenDeliveries(table, settings.dedupe_window_s)

    async def start_of(partition: Partition) -> int | None:
        """Where this assignment starts reading: the committed offset, or the log start."""
        tp = TP(*partition)
        # Faust records the committed offsets when it seeks on assignment (None for 0 or none).
        committed = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
        earliest = (await app.consumer.earliest_offsets(tp)).get(tp)
        known = [o for o in (committed, earliest) if o is not None]
        return max(known) if known else None

    guard = OffsetGuard(start_of)

    def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        seen.forget_assignment()
        guard.forget_assignment()

    app.on_partitions_assigned.connect(on_assigned)

    async def held(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
        """Batches whose messages stay unacknowledged until the caller's body completes.

        take_events acks a batch in a `finally`, even when shutdown cancels us mid-write. Each
        message gets an extra reference, so that ack cannot reach the consumer; we let go only
        after the body returned, i.e. after the batch is durable. A batch with a hole before it
        is never released (see agents/offsets.py).
        """
        async for events in stream.take_events(max_, within=within):
            for event in events:
                event.message.incref()
            gap = await guard.check([_raw_message(e) for e in events])
            if gap is not None:
                on_gap(gap)  # does not return: nothing after the hole may be acknowledged
                return
            yield events
            for event in events:
                event.ack()

    async def process_webhooks(stream: Any) -> None:
        res = resources.resources
        processor = BatchProcessor(
            PostgresSink(res.pool),
            Publisher(res.producer, names),
            seen,
            # No negative caching here: a replay right after `channels add` must see the channel.
            channels=ChannelCache(
                ChannelStore(res.pool), settings.channel_cache_ttl_s, miss_ttl_s=0.0
            ),
            max_attempts=settings.retry_max_attempts,
        )
        async for events in held(stream, settings.batch_max, settings.batch_within_s):
            report = await processor.handle([_raw_message(e) for e in events])
            log.info("batch stored", extra=asdict(report))

    app.agent(raw, name="process-webhooks", concurrency=1)(process_webhooks)

    for tier in range(1, settings.retry_tiers + 1):
        app.agent(
            app.topic(
                names.retry(tier),
                key_serializer="raw",
                value_serializer="raw",
                partitions=settings.partitions,
            ),
            name=f"retry-tier-{tier}",
            concurrency=1,
        )(_retry_agent(held, resources, names.raw, settings.retry_delay_s(tier)))
    return app


def _retry_agent(
    held: Callable[[Any, int, float], AsyncIterator[list[Any]]],
    resources: ResourcesService,
    raw_topic: str,
    delay_s: float,
) -> Callable[[Any], Awaitable[None]]:
    """An agent that sends one retry tier's messages back to the raw topic once they are due."""

    async def forward_retries(stream: Any) -> None:
        forwarder = RetryForwarder(resources.resources.producer, raw_topic, delay_s)
        backoff = Backoff()
        async for events in held(stream, 100, 0.5):
            due = [(_raw_message(e), float(e.message.timestamp)) for e in events]
            forwarded = await until_done(
                partial(forwarder.forward, due),
                retriable=lambda exc: isinstance(exc, KafkaError | OSError | TimeoutError),
                backoff=backoff,
                what="retry forward",
            )
            log.info("retries forwarded", extra={"count": forwarded, "delay_s": delay_s})

    return forward_retries


def _raw_message(event: Any) -> RawMessage:
    message = event.message
    return RawMessage(
        value=message.value,
        key=message.key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        handle=event,
    )
