"""The core bookkeeping rules: sub-type direction, the sign each type must have, and Pleo's
figures on ``exclusive`` tax lines (``pleo_export.bookkeeping``)."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_export.bookkeeping import (
    AMOUNT_SIGN,
    SPEND_COUNTER_ROLE,
    SUBTYPE_DIRECTION,
    TRANSFER_ROLES,
    Direction,
    PlanOptions,
    Sign,
    plan_item,
)
from pleo_export.connector import ItemRejected
from pleo_export.ledger import Role
from pleo_export.pleo.models import ExportItem, ExportItemSubType, ExportItemType, ExportJob

T = ExportItemType
S = ExportItemSubType

JOB = ExportJob.model_validate(
    {
        "id": "00000000-0000-4000-8000-000000000001",
        "companyId": "00000000-0000-4000-8000-000000000002",
        "status": "in_progress",
        "createdAt": "2026-03-01T08:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 1,
        "vendorBasedBookkeeping": False,
    }
)


def dual(wallet: int, supplier: int | None = None, supplier_currency: str = "GBP") -> Any:
    return {
        "inWalletCurrency": {"currency": "GBP", "value": wallet},
        "inSupplierCurrency": {
            "currency": supplier_currency,
            "value": wallet if supplier is None else supplier,
        },
    }


def make(
    type: str,
    amount: int,
    *,
    sub_type: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    supplier: int | None = None,
    supplier_currency: str = "GBP",
) -> ExportItem:
    if lines is None:
        lines = [
            {
                "accountingEntryLineId": "l1",
                "account": {"id": "a1", "name": "Office", "code": "6800"},
                "lineAmount": dual(amount, supplier, supplier_currency),
                "netAmount": dual(amount, supplier, supplier_currency),
            }
        ]
    data: dict[str, Any] = {
        "_links": {},
        "accountingEntryId": "00000000-0000-4000-8000-0000000000e1",
        "companyId": JOB.company_id,
        "type": type,
        "date": "2026-03-02T12:00:00Z",
        "amount": dual(amount, supplier, supplier_currency),
        "additionalInformation": {"reconciliationId": "R1"},
        "accountingEntryLines": lines,
        "subType": sub_type,
    }
    return ExportItem.model_validate(data)


def roles(item: ExportItem) -> list[tuple[Role, int]]:
    (entry,) = plan_item(item, JOB).entries
    return [(p.account.role, p.amount) for p in entry.postings]


def rejected(item: ExportItem, options: PlanOptions | None = None) -> ItemRejected:
    with pytest.raises(ItemRejected) as caught:
        plan_item(item, JOB, options)
    assert caught.value.reason_type.value == "validation_failure"
    return caught.value


# --- sub-types ---------------------------------------------------------------------------------


def test_every_v3_sub_type_has_a_direction() -> None:
    assert set(SUBTYPE_DIRECTION) == set(ExportItemSubType)


def test_a_bounced_payout_reverses_the_payout() -> None:
    """reimbursement_to_employee_refund: the money comes back to the wallet."""
    payout = make("direct_reimbursement", 5000, sub_type="reimbursement_to_employee")
    bounced = make("direct_reimbursement", 5000, sub_type="reimbursement_to_employee_refund")
    assert roles(payout) == [(Role.OUT_OF_POCKET, 5000), (Role.WALLET, -5000)]
    assert roles(bounced) == [(Role.WALLET, 5000), (Role.OUT_OF_POCKET, -5000)]


@pytest.mark.parametrize(
    ("item_type", "sub_type", "reversed_"),
    [
        (item_type, sub_type, direction is Direction.REVERSED)
        for sub_type, (types, direction) in SUBTYPE_DIRECTION.items()
        for item_type in sorted(types)
        if item_type in TRANSFER_ROLES
    ],
)
def test_each_transfer_sub_type_books_in_its_direction(
    item_type: ExportItemType, sub_type: ExportItemSubType, reversed_: bool
) -> None:
    debit, credit = TRANSFER_ROLES[item_type]
    if reversed_:
        debit, credit = credit, debit
    item = make(item_type.value, 700, sub_type=sub_type.value)
    assert roles(item) == [(debit, 700), (credit, -700)]
    as_type = TRANSFER_ROLES[item_type]
    assert roles(make(item_type.value, 700)) == [(as_type[0], 700), (as_type[1], -700)]


@pytest.mark.parametrize(
    ("item_type", "sub_type"),
    [
        (T.DIRECT_REIMBURSEMENT, "invoice_payment_returned"),
        (T.INVOICE_PAYMENT, "reimbursement_to_company"),
        (T.WALLET_TOPUP, "reimbursement_to_employee_refund"),
        (T.WALLET_UNLOAD, "interest"),
        (T.EXTERNAL_REIMBURSEMENT, "payroll_correction"),
    ],
)
def test_a_transfer_sub_type_of_another_type_fails_rather_than_guessing(
    item_type: ExportItemType, sub_type: str
) -> None:
    error = rejected(make(item_type.value, 700, sub_type=sub_type))
    assert f"subType is {sub_type!r} for type {item_type.value}" in error.message


def test_interest_on_a_fee_is_booked_as_the_fee() -> None:
    assert roles(make("fee", 250, sub_type="interest")) == [
        (Role.EXPENSE, 250),
        (Role.WALLET, -250),
    ]


# --- signs -------------------------------------------------------------------------------------


def test_every_type_has_a_sign_rule() -> None:
    assert set(AMOUNT_SIGN) == set(ExportItemType)
    assert set(AMOUNT_SIGN) == set(SPEND_COUNTER_ROLE) | set(TRANSFER_ROLES)
    assert {t for t, sign in AMOUNT_SIGN.items() if sign is Sign.NEGATIVE} == {
        T.REFUND,
        T.CHARGEBACK,
        T.CASHBACK,
    }
    assert {t for t, sign in AMOUNT_SIGN.items() if sign is Sign.POSITIVE} == set(TRANSFER_ROLES)


@pytest.mark.parametrize("item_type", ["refund", "chargeback", "cashback"])
def test_a_positive_money_back_item_fails_naming_field_and_value(item_type: str) -> None:
    error = rejected(make(item_type, 1500))
    assert error.message.startswith(f"amount.inWalletCurrency.value is 1500 for type {item_type}")
    assert "must be negative" in error.message
    assert roles(make(item_type, -1500)) == [(Role.EXPENSE, -1500), (Role.WALLET, 1500)]


@pytest.mark.parametrize("item_type", sorted(TRANSFER_ROLES))
def test_a_negative_transfer_fails_naming_field_and_value(item_type: ExportItemType) -> None:
    error = rejected(make(item_type.value, -5000))
    assert error.message.startswith(
        f"amount.inWalletCurrency.value is -5000 for type {item_type.value}"
    )
    assert "must be positive" in error.message


def test_the_supplier_side_of_the_amount_is_checked_too() -> None:
    item = make("refund", -1500, supplier=1700, supplier_currency="EUR")
    error = rejected(item)
    assert error.message.startswith("amount.inSupplierCurrency.value is 1700 for type refund")


@pytest.mark.parametrize("item_type", [t for t, sign in AMOUNT_SIGN.items() if sign is Sign.EITHER])
def test_other_spend_types_book_a_negative_amount_as_a_credit(item_type: ExportItemType) -> None:
    item = make(item_type.value, -800)
    counter = SPEND_COUNTER_ROLE[item_type]
    assert roles(item) == [(Role.EXPENSE, -800), (counter, 800)]


# --- exclusive tax -----------------------------------------------------------------------------


def taxed_line(
    gross: int, tax: int, net: int, *, supplier: tuple[int, int, int] | None = None
) -> dict[str, Any]:
    s_gross, s_tax, s_net = supplier or (gross, tax, net)
    currency = "GBP" if supplier is None else "EUR"
    return {
        "accountingEntryLineId": "l1",
        "account": {"id": "a1", "name": "Office", "code": "6800"},
        "lineAmount": dual(gross, s_gross, currency),
        "netAmount": dual(net, s_net, currency),
        "tax": {
            "id": "t1",
            "code": "EX20",
            "rate": 0.2,
            "type": "exclusive",
            "ingoingTaxAccount": "2610",
            "amount": dual(tax, s_tax, currency),
        },
    }


def test_exclusive_figures_that_agree_are_booked() -> None:
    item = make("card_purchase", 12000, lines=[taxed_line(12000, 2000, 10000)])
    assert roles(item) == [(Role.EXPENSE, 10000), (Role.TAX_INPUT, 2000), (Role.WALLET, -12000)]


def test_exclusive_within_the_rounding_tolerance_is_booked() -> None:
    item = make("card_purchase", 12001, lines=[taxed_line(12001, 2000, 10000)])
    assert roles(item)[0] == (Role.EXPENSE, 10001)
    with pytest.raises(ItemRejected):
        plan_item(item, JOB, PlanOptions(rounding_tolerance_per_line=0))


def test_exclusive_figures_that_disagree_fail_in_the_wallet_currency() -> None:
    item = make("card_purchase", 12000, lines=[taxed_line(12000, 2000, 9000)])
    error = rejected(item)
    assert error.message == (
        "accountingEntryLines[0].netAmount.inWalletCurrency (90.00) + "
        "accountingEntryLines[0].tax.amount.inWalletCurrency (20.00) is 110.00 GBP, but "
        "accountingEntryLines[0].lineAmount.inWalletCurrency is 120.00 GBP: Pleo's figures "
        "for this exclusive tax line disagree; correct the amount or the tax code of the "
        "expense in Pleo"
    )


def test_exclusive_figures_that_disagree_fail_in_the_supplier_currency() -> None:
    line = taxed_line(12000, 2000, 10000, supplier=(14000, 2400, 11000))
    item = make("card_purchase", 12000, lines=[line], supplier=14000, supplier_currency="EUR")
    error = rejected(item)
    assert error.message.startswith(
        "accountingEntryLines[0].netAmount.inSupplierCurrency (110.00) + "
        "accountingEntryLines[0].tax.amount.inSupplierCurrency (24.00) is 134.00 EUR, but "
        "accountingEntryLines[0].lineAmount.inSupplierCurrency is 140.00 EUR"
    )


def test_a_negative_exclusive_line_is_checked_with_its_signs() -> None:
    good = make("refund", -12000, lines=[taxed_line(-12000, -2000, -10000)])
    assert roles(good)[0] == (Role.EXPENSE, -10000)
    rejected(make("refund", -12000, lines=[taxed_line(-12000, -2000, -12000)]))


def test_inclusive_lines_are_not_held_to_the_exclusive_rule() -> None:
    line = taxed_line(12000, 2000, 12000)
    line["tax"]["type"] = "inclusive"
    assert roles(make("card_purchase", 12000, lines=[line]))[0] == (Role.EXPENSE, 10000)
