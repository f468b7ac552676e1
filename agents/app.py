"""The Faust app factory: topics, the dedupe table and the one agent, wired from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TP

from agents.dedupe import TableSeenDeliveries
from agents.offsets import OffsetGap, OffsetGuard, Partition
from agents.services import ResourcesService
from pipeline.batch import BatchProcessor
from pipeline.kafka import topic_names
from pipeline.outcomes import RawMessage
from pipeline.publish import Publisher
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
        f"{settings.topic_prefix}{settings.app_id}",
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

    async def process_webhooks(stream: Any) -> None:
        res = resources.resources
        processor = BatchProcessor(PostgresSink(res.pool), Publisher(res.producer, names), seen)
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            # Hold every message: take_events acks the batch in a `finally`, even when shutdown
            # cancels us mid-write. With our extra reference that ack cannot reach the consumer,
            # so no offset is committed until the batch is durable and we let go.
            for event in events:
                event.message.incref()
            messages = [_raw_message(e) for e in events]
            gap = await guard.check(messages)
            if gap is not None:
                on_gap(gap)  # does not return: nothing after the hole may be acknowledged
                return
            report = await processor.handle(messages)
            for event in events:
                event.ack()
            log.info(
                "batch stored",
                extra={
                    "received": report.received,
                    "duplicates": report.duplicates,
                    "dead_letters": report.dead_letters,
                    "published": report.published,
                    "already_recorded": report.already_recorded,
                    "statuses": report.statuses,
                },
            )

    app.agent(raw, name="process-webhooks", concurrency=1)(process_webhooks)
    return app


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
