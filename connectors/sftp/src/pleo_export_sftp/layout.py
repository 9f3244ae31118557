"""The CSV layouts: columns, cell formatting, formula neutralisation and safe file names.

One row per debit or credit line (posting). The rows of one export item follow each other;
an item with two ledger entries (an accounts-payable invoice and its payment) has two
``transaction`` values. Every text cell that would start a spreadsheet formula is prefixed
with an apostrophe, and file names are built from a short list of safe characters only.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from pleo_export import (
    EntryKind,
    ExportJobItemFailureReasonType,
    ItemRejected,
    PostingPlan,
    ResolvedEntry,
    ResolvedPosting,
    Role,
    format_minor,
)

if TYPE_CHECKING:
    from pleo_export_sftp.settings import SftpSettings

TAG_COLUMN_PREFIX = "tag:"
"""``tag:<GROUP>`` is a column with the code of the line's tag in tag group ``<GROUP>``."""

COLUMNS: dict[str, str] = {
    "date": "booking date of the entry (`date_format`); a supplier invoice's is its invoice "
    "date (see [dates](../bookkeeping.md#dates))",
    "transaction": "`<entry_id>/<n>`: the ledger entry the row belongs to; the rows of one "
    "transaction balance",
    "entry_id": "Pleo's accountingEntryId (the reference pleo-export finds entries by)",
    "line": "number of the row within the export item (1, 2, ...)",
    "kind": "`journal`, `ap_invoice`, `ap_credit_note` or `ap_payment`",
    "type": "Pleo's item type (`card_purchase`, `invoice`, `wallet_topup`, ...)",
    "sub_type": "Pleo's item sub-type, if any",
    "method": "bookkeeping method: `journal` or `accounts_payable`",
    "account": "the account of the receiving system (after `account_map` and the role settings)",
    "account_name": "Pleo's name of the account, if Pleo sent one",
    "pleo_account_code": "the account code Pleo sent, if any",
    "role": "what the account is for: `expense`, `wallet`, `tax_input`, `accounts_payable`, ...",
    "amount": "amount in the wallet currency, signed by `sign_convention`",
    "debit": "the amount if the row is a debit, else empty (never negative)",
    "credit": "the amount if the row is a credit, else empty (never negative)",
    "currency": "the wallet currency (ISO 4217)",
    "supplier_amount": "amount in the currency the supplier charged, signed like `amount`",
    "supplier_currency": "the supplier's currency",
    "tax_code": "the line's tax code (Pleo's, after `tax_code_map`)",
    "tax_rate": "tax rate as a fraction (`0.2` is 20 %)",
    "tax_type": "`inclusive`, `exclusive` or `reverse`",
    "tax_amount": "on an expense row: the VAT of the same line (signed like `amount`)",
    "dimensions": "the line's tags as `GROUP:CODE`, separated by `|` (`%`, `|` and `:` inside "
    "a group or code are written `%25`, `%7C`, `%3A`)",
    "vendor": "vendor (or supplier) name",
    "vendor_code": "vendor code in the accounting system",
    "vendor_external_id": "vendor external id",
    "vendor_tax_number": "vendor tax registration number",
    "narration": "supplier / user / note, as pleo-export describes the entry",
    "note": "the note on the expense",
    "reconciliation_id": "Pleo's reconciliationId",
    "invoice_number": "the invoice number of invoices and credit notes",
    "attachments": "file names of the receipts uploaded beside the CSV, separated by `|`",
    "job_id": "the Pleo export job",
}
"""Every column a layout can use, with what it holds."""

_COMMON_HEAD = ["date", "transaction", "entry_id", "line", "kind", "type", "account"]
_COMMON_TAIL = [
    "currency",
    "supplier_amount",
    "supplier_currency",
    "tax_code",
    "tax_rate",
    "tax_amount",
    "dimensions",
    "vendor",
    "vendor_code",
    "narration",
    "reconciliation_id",
    "invoice_number",
    "attachments",
    "job_id",
]
LAYOUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "journal-lines": (*_COMMON_HEAD, "account_name", "role", "amount", *_COMMON_TAIL),
    "debit-credit": (*_COMMON_HEAD, "account_name", "role", "debit", "credit", *_COMMON_TAIL),
}
"""The default columns of each layout."""

NUMERIC_COLUMNS = frozenset(
    {"line", "amount", "debit", "credit", "supplier_amount", "tax_rate", "tax_amount"}
)

