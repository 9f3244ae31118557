"""Accounts payable in a real Tryton: supplier invoices, credit notes, payments, matching."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from connectors.tryton.tests.tryton_items import item, job, line, tax, vendor
from connectors.tryton.tests.tryton_support import Harness, record_id
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export.testing import plan_item
from pleo_export_tryton import VENDOR_UNKNOWN_MESSAGE

pytestmark = pytest.mark.anyio


async def _payment_moves(harness: Harness, entry_id: str) -> list[dict[str, Any]]:
    async with harness.reader() as client:
        return list(
            await client.search_read(
                "account.move",
                [("description", "like", f"pleo:{entry_id}#%"), ("origin", "=", None)],
                ["description", "state", "journal.code"],
            )
        )


async def test_card_purchase_is_an_invoice_paid_from_the_wallet(harness: Harness) -> None:
    it = item(
        amount=12000,
        lines=[line(12000, "6100", tax=tax(2000))],
        bookkeeping="accounts_payable",
        vendor=vendor("V1001"),
    )
    _, record = await harness.book(it, vendor_based=True)

    model, invoice_id = record_id(record.external_id)
    assert model == "account.invoice"
    invoice = await harness.read(
        "account.invoice",
        invoice_id,
        ["state", "type", "total_amount", "untaxed_amount", "tax_amount", "party.code", "move"],
    )
    assert invoice["state"] == "paid"
    assert invoice["type"] == "in"
    assert (invoice["untaxed_amount"], invoice["tax_amount"], invoice["total_amount"]) == (
        D("100.00"),
        D("20.00"),
        D("120.00"),
    )
    assert invoice["party."]["code"] == "V1001"
    assert await harness.move_lines(invoice["move"]) == [
        ("2100", D("-120.00"), "V1001"),
        ("2201", D("20.00"), None),
        ("6100", D("100.00"), None),
    ]
    (payment,) = await _payment_moves(harness, it.accounting_entry_id)
    assert payment["state"] == "posted"
    assert payment["journal."]["code"] == "CASH"
    assert payment["description"].startswith(f"pleo:{it.accounting_entry_id}#2/2 ")
    assert await harness.move_lines(payment["id"]) == [
        ("1990", D("-120.00"), None),
        ("2100", D("120.00"), "V1001"),
    ]


@pytest.mark.parametrize(
    ("identifiers", "party"),
    [
        ({"code": "NOPE", "externalId": "AS-1002"}, "V1002"),
        ({"code": None, "externalId": None, "taxRegistrationNumber": "gb 245-719-348"}, "V1004"),
    ],
)
async def test_vendor_is_found_by_external_id_then_tax_number(
    harness: Harness, identifiers: dict[str, Any], party: str
) -> None:
    merged = {**vendor("V1001"), **identifiers}
    wire_vendor = {k: v for k, v in merged.items() if v is not None}
    it = item(amount=5000, bookkeeping="accounts_payable", vendor=wire_vendor)
    _, record = await harness.book(it, vendor_based=True)
    invoice = await harness.read(
        "account.invoice", record_id(record.external_id)[1], ["party.code"]
    )
    assert invoice["party."]["code"] == party


async def test_unknown_vendor_fails_with_pleos_message_and_writes_nothing(harness: Harness) -> None:
    it = item(amount=5000, bookkeeping="accounts_payable", vendor=vendor("V9999"))
    invoices, moves = await harness.count("account.invoice"), await harness.count("account.move")
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it, vendor_based=True)
    assert caught.value.reason_type is Reason.VENDOR_UNKNOWN
    assert caught.value.message.startswith(VENDOR_UNKNOWN_MESSAGE)
    assert "code V9999" in caught.value.message
    assert await harness.count("account.invoice") == invoices
    assert await harness.count("account.move") == moves


async def test_journal_invoice_of_an_unknown_supplier_needs_a_party(harness: Harness) -> None:
    it = item(
        "invoice",
        8000,
        lines=[line(8000, "6700")],
        supplier={"name": "Mystery Ltd", "code": "V9998"},
        contra=None,
    )
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it)
    assert caught.value.reason_type is Reason.VENDOR_UNKNOWN


async def test_refund_is_a_credit_note_settled_into_the_wallet(harness: Harness) -> None:
    it = item(
        "refund",
        -6000,
        lines=[line(-6000, "6100", tax=tax(-1000))],
        bookkeeping="accounts_payable",
        vendor=vendor("V1001"),
    )
    _, record = await harness.book(it, vendor_based=True)
    invoice = await harness.read(
        "account.invoice",
        record_id(record.external_id)[1],
        ["state", "total_amount", "tax_amount", "move", "sequence_type_cache"],
    )
    assert invoice["total_amount"] == D("-60.00")
    assert invoice["tax_amount"] == D("-10.00")
    assert invoice["sequence_type_cache"] == "credit_note"
    assert invoice["state"] == "paid"
    assert await harness.move_lines(invoice["move"]) == [
        ("2100", D("60.00"), "V1001"),
        ("2201", D("-10.00"), None),
        ("6100", D("-50.00"), None),
    ]
    (payment,) = await _payment_moves(harness, it.accounting_entry_id)
    assert await harness.move_lines(payment["id"]) == [
        ("1990", D("60.00"), None),
        ("2100", D("-60.00"), "V1001"),
    ]


async def test_invoice_then_its_payment_in_a_later_job(harness: Harness) -> None:
    common = {"bookkeeping": "accounts_payable", "vendor": vendor("V2001")}
    invoice_item = item(
        "invoice",
        24000,
        lines=[line(24000, "6700", tax=tax(4000))],
        invoice_number="INV-7001",
        due_date="2025-04-03T00:00:00Z",
        contra=None,
        **common,
    )
    _, invoice_record = await harness.book(invoice_item, vendor_based=True)
    invoice_id = record_id(invoice_record.external_id)[1]
    invoice = await harness.read(
        "account.invoice", invoice_id, ["state", "reference", "invoice_date", "payment_term_date"]
    )
    assert invoice["state"] == "posted"
    assert invoice["reference"] == "INV-7001"
    assert invoice["payment_term_date"].isoformat() == "2025-04-03"

    payment_item = item(
        "invoice_payment", 24000, date="2025-03-20T09:00:00Z", invoice_number="INV-7001", **common
    )
    _, payment_record = await harness.book(payment_item, vendor_based=True)
    model, move_id = record_id(payment_record.external_id)
    assert model == "account.move"
    assert await harness.move_lines(move_id) == [
        ("1990", D("-240.00"), None),
        ("2100", D("240.00"), "V2001"),
    ]
    invoice = await harness.read("account.invoice", invoice_id, ["state", "amount_to_pay"])
    assert invoice["state"] == "paid"
    assert invoice["amount_to_pay"] == 0


async def test_payment_before_its_invoice_is_settled_when_the_invoice_arrives(
    harness: Harness,
) -> None:
    common = {"bookkeeping": "accounts_payable", "vendor": vendor("V2002")}
    payment_item = item("invoice_payment", 9900, invoice_number="INV-7002", **common)
    _, payment_record = await harness.book(payment_item, vendor_based=True)
    invoice_item = item(
        "invoice",
        9900,
        lines=[line(9900, "6300")],
        invoice_number="INV-7002",
        contra=None,
        **common,
    )
    _, invoice_record = await harness.book(invoice_item, vendor_based=True)
    invoice = await harness.read(
        "account.invoice", record_id(invoice_record.external_id)[1], ["state"]
    )
    assert invoice["state"] == "paid"
    lines = await harness.move_lines(record_id(payment_record.external_id)[1])
    assert lines == [("1990", D("-99.00"), None), ("2100", D("99.00"), "V2002")]


async def test_an_interrupted_item_is_finished_not_written_twice(harness: Harness) -> None:
    it = item(amount=4400, bookkeeping="accounts_payable", vendor=vendor("V1003"))
    the_job = job(vendor_based=True)
    async with harness.connector() as connector:
        prepared = await connector.prepare(plan_item(it, the_job))
    # The first part was written, then the process died before posting it.
    spec = prepared.payload.parts[0]
    async with harness.reader() as client:
        values = spec.values(client.context["company"])
        await client.model(spec.model, "create", [values], write=True)
    invoices = await harness.count("account.invoice")
    async with harness.connector() as connector:
        assert await connector.find_existing(it.accounting_entry_id) is None
        prepared = await connector.prepare(plan_item(it, the_job))
        record = await connector.post(prepared)
        assert await connector.find_existing(it.accounting_entry_id) == record
    assert await harness.count("account.invoice") == invoices
    invoice = await harness.read("account.invoice", record_id(record.external_id)[1], ["state"])
    assert invoice["state"] == "paid"
    assert len(await _payment_moves(harness, it.accounting_entry_id)) == 1


async def test_tryton_warning_about_a_duplicate_reference(harness: Harness) -> None:
    common = {
        "bookkeeping": "accounts_payable",
        "vendor": vendor("V2004"),
        "invoice_number": "INV-DUP",
        "contra": None,
    }
    await harness.book(
        item("invoice", 1000, lines=[line(1000, "6700")], **common), vendor_based=True
    )
    second = item("invoice", 2000, lines=[line(2000, "6700")], **common)
    with pytest.raises(ItemRejected) as caught:
        await harness.book(second, vendor_based=True)
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "asks for a confirmation" in caught.value.message
    assert "confirm_warnings" in caught.value.message
    async with harness.reader() as client:
        drafts = await client.search_read(
            "account.invoice",
            [("description", "like", f"pleo:{second.accounting_entry_id}#%")],
            ["state"],
        )
    assert [d["state"] for d in drafts] == ["draft"]  # left for a person to confirm

    async with harness.connector(confirm_warnings=True) as connector:
        the_job = job(vendor_based=True)
        plan = plan_item(second, the_job)
        assert await connector.find_existing(plan.reference) is None
        record = await connector.post(await connector.prepare(plan))
    assert record_id(record.external_id)[1] == drafts[0]["id"]
    invoice = await harness.read("account.invoice", drafts[0]["id"], ["state"])
    assert invoice["state"] == "posted"


async def test_invoice_lines_need_expense_accounts(harness: Harness) -> None:
    it = item(
        amount=2000, lines=[line(2000, "1210")], bookkeeping="accounts_payable", vendor=vendor()
    )
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it, vendor_based=True)
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "1210 (Petty Cash)" in caught.value.message
    assert "Expense or Debt" in caught.value.message
