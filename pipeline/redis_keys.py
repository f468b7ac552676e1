"""Every Redis key the pipeline writes, in one place: Redis has two jobs (locks, the FX cache)
and this module names the prefix of each, so no two features can collide on a key.

    pipeline:lock:<name>         the holder's random token, with the lease's TTL (PX)
    pipeline:fence:<name>        the lock's fencing counter: no TTL, only ever increases
    pipeline:fx:latest:<base>    the newest rates against <base>, JSON, FX_CACHE_TTL_S
"""

from __future__ import annotations

ROOT = "pipeline"


def lock_key(name: str, root: str = ROOT) -> str:
    """The key a lock's holder token lives under."""
    return f"{root}:lock:{name}"


def fence_key(name: str, root: str = ROOT) -> str:
    """The key of a lock's fencing counter."""
    return f"{root}:fence:{name}"


def fx_latest_key(base: str, root: str = ROOT) -> str:
    """The key of the cached newest rates against currency `base`."""
    return f"{root}:fx:latest:{base}"
