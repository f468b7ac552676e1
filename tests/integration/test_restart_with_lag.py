"""A worker restarted with lag and a filled dedupe table drains from its first start.

Before agents/faust_consumer.py held the streams during the seek that ends table recovery,
this restart made the offset guard find a hole after the first batch, every time, and the
worker re-executed itself without ever committing (bench/restart.py measures it at scale).
"""

from __future__ import annotations

from pathlib import Path

from bench.restart import run


async def test_a_restart_with_lag_and_a_big_table_drains_without_alarms(tmp_path: Path) -> None:
    figures = await run(keys=20_000, lag=2_000, first=600, timeout_s=150, log_dir=tmp_path)
    assert figures.restarts == 0, figures.line()
    assert not any(figures.alarms.values()), figures.line()
    assert figures.first_commit_s is not None, figures.line()
    assert figures.drained_s is not None, figures.line()
