"""A worker on a three-broker cluster (replication 3, min.insync.replicas 2) rides out losing
one broker, then two at once: every delivery stored, lag 0 after, and no self-restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.cluster import KafkaCluster
from bench.restart import ALARMS, SECRET, SHOP, produce_orders, wait_stored
from bench.sandbox import Process, free_port, group_lag, sandbox, settings_env
from pipeline.channels import Channel
from pipeline.settings import Secret, Settings

BATCH = 1_000


async def produce_through(settings: Settings, first_id: int, count: int) -> None:
    """Produce like the ingress would, retrying while the cluster has no quorum."""
    deadline = time.monotonic() + 90
    while True:
        try:
            await produce_orders(settings, first_id, count)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def test_losing_one_broker_then_two_is_ridden_out(tmp_path: Path) -> None:
    channel = Channel("shopify", SHOP, Secret(SECRET), "USD")
    async with (
        KafkaCluster(tmp_path / "cluster") as cluster,
        sandbox(
            "failover",
            channels=[channel],
            kafka_bootstrap_servers=cluster.bootstrap,
            replication_factor=3,
            partitions=3,
            session_timeout_s=8.0,
            worker_web_port=free_port(),
            table_data_dir=str(tmp_path / "tables"),
        ) as settings,
    ):
        worker = Process("worker", ["worker"], settings_env(settings), tmp_path)
        worker.start()
        try:
            url = f"http://127.0.0.1:{settings.worker_web_port}/readyz"
            assert await worker.wait_http(url, 120), worker.log_text()[-3000:]
            await produce_through(settings, 1, BATCH)
            await cluster.kill(1)  # one of three: not an outage
            await produce_through(settings, BATCH + 1, BATCH)
            await cluster.start_node(1)
            await cluster.kill(2)
            await cluster.kill(3)  # two at once: no quorum, an outage
            await asyncio.sleep(3)
            await asyncio.gather(cluster.start_node(2), cluster.start_node(3))
            await produce_through(settings, 2 * BATCH + 1, BATCH)
            stored = await wait_stored(settings, 3 * BATCH, 180)
            lag = await _lag_zero_within(settings, 20)
        finally:
            worker.stop()
        log = worker.log_text()
        assert stored, log[-4000:]
        assert not any(lag.values()), f"lag {lag}\n{log[-4000:]}"
        assert "restarting the worker" not in log, log[-4000:]
        assert "a dependency went away" not in log, log[-4000:]
        assert not any(f'"alarm":"{name}"' in log for name in ALARMS), log[-4000:]


async def _lag_zero_within(settings: Settings, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            lag = await group_lag(settings)
        except Exception:
            lag = {-1: -1}
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(0.5)
