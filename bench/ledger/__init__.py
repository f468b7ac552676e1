"""The ledger: signed webhooks sent through chaos, then a reconciliation against Postgres.

Sends N order deliveries of all five platforms to a real `pipeline ingress` (Shopify orders, and
about a fifth WooCommerce orders and Shopee, Lazada and TikTok Shop status pushes; several
versions of each order in shuffled order, exact re-sends of earlier deliveries, a few duplicate
contents under new webhook or message ids), retrying any non-200 like a marketplace would, while
it SIGKILLs one of W `pipeline worker` processes of one group K times (a rebalance under load
each time), stops and starts Postgres and stops and starts Kafka (through scripts/services.sh,
and only services that script started). Then it waits for the workers to drain and reconciles:
every delivery answered 200 must be in `webhook_events` exactly once, nothing may be stored
twice, every order must hold its newest acknowledged version, the group must have committed the
whole raw topic within 10 s of the drain, and no supervision alarm may have fired.

Usage: .venv/bin/python -m bench.ledger --deliveries N [--seed S] [--kills K] [--workers W]
                                        [--no-kafka-restart] [--no-postgres-restart]
                                        [--shopify-only]
Needs `make services`. Uses its own database and topics, and removes them afterwards.
Exit status 1 when anything acknowledged is missing, duplicated or in the wrong final state.
"""

from bench.ledger.config import LedgerConfig
from bench.ledger.result import LedgerResult
from bench.ledger.run import run_ledger

__all__ = ["LedgerConfig", "LedgerResult", "run_ledger"]
