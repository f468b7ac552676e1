"""`pipeline dlq list | show | replay`: the dead-letter queue from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from pipeline import envelope as envelopes
from pipeline.cli_common import CliError, one_line, time_arg, with_db
from pipeline.dlq import DeadLetterStore, DlqFilter, replay, replay_payload
from pipeline.errors import EnvelopeError
from pipeline.kafka import create_producer, topic_names
from pipeline.platforms import registry
from pipeline.settings import Settings


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(
            f"--rate {text!r} must be a number of messages/s in (0, 10000]"
        )
    return value


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", choices=sorted(registry.ADAPTERS))
    parser.add_argument("--shop", help="shop id")
    parser.add_argument("--error", help="text in the error class or message")
    parser.add_argument(
        "--since", type=time_arg, help="dead-lettered at or after (ISO time or 30m/6h/7d)"
    )
    parser.add_argument("--until", type=time_arg, help="dead-lettered before")
    parser.add_argument("--replayed", action="store_true", help="include letters already replayed")


def add_parser(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list dead letters, oldest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="everything about one dead letter but its body")
    show.add_argument("id", type=int)
    output = show.add_mutually_exclusive_group()
    output.add_argument(
        "--body",
        action="store_true",
        help="print only the webhook body, byte for byte as the marketplace sent it (may hold PII)",
    )
    output.add_argument(
        "--raw",
        action="store_true",
        help="print only the message as stored: the envelope around the body (may hold PII)",
    )
    again = actions.add_parser("replay", help="send dead letters through the pipeline again")
    _filters(again)
    again.add_argument(
        "--id", type=int, action="append", dest="ids", help="only this id (repeatable)"
    )
    again.add_argument("--dry-run", action="store_true", help="print what would be replayed")
    again.add_argument("--rate", type=_rate, default=50.0, help="messages per second (default 50)")


def _where(args: argparse.Namespace) -> DlqFilter:
    return DlqFilter(
        platform=args.platform,
        shop_id=args.shop.strip().lower() if args.shop else None,
        error=args.error,
        since=args.since,
        until=args.until,
        include_replayed=args.replayed,
        ids=tuple(args.ids) if getattr(args, "ids", None) else None,
    )


MESSAGE_WIDTH = 80
_HEADER = (
    f"{'ID':<8} {'DEAD-LETTERED':<26} {'PLATFORM':<11} {'SHOP':<32} {'ERROR':<18} "
    f"{'ATTEMPTS':<8} {'REPLAYED':<26} {'SOURCE':<30} MESSAGE"
)


def _line(row: asyncpg.Record) -> str:
    where = f"{row['source_topic']}[{row['source_partition']}]@{row['source_offset']}"
    replayed = row["replayed_at"].isoformat(timespec="seconds") if row["replayed_at"] else "-"
    return (
        f"{row['id']:<8} {row['created_at'].isoformat(timespec='seconds'):<26} "
        f"{row['platform'] or '-':<11} {row['shop_id'] or '-':<32} {row['error_class']:<18} "
        f"{row['attempts']:<8} {replayed:<26} {where:<30} {one_line(row['error'], MESSAGE_WIDTH)}"
    )


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list" and not 0 < args.limit <= 10_000:
        raise CliError(f"--limit {args.limit} must be between 1 and 10000")

    async def action(pool: asyncpg.Pool) -> int:
        store = DeadLetterStore(pool)
        if args.action == "show":
            return await _show(store, args)
        if args.action == "list":
            rows = await store.page(_where(args), limit=args.limit)
            print(_HEADER)
            for row in rows:
                print(_line(row))
            return 0
        return await _replay(settings, store, _where(args), args)

    return await with_db(settings, action)


_LETTER_FIELDS = (
    "id",
    "platform",
    "shop_id",
    "topic",
    "delivery_id",
    "error_class",
    "error",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "created_at",
    "replayed_at",
    "replay_count",
)


async def _show(store: DeadLetterStore, args: argparse.Namespace) -> int:
    row = await store.get(args.id)
    if row is None:
        raise CliError(f"no dead letter with id {args.id}")
    payload = bytes(row["payload"])
    if args.raw:
        _write_exactly(payload)
    elif args.body:
        _write_exactly(webhook_body(args.id, payload))
    else:
        for name, value in [*((n, row[n]) for n in _LETTER_FIELDS), *envelope_fields(payload)]:
            # A multi-line value (an error with its context) stays in the value column.
            print(f"{name + ':':<18} " + str(value).replace("\n", "\n" + " " * 19))
    return 0


def webhook_body(letter_id: int, payload: bytes) -> bytes:
    """The body the marketplace sent, out of a dead letter's envelope; a CliError when the
    letter is not an envelope (then only `--raw` can show it)."""
    try:
        return envelopes.decode(payload).body
    except EnvelopeError as exc:
        raise CliError(
            f"dead letter {letter_id} is not an envelope ({exc}), so it holds no webhook body; "
            f"`pipeline dlq show {letter_id} --raw` prints it as stored"
        ) from None


def envelope_fields(payload: bytes) -> list[tuple[str, object]]:
    """What the envelope of a dead letter says besides the body (which may hold PII)."""
    try:
        item = envelopes.decode(payload)
    except EnvelopeError as exc:
        return [("payload_bytes", len(payload)), ("envelope", f"none ({exc})")]
    received = datetime.fromtimestamp(item.received_at_ms / 1000, UTC)
    return [
        ("payload_bytes", len(payload)),
        ("received_at", received.isoformat(timespec="milliseconds")),
        ("entity_key", item.entity_key),
        ("event_id", item.event_id or "-"),
        ("api_version", item.api_version or "-"),
        ("triggered_at", item.triggered_at or "-"),
        ("malformed", item.malformed),
        ("attempt", item.attempt),
        ("replay", item.replay),
        ("body_bytes", len(item.body)),
    ]


def _write_exactly(data: bytes) -> None:
    """`data` byte for byte on stdout, so it can be saved and checked (a signature, a diff);
    a terminal also gets a final newline when `data` lacks one."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    if sys.stdout.isatty() and not data.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.buffer.flush()


