"""Restart with a big dedupe table and lag: does the worker make progress from its first start?

1. Fills the dedupe table's changelog with K keys (as a day of traffic would leave it), then
   runs a worker over a first batch of deliveries until the group has committed all of them,
   and stops it (SIGTERM), as a deploy does. The first worker restores the K keys as any
   worker that had written them would hold them: in memory, or in RocksDB on its disk
   (`TABLE_DATA_DIR`, which survives the restart like a StatefulSet's volume).
2. Produces L more deliveries while no worker runs: the lag a restarted worker finds.
3. Starts the worker again and reports the time to ready, to the first commit, and to lag 0,
   and how often the offset guard or the stall watchdog fired (each must be 0).

Usage: .venv/bin/python -m bench.restart [--keys 100000] [--lag 5000] [--first 2000]
       [--store memory|rocksdb]
Needs `make services`. Uses its own database and topics, and removes them afterwards.
Exit status 1 when the lag does not drain or an alarm fired.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from agents.supervision import ALARMS
from bench.sandbox import ROOT, Process, free_port, group_lag, retrying, sandbox, settings_env
from pipeline.channels import Channel
from pipeline.envelope import Envelope, encode
from pipeline.kafka import committed_offsets, topic_names
from pipeline.settings import Secret, Settings

SHOP = "restart.myshopify.com"
SECRET = "restart-secret-0123456789"


@dataclass(frozen=True, slots=True)
class RestartFigures:
    keys: int
    lag: int
    ready_s: float
    first_commit_s: float | None
    drained_s: float | None
    alarms: dict[str, int]
    restarts: int
    store: str = "memory"

    def line(self) -> str:
        def fmt(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        alarms = ", ".join(f"{name} {count}" for name, count in self.alarms.items())
        return (
            f"store {self.store}, dedupe keys {self.keys}, lag at start {self.lag}: ready after "
            f"{fmt(self.ready_s)}, first commit after {fmt(self.first_commit_s)}, lag 0 after "
            f"{fmt(self.drained_s)}; alarms: {alarms}; self-restarts {self.restarts}"
        )

    @property
    def ok(self) -> bool:
        return self.drained_s is not None and not any(self.alarms.values()) and not self.restarts


def _order(order_id: int) -> bytes:
    return orjson.dumps(
        {
            "id": order_id,
            "name": f"#{order_id}",
            "financial_status": "paid",
            "currency": "USD",
            "total_price": "42.00",
            "created_at": "2026-11-20T10:00:00Z",
            "updated_at": "2026-11-20T10:05:00Z",
            "line_items": [{"id": order_id * 10, "sku": "SKU-1", "quantity": 1, "price": "42.00"}],
        }
    )


async def produce_orders(settings: Settings, first_id: int, count: int) -> None:
    """`count` order deliveries straight onto the raw topic, as the ingress would put them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        raw = topic_names(settings).raw
        sends = []
        for order_id in range(first_id, first_id + count):
            entity = f"shopify:{SHOP}:order:{order_id}"
            envelope = Envelope(
                platform="shopify",
                shop_id=SHOP,
                topic="orders/create",
                delivery_id=str(uuid.uuid4()),
                received_at_ms=int(time.time() * 1000),
                entity_key=entity,
                body=_order(order_id),
            )
            sends.append(await producer.send(raw, encode(envelope), key=entity.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def fill_dedupe_table(settings: Settings, keys: int) -> None:
    """`keys` remembered deliveries on the table's changelog, spread over its partitions."""
    changelog = topic_names(settings).dedupe_changelog(settings.app_id)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        now = time.time()
        sends = []
        for n in range(keys):
            partition = n % settings.partitions
            key = f"shopify|{SHOP}|old-{n}"  # Envelope.dedupe_key
            sends.append(
                await producer.send(
                    changelog,
                    orjson.dumps([now, partition]),
                    key=orjson.dumps(key),
                    partition=partition,
                )
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def stored_count(settings: Settings) -> int:
    """Audit rows in the sandbox's database, asked on a new connection (Postgres may restart)."""
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM webhook_events"))
    finally:
        await conn.close()


async def wait_stored(settings: Settings, expected: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await retrying(partial(stored_count, settings)) >= expected:
            return True
        await asyncio.sleep(0.5)
    return False


async def wait_lag_zero(settings: Settings, timeout_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not any((await group_lag(settings)).values()):
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    return None


async def measure_restart(settings: Settings, worker: Process, timeout_s: float) -> RestartFigures:
    """Start `worker` on a group with lag; time readiness, the first commit and lag 0."""
    raw = topic_names(settings).raw
    before = await committed_offsets(settings, raw)
    lag = sum((await group_lag(settings)).values())
    started = time.monotonic()
    worker.start()
    url = f"http://127.0.0.1:{settings.worker_web_port}/readyz"
    await worker.wait_http(url, timeout_s)
    ready_s = time.monotonic() - started
    first_commit_s = drained_s = None
    while time.monotonic() - started < timeout_s:
        now = await committed_offsets(settings, raw)
        if first_commit_s is None and now != before:
            first_commit_s = time.monotonic() - started
        if not any((await group_lag(settings)).values()):
            drained_s = time.monotonic() - started
            break
        await asyncio.sleep(0.25)
    text = worker.log_text()
    return RestartFigures(
        keys=0,
        lag=lag,
        ready_s=ready_s,
        first_commit_s=first_commit_s,
        drained_s=drained_s,
        alarms={name: text.count(f'"alarm":"{name}"') for name in ALARMS},
        restarts=text.count("restarting the worker"),
    )


STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}


async def run(
    keys: int, lag: int, first: int, timeout_s: float, log_dir: Path, store: str = "memory"
) -> RestartFigures:
    channel = Channel("shopify", SHOP, Secret(SECRET), "USD")
    with tempfile.TemporaryDirectory(prefix="restart-") as tmp:
        async with sandbox(
            "restart",
            channels=[channel],
            partitions=6,
            worker_web_port=free_port(),
            table_data_dir=str(Path(tmp) / "tables"),
            table_store=STORES[store],
        ) as settings:
            env = settings_env(settings, LOG_LEVEL="INFO")
            worker = Process("worker", ["worker"], env, Path(tmp))
            filling = time.monotonic()
            await fill_dedupe_table(settings, keys)
            print(f"filled {keys} keys in {time.monotonic() - filling:.1f} s", file=sys.stderr)
            await produce_orders(settings, 1, first)
            cold = time.monotonic()
            worker.start()
            url = f"http://127.0.0.1:{settings.worker_web_port}/readyz"
            if await worker.wait_http(url, timeout_s):
                # No local state yet: what a pod on a new volume (or any memory worker) pays.
                print(f"first start: ready after {time.monotonic() - cold:.1f} s", file=sys.stderr)
            if not await wait_stored(settings, first, timeout_s):
                raise RuntimeError(
                    f"first {first} deliveries not stored:\n{worker.log_text()[-4000:]}"
                )
            if await wait_lag_zero(settings, 60) is None:
                raise RuntimeError("the first run never committed its deliveries")
            worker.stop()
            await produce_orders(settings, first + 1, lag)
            restarted = Process("restarted", ["worker"], env, Path(tmp))
            try:
                figures = await measure_restart(settings, restarted, timeout_s)
            finally:
                restarted.stop()
            if not figures.ok:
                kept = log_dir / "restarted.log"
                kept.write_text(restarted.log_text())
                print(f"worker log: {kept}", file=sys.stderr)
            return replace(figures, keys=keys, store=store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--lag", type=int, default=5_000)
    parser.add_argument("--first", type=int, default=2_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--store", choices=sorted(STORES), default="memory")
    parser.add_argument("--logs", type=Path, default=ROOT / ".run" / "bench-logs")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(run(args.keys, args.lag, args.first, args.timeout, args.logs, args.store))
    print(figures.line())
    sys.exit(0 if figures.ok else 1)


if __name__ == "__main__":
    main()
