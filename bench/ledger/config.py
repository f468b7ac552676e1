"""What one ledger run is asked to do, and the constants every part of it shares."""

from __future__ import annotations

from dataclasses import dataclass

SHOP = "ledger.myshopify.com"
SECRET = "ledger-secret-0123456789"
STALL_TIMEOUT_S = 15  # the workers' WORKER_STALL_TIMEOUT_S
COMMIT_WITHIN_S = 10.0  # after the drain, the group must have committed everything this soon


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """One ledger run. `send_seconds` None paces the sending over max(30 s, posts / 250)."""

    deliveries: int = 2_000
    seed: int = 1
    kills: int = 3
    workers: int = 2  # worker processes in one group; each kill picks one of them
    cluster: bool = False  # run on a three-broker cluster of its own (bench/cluster.py)
    kafka_restart: bool = True
    postgres_restart: bool = True
    concurrency: int = 32
    partitions: int = 6
    send_seconds: float | None = None
    outage_s: float = 1.0  # how long Kafka and Postgres stay down (plus their stop and start)
    resend_share: float = 0.10  # exact re-sends (same webhook id and body), on top of N
    dup_content_share: float = 0.02  # of N: same body under a new webhook id
    marketplaces: bool = True  # mix WooCommerce, Shopee, Lazada and TikTok Shop into the traffic
    marketplace_share: float = 0.20  # of N: deliveries of those four platforms
    retry_budget_s: float = 180.0  # per delivery, like a platform's retry schedule (shortened)
    stall_s: float = 60.0  # no 200 at all for this long outside chaos: the ingress is stuck
    drain_timeout_s: float | None = None  # default 120 + N / 500
    keep_logs: bool = False
    verbose: bool = True