# --- safe names and cells ----------------------------------------------------------------------

MAX_CELL = 32_767
"""The most characters a cell holds: a spreadsheet cell's limit, well below the 131,072 at
which Python's (and so the package's own) CSV reader refuses a file."""
FREE_TEXT_COLUMNS = frozenset({"narration", "note", "vendor", "account_name"})
"""Columns whose text is cut to :data:`MAX_CELL` (ending in ``…``); a longer cell in any other
column fails the item, since cutting it would change what it identifies."""

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"^-?[0-9]+(?:[.,][0-9]+)?$")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
# C0 and C1 control characters (tab stays; line breaks are handled above).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Bidirectional marks, embeddings, overrides and isolates ("Trojan Source"): dropped, so a
# cell reads in the order it is stored.
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What a reader does not see before the first visible character: white space, zero-width and
# other format characters. A formula behind them is still a formula to some spreadsheets.
_INVISIBLE_LEAD = re.compile(
    r"^[\s\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2064"
    r"\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]*"
)


def is_safe_name(name: str) -> bool:
    """Whether ``name`` is a plain file name: letters, digits, ``._-``, no leading ``.``/``-``.

    Such a name has no directory part, is not ``.`` or ``..`` and is not hidden.
    """
    return bool(_SAFE_NAME.match(name)) and ".." not in name and len(name) <= 200


