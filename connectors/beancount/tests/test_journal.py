"""Journal items booked into the ledger: balances, accounts, metadata and failures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected

pytestmark = pytest.mark.anyio


async def test_card_purchase_with_inclusive_vat(harness, make):
    it = make.item(amount=12500, lines=[make.line(12500, tax=make.tax(2500))])
    prepared, record = await harness.book(it)

    assert harness.balances() == {
        "Expenses:Office": D("100.00"),
        "Assets:VAT:Input": D("25.00"),
        "Assets:Pleo:Wallet": D("-125.00"),
    }
    entries, _ = harness.load()
    (txn,) = [e for e in entries if type(e).__name__ == "Transaction"]
    assert txn.flag == "*"
    assert txn.payee == "Office Shop"
    assert txn.links == {f"pleo-{it.accounting_entry_id}"}
    assert txn.meta["pleo-entry-id"] == it.accounting_entry_id
    assert txn.meta["pleo-reconciliation-id"] == it.additional_information.reconciliation_id
    assert txn.meta["pleo-job-id"] == make.job().id
    assert txn.meta["pleo-type"] == "card_purchase"
    assert txn.meta["pleo-kind"] == "journal"
    office, vat, _wallet = txn.postings
    assert office.meta["pleo-tax-code"] == "S25"
    assert office.meta["pleo-tax-rate"] == D("0.25")
    assert vat.meta["pleo-tax-type"] == "inclusive"
    assert record.external_id == f"pleo-{it.accounting_entry_id}"
    assert [(e.account, e.role.value) for e in prepared.entries[0].postings] == [
        ("Expenses:Office", "expense"),
        ("Assets:VAT:Input", "tax_input"),
        ("Assets:Pleo:Wallet", "wallet"),
    ]


async def test_split_lines_with_tags(harness, make):
    it = make.item(
        amount=10000,
        lines=[
            make.line(6000, "6800", tags=[("DEPT", "SALES"), ("project code", "P-1")]),
            make.line(4000, "7100", "Travel", tags=[("DEPT", "OPS")]),
        ],
    )
    await harness.book(it)

    assert harness.balances() == {
        "Expenses:Office": D("60.00"),
        "Expenses:Travel": D("40.00"),
        "Assets:Pleo:Wallet": D("-100.00"),
    }
    entries, _ = harness.load()
    (txn,) = [e for e in entries if type(e).__name__ == "Transaction"]
    assert txn.postings[0].meta["dimension-DEPT"] == "SALES"
    assert txn.postings[0].meta["dimension-project_code"] == "P-1"
    assert txn.postings[1].meta["dimension-DEPT"] == "OPS"


async def test_reverse_charge_books_input_and_output_vat(harness, make):
    it = make.item(
        amount=10000,
        lines=[
            make.line(
                10000,
                "6900",
                "Software",
                tax=make.tax(2500, type="reverse", ingoing="5600", outgoing="5610"),
            )
        ],
    )
    await harness.book(it)

    assert harness.balances() == {
        "Expenses:Software": D("100.00"),
        "Assets:VAT:Input": D("25.00"),
        "Liabilities:VAT:Output": D("-25.00"),
        "Assets:Pleo:Wallet": D("-100.00"),
    }


async def test_tax_accounts_fall_back_to_settings(harness, make):
    harness.overrides = {"vat_input_account": "Assets:Pleo:DKK"}  # any open account will do
    it = make.item(amount=12500, lines=[make.line(12500, tax=make.tax(2500, ingoing="0000"))])
    await harness.book(it)
    assert harness.balances()["Assets:Pleo:DKK"] == D("25.00")


async def test_refund_with_negative_amount_reverses(harness, make):
    it = make.item("refund", amount=-5000)
    await harness.book(it)
    assert harness.balances() == {"Expenses:Office": D("-50.00"), "Assets:Pleo:Wallet": D("50.00")}


async def test_wallet_topup_moves_contra_to_wallet(harness, make):
    it = make.item("wallet_topup", amount=100000, supplier_name=None)
    prepared, _ = await harness.book(it)
    assert harness.balances() == {
        "Assets:Pleo:Wallet": D("1000.00"),
        "Assets:Bank:Contra": D("-1000.00"),
    }
    # No supplier: no payee, only the narration.
    assert f'2024-03-05 * "Ada Lovelace" ^pleo-{it.accounting_entry_id}\n' in prepared.rendered


async def test_out_of_pocket_credits_the_employee_liability(harness, make):
    it = make.item("out_of_pocket", amount=4200, lines=[make.line(4200, "7100", "Travel")])
    await harness.book(it)
    assert harness.balances() == {
        "Expenses:Travel": D("42.00"),
        "Liabilities:Pleo:OutOfPocket": D("-42.00"),
    }


async def test_multi_currency_with_rounding_residual(harness, make):
    # 100.00 EUR paid as 746.01 DKK; the lines were converted separately and sum to 746.00.
    it = make.item(
        amount=74601,
        supplier_amount=10000,
        supplier_currency="EUR",
        lines=[
            make.line(37300, "6800", supplier=5000, supplier_currency="EUR"),
            make.line(37300, "7100", "Travel", supplier=5000, supplier_currency="EUR"),
        ],
    )
    await harness.book(it)

    assert harness.balances() == {
        "Expenses:Office": D("373.00"),
        "Expenses:Travel": D("373.00"),
        "Expenses:Rounding": D("0.01"),
        "Assets:Pleo:Wallet": D("-746.01"),
    }
    entries, _ = harness.load()
    (txn,) = [e for e in entries if type(e).__name__ == "Transaction"]
    office, _travel, rounding, wallet = txn.postings
    assert str(office.meta["pleo-supplier-amount"]) == "50.00 EUR"
    assert str(wallet.meta["pleo-supplier-amount"]) == "-100.00 EUR"
    assert "pleo-supplier-amount" not in rounding.meta


async def test_zero_decimal_currency(harness, make, tmp_path):
    it = make.item(
        amount=12500,
        supplier_amount=2500,
        supplier_currency="JPY",
        lines=[make.line(12500, supplier=2500, supplier_currency="JPY")],
    )
    prepared, _ = await harness.book(it)
    assert "pleo-supplier-amount: 2500 JPY" in prepared.rendered
    assert harness.balances()["Expenses:Office"] == D("125.00")


async def test_contra_account_code_selects_the_wallet(harness, make):
    contra = {"id": "0c0c0c0c-0000-4000-8000-000000000001", "name": "Pleo DKK", "code": "1990"}
    it = make.item(amount=2000, contra=contra)
    await harness.book(it)
    assert harness.balances() == {"Expenses:Office": D("20.00"), "Assets:Pleo:DKK": D("-20.00")}


async def test_unknown_contra_code_falls_back_to_wallet_account(harness, make):
    contra = {"id": "0c0c0c0c-0000-4000-8000-000000000001", "name": "Pleo EUR", "code": "1999"}
    await harness.book(make.item(amount=2000, contra=contra))
    assert harness.balances()["Assets:Pleo:Wallet"] == D("-20.00")


async def test_account_map_wins_over_pleo_code(harness, make):
    harness.overrides = {"account_map": {"6800": "Expenses:Travel"}}
    await harness.book(make.item(amount=1000))
    assert harness.balances() == {"Expenses:Travel": D("10.00"), "Assets:Pleo:Wallet": D("-10.00")}


async def test_draft_flag(harness, make):
    harness.overrides = {"flag": "draft"}
    await harness.book(make.item(amount=1000))
    entries, _ = harness.load()
    assert [e.flag for e in entries if type(e).__name__ == "Transaction"] == ["!"]


# --- failures ---------------------------------------------------------------------------------


async def test_unknown_expense_account_names_field_value_and_fix(harness, make):
    it = make.item(amount=1000, lines=[make.line(1000, "9999", "Mystery")])
    before = harness.output.read_bytes()
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it)
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    message = caught.value.message
    assert "account 9999 (Mystery) on accountingEntryLines[0]" in message
    assert str(harness.ledger) in message
    assert 'pleo-code: "9999"' in message
    assert "change the category in Pleo" in message
    assert harness.output.read_bytes() == before


async def test_expense_without_code(harness, make):
    it = make.item(amount=1000, lines=[make.line(1000, None, "Nameless")])
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it)
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    assert "has no account code in Pleo" in caught.value.message


async def test_account_not_open_on_entry_date(harness, make):
    with harness.ledger.open("a") as handle:
        handle.write('2024-06-01 open Expenses:Late\n  pleo-code: "7777"\n')
        handle.write('2000-01-01 open Expenses:Gone\n  pleo-code: "7778"\n')
        handle.write("2023-12-31 close Expenses:Gone\n")
    late = make.item(amount=1000, lines=[make.line(1000, "7777", "Late")])
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(late)
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    assert "Expenses:Late, which is not open on 2024-03-05" in caught.value.message
    assert "move its open date to 2024-03-05 or earlier" in caught.value.message

    gone = make.item(amount=1000, lines=[make.line(1000, "7778", "Gone")])
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(gone)
    assert "closed 2023-12-31" in caught.value.message
    assert "remove its close directive" in caught.value.message


async def test_account_map_target_missing(harness, make):
    harness.overrides = {"account_map": {"6800": "Expenses:Nowhere"}}
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(make.item(amount=1000))
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    assert "account_map['6800'] = Expenses:Nowhere" in caught.value.message
    assert "open Expenses:Nowhere" in caught.value.message


async def test_currency_constraint_on_open_is_enforced(harness, make):
    with harness.ledger.open("a") as handle:
        handle.write('2000-01-01 open Expenses:Usd USD\n  pleo-code: "8100"\n')
    it = make.item(amount=1000, lines=[make.line(1000, "8100", "US only")])
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it)
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "only allows USD but the entry is in DKK" in caught.value.message


async def test_ambiguous_pleo_code(harness, make):
    with harness.ledger.open("a") as handle:
        handle.write('2000-01-01 open Expenses:Office2\n  pleo-code: "6800"\n')
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(make.item(amount=1000))
    assert caught.value.reason_type is Reason.INVALID_CONFIGURATION
    assert "Expenses:Office, Expenses:Office2" in caught.value.message


async def test_missing_role_account_fails_the_item(harness, make):
    harness.overrides = {"out_of_pocket_account": "Liabilities:Employees"}
    connector = await harness.connector()
    from pleo_export.testing import plan_item

    it = make.item("out_of_pocket", amount=1000)
    with pytest.raises(ItemRejected) as caught:
        await connector.prepare(plan_item(it, make.job()))
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    assert "Liabilities:Employees (setting out_of_pocket_account)" in caught.value.message


# --- closed periods ---------------------------------------------------------------------------


async def test_closed_period_fail(harness, make):
    harness.overrides = {"closed_before": date(2024, 4, 1)}
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(make.item(amount=1000))
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    message = caught.value.message
    assert "2024-03-05 is in a closed accounting period" in message
    assert 'closed_period = "fail"' in message
    assert "closed_before" in message


async def test_closed_period_moves_to_first_open_date(harness, make, caplog):
    harness.overrides = {"closed_before": date(2024, 4, 1), "closed_period": "first_open_date"}
    prepared, _ = await harness.book(make.item(amount=1000))
    entries, _ = harness.load()
    (txn,) = [e for e in entries if type(e).__name__ == "Transaction"]
    assert txn.date == date(2024, 4, 1)
    assert txn.meta["pleo-original-date"] == date(2024, 3, 5)
    assert prepared.entries[0].date == date(2024, 4, 1)
    assert 'closed_period = "first_open_date"' in caplog.text


async def test_open_period_is_untouched(harness, make):
    harness.overrides = {"closed_before": date(2024, 1, 1), "closed_period": "first_open_date"}
    prepared, _ = await harness.book(make.item(amount=1000))
    assert prepared.entries[0].date == date(2024, 3, 5)
    assert "pleo-original-date" not in prepared.rendered
