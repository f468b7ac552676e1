"""The command line: `python -m bench.ledger --deliveries N ...`; exit status 1 on a bad run."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import bench.ledger
from bench.ledger.config import LedgerConfig
from bench.ledger.result import LedgerResult
from bench.ledger.run import run_ledger


async def _main(cfg: LedgerConfig) -> LedgerResult:
    # SIGTERM (e.g. `timeout`) cancels the run like Ctrl-C does, so the cleanup still runs.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_ledger(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description=(bench.ledger.__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--deliveries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--no-kafka-restart", action="store_true")
    parser.add_argument("--no-postgres-restart", action="store_true")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--send-seconds", type=float, default=None)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--shopify-only", action="store_true")
    args = parser.parse_args()
    cfg = LedgerConfig(
        deliveries=args.deliveries,
        seed=args.seed,
        kills=args.kills,
        workers=args.workers,
        cluster=args.cluster,
        kafka_restart=not args.no_kafka_restart,
        postgres_restart=not args.no_postgres_restart,
        concurrency=args.concurrency,
        partitions=args.partitions,
        send_seconds=args.send_seconds,
        keep_logs=args.keep_logs,
        marketplaces=not args.shopify_only,
    )
    result = asyncio.run(_main(cfg))
    print(result.line())
    print(result.details())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
