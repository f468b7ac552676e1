"""The Postgres half of a lock: a guarded write first shows its lease's fencing token, and is
refused if a newer holder has already written (see `pipeline.locks`)."""

from __future__ import annotations

from pipeline.errors import PipelineError
from pipeline.postgres import Connection
from pipeline.sql import ADVANCE_LOCK_FENCE


class StaleFence(PipelineError):
    """A write under a lease that a newer holder has replaced; never retried: the lease is
    gone, and the newer holder's writes stand."""

    code = "stale_fence"


async def check_fence(conn: Connection, name: str, token: int) -> None:
    """Record `token` as lock `name`'s newest, or raise StaleFence. Call it inside the guarded
    write's transaction, so the write and the check commit or roll back together."""
    if not conn.is_in_transaction():
        raise RuntimeError("check_fence must run inside the guarded write's transaction")
    if await conn.fetchval(ADVANCE_LOCK_FENCE, name, token) is None:
        raise StaleFence(f"lock {name!r}: fence {token} is older than one already written")
