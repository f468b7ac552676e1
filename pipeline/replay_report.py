"""What replay and rebuild print: the plan, the progress line, times and durations."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from pipeline.replay import Progress
from pipeline.replay_plan import Plan


def print_plan(plan: Plan, resume_from: dict[int, int], run_id: str | None) -> None:
    """The plan on stdout: each partition's offsets, what retention lost, the filters."""
    if run_id is not None:
        print(f"resuming run {run_id}")
    print(f"topic {plan.topic}: {plan.messages} message(s) in range")
    for r in plan.ranges:
        start = max(r.start, resume_from.get(r.partition, r.start))
        line = f"  partition {r.partition}: offsets {start}-{r.stop} ({r.stop - start} messages)"
        print(line + (f", resuming at {start}" if r.partition in resume_from else ""))
    for r in plan.lost:
        assert r.lost is not None
        print(
            f"  LOST partition {r.partition}: offsets {r.lost[0]}-{r.lost[1]} were deleted by "
            "retention and cannot be replayed"
        )
    names = ("platforms", "shops", "topics", "entities", "statuses")
    chosen = [
        f"{n}={','.join(getattr(plan.filters, n))}" for n in names if getattr(plan.filters, n)
    ]
    print(f"filters: {' '.join(chosen) if chosen else 'none (every delivery)'}")


def progress_line(progress: Progress) -> None:
    """One line on stderr (not a redrawn bar, so logs and pipes keep it readable)."""
    now = time.monotonic()
    eta = progress.eta_s(now)
    print(
        f"replay: read {progress.read}/{progress.total}, replayed {progress.processed}, "
        f"{progress.rate(now):.0f}/s, ETA {duration(eta) if eta is not None else '?'}",
        file=sys.stderr,
        flush=True,
    )


def stamp(ms: int | None) -> str:
    """A millisecond time as ISO 8601 UTC, '-' when there is none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def duration(seconds: float) -> str:
    """Seconds as 42s, 3m05s or 2h10m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