def safe_component(text: str, *, limit: int = 64, fallback: str = "x") -> str:
    """``text`` reduced to safe characters for a file name part (no dots, no separators).

    ``"../../etc/passwd"`` becomes ``"etc-passwd"``; the result is never empty.
    """
    reduced = _UNSAFE_RUN.sub("-", text).strip("-_")[:limit].strip("-_")
    return reduced or fallback


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will show as text.

    Line breaks and C0/C1 control characters become spaces and bidi controls are dropped; a
    cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab), also after spaces or
    invisible characters (zero-width space, byte-order mark, word joiner, ...), gets a leading
    apostrophe, unless it is a plain number such as ``-12.50``, which a spreadsheet reads as a
    number, never a formula.
    """
    text = _BIDI.sub("", _CONTROL.sub(" ", _LINE_BREAKS.sub(" ", cell)))
    lead = _INVISIBLE_LEAD.match(text)
    visible = text[lead.end() :] if lead else text
    if visible.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def escape_tag_part(text: str) -> str:
    """A tag group or code as written in ``dimensions`` and ``tag:`` cells: ``%``, ``|`` and
    ``:`` are percent-encoded (``%25``, ``%7C``, ``%3A``), so the separators stay separators.
    :func:`pleo_export_sftp.reader.parse_dimensions` reverses it."""
    return text.replace("%", "%25").replace("|", "%7C").replace(":", "%3A")


def fit_cell(column: str, text: str) -> str:
    """``text`` within :data:`MAX_CELL` characters: free text is cut, anything else refused."""
    if len(text) <= MAX_CELL:
        return text
    if column in FREE_TEXT_COLUMNS:
        return text[: MAX_CELL - 1] + "…"
    raise ItemRejected(
        ExportJobItemFailureReasonType.VALIDATION_FAILURE,
        f"the {column} column would hold {len(text)} characters, more than the {MAX_CELL} a "
        "spreadsheet cell holds: shorten the text it comes from in Pleo (tags, codes, ids)",
    )


# --- rows ------------------------------------------------------------------------------------


def _amount(minor: int, currency: str, separator: str) -> str:
    text = format_minor(minor, currency)
    return text.replace(".", separator) if separator != "." else text


def _rate(rate: float, separator: str) -> str:
    text = format(Decimal(str(rate)).normalize(), "f")
    return text.replace(".", separator) if separator != "." else text


def _line_tax(entry: ResolvedEntry) -> dict[str, int]:
    """VAT per line id: the ``tax_input`` postings of the entry, summed per line."""
    taxes: dict[str, int] = {}
    for posting in entry.postings:
        if posting.role is Role.TAX_INPUT and posting.line_id:
            taxes[posting.line_id] = taxes.get(posting.line_id, 0) + posting.amount
    return taxes


def item_rows(
    plan: PostingPlan,
    entries: Sequence[ResolvedEntry],
    settings: SftpSettings,
    attachment_names: Sequence[str],
    account_names: Mapping[tuple[int, int], str | None],
    pleo_codes: Mapping[tuple[int, int], str | None],
    *,
    vendor_code: str | None = None,
) -> list[list[str]]:
    """The cells of every row of one export item, in ``settings.column_list`` order.

    ``account_names`` and ``pleo_codes`` are keyed by (entry index, posting index).
    ``vendor_code`` is the vendor's code in the receiving system when ``vendors_file`` lists
    the vendor (the ``vendor_code`` column then carries it instead of Pleo's code).
    """
    columns = settings.column_list
    sep = settings.decimal_separator
    sign = 1 if settings.sign_convention == "debit_positive" else -1
    item = plan.item
    invoice = item.additional_information.invoice_information
    vendor = plan.vendor
    rows: list[list[str]] = []
    line_no = 0
    for entry_index, entry in enumerate(entries):
        taxes = _line_tax(entry)
        for posting_index, posting in enumerate(entry.postings):
            line_no += 1
            values = _values(
                plan,
                entry,
                entry_index,
                posting,
                line_no,
                sign,
                sep,
                settings,
                taxes,
                attachment_names,
            )
            values["account_name"] = account_names.get((entry_index, posting_index)) or ""
            values["pleo_account_code"] = pleo_codes.get((entry_index, posting_index)) or ""
            values["vendor"] = vendor.name if vendor else ""
            values["vendor_code"] = (vendor_code or vendor.code or "") if vendor else ""
            values["vendor_external_id"] = (vendor.external_id or "") if vendor else ""
            values["vendor_tax_number"] = (vendor.tax_number or "") if vendor else ""
            values["invoice_number"] = (
                invoice.invoice_number
                if invoice is not None and entry.kind is not EntryKind.JOURNAL
                else ""
            ) or ""
            rows.append(
                [fit_cell(column, neutralise(_cell(values, column, posting))) for column in columns]
            )
    return rows


def _cell(values: Mapping[str, str], column: str, posting: ResolvedPosting) -> str:
    if column.startswith(TAG_COLUMN_PREFIX):
        group = column[len(TAG_COLUMN_PREFIX) :]
        return "|".join(escape_tag_part(t.code) for t in posting.tags if t.group_code == group)
    return values.get(column, "")


def _values(
    plan: PostingPlan,
    entry: ResolvedEntry,
    entry_index: int,
    posting: ResolvedPosting,
    line_no: int,
    sign: int,
    sep: str,
    settings: SftpSettings,
    taxes: Mapping[str, int],
    attachment_names: Sequence[str],
) -> dict[str, str]:
    item = plan.item
    currency = posting.currency
    amount = posting.amount
    values = {
        "date": entry.date.strftime(settings.date_format),
        "transaction": f"{plan.reference}/{entry_index + 1}",
        "entry_id": plan.reference,
        "line": str(line_no),
        "kind": entry.kind.value,
        "type": item.type,
        "sub_type": item.sub_type or "",
        "method": plan.method.value,
        "account": posting.account,
        "role": posting.role.value,
        "amount": _amount(sign * amount, currency, sep),
        "debit": _amount(amount, currency, sep) if amount >= 0 else "",
        "credit": _amount(-amount, currency, sep) if amount < 0 else "",
        "currency": currency,
        "supplier_amount": "",
        "supplier_currency": posting.supplier_currency or "",
        "tax_code": posting.tax_code or "",
        "tax_rate": _rate(posting.tax_rate, sep) if posting.tax_rate is not None else "",
        "tax_type": posting.tax_type or "",
        "tax_amount": "",
        "dimensions": "|".join(
            f"{escape_tag_part(t.group_code)}:{escape_tag_part(t.code)}" for t in posting.tags
        ),
        "narration": entry.narration,
        "note": item.note or "",
        "reconciliation_id": plan.reconciliation_id,
        "attachments": "|".join(attachment_names),
        "job_id": plan.job.id,
    }
    if posting.supplier_amount is not None and posting.supplier_currency:
        values["supplier_amount"] = _amount(
            sign * posting.supplier_amount, posting.supplier_currency, sep
        )
    if posting.role is Role.EXPENSE and posting.line_id and posting.line_id in taxes:
        values["tax_amount"] = _amount(sign * taxes[posting.line_id], currency, sep)
    return values


def header_cells(settings: SftpSettings) -> list[str]:
    return [neutralise(settings.headers.get(c, c)) for c in settings.column_list]


def render_csv(rows: Sequence[Sequence[str]], settings: SftpSettings, *, header: bool) -> str:
    """``rows`` (and the header row, if asked) as CSV text with the configured dialect."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=settings.delimiter,
        quotechar='"',
        doublequote=True,
        quoting=csv.QUOTE_MINIMAL,
        lineterminator=settings.newline,
    )
    if header and settings.header_row:
        writer.writerow(header_cells(settings))
    writer.writerows(rows)
    return buffer.getvalue()


