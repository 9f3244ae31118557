"""Issue 11's bookkeeping cases in a real beancount ledger, read back with beancount: a bounced
reimbursement reverses the payout, a sign that contradicts the type fails the item, vendors are
found by tax number in any spelling, and exclusive tax lines must add up."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from connectors.beancount.tests.conftest import CURRENCY, Harness
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export_beancount import StarterAccount, StarterChart, StarterVendor, write_starter_ledger

pytestmark = pytest.mark.anyio


def _transactions(harness: Harness) -> list[Any]:
    entries, _ = harness.load()
    return [e for e in entries if type(e).__name__ == "Transaction"]


async def _fails(harness: Harness, item: Any, vendor_based: bool = False) -> ItemRejected:
    """Book ``item`` as the engine would; it must fail, and the ledger must not change."""
    before = harness.output.read_bytes()
    with pytest.raises(ItemRejected) as caught:
        await harness.book(item, vendor_based=vendor_based)
    assert harness.output.read_bytes() == before
    return caught.value


# --- direct_reimbursement sub-types -------------------------------------------------------------


async def test_a_bounced_payout_reverses_the_payout(harness: Harness, make: Any) -> None:
    payout = make.item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee")
    bounced = make.item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee_refund")
    await harness.book(payout)
    assert harness.balances() == {
        "Liabilities:Pleo:OutOfPocket": D("50.00"),
        "Assets:Pleo:Wallet": D("-50.00"),
    }
    await harness.book(bounced)
    assert harness.balances() == {}  # the employee is owed the money again, the wallet has it
    _, second = _transactions(harness)
    assert [(p.account, p.units.number) for p in second.postings] == [
        ("Assets:Pleo:Wallet", D("50.00")),
        ("Liabilities:Pleo:OutOfPocket", D("-50.00")),
    ]


async def test_a_sub_type_of_another_type_fails_the_item(harness: Harness, make: Any) -> None:
    item = make.item("direct_reimbursement", 5000, sub_type="invoice_payment_returned")
    error = await _fails(harness, item)
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert "subType is 'invoice_payment_returned' for type direct_reimbursement" in error.message
    assert _transactions(harness) == []


# --- signs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_type", "amount"),
    [("refund", 2000), ("chargeback", 2000), ("cashback", 300), ("wallet_topup", -50000)],
)
async def test_a_sign_that_contradicts_the_type_fails_and_books_nothing(
    harness: Harness, make: Any, item_type: str, amount: int
) -> None:
    error = await _fails(harness, make.item(item_type, amount))
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert error.message.startswith(
        f"amount.inWalletCurrency.value is {amount} for type {item_type}"
    )
    assert _transactions(harness) == []
    assert harness.balances() == {}


async def test_a_refund_with_its_sign_is_booked(harness: Harness, make: Any) -> None:
    await harness.book(make.item("refund", -2000))
    assert harness.balances() == {"Expenses:Office": D("-20.00"), "Assets:Pleo:Wallet": D("20.00")}


# --- vendors by tax number -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["DK12345678", "12345678", "dk\u00a012.34.56.78", "DK-12/34-56/78"]
)
async def test_a_vendor_is_found_by_tax_number_in_any_spelling(
    harness: Harness, make: Any, spelling: str
) -> None:
    # The ledger spells Initech's number "DK 12 34 56 78".
    item = make.item(
        "invoice",
        amount=4000,
        vendor=make.vendor("Initech Inc", tax_number=spelling),
        bookkeeping="accounts_payable",
    )
    await harness.book(item, vendor_based=True)
    assert harness.balances() == {
        "Expenses:Office": D("40.00"),
        "Liabilities:AccountsPayable:Initech": D("-40.00"),
    }


async def test_a_ledger_number_without_country_prefix_matches(tmp_path: Path, make: Any) -> None:
    chart = StarterChart(
        currency=CURRENCY,
        accounts=[StarterAccount("Expenses:Office", "6800", "Office supplies")],
        vendors=[StarterVendor("Hooli", tax_number="98.76.54.32")],
    )
    harness = Harness(directory=tmp_path, ledger=write_starter_ledger(tmp_path, chart))
    item = make.item(
        "invoice",
        amount=4000,
        vendor=make.vendor("Hooli", tax_number="DK 98765432"),
        bookkeeping="accounts_payable",
    )
    await harness.book(item, vendor_based=True)
    assert harness.balances() == {
        "Expenses:Office": D("40.00"),
        "Liabilities:AccountsPayable:Hooli": D("-40.00"),
    }


async def test_another_countrys_number_is_not_the_vendor(harness: Harness, make: Any) -> None:
    item = make.item(
        "invoice",
        amount=4000,
        vendor=make.vendor("Initech AB", tax_number="SE12345678"),
        bookkeeping="accounts_payable",
    )
    error = await _fails(harness, item, vendor_based=True)
    assert error.reason_type is Reason.VENDOR_UNKNOWN


# --- exclusive tax -------------------------------------------------------------------------------


def _exclusive_line(make: Any, gross: int, tax: int, net: int) -> dict[str, Any]:
    line: dict[str, Any] = make.line(gross, tax=make.tax(tax, type="exclusive"))
    line["netAmount"] = make.dual(net)
    return line


async def test_exclusive_tax_that_adds_up_is_booked(harness: Harness, make: Any) -> None:
    item = make.item("card_purchase", 12500, lines=[_exclusive_line(make, 12500, 2500, 10000)])
    await harness.book(item)
    assert harness.balances() == {
        "Expenses:Office": D("100.00"),
        "Assets:VAT:Input": D("25.00"),
        "Assets:Pleo:Wallet": D("-125.00"),
    }


async def test_exclusive_tax_that_does_not_add_up_fails(harness: Harness, make: Any) -> None:
    item = make.item("card_purchase", 12500, lines=[_exclusive_line(make, 12500, 2500, 12500)])
    error = await _fails(harness, item)
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert error.message.startswith(
        "accountingEntryLines[0].netAmount.inWalletCurrency (125.00) + "
        "accountingEntryLines[0].tax.amount.inWalletCurrency (25.00) is 150.00 DKK, but "
        "accountingEntryLines[0].lineAmount.inWalletCurrency is 125.00 DKK"
    )
    assert _transactions(harness) == []
