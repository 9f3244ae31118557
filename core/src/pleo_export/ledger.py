"""The connector-neutral double-entry form of an export item.

The engine turns every Pleo export item into a :class:`PostingPlan`: one or more balanced
:class:`LedgerEntry` objects whose postings name *roles* (an expense account from Pleo, the
wallet account, the out-of-pocket liability, a vendor's payable account, VAT, ...). A connector
resolves each role to an account of its own system and returns a :class:`PreparedEntry`; the
engine shows prepared entries in ``--dry-run`` and hands them back to the connector to post.

Amounts are integers in minor units of the company's wallet currency. A positive amount is a
debit and a negative amount a credit; every entry sums to zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from pleo_export.money import format_minor
from pleo_export.pleo.models import (
    BookkeepingMethod,
    ExportItem,
    ExportItemFile,
    ExportJob,
    Tag,
)


class Role(StrEnum):
    """What an account is for; connectors map each role to one of their accounts."""

    EXPENSE = "expense"
    """The expense (category) account Pleo put on the line: see ``AccountRef.code``."""
    WALLET = "wallet"
    """The account that mirrors the Pleo wallet (Pleo's ``contraAccount`` when it sends one)."""
    OUT_OF_POCKET = "out_of_pocket"
    """The liability towards employees for out-of-pocket spend until it is reimbursed."""
    CONTRA = "contra"
    """The balancing account for wallet top-ups, unloads and external reimbursements."""
    ACCOUNTS_PAYABLE = "accounts_payable"
    """A vendor's payable account (or the fallback payable account): see ``AccountRef.vendor``."""
    TAX_INPUT = "tax_input"
    """Deductible (ingoing) VAT."""
    TAX_OUTPUT = "tax_output"
    """Output VAT due under the reverse-charge mechanism."""
    ROUNDING = "rounding"
    """Where a small currency-conversion residual between lines and total is booked."""
    EXCHANGE_GAIN = "exchange_gain"
    """Realised exchange gain: a foreign-currency invoice paid for less, in the wallet
    currency, than it was booked at (see :mod:`pleo_export.settlement`)."""
    EXCHANGE_LOSS = "exchange_loss"
    """Realised exchange loss: a foreign-currency invoice paid for more than it was booked at."""


class EntryKind(StrEnum):
    JOURNAL = "journal"
    AP_INVOICE = "ap_invoice"
    AP_CREDIT_NOTE = "ap_credit_note"
    AP_PAYMENT = "ap_payment"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VendorRef(_Frozen):
    """Who is paid, with the identifiers Pleo's guide says to match on, in priority order."""

    name: str
    source: str
    """``vendor`` (Pleo's vendor object) or ``supplier`` (legacy items without bookkeeping)."""
    code: str | None = None
    external_id: str | None = None
    tax_number: str | None = None
    default_currency: str | None = None

    def match_keys(self) -> list[tuple[str, str]]:
        """``(field, value)`` pairs to try in order: code, then external id, then tax number."""
        keys = [("code", self.code), ("external_id", self.external_id)]
        keys.append(("tax_number", self.tax_number))
        return [(field, value) for field, value in keys if value]


class AccountRef(_Frozen):
    role: Role
    code: str | None = None
    """The account code Pleo sent (the line's category, ``contraAccount`` or a VAT account)."""
    name: str | None = None
    identifier: str | None = None
    """The accounting system's own id for the account, when Pleo knows it."""
    vendor: VendorRef | None = None

    def describe(self) -> str:
        if self.code:
            return f"{self.role.value} account {self.code}" + (
                f" ({self.name})" if self.name else ""
            )
        return f"{self.role.value} account"


class Posting(_Frozen):
    account: AccountRef
    amount: int
    """Minor units of ``currency`` (the wallet currency); debit positive, credit negative."""
    currency: str
    supplier_amount: int | None = None
    supplier_currency: str | None = None
    tax_code: str | None = None
    tax_rate: float | None = None
    tax_type: str | None = None
    tags: tuple[Tag, ...] = ()
    line_id: str | None = None
    field: str | None = None
    """Where in the export item this posting comes from, e.g. ``accountingEntryLines[1]``."""


class LedgerEntry(_Frozen):
    kind: EntryKind
    date: date
    narration: str
    postings: tuple[Posting, ...]

    @property
    def balance(self) -> int:
        return sum(p.amount for p in self.postings)


class PostingPlan(_Frozen):
    """Everything a connector needs to book one export item."""

    job: ExportJob
    item: ExportItem
    method: BookkeepingMethod
    method_source: str
    """Why this method, e.g. ``bookkeeping.method`` or ``always journal for wallet_topup``."""
    reference: str
    """The stable key to store in the target so the item is found again: the accounting entry id."""
    reconciliation_id: str
    entries: tuple[LedgerEntry, ...]
    vendor: VendorRef | None = None
    attachments: tuple[ExportItemFile, ...] = ()

    @property
    def postings(self) -> Iterator[Posting]:
        for entry in self.entries:
            yield from entry.postings


class ResolvedPosting(_Frozen):
    """A posting after the connector chose the target account."""

    account: str
    amount: int
    currency: str
    supplier_amount: int | None = None
    supplier_currency: str | None = None
    tax_code: str | None = None
    role: Role
    tags: tuple[Tag, ...] = ()
    tax_rate: float | None = None
    tax_type: str | None = None
    line_id: str | None = None
    field: str | None = None

    @classmethod
    def from_posting(cls, posting: Posting, account: str) -> ResolvedPosting:
        """``posting`` booked to the target's ``account``: every other fact carried over."""
        return cls(
            account=account,
            amount=posting.amount,
            currency=posting.currency,
            supplier_amount=posting.supplier_amount,
            supplier_currency=posting.supplier_currency,
            tax_code=posting.tax_code,
            role=posting.account.role,
            tags=posting.tags,
            tax_rate=posting.tax_rate,
            tax_type=posting.tax_type,
            line_id=posting.line_id,
            field=posting.field,
        )


class ResolvedEntry(_Frozen):
    kind: EntryKind
    date: date
    narration: str
    postings: tuple[ResolvedPosting, ...]


class PreparedEntry(_Frozen):
    """What a connector would post for one item: validated, with its own accounts resolved."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    plan: PostingPlan
    entries: tuple[ResolvedEntry, ...]
    rendered: str | None = None
    """The exact text or payload the connector will write, when it has a readable form."""
    payload: Any = None
    """Connector-private data carried from ``prepare`` to ``post``."""

    def describe(self) -> str:
        """A readable, balanced view of the entries: accounts, both currencies and tax."""
        if self.rendered:
            return self.rendered
        lines: list[str] = []
        for entry in self.entries:
            lines.append(f"{entry.date.isoformat()} {entry.kind.value}: {entry.narration}")
            for p in entry.postings:
                text = f"    {p.account:<40} {format_minor(p.amount, p.currency):>14} {p.currency}"
                if p.supplier_currency and p.supplier_currency != p.currency:
                    text += f"  ({format_minor(p.supplier_amount or 0, p.supplier_currency)} "
                    text += f"{p.supplier_currency})"
                if p.tax_code:
                    text += f"  tax {p.tax_code}"
                lines.append(text)
        return "\n".join(lines)


class ExternalRecord(_Frozen):
    """Where an item landed in the target: reported to Pleo as the item's outcome."""

    external_id: str
    external_url: str | None = None
    exported_at: datetime
