"""Accounts payable: invoices, payments and credit notes against vendors from the ledger."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export.testing import plan_item

pytestmark = pytest.mark.anyio

PLEO_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)


def _transactions(entries):
    return [e for e in entries if type(e).__name__ == "Transaction"]


async def test_card_purchase_as_invoice_and_payment_vendor_by_code(harness, make):
    it = make.item(
        amount=12500,
        lines=[make.line(12500, tax=make.tax(2500))],
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
        invoice_number="INV-7",
    )
    prepared, _ = await harness.book(it, vendor_based=True)

    assert harness.balances() == {
        "Expenses:Office": D("100.00"),
        "Assets:VAT:Input": D("25.00"),
        "Assets:Pleo:Wallet": D("-125.00"),
    }  # the vendor account is settled: invoice -125, payment +125
    entries, _ = harness.load()
    invoice, payment = _transactions(entries)
    link = f"pleo-{it.accounting_entry_id}"
    assert invoice.links == payment.links == {link}
    assert invoice.meta["pleo-kind"] == "ap_invoice"
    assert payment.meta["pleo-kind"] == "ap_payment"
    assert invoice.meta["pleo-invoice-number"] == "INV-7"
    assert invoice.payee == payment.payee == "Acme Ltd."
    assert [p.account for p in payment.postings] == [
        "Liabilities:AccountsPayable:AcmeLtd",
        "Assets:Pleo:Wallet",
    ]
    assert invoice.postings[-1].account == "Liabilities:AccountsPayable:AcmeLtd"
    assert invoice.postings[-1].units.number == D("-125.00")
    assert [e.kind.value for e in prepared.entries] == ["ap_invoice", "ap_payment"]


async def test_invoice_vendor_by_external_id_stays_open(harness, make):
    it = make.item(
        "invoice",
        amount=30000,
        lines=[make.line(30000, "6900", "Software")],
        vendor=make.vendor("Globex Corporation", code="NOPE", external_id="EXT-9"),
        bookkeeping="accounts_payable",
    )
    await harness.book(it, vendor_based=True)
    assert harness.balances() == {
        "Expenses:Software": D("300.00"),
        "Liabilities:AccountsPayable:Globex": D("-300.00"),
    }


async def test_credit_note_vendor_by_tax_number(harness, make):
    # The ledger spells the number "DK 12 34 56 78": spaces are not significant.
    it = make.item(
        "refund",
        amount=-2000,
        vendor=make.vendor("Initech", tax_number="DK12345678"),
        bookkeeping="accounts_payable",
    )
    await harness.book(it, vendor_based=True)
    entries, _ = harness.load()
    note, payment = _transactions(entries)
    assert note.meta["pleo-kind"] == "ap_credit_note"
    assert payment.meta["pleo-kind"] == "ap_payment"
    assert note.postings[-1].account == "Liabilities:AccountsPayable:Initech"
    assert harness.balances() == {"Expenses:Office": D("-20.00"), "Assets:Pleo:Wallet": D("20.00")}


async def test_invoice_payment_settles_the_vendor(harness, make):
    invoice = make.item(
        "invoice",
        amount=5000,
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
    )
    payment = make.item(
        "invoice_payment",
        amount=5000,
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
        sub_type="invoice_payment_sent",
    )
    await harness.book(invoice, vendor_based=True)
    prepared, _ = await harness.book(payment, vendor_based=True)
    assert prepared.entries[0].kind.value == "ap_payment"
    assert harness.balances() == {"Expenses:Office": D("50.00"), "Assets:Pleo:Wallet": D("-50.00")}


async def test_unknown_vendor_fails_with_pleo_message_and_identifiers(harness, make):
    it = make.item(
        "invoice",
        amount=5000,
        vendor=make.vendor("Umbrella", code="V999", external_id="X-1", tax_number="GB999"),
        bookkeeping="accounts_payable",
    )
    before = harness.output.read_bytes()
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it, vendor_based=True)
    assert caught.value.reason_type is Reason.VENDOR_UNKNOWN
    message = caught.value.message
    assert message.startswith(PLEO_MESSAGE)
    for tried in ('vendor-code: "V999"', 'vendor-external-id: "X-1"', 'vendor-tax-number: "GB999"'):
        assert tried in message
    assert "Umbrella" in message
    assert harness.output.read_bytes() == before


async def test_vendor_without_identifiers(harness, make):
    it = make.item(
        "invoice", amount=5000, vendor=make.vendor("Nobody"), bookkeeping="accounts_payable"
    )
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it, vendor_based=True)
    assert caught.value.reason_type is Reason.VENDOR_UNKNOWN
    assert "has no code, external id or tax number" in caught.value.message


async def test_unknown_vendor_fallback_books_to_payable_account(harness, make):
    harness.overrides = {"unknown_vendor": "fallback"}
    it = make.item(
        "invoice",
        amount=5000,
        vendor=make.vendor("Umbrella", code="V999"),
        bookkeeping="accounts_payable",
    )
    prepared, _ = await harness.book(it, vendor_based=True)
    assert harness.balances() == {
        "Expenses:Office": D("50.00"),
        "Liabilities:AccountsPayable": D("-50.00"),
    }
    assert 'pleo-vendor-code: "V999"' in prepared.rendered  # kept for later reconciliation


async def test_closed_vendor_account_is_blocked(harness, make):
    with harness.ledger.open("a") as handle:
        handle.write("2024-01-31 close Liabilities:AccountsPayable:AcmeLtd\n")
    it = make.item(
        "invoice",
        amount=5000,
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
    )
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(it, vendor_based=True)
    assert caught.value.reason_type is Reason.VENDOR_UNKNOWN
    assert "closed 2024-01-31" in caught.value.message


async def test_vendor_code_wins_over_later_identifiers(harness, make):
    it = make.item(
        "invoice",
        amount=5000,
        vendor=make.vendor("Acme Ltd.", code="V100", external_id="EXT-9"),
        bookkeeping="accounts_payable",
    )
    await harness.book(it, vendor_based=True)
    assert harness.balances()["Liabilities:AccountsPayable:AcmeLtd"] == D("-50.00")


@pytest.mark.parametrize("bookkeeping", ["accounts_payable", "journal"])
async def test_supplier_invoice_is_dated_by_its_invoice_date(harness, make, bookkeeping):
    # Booked in Pleo on 5 March, issued by the vendor on 20 February: VAT follows the invoice.
    it = make.item(
        "invoice",
        amount=5000,
        lines=[make.line(5000, tax=make.tax(1000))],
        date="2024-03-05T12:00:00Z",
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping=bookkeeping,
        invoice_number="INV-20",
        invoice_date="2024-02-20",
    )
    await harness.book(it, vendor_based=True)
    entries, _ = harness.load()
    (invoice,) = _transactions(entries)
    assert invoice.date.isoformat() == "2024-02-20"


async def test_card_purchase_invoice_dated_by_invoice_date_payment_by_item_date(harness, make):
    it = make.item(
        amount=12500,
        lines=[make.line(12500, tax=make.tax(2500))],
        date="2024-03-05T12:00:00Z",
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
        invoice_number="INV-21",
        invoice_date="2024-03-01T00:00:00Z",
    )
    await harness.book(it, vendor_based=True)
    entries, _ = harness.load()
    invoice, payment = _transactions(entries)
    assert invoice.date.isoformat() == "2024-03-01"
    assert payment.date.isoformat() == "2024-03-05"


def _open_exchange_accounts(harness) -> None:
    with harness.ledger.open("a", encoding="utf-8") as ledger:
        ledger.write("\n2000-01-01 open Income:ExchangeGains\n2000-01-01 open Expenses:FX\n")
    harness.overrides = {
        "exchange_gain_account": "Income:ExchangeGains",
        "exchange_loss_account": "Expenses:FX",
    }


def _foreign_invoice_and_payment(make, invoice_dkk: int, payment_dkk: int, paid_eur=100000):
    acme = make.vendor("Acme Ltd.", code="V100")
    invoice = make.item(
        "invoice",
        amount=invoice_dkk,
        supplier_amount=100000,
        supplier_currency="EUR",
        lines=[make.line(invoice_dkk, supplier=100000, supplier_currency="EUR")],
        vendor=acme,
        bookkeeping="accounts_payable",
        invoice_number="RE-117",
        date="2024-02-01T10:00:00Z",
    )
    payment = make.item(
        "invoice_payment",
        amount=payment_dkk,
        supplier_amount=paid_eur,
        supplier_currency="EUR",
        vendor=acme,
        bookkeeping="accounts_payable",
        sub_type="invoice_payment_sent",
        invoice_number="RE-117",
        date="2024-03-05T10:00:00Z",
    )
    return invoice, payment


@pytest.mark.parametrize(
    ("payment_dkk", "fx_account", "fx"),
    [(746000, "Expenses:FX", D("10.00")), (744500, "Income:ExchangeGains", D("-5.00"))],
)
async def test_foreign_invoice_paid_at_another_rate_books_the_exchange_difference(
    harness, make, payment_dkk, fx_account, fx
):
    # 1,000.00 EUR booked at 7,450.00 DKK, paid at 7,460.00 (a loss) or 7,445.00 (a gain).
    _open_exchange_accounts(harness)
    invoice, payment = _foreign_invoice_and_payment(make, 745000, payment_dkk)
    await harness.book(invoice, vendor_based=True)
    prepared, _ = await harness.book(payment, vendor_based=True)

    # beancount itself: the vendor's payable account is cleared, in DKK and in EUR.
    assert harness.balances() == {
        "Expenses:Office": D("7450.00"),
        fx_account: fx,
        "Assets:Pleo:Wallet": -D(payment_dkk) / 100,
    }
    entries, _ = harness.load()
    paid = _transactions(entries)[-1]
    assert [(p.account, p.units.number) for p in paid.postings] == [
        ("Liabilities:AccountsPayable:AcmeLtd", D("7450.00")),
        (fx_account, fx),
        ("Assets:Pleo:Wallet", -D(payment_dkk) / 100),
    ]
    assert paid.postings[0].meta["pleo-supplier-amount"].number == D("1000.00")
    assert "pleo-supplier-amount" not in paid.postings[1].meta
    assert paid.meta["pleo-invoice-number"] == "RE-117"
    assert [p.role.value for p in prepared.entries[0].postings] == [
        "accounts_payable",
        "exchange_loss" if fx > 0 else "exchange_gain",
        "wallet",
    ]


async def test_partial_payments_settle_pro_rata_and_the_last_clears_the_vendor(harness, make):
    _open_exchange_accounts(harness)
    invoice, first = _foreign_invoice_and_payment(make, 745000, 373500, paid_eur=50000)
    _, second = _foreign_invoice_and_payment(make, 745000, 372000, paid_eur=50000)
    await harness.book(invoice, vendor_based=True)
    await harness.book(first, vendor_based=True)  # half at 7.47: 3,725.00 settled, 10.00 loss
    assert harness.balances()["Liabilities:AccountsPayable:AcmeLtd"] == D("-3725.00")
    await harness.book(second, vendor_based=True)  # half at 7.44: 3,725.00 settled, 5.00 gain
    assert harness.balances() == {
        "Expenses:Office": D("7450.00"),
        "Expenses:FX": D("10.00"),
        "Income:ExchangeGains": D("-5.00"),
        "Assets:Pleo:Wallet": D("-7455.00"),
    }


async def test_journal_method_invoice_and_payment_also_clear_the_vendor(harness, make):
    _open_exchange_accounts(harness)
    invoice, payment = _foreign_invoice_and_payment(make, 745000, 746000)
    invoice = invoice.model_copy(update={"bookkeeping": None})
    payment = payment.model_copy(update={"bookkeeping": None})
    await harness.book(invoice, vendor_based=False)
    await harness.book(payment, vendor_based=False)
    balances = harness.balances()
    assert "Liabilities:AccountsPayable:AcmeLtd" not in balances
    assert balances["Expenses:FX"] == D("10.00")


async def test_exchange_difference_without_an_account_fails_with_the_setting_to_set(harness, make):
    invoice, payment = _foreign_invoice_and_payment(make, 745000, 746000)
    await harness.book(invoice, vendor_based=True)
    before = harness.output.read_bytes()
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(payment, vendor_based=True)
    assert caught.value.reason_type is Reason.MISSING_CONFIGURATION
    assert "exchange_loss_account is not set" in caught.value.message
    assert "10.00 DKK" in caught.value.message
    assert harness.output.read_bytes() == before


async def test_payment_of_an_invoice_the_ledger_does_not_hold_is_booked_as_it_comes(harness, make):
    _, payment = _foreign_invoice_and_payment(make, 745000, 746000)
    await harness.book(payment, vendor_based=True)
    assert harness.balances() == {
        "Liabilities:AccountsPayable:AcmeLtd": D("7460.00"),
        "Assets:Pleo:Wallet": D("-7460.00"),
    }


async def test_invoice_and_its_payment_in_the_same_job(harness, make):
    _open_exchange_accounts(harness)
    invoice, payment = _foreign_invoice_and_payment(make, 745000, 744500)
    connector = await harness.connector()
    the_job = make.job(True)
    await connector.check(the_job)
    for export_item in (invoice, payment):
        await connector.post(await connector.prepare(plan_item(export_item, the_job)))
    await connector.close()
    assert harness.balances()["Income:ExchangeGains"] == D("-5.00")
    assert "Liabilities:AccountsPayable:AcmeLtd" not in harness.balances()
