"""Pure functions from resolved ledger entries to beancount text.

Nothing here touches the file system or imports beancount. Every string that comes from Pleo
goes through :func:`quote`, and every metadata key through :func:`metadata_key`, so hostile
input (quotes, backslashes, newlines, control characters, lone surrogates, bidi overrides)
can never break the ledger or forge the block markers the connector relies on.

An item is rendered as one *block*::

    <blank line>
    ; pleo-export begin <reference>
    <document directives, one per receipt>
    <one transaction per ledger entry, separated by blank lines>
    ; pleo-export end <reference>

The block is appended to the output file in a single write; a block without its end line is a
torn write and is cut off when the connector opens the file again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TypeAlias

from pleo_export import EntryKind, LedgerEntry, Posting, PostingPlan, Role, format_minor
from pleo_export_beancount.chart import INVOICE_NUMBER

BEGIN_MARKER = "; pleo-export begin "
END_MARKER = "; pleo-export end "

# Bidirectional embedding, override and isolate controls ("Trojan Source"): they cannot break
# the syntax, but they make the text display differently from what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NO_SUPPLIER_AMOUNT = frozenset({Role.ROUNDING, Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS})
"""Roles whose postings exist only in the wallet currency (supplier amount 0)."""
_SAFE_TOKEN_RE = re.compile(r"[^A-Za-z0-9._-]")
_KEY_TAIL_RE = re.compile(r"[^A-Za-z0-9_-]")
# References kept as they are: lower case (a file system may ignore case), short, and never of
# the hashed form below, so a hashed token can never equal a kept one.
_PLAIN_REFERENCE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_HASHED_TAIL_RE = re.compile(r"-h[0-9a-f]{32}$")


@dataclass(frozen=True)
class MetaAmount:
    """A metadata value rendered as a beancount amount, e.g. ``12.34 EUR``."""

    minor: int
    currency: str


MetaValue: TypeAlias = str | int | Decimal | date | MetaAmount
MetaItem: TypeAlias = tuple[str, MetaValue]


@dataclass(frozen=True)
class RenderedPosting:
    """One posting line with its resolved account."""

    account: str
    posting: Posting


@dataclass(frozen=True)
class DocumentLine:
    """A ``document`` directive linking a stored receipt to the item."""

    date: date
    account: str
    path: str
    meta: tuple[MetaItem, ...] = ()


@dataclass(frozen=True)
class TransactionText:
    """Everything one transaction needs besides its postings."""

    entry: LedgerEntry
    date: date
    flag: str
    payee: str | None
    link: str
    meta: tuple[MetaItem, ...]
    postings: tuple[RenderedPosting, ...] = field(default=())


@dataclass(frozen=True)
class Block:
    """The text of one item and where its first transaction starts within it."""

    text: str
    first_transaction_line: int
    """1-based line number, within ``text``, of the first transaction's header."""


def clean_text(value: str) -> str:
    """Make ``value`` safe to put between quotes (before escaping).

    Lone surrogates become U+FFFD, bidi controls are dropped, CR and CRLF become newlines,
    tabs and newlines are kept (:func:`quote` escapes them) and every other control character
    or line/paragraph separator becomes a space.
    """
    out: list[str] = []
    for char in value.replace("\r\n", "\n").replace("\r", "\n"):
        if char in "\n\t":
            out.append(char)
        elif char in _BIDI_CONTROLS:
            continue
        else:
            category = unicodedata.category(char)
            if category == "Cs":
                out.append("\ufffd")
            elif category in ("Cc", "Zl", "Zp"):
                out.append(" ")
            else:
                out.append(char)
    return "".join(out)


