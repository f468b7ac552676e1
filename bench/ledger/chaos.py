"""The chaos: worker SIGKILLs and service outages at planned points, and the process monitor."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time

from bench.ledger.state import Run
from bench.sandbox import ROOT

SERVICES = ROOT / "scripts" / "services.sh"


def services_ours() -> dict[str, bool]:
    """Which services scripts/services.sh started itself (only those may be stopped)."""
    out = subprocess.run(
        ["bash", str(SERVICES), "status"], capture_output=True, text=True, check=False
    ).stdout
    return {
        name: any(line.startswith(f"{name}: up (ours") for line in out.splitlines())
        for name in ("kafka", "postgres")
    }


def _services(command: str) -> None:
    """Blocking on purpose (run in a thread): a cancelled ledger still lets it finish."""
    done = subprocess.run(
        ["bash", str(SERVICES), command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"services.sh {command} failed:\n{done.stdout}{done.stderr}")


def chaos_plan(run: Run, ours: dict[str, bool]) -> list[tuple[float, str]]:
    """The steps (kills, then the restarts allowed) shuffled, each at a share of the schedule.

    On a three-broker cluster, Kafka's restart becomes two steps: one broker lost (not an
    outage with replication 3) and, later, two lost at once (an outage: no quorum)."""
    cfg = run.cfg
    steps = ["kill"] * cfg.kills
    restarts = [("postgres", cfg.postgres_restart)]
    if run.cluster is not None:
        steps += ["broker", "brokers"] if cfg.kafka_restart else []
    else:
        restarts.append(("kafka", cfg.kafka_restart))
    for name, wanted in restarts:
        if not wanted:
            continue
        if ours[name]:
            steps.append(name)
        else:
            run.result.skipped.append(
                f"{name} restart: `scripts/services.sh status` does not show {name} as "
                "started by that script (reused, remote or down), so it is left alone"
            )
    rng = random.Random(cfg.seed + 2)
    rng.shuffle(steps)
    lo, hi = 0.08, 0.8
    width = (hi - lo) / max(1, len(steps))
    plan = [(lo + i * width + rng.uniform(0.1, 0.6) * width, step) for i, step in enumerate(steps)]
    run.chaos_points = [int(at * len(run.schedule)) for at, _ in plan]
    return plan


async def chaos(run: Run, plan: list[tuple[float, str]]) -> None:
    """Each step once the sender has dispatched up to its point; the first failure ends them."""
    step = "?"
    try:
        for point, (_, step) in zip(run.chaos_points, plan, strict=True):
            while run.dispatched < point:
                await asyncio.sleep(0.02)
            run.steps_started += 1
            run.step_running = True
            if step == "kill":
                await kill_worker(run)
            elif step in ("broker", "brokers"):
                await lose_brokers(run, 1 if step == "broker" else 2)
            else:
                await outage(run, step)
            run.step_running = False
            run.last_step_end = time.monotonic()
    except Exception as exc:
        run.result.problems.append(f"chaos step {step} failed: {exc}")
        run.say(f"chaos step {step} failed, no more chaos: {exc}")
    finally:
        run.step_running = False
        run.steps_started = len(run.chaos_points)
        run.chaos_done.set()


async def kill_worker(run: Run) -> None:
    """SIGKILL one worker of the group (the others take its partitions: a rebalance under
    load), then start it again, as a pod's supervisor would."""
    worker = random.Random(run.cfg.seed + run.result.kills_done).choice(run.workers)
    run.intentional = True
    try:
        pid = worker.proc.pid if worker.proc else None
        worker.kill()
        run.result.kills_done += 1
        worker.start()
    finally:
        run.intentional = False
    run.say(f"SIGKILLed {worker.name} pid {pid} (kill {run.result.kills_done}); restarted it")
    if not await worker.wait_http(run.ready_url(worker), 60):
        run.say(f"restarted {worker.name} not ready within 60 s (the drain will tell)")


async def outage(run: Run, name: str) -> None:
    """Stop a service, keep it down `outage_s`, start it again whatever happens."""
    run.say(f"stopping {name}")
    began = time.monotonic()
    try:
        await asyncio.to_thread(_services, f"stop-{name}")
        await asyncio.sleep(run.cfg.outage_s)
    finally:
        # A thread is not cancelled with us: the start finishes even if the run is aborted.
        await asyncio.to_thread(_services, f"start-{name}")
        run.result.outages_s[name] = time.monotonic() - began
    run.result.restarts_done.append(name)
    run.say(f"{name} back after {run.result.outages_s[name]:.1f} s")


async def lose_brokers(run: Run, count: int) -> None:
    """SIGKILL `count` brokers of the cluster at once, keep them down `outage_s`, restart them."""
    cluster = run.cluster
    assert cluster is not None
    nodes = random.Random(run.cfg.seed + count).sample(cluster.node_ids, count)
    name = f"broker {nodes[0]}" if count == 1 else f"brokers {' and '.join(map(str, nodes))}"
    run.say(f"SIGKILLing {name}")
    began = time.monotonic()
    try:
        for node in nodes:
            await cluster.kill(node)
        await asyncio.sleep(run.cfg.outage_s)
    finally:
        await asyncio.gather(*(cluster.start_node(node) for node in nodes))
        run.result.outages_s[name] = time.monotonic() - began
    run.result.restarts_done.append(name.replace(" ", "-"))
    run.say(f"{name} back after {run.result.outages_s[name]:.1f} s")


async def monitor(run: Run) -> None:
    """A process that exits on its own is a crash: note it, restart it (as a supervisor)."""
    while True:
        await asyncio.sleep(0.5)
        for proc in run.processes:
            code = proc.exited()
            if code is None or run.intentional:
                continue
            log = proc.logs[-1] if proc.logs else None
            run.result.crashes.append(f"{proc.name} exited with {code} (log {log})")
            run.say(f"{proc.name} exited with {code} on its own; restarting it")
            proc.start()
