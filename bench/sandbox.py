"""A throw-away deployment on the real services: its own database, topic prefix and processes.

Shared by the benchmarks (`bench/run.py`, `bench/restart.py`, `bench/ledger/`) and the
integration tests, so each one sets up, observes and tears down the pipeline the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.channels import Channel, ChannelStore
from pipeline.kafka import committed_offsets, delete_prefixed_topics, ensure_topics, topic_names
from pipeline.migrations import migrate
from pipeline.settings import Secret, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_CLI = (sys.executable, "-m", "pipeline.cli")

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(s: Settings, **extra: str) -> dict[str, str]:
    """The environment a `pipeline` subprocess needs to see these settings."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "DATABASE_URL": s.database_dsn,
        "REDIS_URL": s.redis_url.value,
        "PIPELINE_TOPIC_PREFIX": s.topic_prefix,
        "PIPELINE_PARTITIONS": str(s.partitions),
        "PIPELINE_REPLICATION_FACTOR": str(s.replication_factor),
        "TABLE_STORE": s.table_store,
        "TABLE_DATA_DIR": s.table_data_dir,
        "WORKER_WEB_PORT": str(s.worker_web_port),
        "SINK_BATCH_WITHIN_S": str(s.batch_within_s),
        "SINK_BATCH_MAX": str(s.batch_max),
        "KAFKA_SESSION_TIMEOUT_S": str(s.session_timeout_s),
        "WORKER_STALL_TIMEOUT_S": str(s.worker_stall_timeout_s),
        "RETRY_BASE_DELAY_S": str(s.retry_base_delay_s),
        "LOG_FORMAT": "json",
        **extra,
    }


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Process:
    """A `pipeline` subprocess (or another `program`) with one log file per incarnation."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        program: tuple[str, ...] = PIPELINE_CLI,
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_dir = log_dir
        self.program = program
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        path = self.log_dir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(path)
        with path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.program, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the parent, which stops us cleanly
                preexec_fn=_die_with_parent,
            )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, like a crashed pod: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    async def wait_http(self, url: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        async with ClientSession(timeout=ClientTimeout(total=3)) as http:
            while time.monotonic() < deadline:
                if self.exited() is not None:
                    return False
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return True
                except (ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.25)
        return False

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def notes(self) -> Counter[str]:
        """Warnings and worse from this process's JSON logs, by logger, message and error."""
        seen: Counter[str] = Counter()
        for path in self.logs:
            with path.open(errors="replace") as lines:
                for line in lines:
                    if '"level":"INFO"' in line or '"level":"DEBUG"' in line:
                        continue
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(entry, dict) or "msg" not in entry:
                        continue
                    key = f"{entry.get('level')} {entry.get('logger')}: {entry['msg'][:80]}"
                    if "error" in entry:
                        key += f" ({str(entry['error'])[:60]})"
                    seen[f"{self.name}: {key}"] += 1
        return seen


async def retrying(op: Callable[[], Awaitable[T]], attempts: int = 30) -> T:
    """`op`, tried again each second while Postgres (or the network) is unreachable."""
    for _ in range(attempts - 1):
        try:
            return await op()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            await asyncio.sleep(1.0)
    return await op()


@asynccontextmanager
async def sandbox(
    name: str, *, channels: list[Channel], **overrides: object
) -> AsyncIterator[Settings]:
    """Settings for a new migrated database and topic prefix holding `channels`; both removed
    on exit (a removal that fails, e.g. while a service is down, is reported on stderr)."""
    base = load_settings()
    db_name = f"pipeline_{name}_{uuid.uuid4().hex[:8]}"
    server = base.database_dsn.rpartition("/")[0]
    settings = base.with_overrides(
        database_url=Secret(f"{server}/{db_name}"),
        topic_prefix=f"{name}{uuid.uuid4().hex[:6]}.",
        **overrides,
    )
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        await admin.close()
    try:
        await _prepare(settings, channels)
        yield settings
    finally:
        await _drop_database(name, server, db_name)
        await _delete_topics(name, settings)


async def _prepare(settings: Settings, channels: list[Channel]) -> None:
    """Migrate the new database, add `channels` and create the topics."""
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        store = ChannelStore(pool)
        for channel in channels:
            await store.add(channel)
    finally:
        await pool.close()
    await ensure_topics(settings)


async def _drop_database(owner: str, server: str, db_name: str) -> None:
    """A fresh connection, retried: Postgres may have been restarted while the sandbox ran."""
    try:
        admin = await retrying(lambda: asyncpg.connect(f"{server}/postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await admin.close()
    except Exception as exc:
        print(f"{owner}: could not drop database {db_name}: {exc!r}", file=sys.stderr)


async def _delete_topics(owner: str, settings: Settings) -> None:
    """Kafka may be down at the end of a run: a failure is reported, not raised."""
    try:
        await delete_prefixed_topics(settings)
    except Exception as exc:
        print(
            f"{owner}: could not delete topics {settings.topic_prefix}*: {exc!r}", file=sys.stderr
        )


async def end_offsets(settings: Settings, topic: str | None = None) -> dict[int, int]:
    """Partition -> high-water mark of `topic` (the raw topic by default)."""
    topic = topic or topic_names(settings).raw
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def group_lag(settings: Settings) -> dict[int, int]:
    """Raw-topic messages per partition past the worker group's committed offset."""
    committed = await committed_offsets(settings, topic_names(settings).raw)
    ends = await end_offsets(settings)
    return {p: max(0, end - committed.get(p, 0)) for p, end in sorted(ends.items())}
