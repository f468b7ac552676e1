"""`pipeline replay` and `pipeline rebuild`: re-read the raw topic and process it again with
today's code, into the live database (replay) or into an empty one (rebuild)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from pipeline import rebuild
from pipeline.batch import BatchProcessor, EventPublisher
from pipeline.channels import ChannelCache, ChannelStore
from pipeline.cli_common import CliError
from pipeline.errors import DependencyError
from pipeline.kafka import create_pipeline_producer, topic_names
from pipeline.platforms import registry
from pipeline.postgres import create_pool
from pipeline.producer import Producer
from pipeline.publish import Publisher
from pipeline.replay import (
    Checkpoints,
    NeverSeen,
    NoPublisher,
    ReplayRun,
    StatusFilter,
    count_only,
    inline_retries,
    new_run_id,
    processor_handler,
)
from pipeline.replay_plan import (
    STATUSES,
    Filters,
    Plan,
    PlanError,
    Selection,
    make_plan,
    parse_offsets,
    parse_when,
)
from pipeline.replay_reader import KafkaOffsets, create_reader
from pipeline.replay_report import duration, print_plan, progress_line, stamp
from pipeline.settings import Secret, Settings
from pipeline.sink import PostgresSink

# Used for the dry run's time estimate when no --rate caps it (measured on this machine, see
# README "Replay and rebuild").
ESTIMATED_MSGS_PER_S = 800.0
INTERRUPTED = 130


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"--rate {text!r} must be messages/s in (0, 100000]")
    return value


def _batch(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 5000:
        raise argparse.ArgumentTypeError(f"--batch {text!r} must be a number from 1 to 5000")
    return int(text)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    parser.add_argument(
        "--rate", type=_rate, help="at most this many deliveries/s (default: no cap)"
    )
    parser.add_argument("--batch", type=_batch, default=500, help="deliveries per batch (500)")
    parser.add_argument(
        "--allow-gaps",
        action="store_true",
        help="run even though retention deleted part of the range (it is reported either way)",
    )


def add_parsers(sub: Any) -> None:
    replay = sub.add_parser(
        "replay", help="re-process raw-topic deliveries with today's code (dry run by default)"
    )
    replay.add_argument("--from", dest="start", metavar="WHEN", help="ISO time or age (6h, 7d)")
    replay.add_argument("--to", dest="end", metavar="WHEN", help="ISO time or age; exclusive")
    replay.add_argument(
        "--offsets",
        action="append",
        metavar="P:FROM-TO",
        help="explicit offsets, TO exclusive, either end optional (repeatable, or comma-separated)",
    )
    replay.add_argument("--platform", action="append", choices=sorted(registry.ADAPTERS))
    replay.add_argument("--shop", action="append", help="shop id (repeatable)")
    replay.add_argument("--topic", action="append", help="webhook topic, e.g. orders/updated")
    replay.add_argument("--entity", action="append", help="entity id or key, e.g. 820982911946")
    replay.add_argument(
        "--status",
        action="append",
        type=str.upper,
        choices=STATUSES,
        help="only deliveries whose audit row ended so (e.g. DEAD_LETTERED, IGNORED)",
    )
    replay.add_argument("--execute", action="store_true", help="run it (default: print the plan)")
    replay.add_argument(
        "--no-publish", action="store_true", help="do not re-publish canonical events"
    )
    _run_options(replay)
    again = sub.add_parser(
        "rebuild", help="replay the whole raw topic into an empty database (recovery)"
    )
    again.add_argument("--database", required=True, metavar="URL", help="the database to build")
    again.add_argument("--dry-run", action="store_true", help="print the plan only")
    again.add_argument("--publish", action="store_true", help="publish canonical events too")
    again.add_argument(
        "--no-copy-config",
        action="store_true",
        help="do not copy channels, credentials and locations from DATABASE_URL",
    )
    _run_options(again)


@dataclass(frozen=True, slots=True)
class _Job:
    """What this invocation does, whichever command it came from."""

    kind: str
    target: Settings
    execute: bool
    publish: bool


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "replay":
        job = _Job("replay", settings, args.execute, not args.no_publish)
        return await _replay(job, _selection(args), args)
    target = _target(settings, args.database)
    job = _Job("rebuild", target, not args.dry_run, args.publish)
    async with _pool(target, "--database") as pool:
        if job.execute:
            await _prepare_rebuild(settings, pool, args)
    return await _replay(job, Selection(), args)


def _selection(args: argparse.Namespace) -> Selection:
    now = datetime.now(UTC)
    try:
        return Selection(
            start=parse_when(args.start, now) if args.start else None,
            end=parse_when(args.end, now) if args.end else None,
            offsets=parse_offsets(args.offsets) if args.offsets else None,
            filters=Filters(
                platforms=tuple(args.platform or ()),
                shops=tuple(s.strip().lower() for s in args.shop or ()),
                topics=tuple(args.topic or ()),
                entities=tuple(args.entity or ()),
                statuses=tuple(args.status or ()),
            ),
        )
    except PlanError as exc:
        raise CliError(str(exc)) from None


def _target(settings: Settings, url: str) -> Settings:
    if not url.startswith(("postgres://", "postgresql://")):
        raise CliError(f"--database {url!r} is not a postgresql:// URL")
    if url.rstrip("/") == settings.database_dsn.rstrip("/"):
        raise CliError("--database is the live DATABASE_URL; rebuild into another, empty database")
    return settings.with_overrides(database_url=Secret(url))


@asynccontextmanager
async def _pool(settings: Settings, what: str) -> AsyncIterator[asyncpg.Pool]:
    try:
        pool = await create_pool(settings)
    except DependencyError as exc:
        raise CliError(str(exc).replace("DATABASE_URL", what)) from None
    try:
        yield pool
    finally:
        await pool.close()


async def _prepare_rebuild(live: Settings, pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    """Migrate the target; unless resuming, check it is empty and copy the configuration."""
    applied = await rebuild.prepare(pool)
    if applied:
        print(f"migrated the target database: {', '.join(applied)}", file=sys.stderr)
    if args.resume:
        return
    try:
        await rebuild.ensure_empty(pool)
    except rebuild.RebuildError as exc:
        raise CliError(str(exc)) from None
    if not args.no_copy_config:
        async with _pool(live, "DATABASE_URL (or pass --no-copy-config)") as source:
            copied = await rebuild.copy_config(source, pool)
        done = ", ".join(f"{n} {table}" for table, n in copied.items()) or "nothing"
        print(f"copied configuration from DATABASE_URL: {done}", file=sys.stderr)
    if not await rebuild.channel_count(pool):
        raise CliError(
            "the target database has no channels, so every delivery would be dead-lettered; "
            "add them (`pipeline channels add`) or let rebuild copy them from DATABASE_URL"
        )


async def _replay(job: _Job, selection: Selection, args: argparse.Namespace) -> int:
    async with _pool(job.target, "DATABASE_URL" if job.kind == "replay" else "--database") as pool:
        checkpoints = Checkpoints(pool)
        async with _reader(job.target) as consumer:
            plan, resume_from, run_id = await _plan(job, selection, consumer, checkpoints, args)
            print_plan(plan, resume_from, run_id)
            if not job.execute:
                return await _dry_run(job, plan, consumer, pool, args)
            if plan.lost and not args.allow_gaps:
                raise CliError(
                    "retention already deleted part of this range (see above); "
                    "add --allow-gaps to replay what is left",
                    status=1,
                )
            if run_id is None:
                run_id = new_run_id()
                await _guarded(checkpoints.create(run_id, job.kind, plan))
            return await _execute(job, plan, resume_from, run_id, consumer, pool, args)


@asynccontextmanager
async def _reader(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = create_reader(settings)
    try:
        await asyncio.wait_for(consumer.start(), 30)
    except (KafkaError, TimeoutError, OSError) as exc:
        await consumer.stop()
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _guarded(step: Any) -> Any:
    """A checkpoint statement; a database never migrated for replays is a one-line error."""
    try:
        return await step
    except asyncpg.UndefinedTableError:
        raise CliError(
            "the database has no replay_runs table; run `pipeline migrate` first"
        ) from None


async def _plan(
    job: _Job,
    selection: Selection,
    consumer: AIOKafkaConsumer,
    checkpoints: Checkpoints,
    args: argparse.Namespace,
) -> tuple[Plan, dict[int, int], str | None]:
    """A new plan from the selection, or the stored plan and offsets of the run to resume."""
    topic = topic_names(job.target).raw
    if args.resume:
        found = await _guarded(checkpoints.load(args.resume))
        if found is None:
            raise CliError(f"no {job.kind} run {args.resume!r} in the target database", status=1)
        kind, plan, offsets, finished = found
        if kind != job.kind:
            raise CliError(f"run {args.resume} is a {kind}; resume it with `pipeline {kind}`")
        if finished:
            raise CliError(f"run {args.resume} already finished; nothing to resume", status=1)
        return plan, offsets, args.resume
    offsets = KafkaOffsets(consumer, topic)
    try:
        if not await offsets.partitions():
            raise CliError(f"topic {topic} does not exist; run `pipeline topics create`", status=1)
        return await make_plan(offsets, topic, selection), {}, None
    except PlanError as exc:
        raise CliError(str(exc)) from None


async def _dry_run(
    job: _Job, plan: Plan, consumer: AIOKafkaConsumer, pool: asyncpg.Pool, args: argparse.Namespace
) -> int:
    """Read the ranges (processing nothing) to count what matches and when it was received."""
    reader = ReplayRun(
        consumer, plan, count_only, _no_checkpoint, status_filter=_status_filter(plan, pool)
    )
    progress, _ = await reader.run()
    rate = args.rate or ESTIMATED_MSGS_PER_S
    print(f"matching: {progress.matched} deliveries")
    print(f"received: {stamp(progress.first_ms)} .. {stamp(progress.last_ms)}")
    print(f"estimate: {duration(progress.matched / rate)} at {rate:g}/s")
    flag = "--execute" if job.kind == "replay" else "without --dry-run"
    print(f"dry run: nothing was processed; run again {flag} to {job.kind}")
    return 0


async def _no_checkpoint(next_offsets: dict[int, int]) -> None:
    return None


def _status_filter(plan: Plan, pool: asyncpg.Pool) -> StatusFilter | None:
    return StatusFilter(pool, plan.filters.statuses) if plan.filters.statuses else None


async def _execute(
    job: _Job,
    plan: Plan,
    resume_from: dict[int, int],
    run_id: str,
    consumer: AIOKafkaConsumer,
    pool: asyncpg.Pool,
    args: argparse.Namespace,
) -> int:
    print(f"run {run_id}: {job.kind} into {job.target.database_url_masked}", file=sys.stderr)
    producer = create_pipeline_producer(job.target) if job.publish else None
    try:
        if producer is not None:
            await producer.start()
        processor = _processor(job, pool, producer, run_id)
        checkpoints = Checkpoints(pool)
        reader = ReplayRun(
            consumer,
            plan,
            processor_handler(processor),
            lambda offsets: checkpoints.save(run_id, offsets),
            resume_from=resume_from,
            status_filter=_status_filter(plan, pool),
            batch_max=args.batch,
            rate_per_s=args.rate,
            on_progress=progress_line,
        )
        with _stop_on_signals(reader.stop):
            progress, complete = await reader.run()
    finally:
        if producer is not None:
            await producer.stop()
    if not complete:
        command = "pipeline replay" if job.kind == "replay" else "pipeline rebuild --database URL"
        print(
            f"\ninterrupted after {progress.read} message(s); the checkpoint is saved. "
            f"Resume with: {command} --resume {run_id}"
            + (" --execute" if job.kind == "replay" else ""),
            file=sys.stderr,
        )
        return INTERRUPTED
    await checkpoints.finish(run_id)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(progress.statuses.items())) or "none"
    print(
        f"run {run_id} done: read {progress.read}, replayed {progress.processed} in "
        f"{duration(time.monotonic() - progress.started)} "
        f"({progress.rate(time.monotonic()):.0f}/s); audit rows written: {statuses}"
    )
    return 0


def _processor(
    job: _Job, pool: asyncpg.Pool, producer: Producer | None, run_id: str
) -> BatchProcessor:
    """The worker's processor, but: no dedupe table, no retry topics (normalizers are retried
    in place, then dead-lettered into the target database), and the chosen publisher."""
    publisher: EventPublisher = (
        NoPublisher() if producer is None else Publisher(producer, topic_names(job.target))
    )
    return BatchProcessor(
        PostgresSink(pool),
        publisher,
        NeverSeen(),
        channels=ChannelCache(ChannelStore(pool), job.target.channel_cache_ttl_s, miss_ttl_s=0.0),
        max_attempts=1,
        adapters=inline_retries(),
        replay_run=run_id,
    )


class _stop_on_signals:
    """Ctrl-C (and SIGTERM) set `stop`: the batch in flight finishes and is checkpointed."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._loop = asyncio.get_running_loop()

    def __enter__(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._stop.set)

    def __exit__(self, *exc: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)
