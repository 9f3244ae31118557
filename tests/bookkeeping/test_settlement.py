"""An invoice payment settles its invoice at the invoice's rate; the rest is exchange difference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pleo_export.bookkeeping import plan_item
from pleo_export.ledger import Role
from pleo_export.pleo.models import ExportItem, ExportJob
from pleo_export.settlement import (
    BookedInvoice,
    settle_payment,
    settlement,
    settlement_request,
)

JOB = ExportJob.model_validate(
    {
        "id": "00000000-0000-4000-8000-000000000001",
        "companyId": "00000000-0000-4000-8000-000000000002",
        "status": "in_progress",
        "createdAt": "2026-03-01T08:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 1,
        "vendorBasedBookkeeping": True,
    }
)


def payment(
    wallet: int = 87000,
    supplier: int = 100000,
    currency: str = "EUR",
    *,
    sub_type: str | None = "invoice_payment_sent",
    invoice_number: str | None = "RE-1",
) -> ExportItem:
    info: dict[str, Any] = {"reconciliationId": "BK-1"}
    if invoice_number is not None:
        info["invoiceInformation"] = {
            "invoiceNumber": invoice_number,
            "invoiceDate": "2026-02-01",
            "status": "paid",
        }
    return ExportItem.model_validate(
        {
            "_links": {},
            "accountingEntryId": "00000000-0000-4000-8000-0000000000aa",
            "accountingEntryLines": [],
            "additionalInformation": info,
            "amount": {
                "inWalletCurrency": {"value": wallet, "currency": "GBP"},
                "inSupplierCurrency": {"value": supplier, "currency": currency},
            },
            "companyId": JOB.company_id,
            "date": "2026-03-05T10:00:00Z",
            "type": "invoice_payment",
            "subType": sub_type,
            "vendor": {"id": "v", "name": "Müller GmbH", "code": "V1", "defaultCurrency": "EUR"},
            "bookkeeping": {"method": "accounts_payable"},
        }
    )


def booked(amount: int = 85000, supplier: int = 100000, currency: str = "EUR") -> BookedInvoice:
    return BookedInvoice(amount=amount, supplier_amount=supplier, supplier_currency=currency)


def test_a_loss_is_debited_beside_the_payable_at_the_invoices_rate() -> None:
    plan = settle_payment(plan_item(payment(), JOB), booked())
    (entry,) = plan.entries
    assert [(p.account.role, p.amount, p.supplier_amount) for p in entry.postings] == [
        (Role.ACCOUNTS_PAYABLE, 85000, 100000),
        (Role.EXCHANGE_LOSS, 2000, 0),
        (Role.WALLET, -87000, -100000),
    ]


def test_a_gain_is_credited() -> None:
    plan = settle_payment(plan_item(payment(wallet=84000), JOB), booked())
    assert [(p.account.role, p.amount) for p in plan.entries[0].postings] == [
        (Role.ACCOUNTS_PAYABLE, 85000),
        (Role.EXCHANGE_GAIN, -1000),
        (Role.WALLET, -84000),
    ]


@pytest.mark.parametrize(
    ("paid_wallet", "paid_supplier", "open_wallet", "open_supplier", "settled"),
    [
        (43500, 50000, 85000, 100000, 42500),  # half of the invoice: half its booked amount
        (43500, 50000, 42500, 50000, 42500),  # the last part settles what is left
        (3400, 10000, 10000, 30000, 3333),  # pro rata, rounded
        (3, 1, 5, 2, 3),  # 2.5: half away from zero
        (95700, 110000, 85000, 100000, 85000 + 8700),  # overpaid: the excess at its own rate
    ],
)
def test_partial_and_over_payments(
    paid_wallet: int, paid_supplier: int, open_wallet: int, open_supplier: int, settled: int
) -> None:
    request = settlement_request(plan_item(payment(paid_wallet, paid_supplier), JOB))
    assert request is not None
    result = settlement(request, booked(open_wallet, open_supplier))
    assert result is not None
    assert (result.settled, result.difference) == (settled, paid_wallet - settled)


@pytest.mark.parametrize(
    "item",
    [
        payment(sub_type="invoice_payment_returned"),  # money back: reopens the invoice
        payment(invoice_number=None),  # no invoice to find
        payment(87000, 87000, "GBP"),  # in the wallet currency: one rate only
    ],
)
def test_payments_that_settle_nothing_at_another_rate(item: ExportItem) -> None:
    plan = plan_item(item, JOB)
    assert settlement_request(plan) is None
    assert settle_payment(plan, booked()) is plan


def test_an_invoice_in_another_currency_or_already_paid_is_left_alone() -> None:
    plan = plan_item(payment(), JOB)
    assert settle_payment(plan, booked(currency="USD")) is plan
    assert settle_payment(plan, booked(0, 0)) is plan
    assert settle_payment(plan, None) is plan
    assert settle_payment(plan, booked(87000)) is plan  # the same rate: nothing to book


@given(
    invoice_wallet=st.integers(1, 10**9),
    parts=st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 10**9)), min_size=1, max_size=6),
)
def test_paying_an_invoice_in_parts_at_any_rates_leaves_nothing_open(
    invoice_wallet: int, parts: list[tuple[int, int]]
) -> None:
    # parts: (supplier amount, wallet amount) of each payment; together they pay the invoice.
    invoice_supplier = sum(supplier for supplier, _ in parts)
    open_wallet, open_supplier = invoice_wallet, invoice_supplier
    for supplier, wallet in parts:
        plan = settle_payment(
            plan_item(payment(wallet, supplier), JOB),
            booked(open_wallet, open_supplier),
        )
        (entry,) = plan.entries
        assert entry.balance == 0
        (payable,) = [p for p in entry.postings if p.account.role is Role.ACCOUNTS_PAYABLE]
        open_wallet -= payable.amount
        open_supplier -= payable.supplier_amount or 0
        assert open_supplier >= 0
    assert (open_wallet, open_supplier) == (0, 0)
