"""One ledger run from start to end: sandbox, processes, traffic and chaos, checks, clean-up."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg

from agents.supervision import ALARMS
from bench.cluster import KafkaCluster
from bench.ledger.chaos import chaos, chaos_plan, monitor, services_ours
from bench.ledger.config import COMMIT_WITHIN_S, SECRET, SHOP, STALL_TIMEOUT_S, LedgerConfig
from bench.ledger.diagnose import diagnose, diagnose_lag, settled_lag
from bench.ledger.marketplaces import CALLBACK_URL, SHOPS
from bench.ledger.reconcile import drain, reconcile
from bench.ledger.result import LedgerResult
from bench.ledger.sender import Sender, send_stock
from bench.ledger.state import Run
from bench.sandbox import sandbox
from pipeline.channels import AppCredential, Channel, ChannelStore
from pipeline.settings import Secret


async def run_ledger(cfg: LedgerConfig) -> LedgerResult:
    """Set up a database and topics, run the traffic and the chaos, reconcile, clean up.
    With `cfg.cluster` the pipeline runs on its own three-broker cluster (replication 3)."""
    work = Path(tempfile.mkdtemp(prefix="ledger-"))
    if not cfg.cluster:
        return await _run_in_sandbox(cfg, work, None)
    async with KafkaCluster(work / "cluster") as cluster:
        return await _run_in_sandbox(cfg, work, cluster)


async def _run_in_sandbox(
    cfg: LedgerConfig, work: Path, cluster: KafkaCluster | None
) -> LedgerResult:
    kafka: dict[str, object] = {}
    if cluster is not None:
        kafka = {"kafka_bootstrap_servers": cluster.bootstrap, "replication_factor": 3}
    run: Run | None = None
    try:
        async with sandbox(
            "ledger",
            channels=[Channel("shopify", SHOP, Secret(SECRET), "USD")],
            partitions=cfg.partitions,
            session_timeout_s=8.0,
            worker_stall_timeout_s=STALL_TIMEOUT_S,
            table_data_dir=str(work / "tables"),
            **kafka,
        ) as settings:
            if cfg.marketplaces:
                await _register_marketplaces(settings.database_dsn)
            run = Run(cfg, settings, work, cluster)
            db_name = settings.database_dsn.rpartition("/")[2]
            run.say(
                f"{cfg.deliveries} deliveries, {len(run.schedule)} posts, db {db_name}, "
                f"topics {settings.topic_prefix}*, logs {work / 'logs'}"
            )
            try:
                await _exercise(run)
            finally:
                await _stop(run)
    except BaseException:
        _keep_or_remove_logs(run, work, failed=True)
        raise
    _keep_or_remove_logs(run, work)
    return run.result


async def _register_marketplaces(dsn: str) -> None:
    """The other platforms' apps and channels, as an operator adds them."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        store = ChannelStore(pool)
        for platform, shop in SHOPS.items():
            if not shop.app_key:
                await store.add(Channel(platform, shop.shop_id, Secret(shop.secret), shop.currency))
                continue
            callback = CALLBACK_URL if platform == "shopee" else None
            app = AppCredential(platform, shop.app_key, Secret(shop.secret), callback_url=callback)
            await store.add_app(app)
            await store.add(
                Channel(platform, shop.shop_id, currency=shop.currency, app_key=shop.app_key)
            )
    finally:
        await pool.close()


async def _exercise(run: Run) -> None:
    """Everything between the set-up and the clean-up, in order."""
    await _start(run)
    await send_stock(run)
    plan = await _plan_chaos(run)
    await _send_through_chaos(run, plan)
    conn = await asyncpg.connect(run.settings.database_dsn)
    try:
        await drain(run, conn)
        await reconcile(run, conn)
    finally:
        await conn.close()
    await _check_commits(run)
    run.tasks[0].cancel()  # the monitor: no restarts while the logs are read
    _read_logs(run)
    await _check_run(run)


