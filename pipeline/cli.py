"""The `pipeline` command: migrate, topics, apps, channels, locations, dlq, orders, schemas,
ingress, worker."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
from aiohttp import web

from pipeline import (
    credentials_cli,
    dlq_cli,
    fx_cli,
    orders_cli,
    reemit_cli,
    replay_cli,
    tables_cli,
    topics_cli,
)
from pipeline.cli_common import CliError, with_db
from pipeline.errors import DependencyError
from pipeline.ingress import create_web_app
from pipeline.kafka import TopicMismatch
from pipeline.logs import configure_logging
from pipeline.migrations import MigrationError, migrate
from pipeline.settings import Settings, SettingsError, load_settings
from schemas.jsonschema import event_schemas, write_schemas


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


def _run_ingress(settings: Settings, host: str | None, port: int | None) -> int:
    host = settings.ingress_host if host is None else host
    port = settings.ingress_port if port is None else port
    if not 0 < port < 65536:
        raise CliError(f"--port {port} is not a TCP port")
    try:
        web.run_app(
            create_web_app(settings),
            host=host,
            port=port,
            access_log=None,
            shutdown_timeout=settings.ingress_produce_timeout_s + 2,
            print=None,
        )
    except DependencyError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRORS and not isinstance(exc, socket.gaierror):
            raise
        raise CliError(_listen_error(host, port, exc)) from None
    return 0


_LISTEN_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def _listen_error(host: str, port: int, exc: OSError) -> str:
    """Why the ingress cannot take `host:port`, and the setting that changes it."""
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is already in use; choose another with --port or INGRESS_PORT"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges); use --port"
    return f"{where}: {exc.strerror or exc}; check --host or INGRESS_HOST"


DISTRIBUTION = "commerce-pipeline"


def _version() -> str:
    """The installed package's version, so `--version` names what is actually running."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed; run `make install`)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Marketplace webhooks to canonical commerce events."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="apply SQL migrations (safe to repeat)")
    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument(
        "action",
        choices=["create", "describe"],
        help="create missing topics, check the rest; or show retention and offsets",
    )
    tables_cli.add_parser(sub)

    credentials_cli.add_parsers(sub)
    reemit_cli.add_parser(sub)
    dlq_cli.add_parser(sub)
    orders_cli.add_parser(sub)
    replay_cli.add_parsers(sub)
    fx_cli.add_parser(sub)
    schemas = sub.add_parser("schemas", help="JSON Schemas of the canonical events")
    schemas.add_argument("action", choices=["export"], help="write or print every event's schema")
    schemas.add_argument("--out", type=Path, help="directory for one <schema>.json per record")

    ingress = sub.add_parser("ingress", help="serve POST /webhooks/<platform>")
    ingress.add_argument("--host", help="address to listen on (default: INGRESS_HOST, 127.0.0.1)")
    ingress.add_argument("--port", type=int, help="TCP port (default: INGRESS_PORT, 8080)")
    sub.add_parser("worker", help="run the Faust worker")
    return parser


def _export_schemas(out: Path | None) -> int:
    """Print every event schema as one JSON object, or write one file each into `out`."""
    schemas = event_schemas()
    if out is None:
        print(json.dumps(schemas, indent=2))
        return 0
    try:
        written = write_schemas(schemas, out)
    except OSError as exc:
        raise CliError(f"cannot write schemas to {out} ({exc.strerror or exc})") from None
    print(f"wrote {len(written)} schemas to {out}")
    return 0


# Commands that are one coroutine given the settings and the parsed arguments.
_ASYNC_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "dlq": dlq_cli.run,
    "orders": orders_cli.run,
    "reemit": reemit_cli.run,
    "fx": fx_cli.run,
    "apps": credentials_cli.run,
    "channels": credentials_cli.run,
    "locations": credentials_cli.run,
    "replay": replay_cli.run,
    "rebuild": replay_cli.run,
    "topics": topics_cli.run,
    "tables": tables_cli.run,
}


def _aliased(argv: list[str]) -> list[str]:
    """`replay --canonical ...` is `reemit ...`: the canonical events again, from Postgres."""
    if argv[:1] == ["replay"] and "--canonical" in argv:
        return ["reemit", *(a for a in argv[1:] if a != "--canonical")]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_aliased(list(sys.argv[1:] if argv is None else argv)))
    try:
        return _run(args)
    except CliError as exc:
        _fail(str(exc), exc.status)
    except DependencyError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except (MigrationError, TopicMismatch) as exc:
        _fail(str(exc), status=1)
    except BrokenPipeError:
        return _stdout_closed()


def _run(args: argparse.Namespace) -> int:
    if args.command == "schemas":  # needs neither settings nor services
        return _export_schemas(args.out)
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format, service=args.command)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command in _ASYNC_COMMANDS:
        return asyncio.run(_ASYNC_COMMANDS[args.command](settings, args))
    if args.command == "ingress":
        return _run_ingress(settings, args.host, args.port)
    from agents.worker import run_worker  # the CLI is the one place that reaches into agents

    run_worker(settings)
    return 0


def _stdout_closed() -> int:
    """The reader went away (`pipeline dlq list | head`): stop quietly, as other commands do,
    instead of a traceback; stdout is pointed at /dev/null so the final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped


if __name__ == "__main__":
    raise SystemExit(main())