def quote(value: str) -> str:
    """A beancount string literal for ``value``: one physical line, whatever the input."""
    text = clean_text(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return f'"{text}"'


def safe_token(value: str) -> str:
    """``value`` reduced to ``[A-Za-z0-9._-]``: for links, markers and file names."""
    token = _SAFE_TOKEN_RE.sub("_", clean_text(value))
    return token or "_"


def reference_token(reference: str) -> str:
    """The reference as it appears in links, block markers and receipt file names.

    Injective: two references never share a token. A plain reference (Pleo's lower-case UUIDs)
    is its own token; any other (upper case, spaces, ``/``, very long, ...) becomes its
    :func:`safe_token` cut to 60 characters plus ``-h`` and 32 hex digits of its SHA-256, so
    ``dead beef`` and ``dead/beef`` get different files and markers, also where file names
    ignore case.
    """
    if _PLAIN_REFERENCE_RE.fullmatch(reference) and not _HASHED_TAIL_RE.search(reference):
        return reference
    digest = hashlib.sha256(reference.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{safe_token(reference)[:60]}-h{digest}"


def link_for(reference: str) -> str:
    """The beancount link of an item, ``pleo-<reference token>`` (without the ``^``)."""
    return f"pleo-{reference_token(reference)}"


def metadata_key(prefix: str, raw: str) -> str:
    """A valid metadata key ``<prefix><raw>``; characters beancount refuses become ``_``."""
    return prefix + _KEY_TAIL_RE.sub("_", raw)


def format_meta_value(value: MetaValue) -> str:
    """Render a metadata value: strings quoted, numbers and dates bare, amounts as ``1.00 EUR``."""
    if isinstance(value, MetaAmount):
        return f"{format_minor(value.minor, value.currency)} {value.currency}"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, date):
        return value.isoformat()
    return format(Decimal(value), "f")


def _meta_lines(items: Iterable[MetaItem], indent: str) -> list[str]:
    lines: list[str] = []
    seen: set[str] = set()
    for key, value in items:
        unique = key
        counter = 2
        while unique in seen:  # beancount refuses a key twice on one directive
            unique = f"{key}-{counter}"
            counter += 1
        seen.add(unique)
        lines.append(f"{indent}{unique}: {format_meta_value(value)}")
    return lines


def posting_meta(posting: Posting) -> tuple[MetaItem, ...]:
    """Metadata of one posting: supplier-currency amount, tax and dimensions (tags)."""
    items: list[MetaItem] = []
    if (
        posting.supplier_currency
        and posting.supplier_currency != posting.currency
        and posting.supplier_amount is not None
        and posting.account.role not in _NO_SUPPLIER_AMOUNT
    ):
        items.append(
            ("pleo-supplier-amount", MetaAmount(posting.supplier_amount, posting.supplier_currency))
        )
    if posting.tax_code:
        items.append(("pleo-tax-code", posting.tax_code))
    if posting.tax_rate is not None:
        items.append(("pleo-tax-rate", Decimal(repr(posting.tax_rate))))
    if posting.tax_type:
        items.append(("pleo-tax-type", posting.tax_type))
    for tag in posting.tags:
        items.append((metadata_key("dimension-", tag.group_code), tag.code))
    if posting.line_id:
        items.append(("pleo-line-id", posting.line_id))
    return tuple(items)


def render_transaction(txn: TransactionText) -> list[str]:
    """The lines of one transaction (header, metadata, postings with their metadata)."""
    header = f"{txn.date.isoformat()} {txn.flag}"
    if txn.payee and txn.payee.strip():
        header += f" {quote(txn.payee.strip())}"
    header += f" {quote(txn.entry.narration)} ^{txn.link}"
    lines = [header, *_meta_lines(txn.meta, "  ")]
    width = max((len(p.account) for p in txn.postings), default=0)
    amounts = [format_minor(p.posting.amount, p.posting.currency) for p in txn.postings]
    amount_width = max((len(a) for a in amounts), default=0)
    for rendered, amount in zip(txn.postings, amounts, strict=True):
        lines.append(
            f"  {rendered.account:<{width}}  {amount:>{amount_width}} {rendered.posting.currency}"
        )
        lines.extend(_meta_lines(posting_meta(rendered.posting), "    "))
    return lines


def render_document(doc: DocumentLine, link: str) -> list[str]:
    """The lines of one ``document`` directive carrying the item's link."""
    header = f"{doc.date.isoformat()} document {doc.account} {quote(doc.path)} ^{link}"
    return [header, *_meta_lines(doc.meta, "  ")]


def render_block(
    reference: str,
    documents: Sequence[DocumentLine],
    transactions: Sequence[TransactionText],
) -> Block:
    """The complete append block of one item; see the module docstring for its shape."""
    token = reference_token(reference)
    link = link_for(reference)
    lines = ["", f"{BEGIN_MARKER}{token}"]
    for doc in documents:
        lines.extend(render_document(doc, link))
    first_line = 0
    for index, txn in enumerate(transactions):
        if index:
            lines.append("")
        if not first_line:
            first_line = len(lines) + 1
        lines.extend(render_transaction(txn))
    lines.append(f"{END_MARKER}{token}")
    return Block(text="\n".join(lines) + "\n", first_transaction_line=first_line)


def transaction_meta(
    plan: PostingPlan, entry: LedgerEntry, original: date | None
) -> list[MetaItem]:
    """The metadata of one transaction of an item (``pleo-entry-id``, vendor, dates, links)."""
    item = plan.item
    meta: list[MetaItem] = [
        ("pleo-entry-id", plan.reference),
        ("pleo-reconciliation-id", plan.reconciliation_id),
        ("pleo-job-id", plan.job.id),
        ("pleo-type", item.type),
    ]
    if item.sub_type:
        meta.append(("pleo-sub-type", item.sub_type))
    meta.append(("pleo-kind", entry.kind.value))
    meta.append(("pleo-method", plan.method.value))
    if original is not None:
        meta.append(("pleo-original-date", original))
    number = invoice_number(plan, entry)
    if number is not None:
        meta.append((INVOICE_NUMBER, number))
    if plan.vendor is not None:
        meta.append(("pleo-vendor", plan.vendor.name))
        for key, value in plan.vendor.match_keys():
            meta.append((f"pleo-vendor-{key.replace('_', '-')}", value))
    web = (item.links.web or {}) if item.links else {}
    if web:
        meta.append(("pleo-url", next(iter(web.values()))))
    return meta


def invoice_number(plan: PostingPlan, entry: LedgerEntry) -> str | None:
    """The invoice number a transaction carries: on supplier invoices, credit notes and
    payments, and on journal entries that book to a vendor's payable account."""
    info = plan.item.additional_information.invoice_information
    number = info.invoice_number.strip() if info is not None and info.invoice_number else ""
    if not number:
        return None
    if entry.kind is EntryKind.JOURNAL and not any(
        p.account.role is Role.ACCOUNTS_PAYABLE for p in entry.postings
    ):
        return None
    return number