class _Progress:
    """A progress line on stderr: redrawn on a terminal, every 10% otherwise."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.tty = sys.stderr.isatty()
        self.last_tenth = -1

    def __call__(self, done: int) -> None:
        share = done / self.total
        bar = "#" * int(share * 30)
        text = f"replayed {done}/{self.total} [{bar:<30}] {share:.0%}"
        if self.tty:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
        elif int(share * 10) != self.last_tenth:
            self.last_tenth = int(share * 10)
            print(text, file=sys.stderr, flush=True)


async def _replay(
    settings: Settings, store: DeadLetterStore, where: DlqFilter, args: argparse.Namespace
) -> int:
    total = await store.count(where)
    if args.dry_run:
        print(
            f"would replay {total} dead letter(s) to {topic_names(settings).raw} "
            f"at up to {args.rate:g}/s:"
        )
        async for row in store.all(where):
            try:
                replay_payload(row)
                print(_line(row))
            except ValueError as exc:
                print(f"{row['id']:<8} cannot replay: {exc}")
        return 0
    if not total:
        print("nothing to replay")
        return 0
    producer = create_producer(settings)
    try:
        await producer.start()
    except KafkaError as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None
    progress = _Progress(total)
    try:
        report = await replay(
            store,
            producer,
            topic_names(settings).raw,
            where,
            rate_per_s=args.rate,
            on_progress=progress,
        )
    except asyncio.CancelledError:  # Ctrl-C: what was marked replayed stays done
        print("\ninterrupted; run the same command again to replay the rest", file=sys.stderr)
        raise
    finally:
        await producer.stop()
    if progress.tty:
        print(file=sys.stderr)
    for reason in report.skipped or []:
        print(f"skipped: {reason}", file=sys.stderr)
    print(
        f"replayed {report.replayed} dead letter(s); they take the normal path from "
        f"{topic_names(settings).raw}"
    )
    return 0
