"""The Kafka side of a replay: a consumer that belongs to no group, the raw topic's offsets for
planning, and the planned ranges of all partitions read as one stream in timestamp order."""

from __future__ import annotations

from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.outcomes import RawMessage
from pipeline.settings import Settings

FETCH_TIMEOUT_MS = 500


def create_reader(settings: Settings) -> AIOKafkaConsumer:
    """A consumer with no group: it reads assigned partitions and never commits anything."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        client_id=f"{settings.app_id}-replay",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


class KafkaOffsets:
    """The raw topic's partitions and offsets as the planner needs them."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    def _tps(self, partitions: list[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in partitions]

    async def partitions(self) -> list[int]:
        # aiokafka has no public call for a fresh topic's partitions without subscribing.
        cluster = await self._consumer._client.fetch_all_metadata()
        return sorted(cluster.partitions_for_topic(self._topic) or ())

    async def beginning(self, partitions: list[int]) -> dict[int, int]:
        found = await self._consumer.beginning_offsets(self._tps(partitions))
        return {tp.partition: int(o) for tp, o in found.items()}

    async def end(self, partitions: list[int]) -> dict[int, int]:
        found = await self._consumer.end_offsets(self._tps(partitions))
        return {tp.partition: int(o) for tp, o in found.items()}

    async def for_time(self, partitions: list[int], ms: int) -> dict[int, int | None]:
        found = await self._consumer.offsets_for_times({tp: ms for tp in self._tps(partitions)})
        return {tp.partition: None if o is None else int(o.offset) for tp, o in found.items()}


class Merge:
    """The planned ranges of every partition as one stream in Kafka timestamp order, the order
    the ingress accepted the deliveries in: stock and products then come before the orders that
    reserve them, as they did live, even when they sit in another partition."""

    def __init__(
        self, consumer: AIOKafkaConsumer, topic: str, ranges: dict[int, tuple[int, int]]
    ) -> None:
        self._consumer = consumer
        self.topic = topic
        self._tps = {p: TopicPartition(topic, p) for p in ranges}
        self._stops = {p: stop for p, (_, stop) in ranges.items()}
        self._fetched = {p: start for p, (start, _) in ranges.items()}  # next offset to fetch
        self._buffers: dict[int, deque[Any]] = {p: deque() for p in ranges}
        consumer.assign(list(self._tps.values()))
        for p, (start, _) in ranges.items():
            consumer.seek(self._tps[p], start)

    @property
    def done(self) -> bool:
        return all(self._exhausted(p) and not self._buffers[p] for p in self._tps)

    def _exhausted(self, p: int) -> bool:
        return self._fetched[p] >= self._stops[p]

    async def fill(self, want: int) -> None:
        """Fetch until every unfinished partition has `want` records buffered (a fetch may
        bring one partition only), within a few fetches, so batches come out full."""
        for _ in range(len(self._tps) + 1):
            hungry = [
                p for p in self._tps if not self._exhausted(p) and len(self._buffers[p]) < want
            ]
            if not hungry:
                return
            fetched = await self._consumer.getmany(
                *(self._tps[p] for p in hungry), timeout_ms=FETCH_TIMEOUT_MS, max_records=want
            )
            for tp, records in fetched.items():
                self._keep(tp.partition, records)
            if not fetched:
                await self._skip_gaps(hungry)
                return

    def _keep(self, p: int, records: list[Any]) -> None:
        for record in records:
            if record.offset >= self._stops[p]:
                break
            self._buffers[p].append(record)
        if records:
            self._fetched[p] = min(records[-1].offset + 1, self._stops[p])

    async def _skip_gaps(self, partitions: list[int]) -> None:
        """A gap in offsets (a transaction marker) may hide a partition's stop itself."""
        for p in partitions:
            if not self._exhausted(p) and not self._buffers[p]:
                self._fetched[p] = min(await self._consumer.position(self._tps[p]), self._stops[p])

    def take(self, limit: int) -> tuple[list[RawMessage], dict[int, int]]:
        """Up to `limit` records, oldest first, while every unfinished partition has one to
        compare; and the next offset of each partition taken from."""
        batch: list[RawMessage] = []
        next_offsets: dict[int, int] = {}
        while len(batch) < limit:
            if any(not self._buffers[p] and not self._exhausted(p) for p in self._tps):
                break
            heads = [(b[0].timestamp, p) for p, b in self._buffers.items() if b]
            if not heads:
                break
            _, p = min(heads)
            record = self._buffers[p].popleft()
            batch.append(RawMessage(record.value, record.key, self.topic, p, record.offset))
            next_offsets[p] = record.offset + 1
        for p in self._tps:  # partitions read to their stop record that too
            if self._exhausted(p) and not self._buffers[p]:
                next_offsets.setdefault(p, self._stops[p])
        return batch, next_offsets
