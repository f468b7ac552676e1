"""Running the worker: resources and health first, then the Faust app, until a signal stops it."""

from __future__ import annotations

import asyncio
import logging

import faust

from agents.app import create_faust_app
from agents.services import HealthService, ResourcesService
from pipeline.kafka import ensure_topics
from pipeline.settings import Settings

log = logging.getLogger("agents.worker")


def run_worker(settings: Settings) -> None:
    """Create the pipeline's topics, then run until SIGTERM/SIGINT (Faust handles both)."""
    created = asyncio.run(ensure_topics(settings))
    if created:
        log.info("created topics", extra={"topics": created})
    resources = ResourcesService(settings)
    app = create_faust_app(settings, resources)
    health = HealthService(app, settings.worker_web_port)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(
        app,
        health,
        resources,
        loglevel=settings.log_level,
        loop=loop,
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
