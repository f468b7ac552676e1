"""`pipeline topics create|describe`: make the pipeline's topics as configured, or show them."""

from __future__ import annotations

import argparse

from aiokafka.errors import KafkaError

from pipeline import topics_describe
from pipeline.cli_common import CliError
from pipeline.kafka import align_raw_retention, ensure_topics
from pipeline.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Create (and align the raw topic's retention) or describe; Kafka away is one line."""
    try:
        if args.action == "describe":
            for report in await topics_describe.describe(settings):
                print("\n".join(topics_describe.format_report(report)))
            return 0
        created = await ensure_topics(settings)
        retention = await align_raw_retention(settings)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None
    print(f"created {', '.join(created)}" if created else "topics are in place")
    if retention is not None:
        print(retention)
    return 0
