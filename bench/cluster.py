"""A throw-away multi-broker Kafka 3.9.1 KRaft cluster on loopback, for tests and chaos runs.

Separate from the single broker `scripts/services.sh` runs on 9092: its own ports (six
consecutive free ones from 19092 up, unless given), its own data in a work directory, and the
JVMs are children of this process (they get SIGTERM if it dies, even by SIGKILL). It uses the
same cached jars as `scripts/services/kafka.sh` and fetches them through
`scripts/services.sh fetch-kafka` when they are missing.

Every node runs in combined mode (broker + controller), so with three nodes any one of them can
be SIGKILLed and the quorum and every partition (replication factor 3, `min.insync.replicas=2`)
stay writable with `acks=all`.

All methods that wait are coroutines and must be called from the thread that runs the event
loop: the JVMs are forked from the calling thread, and Linux's parent-death signal fires when
*that thread* exits, so forking from a short-lived worker thread would kill the broker with it.

    async with KafkaCluster() as cluster:           # start(); close() on exit
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        ...
        await cluster.kill(2)                       # SIGKILL
        await cluster.start_node(2)                 # back with its data; waits until rejoined
        await cluster.wait_in_sync(["orders"])      # every replica back in the ISR
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code

from bench.sandbox import _die_with_parent

ROOT = Path(__file__).resolve().parent.parent
SERVICES_SCRIPT = ROOT / "scripts" / "services.sh"
KAFKA_FILES = ROOT / "scripts" / "services" / "kafka"
KAFKA_VERSION = "3.9.1"
DEFAULT_FIRST_PORT = 19092
DEFAULT_HEAP = "-Xms128m -Xmx384m"
# C1 only (TieredStopAtLevel=1): three JVMs on two cores start in ~10 s instead of ~15 s;
# plenty fast for loopback tests. Pass `jvm_flags` for the full JIT.
DEFAULT_JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
LOG_TAIL_LINES = 40


class KafkaClusterError(RuntimeError):
    """A node did not start, died, or did not come back in time (the message has its log tail)."""


def kafka_cache_dir() -> Path:
    """Where `scripts/services/kafka.sh` caches the jars (${XDG_CACHE_HOME:-~/.cache}/pipeline)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipeline" / f"kafka-{KAFKA_VERSION}"


