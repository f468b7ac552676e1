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
from agents.offsets import OffsetGuard, Partition
from agents.services import ResourcesService, readiness
from agents.watchdog import StallWatchdog
from pipeline.batch import BatchProcessor
from pipeline.channels import ChannelCache, ChannelStore
from pipeline.kafka import committed_offsets, consumer_group, group_offsets, topic_names
from pipeline.outcomes import RawMessage
from pipeline.publish import Publisher
from pipeline.retry import Backoff, until_done
from pipeline.retry_topics import RetryForwarder
from pipeline.settings import Settings
from pipeline.sink import PostgresSink
from pipeline.topics import DEDUPE_TABLE

log = logging.getLogger("agents.app")


def create_faust_app(
    settings: Settings, resources: ResourcesService, restart: Callable[[str], None]
) -> faust.App:
    """`restart(reason)` must replace the process; it is called when Faust skipped or stalled."""
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

    group_commits: dict[str, dict[int, int]] = {}  # per assignment: topic -> partition -> offset

    async def committed_offset(tp: TP) -> int | None:
        """The group's committed offset, asked of Kafka once per topic per assignment.

        Faust's own map is filled asynchronously and was seen empty right after a restart,
        which made the guard expect offset 0 (a needless restart, nothing worse).
        """
        if tp.topic not in group_commits:
            try:
                group_commits[tp.topic] = await committed_offsets(settings, tp.topic)
            except (KafkaError, OSError, TimeoutError):
                return app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined,no-any-return]
        return group_commits[tp.topic].get(tp.partition)

    starts: dict[Partition, int | None] = {}  # per assignment

    async def start_of(partition: Partition) -> int | None:
        """Where this assignment starts reading: the committed offset, or the log start."""
        if partition not in starts:
            tp = TP(*partition)
            committed = await committed_offset(tp)
            earliest = (await app.consumer.earliest_offsets(tp)).get(tp)
            known = [o for o in (committed, earliest) if o is not None]
            starts[partition] = max(known) if known else None
        return starts[partition]

    guard = OffsetGuard(start_of)
    watchdog = StallWatchdog(settings.worker_stall_timeout_s)

    def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        seen.forget_assignment()
        guard.forget_assignment()
        group_commits.clear()
        starts.clear()
        watchdog.reset()

    async def messages_waiting() -> bool:
        """Does any assigned stream partition hold messages past the next one we expect?"""
        changelog = f"{consumer_group(settings)}-{DEDUPE_TABLE}-changelog"
        tps = [tp for tp in app.consumer.assignment() if tp.topic != changelog]
        if not tps:
            return False
        for tp in tps:
            key = (tp.topic, tp.partition)
            expected = guard.next_expected(key)
            if expected is None:
                expected = await start_of(key)
            try:
                highwater = app.consumer.highwater(tp)  # as of the last fetch: no request
            except AssertionError:  # aiokafka asserts assignment; a rebalance raced us
                return False
            if highwater is not None and expected is not None and highwater > expected:
                return True
        return False

    async def commit_positions() -> dict[Partition, tuple[int | None, int]]:
        """Per partition processed since assignment: (the group's offset in Kafka, next to process).

        Kafka's view, not Faust's: Faust records an offset as committed even when the commit
        failed (rejected across a rebalance), and then never sends it again.
        """
        processed = {}
        for tp in app.consumer.assignment():
            to = guard.next_expected((tp.topic, tp.partition))
            if to is not None:
                processed[(tp.topic, tp.partition)] = to
        if not processed:
            return {}
        committed = await group_offsets(settings)
        return {key: (committed.get(key), to) for key, to in processed.items()}

    async def watch_for_stall() -> None:
        if not readiness(app)[0]:  # recovering or rebalancing: waiting is expected
            watchdog.reset()
            return
        try:
            waiting = await messages_waiting()
        except (KafkaError, OSError, TimeoutError):
            watchdog.reset()  # Kafka is away: a restart would not help, so wait for it
            return
        if watchdog.stalled(waiting):
            restart(f"no messages for {settings.worker_stall_timeout_s:g} s with lag outstanding")
        try:
            positions = await commit_positions()
        except (KafkaError, OSError, TimeoutError):
            return
        if watchdog.commits_stuck(positions):
            restart(f"offsets not committed for {settings.worker_stall_timeout_s:g} s")

    app.timer(interval=max(1.0, settings.worker_stall_timeout_s / 6))(watch_for_stall)

    app.on_partitions_assigned.connect(on_assigned)

    async def held(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
        """Batches whose messages stay unacknowledged until the caller's body completes.

        take_events acks a batch in a `finally`, even when shutdown cancels us mid-write. Each
        message gets an extra reference, so that ack cannot reach the consumer; we let go only
        after the body returned, i.e. after the batch is durable. A batch with a hole before it
        is never released (see agents/offsets.py).
        """
        async for events in stream.take_events(max_, within=within):
            watchdog.batch_started()
            for event in events:
                event.message.incref()
            gap = await guard.check([_raw_message(e) for e in events])
            if gap is not None:
                restart(str(gap))  # does not return: nothing after the hole may be acknowledged
                return
            yield events
            for event in events:
                event.ack()
            watchdog.batch_done()

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
