"""The outcome of a ledger run, and its report: one summary line, then the details."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# What each platform's counter in `LedgerResult.platforms` holds, in the order it is shown.
TALLIES = ("sent", "acknowledged", "stored", "missing", "duplicated", "wrong_state")


@dataclass(slots=True)
class LedgerResult:
    """What the run sent, what Postgres holds, and everything that did not add up."""

    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    missing: int = 0
    duplicated: int = 0
    wrong_state: int = 0
    wrong_reservations: int = 0
    posts: int = 0  # planned POST series (deliveries plus exact re-sends)
    attempts: int = 0  # HTTP attempts, retries included
    attempt_outcomes: dict[str, int] = field(default_factory=dict)
    stored_unacknowledged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    duplicated_by: dict[str, int] = field(default_factory=dict)
    wrong_examples: list[str] = field(default_factory=list)
    platforms: dict[str, Counter[str]] = field(default_factory=dict)  # TALLIES and orders
    reordered: int = 0
    send_s: float = 0.0
    drain_s: float = 0.0
    drained: bool = False
    kills_done: int = 0
    restarts_done: list[str] = field(default_factory=list)
    outages_s: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    gap_restarts: int = 0
    alarms: dict[str, int] = field(default_factory=dict)
    log_notes: dict[str, int] = field(default_factory=dict)
    uncommitted: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    diagnosis: str = ""
    log_dir: str = ""

    @property
    def ok(self) -> bool:
        bad = self.missing or self.duplicated or self.wrong_state or self.wrong_reservations
        return not bad and not self.problems

    def line(self) -> str:
        restarts = "+".join(self.restarts_done) or "none"
        return (
            f"sent {self.sent} / acknowledged {self.acknowledged} / stored {self.stored} / "
            f"missing {self.missing} / duplicated {self.duplicated} / "
            f"wrong_state {self.wrong_state} / wrong_reservations {self.wrong_reservations} | "
            f"send {self.send_s:.1f} s, "
            f"drain {self.drain_s:.1f} s, kills {self.kills_done}, restarts {restarts}"
        )

    def details(self) -> str:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(self.attempt_outcomes.items()))
        outages = ", ".join(f"{k} {v:.1f} s" for k, v in self.outages_s.items()) or "none"
        parts = [
            f"posts {self.posts} (re-sends included), HTTP attempts {self.attempts} ({outcomes})",
            f"deliveries sent before an older version of their order: {self.reordered}",
            f"per platform ({'/'.join(TALLIES)}): "
            + "; ".join(
                "/".join(str(tally[k]) for k in TALLIES) + f" {name}, {tally['orders']} orders"
                for name, tally in self.platforms.items()
            ),
            f"webhook_events statuses: {dict(sorted(self.statuses.items()))}",
            f"duplicated by table: {self.duplicated_by}",
            f"stored but never acknowledged: {self.stored_unacknowledged}",
            f"outages (stop to ready): {outages}",
            f"worker self-restarts (skipped offsets or a stall): {self.gap_restarts}",
            f"supervision alarms: {self.alarms or 'none'}",
            f"raw messages the worker group has not committed: {self.uncommitted}",
        ]
        parts += [f"log: {n} x {what}" for what, n in self.log_notes.items()]
        parts += [f"skipped: {s}" for s in self.skipped]
        parts += [f"crash: {c}" for c in self.crashes]
        parts += [f"problem: {p}" for p in self.problems]
        parts += [f"wrong state: {w}" for w in self.wrong_examples]
        if self.diagnosis:
            parts.append(self.diagnosis)
        return "\n".join(parts)
