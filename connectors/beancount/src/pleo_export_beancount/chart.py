"""The chart of accounts and vendors, read from the ``open`` directives of the ledger.

The ledger is the source of truth, like an ERP's chart of accounts: an ``open`` directive may
carry metadata that ties the account to Pleo::

    2020-01-01 open Expenses:Office-Supplies
      pleo-code: "6800"
    2020-01-01 open Liabilities:AccountsPayable:Acme
      vendor-code: "V100"
      vendor-external-id: "4711"
      vendor-tax-number: "DK12345678"

beancount is imported inside :func:`load_ledger` only, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pleo_export import tax_number_forms, tax_numbers_match

PLEO_CODE = "pleo-code"
VENDOR_KEYS: Mapping[str, str] = {
    "code": "vendor-code",
    "external_id": "vendor-external-id",
    "tax_number": "vendor-tax-number",
}
"""``VendorRef.match_keys()`` field -> ``open`` metadata key."""


def meta_text(value: object) -> str | None:
    """A metadata value as text: ``"6800"`` and ``6800`` (a number) both give ``"6800"``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value).strip()
    return text or None


def vendor_keys(field_name: str, value: str) -> tuple[str, ...]:
    """The index keys of a vendor identifier: a code or external id as written (stripped); a
    tax number under every form :func:`pleo_export.tax_number_forms` gives, so that it is found
    with or without its country prefix and whatever its separators."""
    if field_name == "tax_number":
        return tax_number_forms(value)
    return (value.strip(),)


@dataclass(frozen=True)
class LedgerAccount:
    """An account as its ``open`` (and optional ``close``) directive declares it."""

    name: str
    opened: date
    closed: date | None
    currencies: tuple[str, ...]
    meta: Mapping[str, str]
    filename: str | None = None
    lineno: int | None = None

    def active_on(self, day: date) -> bool:
        """Whether a transaction may post to the account on ``day`` (close day included)."""
        return self.opened <= day and (self.closed is None or day <= self.closed)

    def accepts(self, currency: str) -> bool:
        """Whether the ``open`` directive's currency constraint allows ``currency``."""
        return not self.currencies or currency in self.currencies

    def where(self) -> str:
        """``file:line`` of the ``open`` directive, for messages."""
        if self.filename is None:
            return "the ledger"
        return f"{self.filename}:{self.lineno}"


@dataclass
class Chart:
    """Accounts indexed by name, by ``pleo-code`` and by vendor identifiers."""

    accounts: dict[str, LedgerAccount] = field(default_factory=dict)
    by_code: dict[str, list[LedgerAccount]] = field(default_factory=dict)
    by_vendor: dict[tuple[str, str], list[LedgerAccount]] = field(default_factory=dict)

    @classmethod
    def from_accounts(cls, accounts: Iterable[LedgerAccount]) -> Chart:
        """Index ``accounts``."""
        chart = cls()
        for account in accounts:
            chart.accounts[account.name] = account
            code = account.meta.get(PLEO_CODE)
            if code is not None:
                chart.by_code.setdefault(code, []).append(account)
            for field_name, key in VENDOR_KEYS.items():
                value = account.meta.get(key)
                if value is None:
                    continue
                for key in vendor_keys(field_name, value):
                    found = chart.by_vendor.setdefault((field_name, key), [])
                    if account not in found:
                        found.append(account)
        return chart

    def get(self, name: str) -> LedgerAccount | None:
        """The account called ``name``, if the ledger opens it."""
        return self.accounts.get(name)

    def with_code(self, code: str) -> list[LedgerAccount]:
        """Accounts whose ``open`` carries ``pleo-code: "<code>"``."""
        return list(self.by_code.get(code.strip(), ()))

    def for_vendor(self, field_name: str, value: str) -> list[LedgerAccount]:
        """Accounts whose ``open`` carries the vendor identifier ``field_name`` = ``value``
        (tax numbers compared by :func:`pleo_export.tax_numbers_match`)."""
        found: list[LedgerAccount] = []
        for key in vendor_keys(field_name, value):
            for account in self.by_vendor.get((field_name, key), ()):
                if account in found:
                    continue
                if field_name == "tax_number" and not tax_numbers_match(
                    value, account.meta[VENDOR_KEYS[field_name]]
                ):
                    continue  # the bare number of another country's registration
                found.append(account)
        return found