def _jars_cached(cache: Path) -> bool:
    """The same completeness test as kafka.sh's `kafka_fetch_jars` (marker = sha256 of the pom)."""
    marker = cache / ".complete"
    want = hashlib.sha256((KAFKA_FILES / "pom.xml").read_bytes()).hexdigest()
    return (
        marker.is_file()
        and marker.read_text().strip() == want
        and (cache / "libs" / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    )


def ensure_kafka_jars(timeout_s: float = 900.0) -> Path:
    """Return the jar directory, downloading it first via `scripts/services.sh fetch-kafka`.

    Blocking (the first download runs Maven for minutes); no child outlives the call, so it is
    safe to run in `asyncio.to_thread`.
    """
    cache = kafka_cache_dir()
    if not _jars_cached(cache):
        done = subprocess.run(
            [str(SERVICES_SCRIPT), "fetch-kafka"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0 or not _jars_cached(cache):
            raise KafkaClusterError(
                f"`{SERVICES_SCRIPT} fetch-kafka` failed (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
    return cache / "libs"


def random_cluster_id() -> str:
    """A Kafka cluster id, as `StorageTool random-uuid` makes it: a UUID in unpadded base64url."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka's Uuid.randomUuid() avoids these too
            return cid


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # Java sets SO_REUSEADDR on its server sockets, so TIME_WAIT leftovers do not matter.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _lock_port(port: int) -> IO[bytes] | None:
    """An advisory per-port lock so two clusters in parallel never pick the same ports."""
    path = Path(tempfile.gettempdir()) / f"pipeline-kafka-cluster-port-{port}.lock"
    fh = path.open("ab")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def reserve_ports(count: int, first: int | None = None) -> tuple[int, list[IO[bytes]]]:
    """`count` consecutive free loopback ports: (base, held locks).

    With `first` given, exactly those ports or an error; otherwise scan from 19092 upwards.
    The locks only keep other `KafkaCluster`s away; release them by closing the files.
    """
    base = DEFAULT_FIRST_PORT if first is None else first
    while base + count <= 65536:
        locks: list[IO[bytes]] = []
        bad = None
        for port in range(base, base + count):
            lock = _lock_port(port)
            if lock is None or not _port_free(port):
                if lock is not None:
                    lock.close()
                bad = port
                break
            locks.append(lock)
        if bad is None:
            return base, locks
        for lock in locks:
            lock.close()
        if first is not None:
            raise KafkaClusterError(f"port {bad} (of {base}..{base + count - 1}) is not free")
        base = bad + 1
    raise KafkaClusterError(f"no {count} consecutive free ports from {DEFAULT_FIRST_PORT}")


@dataclass
class _Node:
    """One broker+controller JVM: fixed ports and directory, one log file per incarnation."""

    node_id: int
    port: int
    controller_port: int
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    wanted: bool = False  # started by us and not (yet) killed or stopped on purpose

    @property
    def conf(self) -> Path:
        return self.home / "server.properties"

    @property
    def data(self) -> Path:
        return self.home / "data"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last error lines (a stack trace can push the cause out of the tail) and the tail."""
        for path in (*reversed(self.logs), self.home / "format.log"):
            if path.exists():
                all_lines = path.read_text(errors="replace").splitlines()
                errors = [ln for ln in all_lines if " ERROR " in ln or " FATAL " in ln][-5:]
                text = all_lines[-lines:]
                head = "".join(f"{ln}\n" for ln in errors if ln not in text)
                if head:
                    head = f"----- last error lines of {path} -----\n{head}"
                return head + f"----- last {len(text)} lines of {path} -----\n" + "\n".join(text)
        return f"(no log for node {self.node_id} in {self.home})"


class KafkaCluster:
    """`nodes` Kafka 3.9.1 brokers in KRaft combined mode on 127.0.0.1, as child processes.

    Node `i` (1-based) listens for clients on `base_port + 2*(i-1)` and for the controller
    quorum on the port after it. Node ids are 1..nodes. The defaults make topics replicated
    (factor min(3, nodes), `min.insync.replicas` min(2, factor)); `overrides` adds or replaces
    broker properties. `heap` and `jvm_flags` are the brokers' JVM options. `work_dir` defaults
    to a new temporary directory; `close()` removes what this class created there unless
    `keep=True`. The ports are reserved (free, and locked against other instances) here, in the
    constructor; `close()` releases them.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        nodes: int = 3,
        base_port: int | None = None,
        heap: str = DEFAULT_HEAP,
        jvm_flags: Sequence[str] = DEFAULT_JVM_FLAGS,
        overrides: Mapping[str, str] | None = None,
        ready_timeout_s: float = 120.0,
        keep: bool = False,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.base_port, self._port_locks = reserve_ports(2 * nodes, base_port)
        self._owns_dir = work_dir is None or not work_dir.exists()
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="kafka-cluster-")) if work_dir is None else work_dir
        )
        self.heap = heap
        self.jvm_flags = tuple(jvm_flags)
        self.overrides = dict(overrides or {})
        self.ready_timeout_s = ready_timeout_s
        self.keep = keep
        self._nodes = {
            i: _Node(
                node_id=i,
                port=self.base_port + 2 * (i - 1),
                controller_port=self.base_port + 2 * (i - 1) + 1,
                home=self.work_dir / f"node-{i}",
            )
            for i in range(1, nodes + 1)
        }
        self.cluster_id: str | None = None
        self._libs: Path | None = None

    # ----- addresses and state -------------------------------------------------------------

    @property
    def node_ids(self) -> list[int]:
        return list(self._nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's client address: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"."""
        return ",".join(f"127.0.0.1:{n.port}" for n in self._nodes.values())

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self._node(node).port}"

    def running(self, node: int) -> bool:
        return self._node(node).running()

    def pid(self, node: int) -> int | None:
        proc = self._node(node).proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def log_path(self, node: int) -> Path | None:
        """The current (or last) incarnation's log file of a node."""
        logs = self._node(node).logs
        return logs[-1] if logs else None

    def log_tail(self, node: int, lines: int = LOG_TAIL_LINES) -> str:
        return self._node(node).log_tail(lines)

    # ----- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Configure, format (first time only) and start every node; return when all are ready.

        Ready means: each node answers a metadata request listing all the nodes, and the admin
        client (bootstrapped with `bootstrap`) sees them too. Raises `KafkaClusterError` with the
        log tail when a node exits or the deadline (`ready_timeout_s`) passes; the nodes already
        started are then killed again. Calling it again after `stop_all()` restarts the cluster
        on its existing data.
        """
        self._libs = await asyncio.to_thread(ensure_kafka_jars)
        self.cluster_id = self._existing_cluster_id() or random_cluster_id()
        for node in self._nodes.values():
            node.home.mkdir(parents=True, exist_ok=True)
            node.conf.write_text(self._properties(node))
        formats = [self._format(node) for node in self._nodes.values()]
        for result in await asyncio.gather(*formats, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        try:
            for node in self._nodes.values():
                if not node.running():
                    self._spawn(node)
            deadline = time.monotonic() + self.ready_timeout_s
            everyone = set(self._nodes)
            for node in self._nodes.values():
                await self._wait_listed(node, everyone, deadline)
            await self._wait_admin_sees(everyone, deadline)
        except BaseException:
            await asyncio.gather(*(self.kill(i) for i in self._nodes))
            raise

    async def kill(self, node: int) -> None:
        """SIGKILL one node, like a crashed machine, and reap it."""
        n = self._node(node)
        n.wanted = False
        if n.proc is None or n.proc.poll() is not None:
            return
        n.proc.send_signal(signal.SIGKILL)
        await _wait_exit(n.proc, 30.0)

    async def stop(self, node: int, timeout_s: float = 30.0) -> int | None:
        """SIGTERM one node (controlled shutdown) and wait; SIGKILL after `timeout_s`.

        Returns the exit code (None if it was not running).
        """
        n = self._node(node)
        n.wanted = False
        if n.proc is None or n.proc.poll() is not None:
            return None
        n.proc.send_signal(signal.SIGTERM)
        if not await _wait_exit(n.proc, timeout_s):
            n.proc.kill()
            await _wait_exit(n.proc, 30.0)
        return n.proc.returncode

    async def start_node(self, node: int, timeout_s: float | None = None) -> None:
        """Start a stopped or killed node on its existing data; return once it has rejoined.

        Rejoined means: it answers a metadata request on its own port that lists itself (a broker
        lists only unfenced brokers, itself included), and every other running node lists it.
        Its replicas may still be catching up: use `wait_in_sync` for that.
        """
        n = self._node(node)
        if n.running():
            raise KafkaClusterError(f"node {node} is already running (pid {self.pid(node)})")
        if self._libs is None:
            raise KafkaClusterError("start() the cluster before start_node()")
        self._spawn(n)
        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)
        await self._wait_listed(n, {node}, deadline)
        for other in self._nodes.values():
            if other is not n and other.running():
                await self._wait_listed(other, {node}, deadline)

    async def stop_all(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every running node at once, wait, SIGKILL what is left. Data is kept."""
        running = [n.node_id for n in self._nodes.values() if n.running()]
        await asyncio.gather(*(self.stop(i, timeout_s) for i in running))

    async def close(self) -> None:
        """Stop every node, remove the work directory (unless `keep`) and free the ports.

        With `keep` the nodes get a controlled shutdown (`stop_all`); otherwise their data is
        about to be deleted anyway, so they are SIGKILLed, which is much faster.
        """
        try:
            if self.keep:
                await self.stop_all()
            else:
                await asyncio.gather(*(self.kill(i) for i in self._nodes))
        finally:
            if not self.keep:
                if self._owns_dir:
                    shutil.rmtree(self.work_dir, ignore_errors=True)
                else:
                    for n in self._nodes.values():
                        shutil.rmtree(n.home, ignore_errors=True)
            for lock in self._port_locks:
                lock.close()
            self._port_locks = []

    async def __aenter__(self) -> KafkaCluster:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----- topic helpers -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def admin(self, **kwargs: Any) -> AsyncIterator[AIOKafkaAdminClient]:
        """A started aiokafka admin client on this cluster, closed on exit."""
        client = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **kwargs)
        await client.start()
        try:
            yield client
        finally:
            await client.close()

    async def partitions(self, topics: Iterable[str]) -> dict[tuple[str, int], dict[str, Any]]:
        """(topic, partition) -> {"leader", "replicas", "isr"} as the cluster metadata has it."""
        async with self.admin(request_timeout_ms=10_000) as admin:
            described = await admin.describe_topics(list(topics))
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for topic in described:
            if topic["error_code"]:
                error = for_code(topic["error_code"]).__name__
                raise KafkaClusterError(f"topic {topic['topic']}: {error}")
            for p in topic["partitions"]:
                out[(topic["topic"], p["partition"])] = {
                    "leader": p["leader"],
                    "replicas": list(p["replicas"]),
                    "isr": list(p["isr"]),
                }
        return out

    async def wait_in_sync(self, topics: Iterable[str], timeout_s: float = 60.0) -> None:
        """Wait until every partition of `topics` has a leader and all its replicas in the ISR."""
        topics = list(topics)
        deadline = time.monotonic() + timeout_s
        problem = "no answer"
        while True:
            try:
                parts = await self.partitions(topics)
            except (KafkaClusterError, KafkaError, OSError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"  # e.g. topic not known there yet
            else:
                lagging = [
                    f"{t}[{p}] leader={d['leader']} isr={d['isr']} replicas={d['replicas']}"
                    for (t, p), d in sorted(parts.items())
                    if d["leader"] < 0 or set(d["isr"]) != set(d["replicas"])
                ]
                if parts and not lagging:
                    return
                problem = "; ".join(lagging) or "no partitions"
            if time.monotonic() >= deadline:
                raise KafkaClusterError(f"{topics} not in sync after {timeout_s}s: {problem}")
            await asyncio.sleep(0.25)

    # ----- internals -----------------------------------------------------------------------

    def _node(self, node: int) -> _Node:
        try:
            return self._nodes[node]
        except KeyError:
            raise ValueError(f"no node {node}; nodes are {self.node_ids}") from None

    def _existing_cluster_id(self) -> str | None:
        for n in self._nodes.values():
            meta = n.data / "meta.properties"
            if meta.is_file():
                for line in meta.read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.partition("=")[2].strip()
        return None

    def _properties(self, node: _Node) -> str:
        replication = min(3, len(self._nodes))
        min_isr = min(2, replication)
        voters = ",".join(
            f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes.values()
        )
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": str(replication),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(replication),
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": str(replication),
            "transaction.state.log.min.isr": str(min_isr),
            "transaction.state.log.num.partitions": "3",
            "group.initial.rebalance.delay.ms": "0",
            # A SIGKILLed broker leaves the ISRs when the controller fences it: 6 s, not 9 s.
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "6000",
            # Three JVMs share two cores.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "num.recovery.threads.per.data.dir": "1",
            **self.overrides,
        }
        header = f"# Generated by bench/cluster.py: node {node.node_id} of {len(self._nodes)}\n"
        return header + "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, *args: str) -> list[str]:
        assert self._libs is not None
        return ["java", *args, "-cp", f"{self._libs}/*"]

    async def _format(self, node: _Node) -> None:
        """Format the node's storage with the shared cluster id (keeps an existing one)."""
        assert self.cluster_id is not None
        log = node.home / "format.log"
        tool_log4j = f"-Dlog4j.configuration=file:{KAFKA_FILES / 'tools-log4j.properties'}"
        cmd = [
            *self._java("-Xmx128m", "-XX:TieredStopAtLevel=1", tool_log4j),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(node.conf),
            "--ignore-formatted",
        ]
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
            code = await proc.wait()
        if code != 0:
            raise KafkaClusterError(
                f"storage format of node {node.node_id} failed (exit {code})\n{node.log_tail()}"
            )

    def _spawn(self, node: _Node) -> None:
        path = node.home / f"kafka-{len(node.logs)}.log"
        node.logs.append(path)
        cmd = [
            *self._java(
                *shlex.split(self.heap),
                *self.jvm_flags,
                f"-Dlog4j.configuration=file:{KAFKA_FILES / 'log4j.properties'}",
            ),
            "kafka.Kafka",
            str(node.conf),
        ]
        node.wanted = True
        with path.open("ab") as log:
            node.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches only us; we stop the nodes
                preexec_fn=_die_with_parent,
            )

    def _check_alive(self) -> None:
        """Raise if a node that should be running has exited."""
        for n in self._nodes.values():
            if n.wanted and n.proc is not None and n.proc.poll() is not None:
                n.wanted = False
                code = n.proc.returncode
                raise KafkaClusterError(f"node {n.node_id} exited with {code}\n{n.log_tail()}")

    async def _wait_listed(self, node: _Node, expect: set[int], deadline: float) -> None:
        """Poll `node` until its metadata lists every id in `expect`."""
        seen: set[int] | None = None
        while True:
            self._check_alive()
            if not node.running():
                raise KafkaClusterError(f"node {node.node_id} is not running")
            seen = await _brokers_seen_by(node.port)
            if seen is not None and expect <= seen:
                return
            if time.monotonic() >= deadline:
                what = "not answering" if seen is None else f"lists brokers {sorted(seen)}"
                raise KafkaClusterError(
                    f"node {node.node_id} (127.0.0.1:{node.port}) not ready in time: {what}, "
                    f"want {sorted(expect)}\n{node.log_tail()}"
                )
            await asyncio.sleep(0.25)

    async def _wait_admin_sees(self, expect: set[int], deadline: float) -> None:
        seen: set[int] = set()
        while True:
            self._check_alive()
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with self.admin(request_timeout_ms=5_000) as admin:
                    described = await admin.describe_cluster()
                seen = {b["node_id"] for b in described["brokers"]}
                if expect <= seen:
                    return
            if time.monotonic() >= deadline:
                raise KafkaClusterError(
                    f"admin client sees brokers {sorted(seen)}, want {sorted(expect)}"
                )
            await asyncio.sleep(0.25)


async def _brokers_seen_by(port: int) -> set[int] | None:
    """Node ids in one node's own metadata answer, or None if it does not answer (yet)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    client = AIOKafkaClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3_000)
    try:
        await asyncio.wait_for(client.bootstrap(), 5.0)
        return {b.nodeId for b in client.cluster.brokers()}
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await client.close()


async def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Poll until the process has exited (and is reaped); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True
