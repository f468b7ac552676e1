"""Running the worker: resources and health first, then the Faust app, until a signal stops it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from functools import partial
from typing import NoReturn

import faust

from agents.app import create_faust_app
from agents.services import HealthService, ResourcesService
from agents.supervision import Alarms
from pipeline.errors import is_transient
from pipeline.kafka import ensure_topics
from pipeline.postgres import create_pool
from pipeline.retry import Backoff, until_done
from pipeline.settings import Settings

log = logging.getLogger("agents.worker")


_BACKOFF = Backoff(first_s=0.5, cap_s=10.0)


async def wait_for_dependencies(settings: Settings) -> None:
    """Postgres answers and the topics exist: waits while either is away; a refusal (a wrong
    password, a missing database) raises a DependencyError before Faust starts."""
    pool = await until_done(
        partial(create_pool, settings), retriable=is_transient, backoff=_BACKOFF, what="postgres"
    )
    await pool.close()
    created = await until_done(
        partial(ensure_topics, settings),
        retriable=is_transient,
        backoff=_BACKOFF,
        what="create topics",
    )
    if created:
        log.info("created topics", extra={"topics": created})


def run_worker(settings: Settings) -> None:
    """Wait for Postgres and the topics, then run until SIGTERM/SIGINT (Faust handles both)."""
    asyncio.run(wait_for_dependencies(settings))
    resources = ResourcesService(settings)
    alarms = Alarms()
    app = create_faust_app(settings, resources, restart_worker, alarms)
    health = HealthService(app, settings.worker_web_port, alarms)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(
        app,
        health,
        resources,
        loglevel=settings.log_level,
        loop=loop,
        override_logging=False,
        quiet=True,  # no banner or spinner: stdout stays one JSON log line per event
        redirect_stdouts=False,
    )
    worker.spinner = None  # quiet=True still writes its terminal escapes (cursor, bell) to stdout
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        reason = outage_exit(done)
        if reason is not None:
            time.sleep(1.0)  # the new worker waits for Kafka itself; this only paces restarts
            restart_worker(reason)
        raise


def outage_exit(done: SystemExit) -> str | None:
    """Why a failed worker exit was only Kafka or Postgres going away (then a restart waits for
    them instead of exiting); None for a clean exit or any other failure.

    Faust's startup makes Kafka requests of its own (metadata, offsets), so Kafka
    stopping in that window made the worker exit 1 although it would have waited anywhere else.
    """
    cause = done.__context__
    if done.code in (0, None) or cause is None:
        return None
    if is_transient(cause):
        return f"a dependency went away while the worker ran ({cause!r})"
    return None


RESTARTS_ENV = "PIPELINE_WORKER_RESTARTS"


def restart_worker(reason: str) -> NoReturn:
    """Replace this process with a fresh worker, which re-reads from the committed offsets.

    Called by a supervision alarm's fail-safe (a hole in the offsets, a stalled stream, stuck
    commits, a failed batch: nothing after it was acknowledged) and when Kafka or Postgres left
    in the middle of Faust's start-up. Like a SIGKILL this loses nothing; the work since the
    last commit is redone idempotently.
    """
    restarts = int(os.environ.get(RESTARTS_ENV, "0")) + 1
    log.critical(
        "the stream skipped or stalled; restarting the worker to re-read from committed offsets",
        extra={"reason": reason, "restarts": restarts},
    )
    logging.shutdown()
    os.environ[RESTARTS_ENV] = str(restarts)
    os.execv(sys.executable, [sys.executable, "-m", "pipeline.cli", "worker"])  # noqa: S606
