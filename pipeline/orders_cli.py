"""`pipeline orders show`: one order's audit trail, from its stored state back to every
delivery and canonical event that touched it.

Exit status: 0 when anything is stored about the order, 1 when nothing is (like grep finding
no match), 2 for a mistake in the arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from pipeline.cli_common import CliError, one_line, shop_arg, with_db
from pipeline.order_trail import OrderTrail, Row, load_trail, reservation_state, timeline, to_json
from pipeline.platforms import registry
from pipeline.settings import Settings

_MAX_ID = 100  # what the adapters accept as a platform id
_CELL = 60  # the widest a table cell gets; longer text (a title, an error) is cut


def add_parser(sub: Any) -> None:
    """The `orders` subcommand."""
    orders = sub.add_parser("orders", help="stored orders and their audit trail")
    actions = orders.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show", help="an order, its lines, reservations, fulfilments and every delivery"
    )
    show.add_argument("--platform", required=True, choices=sorted(registry.ADAPTERS))
    show.add_argument("--shop", required=True, help="shop id, as `pipeline channels list` shows")
    show.add_argument(
        "--id", required=True, dest="order_id", help="the platform's order id (not its number)"
    )
    show.add_argument("--json", action="store_true", help="one JSON document, for machines")


def order_id_arg(text: str) -> str:
    """The order id as the adapters store it (trimmed), or a CliError."""
    found = text.strip()
    if not found or len(found) > _MAX_ID or not found.isprintable():
        raise CliError(
            f"--id {text!r} is not an order id (1-{_MAX_ID} printable characters, "
            "the platform's order id as its webhooks carry it)"
        )
    return found


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `orders show`."""
    platform = args.platform
    shop = shop_arg(platform, args.shop)
    external_id = order_id_arg(args.order_id)

    async def show(pool: asyncpg.Pool) -> int:
        trail = await load_trail(pool, platform, shop, external_id)
        if not trail.found:
            raise CliError(
                f"no {platform} order {external_id} in shop {shop}: no order, delivery or event "
                "names it (--id is the platform's order id, not the number buyers see)",
                status=1,
            )
        if args.json:
            sys.stdout.buffer.write(to_json(trail) + b"\n")
        else:
            print("\n".join(render(trail)))
        return 0

    return await with_db(settings, show)


def render(trail: OrderTrail) -> list[str]:
    """The trail as text: the order, then one table per section, then the timeline."""
    return [
        *_order_lines(trail),
        *_section(
            "lines",
            ("LINE", "SKU", "QTY", "UNIT PRICE", "TITLE"),
            [
                (r["external_line_id"], r["sku"], r["quantity"], r["unit_price"], r["title"])
                for r in trail.lines
            ],
        ),
        *_section(
            "reservations",
            ("LINE", "SKU", "QTY", "BACKORDERED", "WAREHOUSE", "STATE", "SINCE"),
            [_reservation_cells(r) for r in trail.reservations],
        ),
        *_section(
            "fulfilments",
            ("ID", "STATUS", "PLATFORM STATUS", "CARRIER", "TRACKING", "LINES", "UPDATED"),
            [_fulfillment_cells(r) for r in trail.fulfillments],
        ),
        *_section(
            f"audit trail ({len(trail.deliveries)} deliveries, {len(trail.events)} events, "
            "in the order received)",
            ("RECEIVED", "WHAT", "TOPIC / TYPE", "OUTCOME", "DETAIL"),
            [_timeline_cells(entry) for entry in timeline(trail)],
        ),
    ]


def _order_lines(trail: OrderTrail) -> list[str]:
    title = f"{trail.platform} order {trail.external_id} in shop {trail.shop_id}"
    o = trail.order
    if o is None:
        return [title, "  not stored: no delivery for it has produced an order (see below)"]
    amounts = f"{_text(o['total_amount'])} {o['currency'] or ''}".rstrip()
    fields: list[tuple[str, object]] = [
        ("number", o["order_number"]),
        ("status", o["status"]),
        ("platform status", o["platform_status"]),
        ("financial", o["financial_status"]),
        ("fulfillment", o["fulfillment_status"]),
        (
            "total",
            f"{amounts} (subtotal {_text(o['subtotal_amount'])}, tax {_text(o['total_tax'])})",
        ),
        ("placed", o["placed_at"]),
        ("cancelled", o["cancelled_at"]),
        ("source updated", o["source_updated_at"]),
        ("customer email", "stored, not shown" if o["has_customer_email"] else None),
        ("last event", o["last_event_id"]),
        ("row", f"created {_text(o['created_at'])}, updated {_text(o['updated_at'])}"),
    ]
    return [title, *(f"  {name + ':':<16} {_text(value)}" for name, value in fields)]


def _reservation_cells(r: Row) -> tuple[object, ...]:
    state = reservation_state(r)
    since = {"consumed": r["consumed_at"], "released": r["released_at"]}.get(state, r["created_at"])
    return (
        r["external_line_id"],
        r["sku"],
        r["quantity"],
        r["backordered"],
        r["warehouse"],
        state,
        since,
    )


def _fulfillment_cells(r: Row) -> tuple[object, ...]:
    lines = ", ".join(
        f"{line} x{qty}" for line, qty in zip(r["line_ids"], r["line_quantities"], strict=True)
    )
    return (
        r["external_id"],
        r["status"],
        r["platform_status"],
        r["carrier"],
        r["tracking_number"],
        lines,
        r["updated_at"],
    )


def _timeline_cells(entry: Row) -> tuple[object, ...]:
    """RECEIVED, WHAT, TOPIC / TYPE, OUTCOME, DETAIL; the detail most telling first."""
    received = _time(entry["received_at"])
    if entry["kind"] == "delivery":
        detail = [entry["error"]] if entry["error"] else []
        if entry["dead_letter_id"] is not None:
            detail.append(f"dead letter {entry['dead_letter_id']}")
        detail += [
            f"attempts {entry['attempts']}",
            f"delivery {entry['external_event_id']}",
            f"{entry['kafka_topic']}[{entry['kafka_partition']}]@{entry['kafka_offset']}",
        ]
        return (received, "delivery", entry["topic"], entry["status"], "; ".join(detail))
    status = entry["status"] or "-"
    if entry["platform_status"]:
        status = f"{status} ({entry['platform_status']})"
    detail = [f"occurred {_text(entry['occurred_at'])}"]
    detail += [f"{name} {entry[key]}" for name, key in _EVENT_SUBJECTS if entry[key] is not None]
    detail.append(f"event {entry['event_id']}")
    return (received, "event", entry["type"], status, "; ".join(detail))


_EVENT_SUBJECTS = (("line", "line_id"), ("fulfilment", "fulfillment_id"))


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return ["", f"{title}: none"]
    return ["", f"{title}:", *table(headers, rows)]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Left-aligned columns as wide as their widest cell; cells on one line, the last column
    (free text) up to 120 characters and the others up to 60."""
    cells = [
        [one_line(_text(c), 120 if i == len(headers) - 1 else _CELL) for i, c in enumerate(row)]
        for row in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return [
        "  " + " ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *cells]
    ]


def _time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)
