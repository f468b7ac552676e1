"""The ledger at a small N: every delivery answered 200 is in Postgres exactly once, after the
worker was SIGKILLed twice and Postgres and Kafka were each stopped and started mid-stream."""

from __future__ import annotations

import time

from bench.ledger import LedgerConfig, run_ledger


async def test_ledger_survives_kills_and_restarts() -> None:
    started = time.monotonic()
    config = LedgerConfig(
        deliveries=600, seed=7, kills=2, partitions=3, send_seconds=25, stall_s=30
    )
    result = await run_ledger(config)
    elapsed = time.monotonic() - started
    report = f"{result.line()}\n{result.details()}\nlogs: {result.log_dir}"
    print(report)
    assert result.sent == config.deliveries, report
    assert result.acknowledged == result.sent, report
    assert (result.missing, result.duplicated, result.wrong_state) == (0, 0, 0), report
    assert result.wrong_reservations == 0, report
    assert result.kills_done == config.kills, report
    assert not result.problems, report
    assert elapsed < 170, f"took {elapsed:.0f} s\n{report}"
