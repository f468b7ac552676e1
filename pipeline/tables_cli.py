"""`pipeline tables [show|reset|rebuild]`: the dedupe table's size, emptying it, refilling it.

Reset and rebuild write to the changelog, so they are refused while any worker is in the
consumer group: a running worker would neither see the change nor keep from overwriting it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from pipeline import tables
from pipeline.cli_common import CliError, with_db
from pipeline.kafka import worker_group_state
from pipeline.settings import Settings
from pipeline.topics import DEDUPE_TABLE


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("tables", help="the dedupe table (Faust state): size, reset, rebuild")
    parser.add_argument(
        "action",
        nargs="?",
        default="show",
        choices=["show", "reset", "rebuild"],
        help="show (default): offsets and key counts; reset: empty the table; "
        "rebuild: refill it from Postgres webhook_events within the dedupe window",
    )
    parser.add_argument(
        "--count", action="store_true", help="show: read the changelog for exact live-key counts"
    )
    parser.add_argument("--yes", action="store_true", help="reset: yes, forget every delivery")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "reset" and not args.yes:
        raise CliError("tables reset forgets every remembered delivery; add --yes to do it")
    try:
        if args.action == "show":
            return await _show(settings, args.count)
        await _refuse_while_workers_run(settings, args.action)
        if args.action == "reset":
            return await _reset(settings)
        return await with_db(settings, lambda pool: _rebuild(settings, pool))
    except (KafkaError, TimeoutError, OSError) as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None


async def _refuse_while_workers_run(settings: Settings, action: str) -> None:
    group = await worker_group_state(settings)
    if group.active:
        raise CliError(
            f"refusing tables {action}: {group.members} worker(s) in consumer group "
            f"{group.group} (state {group.state}); stop every worker first"
        )


def span_lines(spans: list[tables.PartitionKeys], counted: bool, cutoff: float) -> list[str]:
    """The per-partition table of `tables show` and its honest total."""
    lines = [
        f"  {'partition':>9}  {'earliest':>10}  {'latest':>10}  {'span':>10}  "
        + ("live keys  expired" if counted else "live keys")
    ]
    for s in spans:
        span = s.latest - s.earliest
        keys = f"{len(s.live):>9}  {s.expired(cutoff):>7}" if counted else f"<= {span}"
        lines.append(f"  {s.partition:>9}  {s.earliest:>10}  {s.latest:>10}  {span:>10}  {keys}")
    total_span = sum(s.latest - s.earliest for s in spans)
    if counted:
        live = sum(len(s.live) for s in spans)
        expired = sum(s.expired(cutoff) for s in spans)
        lines.append(
            f"total: {live} live keys ({expired} older than the window, deleted by the "
            f"worker's expiry as it runs); {total_span} records kept in the changelog"
        )
    else:
        lines.append(
            f"total: at most {total_span} live keys (an upper bound: the offset span also "
            "counts overwritten keys and tombstones until compaction; --count reads the "
            "changelog for the exact figure)"
        )
    return lines


async def _show(settings: Settings, count: bool) -> int:
    group = await worker_group_state(settings)
    started = time.monotonic()
    spans = await (tables.read_changelog(settings) if count else tables.offset_spans(settings))
    print(
        f"dedupe table {DEDUPE_TABLE}: changelog {tables.changelog(settings)}, window "
        f"{settings.dedupe_window_hours:g} h"
    )
    workers = f"{group.members} worker(s)" if group.active else "no worker"
    print(f"consumer group {group.group}: {workers} (state {group.state})")
    print("\n".join(span_lines(spans, count, tables.window_cutoff(settings))))
    if count:
        print(f"read {sum(s.records for s in spans)} records in {time.monotonic() - started:.1f} s")
    return 0


async def _reset(settings: Settings) -> int:
    spans = await tables.read_changelog(settings)
    written = await tables.write(settings, tables.tombstones(spans))
    print(
        f"wrote {written} tombstones on {tables.changelog(settings)}: the next worker starts "
        "with an empty dedupe table (RocksDB workers apply them from their stored offsets)"
    )
    await _warn_if_started(settings)
    return 0


async def _rebuild(settings: Settings, pool: asyncpg.Pool) -> int:
    found = await tables.remembered(pool, settings)
    spans = await tables.read_changelog(settings)
    todo = tables.missing(found, spans)
    written = await tables.write(settings, (r.record() for r in todo))
    print(
        f"{len(found)} deliveries processed within the {settings.dedupe_window_hours:g} h window "
        f"in webhook_events; {len(found) - len(todo)} already in the table; wrote {written} "
        f"to {tables.changelog(settings)}"
    )
    await _warn_if_started(settings)
    return 0


async def _warn_if_started(settings: Settings) -> None:
    group = await worker_group_state(settings)
    if group.active:
        print(
            f"warning: a worker joined {group.group} while this ran; restart it so that it "
            "restores the table from the changelog"
        )
