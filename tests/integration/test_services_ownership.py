"""Local services belong to the checkout that started them (issue #9).

Two copies of `scripts/` stand for two checkouts of the repo on one machine. Checkout A starts
Kafka, Postgres and Redis on ports of its own (never the defaults, which other checkouts use) and
a shared Postgres data directory, as the default `/var/tmp/pipeline/postgres-<port>` is shared;
`stop` in checkout B must leave them all running and `status` in B must name A as their owner.
A second test deletes checkout A under its running Postgres: B must see it as gone, leave it on
`stop` and adopt it on `start-postgres`. Everything started here is stopped on teardown, even
when an assertion fails (the scripts' own `stop`, then a kill of what holds a test-unique path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.sandbox import ROOT, free_port

pytestmark = pytest.mark.integration

DEFAULT_PORTS = {9092, 9093, 5432, 6379}  # the machine's own services: never touched here
SERVICES = ("kafka", "postgres", "redis")


@dataclass
class Machine:
    """The endpoints and shared directories both checkouts see."""

    kafka_port: int
    pg_port: int
    redis_port: int
    pg_data: Path
    env: dict[str, str]

    def ports(self) -> dict[str, int]:
        return {"kafka": self.kafka_port, "postgres": self.pg_port, "redis": self.redis_port}

    def answers(self, service: str) -> bool:
        probe = ROOT / "scripts" / "services" / "probe.py"
        done = subprocess.run(
            [sys.executable, str(probe), service, "127.0.0.1", str(self.ports()[service])],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return done.returncode == 0


@dataclass
class Checkout:
    path: Path
    machine: Machine

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert not set(self.machine.ports().values()) & DEFAULT_PORTS
        assert self.machine.kafka_port + 1 not in DEFAULT_PORTS
        return subprocess.run(
            ["bash", str(self.path / "scripts" / "services.sh"), command],
            env=self.machine.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, command: str) -> str:
        done = self.run(command)
        assert done.returncode == 0, f"{self.path}: {command}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def status(self) -> dict[str, str]:
        """`status`, one line per service: {"kafka": "kafka: up (ours, pid 1) ...", ...}."""
        out = self.run("status").stdout
        lines = {line.split(":", 1)[0]: line for line in out.splitlines() if ":" in line}
        assert set(SERVICES) <= set(lines), out
        return lines


def _free_kafka_port() -> int:
    """A port whose successor (the KRaft controller's) is free too."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_leftovers(paths: list[str], redis_port: int) -> list[str]:
    """TERM (then KILL) whatever the scripts under test failed to stop: processes whose command
    line holds one of these test-unique paths, and the redis-server on this test's port."""
    assert redis_port not in DEFAULT_PORTS

    def ours(cmd: str) -> bool:
        words = cmd.split()
        if words[:1] == ["redis-server"] and f"127.0.0.1:{redis_port}" in words:
            return True
        return any(path in cmd for path in paths)

    found = {
        int(p.name): cmd
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != os.getpid()
        for cmd in [_cmdline(int(p.name))]
        if ours(cmd)
    }
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in found):
        time.sleep(0.2)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [f"{pid}: {cmd}" for pid, cmd in found.items()]


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    # The postgres user must reach the data directory: not under pytest's private tmp.
    pg_root = Path("/var/tmp") / f"pipeline-test-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    m = Machine(_free_kafka_port(), free_port(), free_port(), pg_root / "postgres", env)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{m.kafka_port}",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{m.pg_port}/pipeline",
        REDIS_URL=f"redis://127.0.0.1:{m.redis_port}/0",
        PIPELINE_PG_DATA=str(m.pg_data),
        PIPELINE_PG_FAST="1",
        PIPELINE_OWNERS_DIR=str(tmp_path / "owners"),
        PIPELINE_SERVICES_TIMEOUT="60",
    )
    try:
        yield m
    finally:
        leftovers = _kill_leftovers([f"{m.pg_data}", f"{tmp_path}/"], m.redis_port)
        shutil.rmtree(pg_root, ignore_errors=True)
        if leftovers:
            print("killed after the scripts' own stop:\n" + "\n".join(leftovers))


@pytest.fixture
def checkout(machine: Machine, tmp_path: Path) -> Iterator[Callable[[str], Checkout]]:
    """checkout(name): a fresh copy of scripts/ (its run dir defaults to <copy>/.run)."""
    made: list[Checkout] = []

    def make(name: str) -> Checkout:
        path = tmp_path / name
        shutil.copytree(ROOT / "scripts", path / "scripts")
        made.append(Checkout(path, machine))
        return made[-1]

    yield make
    for c in made:  # the scripts' own stop first; the machine fixture kills what remains
        owners = c.path / ".run" / "owners"
        if owners.is_dir() and any(owners.iterdir()):
            c.run("stop")


def test_stop_in_a_second_checkout_leaves_the_first_ones_services_running(
    machine: Machine, checkout: Callable[[str], Checkout]
) -> None:
    a, b = checkout("a"), checkout("b")
    a.ok("start")
    for name, line in a.status().items():
        assert line.startswith(f"{name}: up (ours, pid "), line

    b_start = b.ok("start")  # finds all three running: starts nothing
    b_stop = b.ok("stop")
    for name in SERVICES:
        assert machine.answers(name), f"{name} stopped by the other checkout:\n{b_stop}"
    for name in SERVICES:
        port = machine.ports()[name]
        assert f"{name}: ready on 127.0.0.1:{port} (another checkout: {a.path}" in b_start, b_start
        assert f"{name}: left running (another checkout: {a.path}" in b_stop, b_stop
    for name, line in b.status().items():
        assert line.startswith(f"{name}: up (another checkout: {a.path}, pid "), line
    for command in ("stop-postgres", "restart-postgres", "stop-kafka", "restart-kafka"):
        refused = b.run(command)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"another checkout: {a.path}" in refused.stderr, refused.stderr
    a_status = a.status()
    for name in SERVICES:
        assert machine.answers(name), name
        assert a_status[name].startswith(f"{name}: up (ours, pid "), a_status

    a.ok("restart-postgres")  # the owner still may (the ledger's outages rely on it)
    assert machine.answers("postgres")
    pid = a.status()["postgres"].split("pid ")[1].split(",")[0]
    assert b.status()["postgres"].startswith(
        f"postgres: up (another checkout: {a.path}, pid {pid})"
    )

    a.ok("stop")
    for name, line in a.status().items():
        assert not machine.answers(name), name
        assert line.startswith(f"{name}: down"), line


def test_a_deleted_checkouts_postgres_is_adopted_by_the_next_start(
    machine: Machine, checkout: Callable[[str], Checkout]
) -> None:
    a, b = checkout("a"), checkout("b")
    a.ok("start-postgres")
    shutil.rmtree(a.path)  # its owner can no longer stop it: an orphan
    line = b.status()["postgres"]
    assert line.startswith(f"postgres: up (another checkout: {a.path}, gone;"), line
    b.ok("stop")
    assert machine.answers("postgres"), "stop adopted the orphan: only start may"

    adopted = b.ok("start-postgres")
    assert f"adopted from {a.path}" in adopted, adopted
    assert b.status()["postgres"].startswith("postgres: up (ours, pid "), b.status()
    b.ok("stop-postgres")
    assert not machine.answers("postgres")