async def _start(run: Run) -> None:
    for proc in run.processes:
        proc.start()
    if not await run.ingress.wait_http(run.ingress_url("/healthz"), 60):
        raise RuntimeError(f"ingress did not start; log {run.ingress.logs[-1]}")
    for worker in run.workers:
        if not await worker.wait_http(run.ready_url(worker), 90):
            raise RuntimeError(f"{worker.name} did not become ready; log {worker.logs[-1]}")


async def _plan_chaos(run: Run) -> list[tuple[float, str]]:
    plan = chaos_plan(run, await asyncio.to_thread(services_ours))
    run.say("chaos plan: " + ", ".join(f"{s} at {a:.0%}" for a, s in plan))
    for skipped in run.result.skipped:
        run.say(f"skipped {skipped}")
    return plan


async def _send_through_chaos(run: Run, plan: list[tuple[float, str]]) -> None:
    run.tasks = [asyncio.create_task(monitor(run)), asyncio.create_task(chaos(run, plan))]
    began = time.monotonic()
    await Sender(run).send_all()
    run.result.send_s = time.monotonic() - began
    await run.tasks[1]  # already done: the gate made the sender wait for it
    run.say(f"sent in {run.result.send_s:.1f} s; draining")


async def _check_commits(run: Run) -> None:
    """The worker group must commit the whole raw topic within COMMIT_WITHIN_S of the drain,
    by itself; if not, say what sits past the commit."""
    result = run.result
    result.uncommitted = await settled_lag(run.settings, COMMIT_WITHIN_S)
    if any(result.uncommitted.values()):
        result.problems.append(
            f"the worker group has not committed the whole raw topic {COMMIT_WITHIN_S:g} s "
            f"after the drain (uncommitted messages per partition: {result.uncommitted})"
        )
        try:
            result.diagnosis += await diagnose_lag(run, result.uncommitted)
        except Exception as exc:
            result.diagnosis += f"lag diagnosis failed: {exc!r}\n"


def _read_logs(run: Run) -> None:
    notes = sum((proc.notes() for proc in run.processes), Counter[str]())
    run.result.log_notes = dict(notes.most_common(12))
    run.result.gap_restarts = sum(n for k, n in notes.items() if "skipped or stalled" in k)
    text = "".join(worker.log_text() for worker in run.workers)
    alarms = {name: text.count(f'"alarm":"{name}"') for name in ALARMS}
    run.result.alarms = {name: n for name, n in alarms.items() if n}
    if run.result.gap_restarts or run.result.alarms:
        run.result.problems.append(
            f"supervision fired: {run.result.alarms}, {run.result.gap_restarts} self-restarts"
        )


async def _check_run(run: Run) -> None:
    """The run itself must have gone as planned; a loss or duplicate is diagnosed."""
    result = run.result
    if run.stalled:
        ready = await run.ingress.wait_http(run.ingress_url("/readyz"), 3)
        result.problems.append(f"ingress /readyz answers {'200' if ready else 'not ready'}")
    if not result.drained:
        result.problems.append("the pipeline did not drain in time")
    if result.crashes:
        result.problems.append(f"{len(result.crashes)} unexpected process exits")
    if result.missing or result.duplicated:
        try:
            result.diagnosis = await diagnose(run)
        except Exception as exc:
            result.diagnosis = f"diagnosis failed: {exc!r}"


async def _stop(run: Run) -> None:
    for task in run.tasks:
        task.cancel()
    # The chaos task restarts whatever it stopped in its own `finally`; wait for that.
    await asyncio.gather(*run.tasks, return_exceptions=True)
    run.intentional = True
    for proc in run.processes:
        proc.stop()


def _keep_or_remove_logs(run: Run | None, work: Path, *, failed: bool = False) -> None:
    """Logs stay for a failed or broken-off run (or when asked for); otherwise the work
    directory goes."""
    if run is not None and (failed or not run.result.ok or run.cfg.keep_logs):
        logs = [str(p) for proc in run.processes for p in proc.logs]
        run.say("logs kept: " + " ".join(logs))
    else:
        shutil.rmtree(work, ignore_errors=True)