def encode(text: str, settings: SftpSettings) -> bytes:
    """``text`` in the configured encoding (``unencodable = "replace"`` writes ``?``)."""
    errors = "replace" if settings.unencodable == "replace" else "strict"
    return text.encode(settings.encoding, errors=errors)


def unencodable_cells(rows: Sequence[Sequence[str]], settings: SftpSettings) -> list[str]:
    """Column names of cells the configured encoding cannot represent (for messages)."""
    columns = settings.column_list
    found: list[str] = []
    for row in rows:
        for column, cell in zip(columns, row, strict=True):
            try:
                cell.encode(settings.encoding)
            except UnicodeEncodeError:
                if column not in found:
                    found.append(column)
    return found


# --- hledger ---------------------------------------------------------------------------------

HLEDGER_CLEARING_ACCOUNT = "pleo:clearing"
"""The account hledger balances each row against; it sums to zero over every transaction."""

_HLEDGER_SEPARATORS = {",": "", ";": "separator ;", "\t": "separator TAB", "|": "separator |"}


def hledger_rules(settings: SftpSettings) -> str:
    """An hledger CSV rules file that reads the files ``settings`` produce.

    hledger turns every CSV row into a transaction of two postings: the row's account with
    the row's amount, and :data:`HLEDGER_CLEARING_ACCOUNT` with the opposite amount. The rows
    of a Pleo entry balance, so the clearing account is zero for every complete entry and
    the balances of the other accounts are the entry amounts.
    """
    columns = settings.column_list
    for needed in ("date", "account", "currency"):
        if needed not in columns:
            raise ValueError(f"the columns need {needed!r} for hledger to read the file")
    names = ["pleo_" + re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_") for column in columns]
    field = dict(zip(columns, names, strict=True))
    lines = [
        "# hledger CSV rules for pleo-export-sftp files (generated from the connector's",
        "# settings; see docs/connectors/sftp.md). Every row becomes one transaction that",
        "# posts the row's amount to its account and balances it against",
        f"# {HLEDGER_CLEARING_ACCOUNT}, which sums to zero over all complete Pleo entries.",
        "#",
        "#   hledger -f pleo-<job>-<batch>.csv --rules-file journal-lines.rules balance",
        "",
    ]
    if settings.header_row:
        lines.append("skip 1")
    separator = _HLEDGER_SEPARATORS.get(settings.delimiter, f"separator {settings.delimiter}")
    if separator:
        lines.append(separator)
    if settings.decimal_separator != ".":
        lines.append(f"decimal-mark {settings.decimal_separator}")
    lines.append("fields " + ", ".join(names))
    lines.append(f"date %{field['date']}")
    lines.append(f"date-format {settings.date_format}")
    if "transaction" in field:
        lines.append(f"code %{field['transaction']}")
    if "narration" in field:
        lines.append(f"description %{field['narration']}")
    else:
        lines.append(f"description %{field['entry_id']}")
    lines.append(f"account1 %{field['account']}")
    flip = "" if settings.sign_convention == "debit_positive" else "-"
    if "amount" in field:
        lines.append(f"amount1 {flip}%{field['amount']}")
    else:
        lines.append(f"amount1-in %{field['debit']}")
        lines.append(f"amount1-out %{field['credit']}")
    lines.append(f"currency1 %{field['currency']}")
    lines.append(f"account2 {HLEDGER_CLEARING_ACCOUNT}")
    tags = [
        (tag, field[column])
        for tag, column in (
            ("pleo-entry", "entry_id"),
            ("role", "role"),
            ("tax", "tax_code"),
            ("supplier-currency", "supplier_currency"),
        )
        if column in field
    ]
    if tags:
        lines.append("comment1 " + ", ".join(f"{tag}:%{name}" for tag, name in tags))
    return "\n".join(lines) + "\n"
