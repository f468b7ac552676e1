"""The state of one ledger run, shared by the sender, the chaos, the monitor and the checks."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from bench.cluster import KafkaCluster
from bench.ledger.config import LedgerConfig
from bench.ledger.marketplaces import plan_marketplaces
from bench.ledger.result import LedgerResult
from bench.ledger.traffic import plan_traffic
from bench.sandbox import Process, free_port, settings_env
from pipeline.settings import Settings


class Run:
    """State shared by the sender, the chaos and the process monitor."""

    def __init__(
        self, cfg: LedgerConfig, settings: Settings, work: Path, cluster: KafkaCluster | None
    ) -> None:
        self.cfg = cfg
        self.settings = settings
        self.work = work
        self.cluster = cluster  # the three-broker cluster the run owns, or None: the local Kafka
        self.result = LedgerResult(log_dir=str(work / "logs"))
        self.deliveries, self.schedule = plan_traffic(cfg, plan_marketplaces(cfg))
        self.acked = [False] * len(self.deliveries)
        self.tried = [False] * len(self.deliveries)
        self.bad_answers: list[str] = []  # 200s whose body is not what the platform expects
        self.outcomes: Counter[str] = Counter()
        self.stalled = False  # the sender saw no 200 for too long and stopped
        self.dispatched = 0  # highest schedule position handed to a client, plus one
        self.chaos_points: list[int] = []  # schedule position at which each chaos step starts
        self.steps_started = 0
        self.step_running = False
        self.last_step_end = 0.0
        self.chaos_done = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []  # the monitor, then the chaos
        self.started = time.monotonic()
        self.ingress_port = free_port()
        self.ready_urls: dict[str, str] = {}
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.workers = [self._worker(chr(ord("a") + n), logs) for n in range(max(1, cfg.workers))]
        env = settings_env(settings, LOG_LEVEL="INFO")
        self.ingress = Process("ingress", ["ingress", "--port", str(self.ingress_port)], env, logs)
        self.intentional = False  # set while the ledger itself stops a process

    def _worker(self, name: str, logs: Path) -> Process:
        """A worker of the group with its own health port and table directory."""
        own = self.settings.with_overrides(
            worker_web_port=free_port(), table_data_dir=str(self.work / f"tables-{name}")
        )
        env = settings_env(own, LOG_LEVEL="INFO")
        env.pop("PIPELINE_WORKER_RESTARTS", None)  # each worker counts its own self-restarts
        self.ready_urls[name] = f"http://127.0.0.1:{own.worker_web_port}/readyz"
        return Process(f"worker-{name}", ["worker"], env, logs)

    @property
    def processes(self) -> list[Process]:
        return [*self.workers, self.ingress]

    def ready_url(self, worker: Process) -> str:
        return self.ready_urls[worker.name.removeprefix("worker-")]

    def say(self, message: str) -> None:
        if self.cfg.verbose:
            t = time.monotonic() - self.started
            print(f"[ledger {t:7.1f}s] {message}", file=sys.stderr, flush=True)

    def ingress_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ingress_port}{path}"

    def acked_ids(self) -> set[str]:
        return {d.delivery_id for d, ok in zip(self.deliveries, self.acked, strict=True) if ok}
