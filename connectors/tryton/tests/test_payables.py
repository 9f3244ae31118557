"""Supplier invoices in a real Tryton: dated by their invoice date, and a foreign-currency
invoice paid at another rate leaves nothing on the vendor's payable account."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from connectors.tryton.tests.tryton_items import item, job, line, vendor
from connectors.tryton.tests.tryton_support import Harness, record_id
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export.testing import plan_item

pytestmark = pytest.mark.anyio


async def test_supplier_invoice_is_dated_by_its_invoice_date(harness: Harness) -> None:
    # Booked in Pleo on 4 March, issued by the vendor on 20 February: VAT follows the invoice.
    it = item(
        "invoice",
        24000,
        lines=[line(24000, "6700")],
        date="2025-03-04T12:00:00Z",
        invoice_number="INV-8001",
        invoice_date="2025-02-20",
        bookkeeping="accounts_payable",
        vendor=vendor("V2001"),
        contra=None,
    )
    _, record = await harness.book(it, vendor_based=True)
    invoice = await harness.read(
        "account.invoice",
        record_id(record.external_id)[1],
        ["invoice_date", "accounting_date", "move.date"],
    )
    assert invoice["invoice_date"].isoformat() == "2025-02-20"
    assert invoice["move."]["date"].isoformat() == "2025-02-20"


async def _party(harness: Harness, code: str) -> dict[str, Any]:
    """The vendor's party with its payable balance (Tryton's own figure, over all its lines)."""
    async with harness.reader() as client:
        (company,) = await client.search_read("company.company", [], ["id"])
        (row,) = await client.search_read(
            "party.party", [("code", "=", code)], ["payable"], context={"company": company["id"]}
        )
        return dict(row)


def _foreign(
    type: str, gbp: int, supplier: int, code: str, currency: str, number: str, **extra: Any
) -> Any:
    fields: dict[str, Any] = {
        "supplier_amount": supplier,
        "supplier_currency": currency,
        "invoice_number": number,
        "bookkeeping": "accounts_payable",
        "vendor": vendor(code),
        "contra": None if type == "invoice" else "1990",
    }
    if type == "invoice":
        fields["lines"] = [line(gbp, "6200", supplier=supplier, supplier_currency=currency)]
        fields["date"] = "2025-02-03T10:00:00Z"
    else:
        fields["date"] = "2025-03-20T10:00:00Z"
        fields["sub_type"] = "invoice_payment_sent"
    fields.update(extra)
    return item(type, gbp, **fields)


async def test_foreign_invoice_paid_at_a_higher_rate_books_the_loss_and_clears_the_party(
    harness: Harness,
) -> None:
    # 1,000.00 EUR booked at 850.00 GBP, paid at 870.00 GBP in a later job.
    invoice = _foreign("invoice", 85000, 100000, "V2003", "EUR", "CH-2025-11")
    payment = _foreign("invoice_payment", 87000, 100000, "V2003", "EUR", "CH-2025-11")
    _, invoice_record = await harness.book(invoice, vendor_based=True, exchange_loss_account="7900")
    assert (await _party(harness, "V2003"))["payable"] == D("-850.00")  # Tryton: owed < 0
    _, record = await harness.book(payment, vendor_based=True, exchange_loss_account="7900")

    model, move_id = record_id(record.external_id)
    assert model == "account.move"
    assert await harness.move_lines(move_id) == [
        ("1990", D("-870.00"), None),
        ("2100", D("850.00"), "V2003"),
        ("7900", D("20.00"), None),
    ]
    invoice_row = await harness.read(
        "account.invoice", record_id(invoice_record.external_id)[1], ["state", "comment"]
    )
    assert invoice_row["state"] == "paid"  # reconciled with the payment
    assert invoice_row["comment"] == "Pleo amount: 1000.00 EUR"
    assert (await _party(harness, "V2003"))["payable"] == 0


async def test_gain_goes_to_trytons_currency_exchange_credit_account(harness: Harness) -> None:
    # No setting: Tryton's accounting configuration names the account, as for its own
    # exchange moves.
    async with harness.reader() as client:
        (income,) = await client.search_read("account.account", [("code", "=", "4900")], ["id"])
        (company,) = await client.search_read("company.company", [], ["id"])
        await client.model(
            "account.configuration",
            "write",
            [1],
            {"currency_exchange_credit_account": income["id"]},
            write=True,
            context={"company": company["id"]},
        )
    invoice = _foreign("invoice", 80000, 100000, "V1003", "USD", "SL-9")
    payment = _foreign("invoice_payment", 78500, 100000, "V1003", "USD", "SL-9")
    await harness.book(invoice, vendor_based=True)
    _, record = await harness.book(payment, vendor_based=True)
    assert await harness.move_lines(record_id(record.external_id)[1]) == [
        ("1990", D("-785.00"), None),
        ("2100", D("800.00"), "V1003"),
        ("4900", D("-15.00"), None),
    ]
    assert (await _party(harness, "V1003"))["payable"] == 0


async def test_without_an_exchange_account_the_payment_fails_naming_both_places(
    harness: Harness,
) -> None:
    invoice = _foreign("invoice", 85000, 100000, "V1002", "EUR", "G-77")
    payment = _foreign("invoice_payment", 86000, 100000, "V1002", "EUR", "G-77")
    await harness.book(invoice, vendor_based=True)
    moves = await harness.count("account.move")
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(payment, vendor_based=True)
    assert caught.value.reason_type is Reason.MISSING_CONFIGURATION
    assert "Currency Exchange Debit Account" in caught.value.message
    assert "exchange_loss_account" in caught.value.message
    assert await harness.count("account.move") == moves


async def test_invoice_and_its_payment_in_one_batch(harness: Harness) -> None:
    invoice = _foreign("invoice", 90000, 100000, "V2004", "EUR", "NW-3")
    payment = _foreign("invoice_payment", 91000, 100000, "V2004", "EUR", "NW-3")
    async with harness.connector(exchange_loss_account="7900") as connector:
        the_job = job(vendor_based=True)
        await connector.check(the_job)
        prepared = [await connector.prepare(plan_item(i, the_job)) for i in (invoice, payment)]
        invoice_record, payment_record = await connector.post_batch(prepared)
    assert not isinstance(payment_record, ItemRejected)
    assert await harness.move_lines(record_id(payment_record.external_id)[1]) == [
        ("1990", D("-910.00"), None),
        ("2100", D("900.00"), "V2004"),
        ("7900", D("10.00"), None),
    ]
    assert not isinstance(invoice_record, ItemRejected)
    row = await harness.read("account.invoice", record_id(invoice_record.external_id)[1], ["state"])
    assert row["state"] == "paid"
    assert (await _party(harness, "V2004"))["payable"] == 0
