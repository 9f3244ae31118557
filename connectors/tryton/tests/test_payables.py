"""Supplier invoices in a real Tryton: dated by their invoice date, and a foreign-currency
invoice paid at another rate leaves nothing on the vendor's payable account."""

from __future__ import annotations

import pytest

from connectors.tryton.tests.tryton_items import item, line, vendor
from connectors.tryton.tests.tryton_support import Harness, record_id

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
