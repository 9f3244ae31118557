"""What ``prepare`` decides and ``post`` writes: Tryton moves and supplier invoices as values.

Every record the connector writes carries a *marker* at the start of its description:
``pleo:<accountingEntryId>#<part>/<parts>``. An item becomes one record (a journal move, a
supplier invoice or credit note, a payment move) or two (an invoice and the payment that
settles it); the marker says which part of how many a record is, so the connector finds
what it already wrote, and can finish an item whose writing was interrupted.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MARKER_RE = re.compile(r"^pleo:(?P<reference>[^#\s]+)#(?P<part>\d+)/(?P<parts>\d+)(?:\s|$)")


def marker(reference: str, part: int, parts: int) -> str:
    return f"pleo:{reference}#{part}/{parts}"


def like_prefix(reference: str) -> str:
    """A LIKE pattern matching every marker of ``reference`` (``%``/``_`` escaped)."""
    escaped = reference.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"pleo:{escaped}#%"


SUPPLIER_TOTAL_RE = re.compile(
    r"^Pleo amount: (?P<amount>-?\d+(?:\.\d+)?) (?P<currency>[A-Z]{3})$", re.M
)


def supplier_total_comment(amount: Decimal, currency: str) -> str:
    """The line a supplier invoice in a foreign currency carries in its comment."""
    return f"Pleo amount: {amount} {currency}"


def supplier_total(comment: str | None) -> tuple[Decimal, str] | None:
    """The invoice's total in the supplier's currency, read back from its comment."""
    match = SUPPLIER_TOTAL_RE.search(comment or "")
    if match is None:
        return None
    return Decimal(match["amount"]), match["currency"]


def parse_marker(description: str | None) -> tuple[str, int, int] | None:
    match = MARKER_RE.match(description or "")
    if match is None:
        return None
    return match["reference"], int(match["part"]), int(match["parts"])


@dataclass(frozen=True)
class TaxLineSpec:
    type: str
    """``base`` or ``tax``."""
    tax: int
    amount: Decimal

    def values(self) -> dict[str, Any]:
        return {"type": self.type, "tax": self.tax, "amount": self.amount}


@dataclass(frozen=True)
class MoveLineSpec:
    account: int
    amount: Decimal
    """Debit positive, credit negative, in the company currency."""
    party: int | None = None
    description: str | None = None
    second_currency: int | None = None
    amount_second_currency: Decimal | None = None
    tax_lines: tuple[TaxLineSpec, ...] = ()

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "account": self.account,
            "debit": self.amount if self.amount > 0 else Decimal(0),
            "credit": -self.amount if self.amount < 0 else Decimal(0),
        }
        if self.party is not None:
            values["party"] = self.party
        if self.description:
            values["description"] = self.description
        if self.second_currency is not None and self.amount_second_currency is not None:
            values["second_currency"] = self.second_currency
            values["amount_second_currency"] = self.amount_second_currency
        if self.tax_lines:
            values["tax_lines"] = [("create", [t.values() for t in self.tax_lines])]
        return values


@dataclass(frozen=True)
class MoveSpec:
    """An ``account.move``: a journal entry or the payment side of an accounts-payable item."""

    part: int
    parts: int
    kind: str
    """The ledger entry kind: ``journal`` or ``ap_payment``."""
    journal: int
    period: int
    date: dt.date
    description: str
    lines: tuple[MoveLineSpec, ...]

    model = "account.move"

    def values(self, company: int) -> dict[str, Any]:
        return {
            "company": company,
            "journal": self.journal,
            "period": self.period,
            "date": self.date,
            "description": self.description,
            "lines": [("create", [line.values() for line in self.lines])],
        }

    @property
    def balance(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class InvoiceLineSpec:
    account: int
    amount: Decimal
    """What the line costs, net of VAT; negative on a credit note."""
    description: str

    def values(self) -> dict[str, Any]:
        return {
            "type": "line",
            "account": self.account,
            "quantity": 1.0,
            "unit_price": self.amount,
            "description": self.description,
        }


@dataclass(frozen=True)
class InvoiceTaxSpec:
    description: str
    account: int
    base: Decimal
    amount: Decimal
    tax: int | None

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "description": self.description,
            "account": self.account,
            "base": self.base,
            "amount": self.amount,
            "manual": True,
        }
        if self.tax is not None:
            values["tax"] = self.tax
        return values


@dataclass(frozen=True)
class InvoiceSpec:
    """An ``account.invoice`` of type ``in``: a supplier invoice, or a credit note when its
    total is negative. Taxes are manual lines carrying Pleo's own VAT amounts, so the total
    is exactly Pleo's."""

    part: int
    parts: int
    kind: str
    """``ap_invoice`` or ``ap_credit_note``."""
    party: int
    invoice_address: int
    account: int
    journal: int
    currency: int
    invoice_date: dt.date
    accounting_date: dt.date
    payment_term_date: dt.date | None
    reference: str | None
    description: str
    lines: tuple[InvoiceLineSpec, ...]
    taxes: tuple[InvoiceTaxSpec, ...]
    comment: str | None = None
    """For an invoice in a foreign currency: ``Pleo amount: 1000.00 EUR`` (see
    :func:`supplier_total`), what a later payment compares its own amount with."""

    model = "account.invoice"

    def values(self, company: int) -> dict[str, Any]:
        values: dict[str, Any] = {
            "company": company,
            "type": "in",
            "party": self.party,
            "invoice_address": self.invoice_address,
            "account": self.account,
            "journal": self.journal,
            "currency": self.currency,
            "invoice_date": self.invoice_date,
            "accounting_date": self.accounting_date,
            "description": self.description,
            "lines": [("create", [line.values() for line in self.lines])],
        }
        if self.taxes:
            values["taxes"] = [("create", [tax.values() for tax in self.taxes])]
        if self.reference:
            values["reference"] = self.reference
        if self.payment_term_date is not None:
            values["payment_term_date"] = self.payment_term_date
        if self.comment:
            values["comment"] = self.comment
        return values

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0)) + sum(
            (tax.amount for tax in self.taxes), Decimal(0)
        )


RecordSpec = MoveSpec | InvoiceSpec


@dataclass(frozen=True)
class Attachment:
    index: int
    name: str
    mime_type: str
    size: int


@dataclass(frozen=True)
class Payload:
    """What ``prepare`` hands to ``post`` (``PreparedEntry.payload``)."""

    reference: str
    parts: tuple[RecordSpec, ...]
    attachments: tuple[Attachment, ...]
    party: int | None
    invoice_number: str | None
    settles: bool
    """The item carries a document and the payment that settles it: reconcile them."""
    match_open: str | None
    """``payment`` (an invoice payment: settle the vendor's open invoice with this number) or
    ``invoice`` (an invoice: settle it with the vendor's open payment for this number)."""
    amount: Decimal
    """The item's total in the company currency (positive for an ordinary expense)."""
    payable_account: int | None = None
    """The payable account of the vendor (the account invoices and payments settle on)."""
