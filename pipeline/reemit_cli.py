"""`pipeline reemit`: publish stored canonical events again, for a consumer that lost data.

A dry run by default (counts per topic and the time span); `--execute` publishes.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import typing
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from pipeline.cli_common import CliError, shop_arg, time_arg, with_db
from pipeline.kafka import create_pipeline_producer, topic_names
from pipeline.platforms import registry
from pipeline.reemit import (
    PAGE_SIZE,
    EventStore,
    Pace,
    Plan,
    Progress,
    ReemitError,
    ReemitFilter,
    plan_from_counts,
    reemit,
)
from pipeline.settings import Settings
from schemas.decode import RECORDS_BY_SCHEMA

DEFAULT_RATE = 500.0
MAX_RATE = 50_000.0


def event_types() -> list[str]:
    """Every canonical event type the catalogue can carry (`order.created`, ...)."""
    kinds: set[str] = set()
    for record in RECORDS_BY_SCHEMA.values():
        hint = typing.get_type_hints(record)["type"]
        kinds.update(typing.get_args(hint))
    return sorted(kinds)


def entity_types() -> list[str]:
    return sorted({r.entity_type for r in RECORDS_BY_SCHEMA.values()})


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"--rate {text!r} must be a number of events/s in (0, {MAX_RATE:g}]"
        )
    return value


def _after_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--after-id {text!r} must be a whole number >= 0")
    return int(text)


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "reemit",
        help="publish stored canonical events again (dry run unless --execute)",
        description="Publish canonical events from commerce_events to their topics again, "
        "byte for byte as the worker did (same keys, values and event ids). Without "
        "--execute it only says what it would send.",
    )
    cmd.add_argument("--platform", choices=sorted(registry.ADAPTERS))
    cmd.add_argument("--shop", help="shop id (needs --platform)")
    cmd.add_argument(
        "--from",
        dest="since",
        type=time_arg,
        help="recorded at or after (ISO time or an age: 30m, 6h, 7d)",
    )
    cmd.add_argument("--to", dest="until", type=time_arg, help="recorded before")
    cmd.add_argument(
        "--kind",
        action="append",
        choices=event_types(),
        metavar="TYPE",
        help="event type, e.g. order.paid (repeatable)",
    )
    cmd.add_argument("--entity-type", action="append", choices=entity_types(), help="repeatable")
    cmd.add_argument("--entity-id", help="the platform's id of one entity")
    cmd.add_argument(
        "--after-id",
        type=_after_id,
        default=0,
        help="start after this commerce_events id (resume an interrupted run)",
    )
    cmd.add_argument("--rate", type=_rate, default=DEFAULT_RATE, help="events/s (default 500)")
    cmd.add_argument("--execute", action="store_true", help="publish (default: dry run)")


def reemit_filter(args: argparse.Namespace) -> ReemitFilter:
    """The filter the arguments describe; a CliError for a combination that makes no sense."""
    shop = None
    if args.shop is not None:
        if args.platform is None:
            raise CliError("--shop needs --platform (shop ids are per platform)")
        shop = shop_arg(args.platform, args.shop)
    if args.since and args.until and args.since >= args.until:
        raise CliError(
            f"--from {args.since.isoformat()} is not before --to {args.until.isoformat()}"
        )
    return ReemitFilter(
        platform=args.platform,
        shop_id=shop,
        since=args.since,
        until=args.until,
        types=tuple(args.kind or ()),
        entity_types=tuple(args.entity_type or ()),
        entity_id=args.entity_id,
        after_id=args.after_id,
    )


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def render_plan(plan: Plan, where: ReemitFilter, rate: float, *, execute: bool) -> list[str]:
    """What a run is about to send, one topic a line."""
    verb = "re-emitting" if execute else "would re-emit"
    if not plan.total:
        return [f"no stored event matches (after id {where.after_id}); nothing to re-emit"]
    lines = [
        f"{verb} {plan.total} event(s), ids {plan.first_id}..{plan.last_id}, recorded "
        f"{_iso(plan.first_recorded)} .. {_iso(plan.last_recorded)}, at up to {rate:g}/s:",
        f"  {'TOPIC':<40} {'EVENTS':>8}  {'FIRST RECORDED':<25}  LAST RECORDED",
    ]
    for t in plan.topics:
        lines.append(
            f"  {t.topic:<40} {t.events:>8}  {_iso(t.first_recorded):<25}  {_iso(t.last_recorded)}"
        )
    if plan.unknown_schemas:
        lines.append(f"  not re-emittable (unknown schema): {', '.join(plan.unknown_schemas)}")
    if not execute:
        lines.append("dry run: nothing sent; add --execute to publish")
    return lines


def resume_command(args: argparse.Namespace, where: ReemitFilter, last_id: int) -> str:
    """The command that carries on after `last_id`, with times made absolute so an age such
    as 6h means the same window as the first run."""
    parts = ["pipeline", "reemit"]
    if where.platform:
        parts += ["--platform", where.platform]
    if where.shop_id:
        parts += ["--shop", where.shop_id]
    if where.since:
        parts += ["--from", where.since.isoformat()]
    if where.until:
        parts += ["--to", where.until.isoformat()]
    for kind in where.types:
        parts += ["--kind", kind]
    for entity_type in where.entity_types:
        parts += ["--entity-type", entity_type]
    if where.entity_id:
        parts += ["--entity-id", where.entity_id]
    parts += ["--after-id", str(last_id), "--rate", f"{args.rate:g}", "--execute"]
    return shlex.join(parts)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    where = reemit_filter(args)

    async def action(pool: asyncpg.Pool) -> int:
        store = EventStore(pool)
        try:
            counts = await store.count(where)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as exc:
            raise CliError(
                f"the database is not migrated ({exc}); run `pipeline migrate`"
            ) from None
        plan = plan_from_counts(counts, topic_names(settings))
        for line in render_plan(plan, where, args.rate, execute=args.execute):
            print(line)
        if not args.execute or not plan.total:
            return 0
        return await _execute(settings, store, where, plan, args)

    return await with_db(settings, action)


async def _execute(
    settings: Settings,
    store: EventStore,
    where: ReemitFilter,
    plan: Plan,
    args: argparse.Namespace,
) -> int:
    producer = create_pipeline_producer(settings)
    try:
        await producer.start()
    except (KafkaError, OSError) as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None
    progress = Progress(last_id=where.after_id)
    # Fix the window now: a resumed run must not take in events recorded after this one began.
    fixed = where if where.until else replace(where, until=datetime.now(UTC))
    try:
        await reemit(
            store,
            producer,
            topic_names(settings),
            where,
            upto_id=plan.last_id,
            pace=Pace(args.rate),
            progress=progress,
            on_page=lambda p: _report_page(p, plan.total),
            page_size=page_size(args.rate),
        )
    except asyncio.CancelledError:  # Ctrl-C
        print(f"\ninterrupted: {_done(progress)}", file=sys.stderr)
        print(f"resume with: {resume_command(args, fixed, progress.last_id)}", file=sys.stderr)
        raise
    except (ReemitError, KafkaError, asyncpg.PostgresError, OSError) as exc:
        raise CliError(
            f"{exc}; {_done(progress)}; resume with: "
            f"{resume_command(args, fixed, progress.last_id)}",
            status=1,
        ) from None
    finally:
        await producer.stop()
    for topic, count in sorted(progress.per_topic.items()):
        print(f"re-emitted {count} event(s) to {topic}")
    print(
        f"re-emitted {progress.emitted} event(s), acknowledged by Kafka; last id {progress.last_id}"
    )
    return 0


def page_size(rate: float) -> int:
    """About a second of sending per page, so Ctrl-C loses at most that much progress."""
    return max(1, min(PAGE_SIZE, int(rate)))


def _done(progress: Progress) -> str:
    return f"{progress.emitted} event(s) re-emitted and acknowledged, last id {progress.last_id}"


def _report_page(progress: Progress, total: int) -> None:
    print(
        f"re-emitted {progress.emitted}/{total}, last id {progress.last_id}",
        file=sys.stderr,
        flush=True,
    )
