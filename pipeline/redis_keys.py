"""Every Redis key the pipeline writes, in one place: Redis has two jobs (locks, the FX cache)
and this module names the prefix of each, so no two features can collide on a key.

    pipeline:lock:<name>         the holder's random token, with the lease's TTL (PX)
    pipeline:fence:<name>        the lock's fencing counter: no TTL, only ever increases
    pipeline:fx:latest           the newest rate set (provider, base, as_of, rates), JSON,
                                 expiring after FX_CACHE_TTL_S
"""

from __future__ import annotations

ROOT = "pipeline"


def lock_key(name: str, root: str = ROOT) -> str:
    """The key a lock's holder token lives under."""
    return f"{root}:lock:{name}"


def fence_key(name: str, root: str = ROOT) -> str:
    """The key of a lock's fencing counter."""
    return f"{root}:fence:{name}"


def fx_latest_key(root: str = ROOT) -> str:
    """The key of the cached newest rate set (any base is crossed from it)."""
    return f"{root}:fx:latest"
