"""Issue 11's bookkeeping cases in a real Tryton: a bounced reimbursement reverses the payout,
a sign that contradicts the type fails the item and writes nothing, vendors are found by tax
number in any spelling, and exclusive tax lines must add up."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from connectors.tryton.tests.tryton_items import dual, item, line, tax, vendor
from connectors.tryton.tests.tryton_support import Harness, record_id
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected

pytestmark = pytest.mark.anyio


async def _fails_writing_nothing(
    harness: Harness, it: Any, *, vendor_based: bool = False
) -> ItemRejected:
    moves, invoices = await harness.count("account.move"), await harness.count("account.invoice")
    with pytest.raises(ItemRejected) as caught:
        await harness.book(it, vendor_based=vendor_based)
    assert await harness.count("account.move") == moves
    assert await harness.count("account.invoice") == invoices
    return caught.value


async def test_a_bounced_payout_reverses_the_payout(harness: Harness) -> None:
    payout = item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee")
    bounced = item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee_refund")
    _, paid = await harness.book(payout)
    _, returned = await harness.book(bounced)
    assert await harness.move_lines(record_id(paid.external_id)[1]) == [
        ("1990", D("-50.00"), None),
        ("2250", D("50.00"), None),
    ]
    assert await harness.move_lines(record_id(returned.external_id)[1]) == [
        ("1990", D("50.00"), None),
        ("2250", D("-50.00"), None),
    ]


@pytest.mark.parametrize(
    ("item_type", "amount", "bookkeeping"),
    [
        ("refund", 6000, "journal"),
        ("chargeback", 6000, "journal"),
        ("wallet_topup", -500000, "none"),
    ],
)
async def test_a_sign_that_contradicts_the_type_fails_and_writes_nothing(
    harness: Harness, item_type: str, amount: int, bookkeeping: str
) -> None:
    error = await _fails_writing_nothing(harness, item(item_type, amount, bookkeeping=bookkeeping))
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert error.message.startswith(
        f"amount.inWalletCurrency.value is {amount} for type {item_type}"
    )


@pytest.mark.parametrize("spelling", ["245719348", "gb\u00a0245.719.348", "GB 245/7193-48"])
async def test_a_vendor_is_found_by_tax_number_in_any_spelling(
    harness: Harness, spelling: str
) -> None:
    # Tryton holds BT Group's (V1004) number as "GB245719348".
    wire_vendor = {**vendor("V1004"), "taxRegistrationNumber": spelling}
    del wire_vendor["code"], wire_vendor["externalId"]
    it = item(amount=5000, bookkeeping="accounts_payable", vendor=wire_vendor)
    _, record = await harness.book(it, vendor_based=True)
    invoice = await harness.read(
        "account.invoice", record_id(record.external_id)[1], ["party.code"]
    )
    assert invoice["party."]["code"] == "V1004"


async def test_another_countrys_tax_number_is_not_the_vendor(harness: Harness) -> None:
    wire_vendor = {**vendor("V1004"), "taxRegistrationNumber": "IE245719348"}
    del wire_vendor["code"], wire_vendor["externalId"]
    it = item(amount=5000, bookkeeping="accounts_payable", vendor=wire_vendor)
    error = await _fails_writing_nothing(harness, it, vendor_based=True)
    assert error.reason_type is Reason.VENDOR_UNKNOWN


async def test_exclusive_tax_must_add_up(harness: Harness) -> None:
    good = line(12000, "6100", tax=tax(2000, code="EX20", type="exclusive"))
    _, record = await harness.book(item(amount=12000, lines=[good]))
    assert await harness.move_lines(record_id(record.external_id)[1]) == [
        ("1990", D("-120.00"), None),
        ("2201", D("20.00"), None),
        ("6100", D("100.00"), None),
    ]
    bad = line(12000, "6100", tax=tax(2000, code="EX20", type="exclusive"))
    bad["netAmount"] = dual(11000)
    error = await _fails_writing_nothing(harness, item(amount=12000, lines=[bad]))
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert error.message.startswith(
        "accountingEntryLines[0].netAmount.inWalletCurrency (110.00) + "
        "accountingEntryLines[0].tax.amount.inWalletCurrency (20.00) is 130.00 GBP, but "
        "accountingEntryLines[0].lineAmount.inWalletCurrency is 120.00 GBP"
    )
