"""`pipeline orders show` without a database: its arguments, the timeline order, the text and
JSON it prints, and that customer data stays out of both."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeline import cli
from pipeline.cli_common import CliError
from pipeline.order_trail import OrderTrail, reservation_state, timeline, to_json
from pipeline.orders_cli import order_id_arg, render, table

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SHOP = "demo.myshopify.com"


pytestmark = pytest.mark.usefixtures("clean_env")


def _delivery(row_id: int, at: datetime, topic: str = "orders/updated", **extra: Any) -> Any:
    return {
        "id": row_id,
        "topic": topic,
        "external_event_id": f"w-{row_id}",
        "source_event_id": None,
        "status": "COMPLETED",
        "attempts": 1,
        "error": None,
        "received_at": at,
        "processed_at": at,
        "kafka_topic": "webhooks.raw",
        "kafka_partition": 0,
        "kafka_offset": row_id,
        "dead_letter_id": None,
        **extra,
    }


def _event(name: str, received: datetime, occurred: datetime, **extra: Any) -> Any:
    return {
        "event_id": uuid.uuid5(uuid.NAMESPACE_DNS, name),
        "type": name,
        "delivery_id": "w-1",
        "occurred_at": occurred,
        "recorded_at": received + timedelta(seconds=1),
        "received_at": received,
        "status": "paid",
        "platform_status": None,
        "line_id": None,
        "fulfillment_id": None,
        **extra,
    }


def _order(**extra: Any) -> Any:
    return {
        "id": uuid.uuid4(),
        "external_id": "1001",
        "order_number": "#1001",
        "status": "paid",
        "platform_status": None,
        "financial_status": "paid",
        "fulfillment_status": None,
        "currency": "EUR",
        "total_amount": Decimal("25.50"),
        "subtotal_amount": Decimal("23.00"),
        "total_tax": Decimal("2.50"),
        "has_customer_email": True,
        "placed_at": T0,
        "cancelled_at": None,
        "source_updated_at": T0,
        "last_event_id": uuid.uuid4(),
        "created_at": T0,
        "updated_at": T0,
        **extra,
    }


def _trail(**sections: Any) -> OrderTrail:
    return OrderTrail("shopify", SHOP, "1001", **sections)


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("1001", "1001"),
        ("  576486316948490001 ", "576486316948490001"),
        ("26042290019836-3", "26042290019836-3"),
    ],
)
def test_an_order_id_is_kept_as_the_adapters_store_it(typed: str, kept: str) -> None:
    assert order_id_arg(typed) == kept


@pytest.mark.parametrize("typed", ["", "   ", "10\t01", "1" * 101, "10\n01"])
def test_what_cannot_be_an_order_id_is_refused(typed: str) -> None:
    with pytest.raises(CliError, match="is not an order id"):
        order_id_arg(typed)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (
            ("--platform", "shopify", "--shop", "demo", "--id", "1"),
            "--shop 'demo' is not a shopify",
        ),
        (("--platform", "tiktok", "--shop", "7494049642642441621", "--id", ""), "--id ''"),
        (("--platform", "amazon", "--shop", SHOP, "--id", "1"), "invalid choice: 'amazon'"),
        (("--platform", "shopify", "--shop", SHOP), "the following arguments are required: --id"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
    connects: list[object],
    argv: tuple[str, ...],
    problem: str,
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["orders", "show", *argv])
    assert info.value.code == 2
    assert problem in capsys.readouterr().err
    assert connects == []


def test_good_arguments_reach_the_database(
    capsys: pytest.CaptureFixture[str], connects: list[object]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(
            [
                "orders",
                "show",
                "--platform",
                "shopify",
                "--shop",
                "Demo.myshopify.com",
                "--id",
                "1001",
            ]
        )
    assert info.value.code == 2
    assert "cannot reach Postgres" in capsys.readouterr().err
    assert len(connects) == 1


# -- the timeline ------------------------------------------------------------------------------


def test_the_timeline_follows_receipt_and_puts_events_after_their_delivery() -> None:
    first, second = T0, T0 + timedelta(minutes=5)
    trail = _trail(
        deliveries=[_delivery(11, second), _delivery(9, first), _delivery(10, first)],
        events=[
            _event("order.paid", second, T0),
            _event("order.updated", first, T0 + timedelta(minutes=1)),
            _event("order.created", first, T0 - timedelta(hours=1)),
        ],
    )
    assert [(e["kind"], e.get("id") or e["type"]) for e in timeline(trail)] == [
        ("delivery", 9),  # same instant: in the order the rows were written (ids 9 < 10)
        ("delivery", 10),
        ("event", "order.created"),  # then that instant's events, by when they occurred
        ("event", "order.updated"),
        ("delivery", 11),
        ("event", "order.paid"),
    ]


@pytest.mark.parametrize(
    ("released", "consumed", "state"),
    [(None, None, "active"), (T0, None, "released"), (None, T0, "consumed")],
)
def test_reservation_state(released: Any, consumed: Any, state: str) -> None:
    assert reservation_state({"released_at": released, "consumed_at": consumed}) == state


def test_found_means_anything_names_the_order() -> None:
    assert not _trail().found
    assert _trail(deliveries=[_delivery(1, T0)]).found
    assert _trail(order=_order()).found


# -- text and JSON -----------------------------------------------------------------------------


def test_a_table_fits_its_columns_and_keeps_each_row_on_one_line() -> None:
    lines = table(
        ("ID", "TITLE"), [("1", "Mug"), ("12345", None), ("7", "two\nlines " + "x" * 200)]
    )
    assert lines[:3] == ["  ID    TITLE", "  1     Mug", "  12345 -"]
    assert lines[3].startswith("  7     two lines xxx")
    assert lines[3].endswith("...")
    assert len(lines[3]) == 2 + 6 + 120


def test_render_shows_the_order_but_no_customer_data() -> None:
    order = _order(customer_email="buyer@example.com", shipping_address="1 Main St")
    text = "\n".join(render(_trail(order=order)))
    assert text.startswith(f"shopify order 1001 in shop {SHOP}\n  number:          #1001\n")
    assert "  total:           25.50 EUR (subtotal 23.00, tax 2.50)\n" in text
    assert "  customer email:  stored, not shown\n" in text
    assert "buyer@example.com" not in text
    assert "Main St" not in text
    assert "\nlines: none\n" in text
    assert text.endswith("audit trail (0 deliveries, 0 events, in the order received): none")


def test_render_says_when_only_deliveries_know_the_order() -> None:
    dead = _delivery(
        3, T0, status="DEAD_LETTERED", error="line_items is not a list", dead_letter_id=8
    )
    lines = render(_trail(deliveries=[dead]))
    assert lines[:2] == [
        f"shopify order 1001 in shop {SHOP}",
        "  not stored: no delivery for it has produced an order (see below)",
    ]
    row = lines[-1].split(None, 4)
    assert row[:4] == [
        "2026-11-20T10:00:00.000+00:00",
        "delivery",
        "orders/updated",
        "DEAD_LETTERED",
    ]
    assert row[4].startswith("line_items is not a list; dead letter 8; attempts 1; delivery w-3;")


class _DriverUuid(uuid.UUID):
    """What asyncpg returns for a uuid column: a subclass orjson does not encode by itself."""


def test_json_has_every_section_with_decimal_strings_and_iso_times() -> None:
    event = _event("fulfillment.created", T0, T0, fulfillment_id="F1", status="in_transit")
    trail = _trail(
        order=_order(id=_DriverUuid(int=1)),
        reservations=[{"external_line_id": "1", "released_at": T0, "consumed_at": None}],
        deliveries=[_delivery(1, T0)],
        events=[event],
    )
    document = json.loads(to_json(trail))
    assert list(document) == [
        *("platform", "shop_id", "external_id", "order", "lines", "reservations"),
        *("fulfillments", "timeline"),
    ]
    assert document["order"]["id"] == "00000000-0000-0000-0000-000000000001"
    assert document["order"]["total_amount"] == "25.50"
    assert document["order"]["placed_at"] == "2026-11-20T10:00:00+00:00"
    assert document["reservations"][0]["state"] == "released"
    assert [e["kind"] for e in document["timeline"]] == ["delivery", "event"]
    assert document["timeline"][1]["fulfillment_id"] == "F1"
