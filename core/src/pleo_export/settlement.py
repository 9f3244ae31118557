"""Paying a foreign-currency invoice: the realised exchange difference.

A supplier invoice of 1,000.00 EUR is booked when it arrives, at that day's rate (850.00 GBP
credited to the vendor's payable account). Pleo pays it weeks later at another rate: the
``invoice_payment`` item says 1,000.00 EUR left the wallet as 870.00 GBP. Booked as it comes
(debit payable 870.00, credit wallet 870.00), the payment would leave 20.00 GBP on the
vendor's account for ever. Settled at the invoice's own rate instead, it debits the payable
account with what the invoice put there (850.00) and books the 20.00 GBP difference to the
exchange loss account (a gain when the payment cost less).

Pleo's payment item carries the amount in both currencies and, in
``additionalInformation.invoiceInformation.invoiceNumber``, the number of the invoice it pays;
it does not carry what the invoice was booked at. The connector knows that: it finds what its
target holds open for the vendor's payable account and that invoice number
(:class:`BookedInvoice`) and hands it to :func:`settle_payment`. Two steps::

    request = settlement_request(plan)        # None: nothing to settle at another rate
    if request is not None:
        booked = <what the target holds open for (payable account, request.invoice_number)>
        plan = settle_payment(plan, booked)    # the payment entry at the invoice's rate

Partial payments settle the invoice's open amount pro rata (the last one settles the rest),
an overpayment settles the whole invoice and books the excess at the payment's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from pleo_export.ledger import AccountRef, EntryKind, LedgerEntry, Posting, PostingPlan, Role
from pleo_export.pleo.models import ExportItemSubType, ExportItemType

EXCHANGE_ROLES = frozenset({Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS})


@dataclass(frozen=True)
class SettlementRequest:
    """A payment of an invoice in a foreign currency, which may settle it at another rate."""

    invoice_number: str
    """``additionalInformation.invoiceInformation.invoiceNumber`` (trimmed)."""
    entry_index: int
    """Which entry of the plan is the payment."""
    posting_index: int
    """Which posting of that entry debits the vendor's payable account."""
    amount: int
    """What the payment cost in the wallet currency (positive)."""
    supplier_amount: int
    """What it paid in the supplier's currency (positive)."""
    supplier_currency: str


@dataclass(frozen=True)
class BookedInvoice:
    """What the target holds open for one invoice on the vendor's payable account.

    Both amounts are positive while the company owes the vendor: the sum of the payable
    postings carrying the invoice number (the invoice's credit, less payments already booked),
    in the wallet currency and in the supplier's currency.
    """

    amount: int
    supplier_amount: int
    supplier_currency: str


@dataclass(frozen=True)
class Settlement:
    """How a payment settles an invoice: booked to the payable account, and the difference."""

    settled: int
    """Debited to the payable account (wallet currency): the invoice's amount at its own rate
    for the part of it this payment pays."""
    difference: int
    """The realised exchange difference: positive is a loss (the payment cost more than the
    invoice was booked at), negative a gain; zero when the rates agree."""


def settlement_request(plan: PostingPlan) -> SettlementRequest | None:
    """The payment in ``plan`` that may settle an invoice at another rate, if any.

    That is an ``invoice_payment`` (not ``invoice_payment_returned``, which puts money back on
    the invoice) that names its invoice number, whose supplier currency is not the wallet
    currency, and whose entry debits the vendor's payable account.
    """
    item = plan.item
    if item.type != ExportItemType.INVOICE_PAYMENT.value:
        return None
    if item.sub_type == ExportItemSubType.INVOICE_PAYMENT_RETURNED.value:
        return None
    info = item.additional_information.invoice_information
    number = info.invoice_number.strip() if info is not None and info.invoice_number else ""
    if not number:
        return None
    wallet = item.amount.in_wallet_currency
    supplier = item.amount.in_supplier_currency
    if supplier.currency == wallet.currency or wallet.value <= 0 or supplier.value <= 0:
        return None
    for entry_index, entry in enumerate(plan.entries):
        if entry.kind not in (EntryKind.AP_PAYMENT, EntryKind.JOURNAL):
            continue
        for posting_index, posting in enumerate(entry.postings):
            if posting.account.role is Role.ACCOUNTS_PAYABLE and posting.amount > 0:
                return SettlementRequest(
                    invoice_number=number,
                    entry_index=entry_index,
                    posting_index=posting_index,
                    amount=wallet.value,
                    supplier_amount=supplier.value,
                    supplier_currency=supplier.currency,
                )
    return None


def _divide(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero, in integers."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def settlement(request: SettlementRequest, booked: BookedInvoice) -> Settlement | None:
    """How ``request`` settles ``booked``; ``None`` when it does not apply.

    It does not apply when nothing is open on the invoice or the invoice is in another
    currency than the payment.
    """
    if booked.supplier_currency != request.supplier_currency:
        return None
    if booked.amount < 0 or booked.supplier_amount <= 0:
        return None  # nothing owed in the supplier's currency (0 in the wallet's may be left)
    paid, open_supplier = request.supplier_amount, booked.supplier_amount
    if paid == open_supplier:
        settled = booked.amount
    elif paid < open_supplier:
        settled = _divide(booked.amount * paid, open_supplier)
    else:  # more than is open: the invoice at its rate, the excess at the payment's rate
        settled = booked.amount + _divide(request.amount * (paid - open_supplier), paid)
    return Settlement(settled=settled, difference=request.amount - settled)


def settle_payment(plan: PostingPlan, booked: BookedInvoice | None) -> PostingPlan:
    """``plan`` with its payment booked at the rate of the invoice it pays.

    The payable posting becomes the invoice's amount for the part paid
    (:attr:`Settlement.settled`) and a posting to the ``exchange_loss`` (debit) or
    ``exchange_gain`` (credit) role takes the difference. The plan is returned unchanged when
    it pays no foreign-currency invoice, when ``booked`` is ``None`` (the invoice is not in the
    target) or when the rates agree.
    """
    request = settlement_request(plan)
    if request is None or booked is None:
        return plan
    result = settlement(request, booked)
    if result is None or result.difference == 0:
        return plan
    entry = plan.entries[request.entry_index]
    payable = entry.postings[request.posting_index]
    role = Role.EXCHANGE_LOSS if result.difference > 0 else Role.EXCHANGE_GAIN
    exchange = Posting(
        account=AccountRef(role=role),
        amount=result.difference,
        currency=payable.currency,
        supplier_amount=0,
        supplier_currency=payable.supplier_currency,
        field="amount",
    )
    postings = list(entry.postings)
    postings[request.posting_index] = payable.model_copy(update={"amount": result.settled})
    postings.insert(request.posting_index + 1, exchange)
    settled_entry = LedgerEntry(
        kind=entry.kind, date=entry.date, narration=entry.narration, postings=tuple(postings)
    )
    if settled_entry.balance != 0:  # a bug here, never a property of the input
        raise AssertionError(f"unbalanced settlement built for {plan.reference}")
    entries = list(plan.entries)
    entries[request.entry_index] = settled_entry
    return plan.model_copy(update={"entries": tuple(entries)})