INVOICE_NUMBER = "pleo-invoice-number"
SUPPLIER_AMOUNT = "pleo-supplier-amount"


@dataclass
class _Payable:
    """The postings on one payable account that carry one invoice number, summed."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    """Per currency of the posting (the wallet currency)."""
    supplier: dict[str, Decimal] = field(default_factory=dict)
    """Per supplier currency, from ``pleo-supplier-amount`` (or the posting itself without)."""


@dataclass
class PayableIndex:
    """What the ledger holds open per payable account and invoice number.

    Built from the transactions that carry ``pleo-invoice-number`` (pleo-export writes it on
    supplier invoices, credit notes and payments) and kept up to date as the connector posts.
    """

    entries: dict[tuple[str, str], _Payable] = field(default_factory=dict)

    def add(
        self,
        account: str,
        invoice_number: str,
        amount: Decimal,
        currency: str,
        supplier_amount: Decimal | None,
        supplier_currency: str | None,
    ) -> None:
        """Count one posting of ``amount`` (debit positive) on ``account`` for the invoice."""
        key = (account, invoice_number.strip())
        payable = self.entries.setdefault(key, _Payable())
        payable.amounts[currency] = payable.amounts.get(currency, Decimal(0)) + amount
        if supplier_amount is None or supplier_currency is None:
            supplier_amount, supplier_currency = amount, currency
        payable.supplier[supplier_currency] = (
            payable.supplier.get(supplier_currency, Decimal(0)) + supplier_amount
        )

    def open_amounts(
        self, account: str, invoice_number: str, currency: str, supplier_currency: str
    ) -> tuple[Decimal, Decimal] | None:
        """What is owed on the invoice (positive) in ``currency`` and ``supplier_currency``.

        ``None`` when the ledger has nothing for it, or holds it in other currencies too (an
        invoice in one currency paid in another cannot be compared).
        """
        payable = self.entries.get((account, invoice_number.strip()))
        if payable is None:
            return None
        amounts = {c: v for c, v in payable.amounts.items() if v}
        supplier = {c: v for c, v in payable.supplier.items() if v}
        if set(amounts) - {currency} or set(supplier) - {supplier_currency}:
            return None
        return -amounts.get(currency, Decimal(0)), -supplier.get(supplier_currency, Decimal(0))


@dataclass(frozen=True)
class PostedEntry:
    """A transaction in the ledger that pleo-export wrote (it has ``pleo-entry-id``)."""

    reference: str
    filename: str
    lineno: int
    exported_at: datetime | None


@dataclass(frozen=True)
class CustomDirective:
    """A ``custom`` directive (``2000-01-01 custom "pleo-tax-code" "S20"``) as text values."""

    type: str
    date: date
    values: tuple[str, ...]
    meta: Mapping[str, str]
    filename: str | None = None
    lineno: int | None = None

    def where(self) -> str:
        """``file:line`` of the directive, for messages."""
        if self.filename is None:
            return "the ledger"
        return f"{self.filename}:{self.lineno}"


@dataclass
class LoadedLedger:
    """The result of loading the main ledger."""

    path: Path
    chart: Chart
    includes: frozenset[Path]
    posted: dict[str, PostedEntry]
    errors: list[str]
    operating_currencies: tuple[str, ...]
    payables: PayableIndex = field(default_factory=PayableIndex)
    customs: tuple[CustomDirective, ...] = ()
    """The ``custom`` directives, in date order (master data: tax codes, dimensions)."""


def parse_timestamp(value: object) -> datetime | None:
    """Parse a ``pleo-exported-at`` value (ISO 8601, ``Z`` allowed); ``None`` if unreadable."""
    text = meta_text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _format_error(error: Any) -> str:
    source = getattr(error, "source", None) or {}
    where = ""
    if isinstance(source, dict) and source.get("filename"):
        where = f"{source['filename']}:{source.get('lineno', '?')}: "
    message = str(getattr(error, "message", error)).strip().splitlines()
    return where + (message[0] if message else "error")


def load_ledger(path: Path) -> LoadedLedger:
    """Load ``path`` with ``beancount.loader.load_file`` and index accounts and posted entries.

    Errors are returned (formatted ``file:line: message``), not raised: the caller decides.
    """
    from beancount import loader
    from beancount.core import data

    entries, errors, options = loader.load_file(str(path))
    opens: dict[str, Any] = {}
    closes: dict[str, date] = {}
    posted: dict[str, PostedEntry] = {}
    payables = PayableIndex()
    customs: list[CustomDirective] = []
    for entry in entries:
        if isinstance(entry, data.Custom):
            customs.append(_custom(entry))
        elif isinstance(entry, data.Open):
            opens.setdefault(entry.account, entry)
        elif isinstance(entry, data.Close):
            closes.setdefault(entry.account, entry.date)
        elif isinstance(entry, data.Transaction):
            meta = entry.meta or {}
            number = meta_text(meta.get(INVOICE_NUMBER))
            if number is not None:
                for posting in entry.postings:
                    supplier = (posting.meta or {}).get(SUPPLIER_AMOUNT)
                    if posting.units is None or not isinstance(posting.units.number, Decimal):
                        continue
                    payables.add(
                        posting.account,
                        number,
                        posting.units.number,
                        posting.units.currency,
                        getattr(supplier, "number", None),
                        getattr(supplier, "currency", None),
                    )
            reference = meta_text(meta.get("pleo-entry-id"))
            if reference is None:
                continue
            lineno = int(meta.get("lineno", 0))
            known = posted.get(reference)
            if known is None or (known.filename, known.lineno) > (meta["filename"], lineno):
                posted[reference] = PostedEntry(
                    reference=reference,
                    filename=str(meta.get("filename", path)),
                    lineno=lineno,
                    exported_at=parse_timestamp(meta.get("pleo-exported-at")),
                )
    accounts = []
    for name, entry in opens.items():
        meta = {
            key: text
            for key, value in (entry.meta or {}).items()
            if key not in ("filename", "lineno") and (text := meta_text(value)) is not None
        }
        accounts.append(
            LedgerAccount(
                name=name,
                opened=entry.date,
                closed=closes.get(name),
                currencies=tuple(entry.currencies or ()),
                meta=meta,
                filename=entry.meta.get("filename") if entry.meta else None,
                lineno=entry.meta.get("lineno") if entry.meta else None,
            )
        )
    includes = frozenset(Path(p).resolve() for p in options.get("include", ()))
    return LoadedLedger(
        path=path,
        chart=Chart.from_accounts(accounts),
        includes=includes,
        posted=posted,
        errors=[_format_error(e) for e in errors],
        operating_currencies=tuple(options.get("operating_currency", ())),
        payables=payables,
        customs=tuple(customs),
    )


def _custom(entry: Any) -> CustomDirective:
    values = []
    for value in entry.values or ():
        raw = getattr(value, "value", value)
        values.append(meta_text(raw) or "")
    meta = entry.meta or {}
    return CustomDirective(
        type=str(entry.type),
        date=entry.date,
        values=tuple(values),
        meta={
            key: text
            for key, value in meta.items()
            if key not in ("filename", "lineno")
            and (text := str(value).upper() if isinstance(value, bool) else meta_text(value))
            is not None
        },
        filename=meta.get("filename"),
        lineno=meta.get("lineno"),
    )
