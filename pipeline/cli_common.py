"""What every CLI command shares: the user-facing error, shop ids, one-line text and a
database connection."""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from pipeline.errors import DependencyError
from pipeline.platforms import registry
from pipeline.postgres import create_pool
from pipeline.settings import Settings


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2 unless `status` says
    otherwise (1 for something asked for that is not there)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def time_arg(text: str) -> datetime:
    """An argparse type: ISO 8601 (naive means UTC) or an age such as 30m, 6h, 7d."""
    match = _RELATIVE.match(text.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO 8601 (2026-11-25T10:00) or an age (30m, 6h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def shop_arg(platform: str, text: str) -> str:
    """The shop id as the ingress will see it (the adapter's own rule), or a CliError saying
    what the platform expects."""
    adapter = registry.ADAPTERS[platform]
    shop = adapter.canonical_shop(text)
    if shop is None:
        raise CliError(f"--shop {text!r} is not a {platform} shop id ({adapter.shop_hint})")
    return shop


def one_line(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters: white space runs become one space,
    other control characters '?', and what does not fit is cut, ending in '...'."""
    flat = " ".join("".join(c if c.isprintable() else "?" for c in part) for part in text.split())
    return flat if len(flat) <= width else flat[: width - 3].rstrip() + "..."


async def with_db(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run `action` with a pool; an unreachable database is a CliError naming it."""
    try:
        pool = await create_pool(settings)
    except DependencyError as exc:
        raise CliError(str(exc)) from None
    try:
        return await action(pool)
    finally:
        await pool.close()
