"""bench/cluster.py: a three-broker KRaft cluster survives a SIGKILLed broker without data loss.

Uses only the cluster's own ports (19092 and up), not the services from `make services`.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from bench.cluster import KafkaCluster

TOPIC = "cluster-check"
PARTITIONS = 3


async def _produce(bootstrap: str, values: range) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,  # retries across the failover must not duplicate
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        sent = [
            await producer.send(TOPIC, str(v).encode(), partition=v % PARTITIONS) for v in values
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, want: int, timeout_s: float = 20.0) -> list[int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got: list[int] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            got += [int(m.value) for msgs in batches.values() for m in msgs]
        return got
    finally:
        await consumer.stop()


async def test_cluster_keeps_acked_writes_across_a_sigkilled_broker() -> None:
    async with asyncio.timeout(120), KafkaCluster() as cluster:
        async with cluster.admin() as admin:
            response = await admin.create_topics(
                [NewTopic(TOPIC, PARTITIONS, 3, topic_configs={"min.insync.replicas": "2"})]
            )
        assert [code for _, code, *_ in response.topic_errors] == [0]
        await cluster.wait_in_sync([TOPIC])

        await _produce(cluster.bootstrap, range(200))

        # Kill the leader of partition 0, so a leader failover is certainly exercised.
        victim = (await cluster.partitions([TOPIC]))[(TOPIC, 0)]["leader"]
        await cluster.kill(victim)
        assert not cluster.running(victim)
        await _produce(cluster.bootstrap, range(200, 400))  # 2 of 3 replicas in sync: enough
        after_kill = await cluster.partitions([TOPIC])
        assert all(victim not in p["isr"] for p in after_kill.values()), after_kill

        await cluster.start_node(victim)
        await cluster.wait_in_sync([TOPIC])

        got = await _read_all(cluster.bootstrap, 400)
        assert len(got) == 400
        assert sorted(got) == list(range(400))
