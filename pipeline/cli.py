"""The `pipeline` command: migrate, topics, channels, ingress, worker."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

import asyncpg
from aiohttp import web
from aiokafka.errors import KafkaError

from pipeline import dlq_cli
from pipeline.channels import Channel, ChannelStore
from pipeline.cli_common import CliError, with_db
from pipeline.ingress import create_web_app
from pipeline.kafka import TopicMismatch, ensure_topics
from pipeline.logs import configure_logging
from pipeline.migrations import MigrationError, migrate
from pipeline.platforms.registry import ADAPTERS
from pipeline.settings import Secret, Settings, SettingsError, load_settings

_SHOP_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,253}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"pipeline: error: {message}", file=sys.stderr)
    raise SystemExit(status)


async def _migrate(settings: Settings) -> int:
    async def run(pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        print(f"applied {', '.join(applied)}" if applied else "database is up to date")
        return 0

    return await with_db(settings, run)


async def _topics_create(settings: Settings) -> int:
    try:
        created = await ensure_topics(settings)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise CliError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({exc!r})"
        ) from None
    print(f"created {', '.join(created)}" if created else "topics are in place")
    return 0


def _shop(text: str) -> str:
    shop = text.strip().lower()
    if not _SHOP_RE.match(shop):
        raise CliError(f"--shop {text!r} is not a shop id (letters, digits, '.', '-', '_')")
    return shop


def _secret(text: str) -> str:
    secret = sys.stdin.readline().strip() if text == "-" else text
    if len(secret) < 8:
        raise CliError("--secret must be at least 8 characters (use '-' to read it from stdin)")
    return secret


async def _channels(settings: Settings, args: argparse.Namespace) -> int:
    """Validate everything the user typed before touching the database."""
    if args.action == "list":
        return await with_db(settings, _list_channels)
    shop = _shop(args.shop)
    if args.action == "remove":

        async def remove(pool: asyncpg.Pool) -> int:
            if not await ChannelStore(pool).remove(args.platform, shop):
                raise CliError(f"no {args.platform} channel for shop {shop}")
            print(f"removed {args.platform} {shop}")
            return 0

        return await with_db(settings, remove)
    currency = args.currency.upper() if args.currency else None
    if currency is not None and not _CURRENCY_RE.match(currency):
        raise CliError(f"--currency {args.currency!r} is not an ISO 4217 code such as USD")
    channel = Channel(args.platform, shop, Secret(_secret(args.secret)), currency)

    async def add(pool: asyncpg.Pool) -> int:
        if not await ChannelStore(pool).add(channel, replace=args.replace):
            raise CliError(f"{args.platform} shop {shop} exists; pass --replace to change it")
        print(f"saved {args.platform} {shop}")
        return 0

    return await with_db(settings, add)


async def _list_channels(pool: asyncpg.Pool) -> int:
    print(f"{'PLATFORM':<12} {'SHOP':<40} {'CURRENCY':<8} SECRET")
    for ch in await ChannelStore(pool).list():
        print(f"{ch.platform:<12} {ch.shop_id:<40} {ch.currency or '-':<8} {ch.masked_secret}")
    return 0


def _run_ingress(settings: Settings, host: str, port: int) -> int:
    if not 0 < port < 65536:
        raise CliError(f"--port {port} is not a TCP port")
    web.run_app(
        create_web_app(settings),
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=settings.ingress_produce_timeout_s + 2,
        print=None,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Marketplace webhooks to canonical commerce events."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="apply SQL migrations (safe to repeat)")
    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"], help="create missing topics, check the rest")

    channels = sub.add_parser("channels", help="shops whose webhooks are accepted")
    ch_sub = channels.add_subparsers(dest="action", required=True, metavar="ACTION")
    platforms = sorted(ADAPTERS)
    add = ch_sub.add_parser("add", help="add a shop and its webhook secret")
    add.add_argument("--platform", required=True, choices=platforms)
    add.add_argument("--shop", required=True, help="shop id (Shopify: the myshopify.com domain)")
    add.add_argument("--secret", required=True, help="webhook signing secret, or '-' for stdin")
    add.add_argument("--currency", help="the shop's currency (ISO 4217)")
    add.add_argument("--replace", action="store_true", help="overwrite an existing channel")
    ch_sub.add_parser("list", help="list channels (secrets masked)")
    remove = ch_sub.add_parser("remove", help="stop accepting a shop's webhooks")
    remove.add_argument("--platform", required=True, choices=platforms)
    remove.add_argument("--shop", required=True)

    dlq_cli.add_parser(sub)

    ingress = sub.add_parser("ingress", help="serve POST /webhooks/<platform>")
    ingress.add_argument("--host", default="127.0.0.1")
    ingress.add_argument("--port", type=int, default=8080)
    sub.add_parser("worker", help="run the Faust worker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "topics":
            return asyncio.run(_topics_create(settings))
        if args.command == "dlq":
            return asyncio.run(dlq_cli.run(settings, args))
        if args.command == "channels":
            return asyncio.run(_channels(settings, args))
        if args.command == "ingress":
            return _run_ingress(settings, args.host, args.port)
        from agents.worker import run_worker  # the CLI is the one place that reaches into agents

        run_worker(settings)
        return 0
    except CliError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except (MigrationError, TopicMismatch) as exc:
        _fail(str(exc), status=1)


if __name__ == "__main__":
    raise SystemExit(main())
