"""Two workers in one group, one started and one SIGKILLed mid-stream: every delivery stored,
the group's lag back to 0 soon after the drain, and no supervision alarm or self-restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.restart import ALARMS, SECRET, SHOP, produce_orders, wait_stored
from bench.sandbox import Process, free_port, group_lag, sandbox, settings_env
from pipeline.channels import Channel
from pipeline.settings import Secret, Settings

ORDERS = 3_000


async def lag_zero_within(settings: Settings, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    lag = await group_lag(settings)
    while any(lag.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        lag = await group_lag(settings)
    return lag


async def test_a_rebalance_and_a_kill_mid_stream_lose_nothing_and_leave_no_lag(
    tmp_path: Path,
) -> None:
    channel = Channel("shopify", SHOP, Secret(SECRET), "USD")
    async with sandbox(
        "rebal",
        channels=[channel],
        partitions=6,
        session_timeout_s=6.0,
        table_data_dir=str(tmp_path / "tables"),
    ) as settings:
        workers = []
        for name in ("a", "b"):
            own = settings.with_overrides(
                worker_web_port=free_port(), table_data_dir=str(tmp_path / name)
            )
            env = settings_env(own, LOG_LEVEL="INFO")
            workers.append((Process(name, ["worker"], env, tmp_path), own.worker_web_port))
        (a, a_port), (b, b_port) = workers
        await produce_orders(settings, 1, ORDERS)
        a.start()
        try:
            assert await a.wait_http(f"http://127.0.0.1:{a_port}/readyz", 90), a.log_text()[-3000:]
            b.start()  # joins while a works through the lag: a rebalance mid-stream
            assert await b.wait_http(f"http://127.0.0.1:{b_port}/readyz", 90), b.log_text()[-3000:]
            await produce_orders(settings, ORDERS + 1, ORDERS)
            a.kill()  # b takes a's partitions after the session timeout
            assert await wait_stored(settings, 2 * ORDERS, 120), b.log_text()[-3000:]
            lag = await lag_zero_within(settings, settings.session_timeout_s + 10)
        finally:
            b.stop()
            a.stop()
        logs = a.log_text() + b.log_text()
        assert not any(lag.values()), f"lag after the drain: {lag}"
        alarms = {name: logs.count(f'"alarm":"{name}"') for name in ALARMS}
        assert not any(alarms.values()), alarms
        assert "restarting the worker" not in logs
