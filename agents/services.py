"""Services the worker starts before the Faust app: shared resources and the health server."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import faust
from aiohttp import web
from mode import Service

from agents.supervision import Alarms
from pipeline.errors import is_transient
from pipeline.resources import Resources, open_resources
from pipeline.retry import Backoff, until_done
from pipeline.settings import Settings

log = logging.getLogger("agents.services")


class ResourcesService(Service):
    """Opens the Postgres pool, Kafka producer and Redis client; closes them after the app stops."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._resources: Resources | None = None

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise RuntimeError("resources are not open yet")
        return self._resources

    async def on_start(self) -> None:
        # A worker (re)started during an outage waits for its dependencies instead of exiting.
        self._resources = await until_done(
            partial(open_resources, self._settings),
            retriable=is_transient,
            backoff=Backoff(first_s=0.5, cap_s=10.0),
            what="open postgres and kafka",
        )

    async def on_stop(self) -> None:
        if self._resources is not None:
            await self._resources.close()
            self._resources = None


def readiness(app: faust.App) -> tuple[bool, str]:
    """Ready once table recovery finished and this worker holds partitions outside a rebalance."""
    if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
        return False, "recovering tables"
    if app.rebalancing:
        return False, "rebalancing"
    if not app.consumer.assignment():
        return False, "no partitions assigned"
    return True, "ready"


class ReadinessLog:
    """Logs each change of readiness once: "worker ready" (with the partitions it holds) when
    it can process, "worker not ready" with the reason when it stops being able to."""

    def __init__(self) -> None:
        self._last: bool | None = None

    def observe(self, ready: bool, detail: str, partitions: int) -> None:
        if ready == self._last or (self._last is None and not ready):
            return
        self._last = ready
        if ready:
            log.info("worker ready", extra={"partitions": partitions})
        else:
            log.warning("worker not ready", extra={"reason": detail})


class HealthService(Service):
    """`/healthz` and `/readyz` on their own port, up before recovery so liveness never waits.
    `/readyz` also counts the supervision alarms raised in this process."""

    def __init__(
        self,
        app: faust.App,
        port: int,
        alarms: Alarms,
        host: str = "0.0.0.0",  # noqa: S104
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._alarms = alarms
        self._port = port
        self._host = host
        self._runner: web.AppRunner | None = None
        self._readiness = ReadinessLog()

    @Service.timer(0.5)
    async def _watch_readiness(self) -> None:
        try:
            ready, detail = readiness(self._app)
            held = len(self._app.consumer.assignment()) if ready else 0
        except Exception:  # noqa: BLE001 - a consumer between states: ask again next tick
            return
        self._readiness.observe(ready, detail, held)

    async def on_start(self) -> None:
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, detail = readiness(self._app)
        body = {"status": detail, "alarms": dict(self._alarms.counts)}
        return web.json_response(body, status=200 if ready else 503)
