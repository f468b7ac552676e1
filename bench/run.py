"""Baseline figures, measured in one run on this machine against the real services.

1. Ingress: signed Shopify webhooks/s through `pipeline ingress` (HMAC check, channel lookup,
   acks=all produce) beside a bare aiohttp handler answering 200, same client, same run.
2. End to end: the deliveries from step 1 drained by one `pipeline worker` from the raw topic
   to committed Postgres rows (events/s), plus the worker's peak memory.

Usage: .venv/bin/python -m bench.run [--requests 20000] [--concurrency 64]
Needs `make services`. Uses its own database and topics, and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import orjson
from aiohttp import ClientSession, TCPConnector

from bench.sandbox import ROOT, Process, sandbox, settings_env
from pipeline.channels import Channel
from pipeline.platforms.shopify import delivery_headers
from pipeline.settings import Secret, Settings

SHOP = "bench.myshopify.com"
SECRET = "bench-secret-0123456789"
WORKER_PORT = 18066


def webhook(order_id: int) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(
        {
            "id": order_id,
            "name": f"#{order_id}",
            "email": "bench@example.com",
            "financial_status": "paid",
            "fulfillment_status": None,
            "currency": "USD",
            "total_price": "42.00",
            "created_at": "2026-11-20T10:00:00Z",
            "updated_at": "2026-11-20T10:05:00Z",
            "line_items": [
                {"id": order_id * 10 + k, "sku": f"SKU-{k}", "quantity": 1, "price": "14.00"}
                for k in range(3)
            ],
        }
    )
    headers = {
        **delivery_headers(
            SECRET, body, shop=SHOP, topic="orders/create", webhook_id=str(uuid.uuid4())
        ),
        "Content-Type": "application/json",
    }
    return body, headers


async def wait_ready(proc: Process, url: str, timeout_s: float = 90) -> None:
    if await proc.wait_http(url, timeout_s):
        return
    code = proc.exited()
    if code is not None:
        raise RuntimeError(f"{proc.name} exited with {code}")
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


async def load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> dict[str, float]:
    """POST every request with `concurrency` in flight; all must answer 200."""
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)

    async def client(http: ClientSession) -> None:
        nonlocal failures
        for body, headers in queue:
            started = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - started)

    async with ClientSession(connector=TCPConnector(limit=concurrency)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} requests to {url} did not answer 200")
    latencies.sort()
    return {
        "rps": len(requests) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def bench_ingress(
    settings: Settings, n: int, concurrency: int, log_dir: Path
) -> tuple[dict[str, float], dict[str, float]]:
    warmup = [webhook(1_000_000_000 + i) for i in range(500)]
    requests = [webhook(i + 1) for i in range(n)]
    env = settings_env(settings, LOG_LEVEL="WARNING")
    bare_server = (sys.executable, str(ROOT / "bench" / "bare_server.py"))
    bare = Process("bare", ["18091"], env, log_dir, program=bare_server)
    ingress = Process("ingress", ["ingress", "--port", "18090"], env, log_dir)
    bare.start()
    ingress.start()
    try:
        await wait_ready(bare, "http://127.0.0.1:18091/healthz")
        await wait_ready(ingress, "http://127.0.0.1:18090/healthz")
        await load("http://127.0.0.1:18091/webhooks/shopify", warmup, concurrency)
        bare_figures = await load("http://127.0.0.1:18091/webhooks/shopify", requests, concurrency)
        await load("http://127.0.0.1:18090/webhooks/shopify", warmup, concurrency)
        ingress_figures = await load(
            "http://127.0.0.1:18090/webhooks/shopify", requests, concurrency
        )
    finally:
        for proc in (bare, ingress):
            proc.stop()
    return ingress_figures, bare_figures


async def bench_end_to_end(settings: Settings, expected: int, log_dir: Path) -> dict[str, float]:
    """Start a worker on the filled raw topic; time until every delivery has its audit row."""
    worker = Process("worker", ["worker"], settings_env(settings, LOG_LEVEL="WARNING"), log_dir)
    worker.start()
    assert worker.proc is not None
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        await wait_ready(worker, f"http://127.0.0.1:{settings.worker_web_port}/readyz")
        started = time.perf_counter()
        while (done := await conn.fetchval("SELECT count(*) FROM webhook_events")) < expected:
            if worker.exited() is not None:
                raise RuntimeError(f"worker exited with {worker.exited()}")
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {done}/{expected} stored after 600 s")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        peak_kib = _peak_rss_kib(worker.proc.pid)
        orders = await conn.fetchval("SELECT count(*) FROM orders")
    finally:
        await conn.close()
        worker.stop(60)
    return {
        "events_per_s": expected / elapsed,
        "seconds": elapsed,
        "peak_rss_mib": peak_kib / 1024,
        "orders": orders,
    }


def _peak_rss_kib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return float("nan")


async def report(settings: Settings, requests: int, concurrency: int, log_dir: Path) -> None:
    """Run both benchmarks and print their figures."""
    ingress, bare = await bench_ingress(settings, requests, concurrency, log_dir)
    e2e = await bench_end_to_end(settings, requests + 500, log_dir)
    print(f"machine: {os.cpu_count()} cores; client, server and services share them")
    total = requests + 500
    print(f"requests: {requests}, concurrency {concurrency}")
    print(f"partitions: {settings.partitions}")
    print(f"{'':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, fig in (
        ("bare aiohttp handler (200)", bare),
        ("ingress (HMAC + acks=all produce)", ingress),
    ):
        print(f"{name:<34}{fig['rps']:>10.0f}{fig['p50_ms']:>10.1f}{fig['p99_ms']:>10.1f}")
    print(f"ingress / bare throughput ratio: {ingress['rps'] / bare['rps']:.2f}")
    print(
        f"end to end (raw topic -> committed Postgres rows, 1 worker): "
        f"{e2e['events_per_s']:.0f} events/s ({total} in {e2e['seconds']:.1f} s), "
        f"worker peak RSS {e2e['peak_rss_mib']:.0f} MiB, orders stored {e2e['orders']}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    channel = Channel("shopify", SHOP, Secret(SECRET), "USD")
    tables = str(ROOT / ".run" / "bench-tables")
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        async with sandbox(
            "bench", channels=[channel], table_data_dir=tables, worker_web_port=WORKER_PORT
        ) as settings:
            await report(settings, args.requests, args.concurrency, Path(logs))


if __name__ == "__main__":
    asyncio.run(main())
