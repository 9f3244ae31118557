"""Read published CSV files back: rows by column, and postings in minor units.

The connector itself never needs this (the manifest is its index); it is for checks, tests
and tools that want to see what a reader of the directory sees.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import unquote

from pleo_export import decimals
from pleo_export_sftp.settings import SftpSettings


@dataclass(frozen=True)
class DeliveredPosting:
    """One row as a posting: ``amount_minor`` is debit positive, whatever the sign setting."""

    entry_id: str
    transaction: str | None
    account: str
    amount_minor: int
    currency: str
    row: dict[str, str]


def read_rows(data: bytes, settings: SftpSettings) -> list[dict[str, str]]:
    """The data rows of a published file, keyed by column name (not header text)."""
    text = data.decode(settings.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=settings.delimiter)
    rows = list(reader)
    columns = settings.column_list
    if settings.header_row:
        rows = rows[1:]
    result = []
    for number, row in enumerate(rows, start=2 if settings.header_row else 1):
        if len(row) != len(columns):
            raise ValueError(f"row {number} has {len(row)} cells, expected {len(columns)}")
        result.append(dict(zip(columns, row, strict=True)))
    return result


def parse_dimensions(cell: str, *, group: str | None = None) -> list[tuple[str, str]]:
    """The ``(group, code)`` tags of a ``dimensions`` cell (``DEPT:SALES|PROJ:A%7CB``), or of a
    ``tag:<group>`` cell when ``group`` is given (codes only, separated by ``|``)."""
    if cell.startswith("'"):  # neutralised: the apostrophe is not part of the value
        cell = cell[1:]
    if not cell:
        return []
    tags = []
    for part in cell.split("|"):
        if group is not None:
            tags.append((group, unquote(part)))
            continue
        group_code, separator, code = part.partition(":")
        if not separator:
            raise ValueError(f"dimension {part!r} is not GROUP:CODE")
        tags.append((unquote(group_code), unquote(code)))
    return tags


def parse_minor(text: str, currency: str, settings: SftpSettings) -> int:
    """``"-12,50"`` with decimal separator ``,`` in GBP -> ``-1250``."""
    value = Decimal(text.replace(settings.decimal_separator, ".") if text else "0")
    minor = value.scaleb(decimals(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {currency} allows")
    return int(minor)


def read_postings(data: bytes, settings: SftpSettings) -> list[DeliveredPosting]:
    """Every row of a published file as a posting (the file must have the columns
    ``entry_id``, ``account``, ``currency`` and ``amount`` or ``debit``/``credit``)."""
    postings = []
    flip = 1 if settings.sign_convention == "debit_positive" else -1
    for row in read_rows(data, settings):
        currency = row["currency"]
        if "amount" in row:
            amount = flip * parse_minor(row["amount"], currency, settings)
        else:
            amount = parse_minor(row["debit"], currency, settings) - parse_minor(
                row["credit"], currency, settings
            )
        postings.append(
            DeliveredPosting(
                entry_id=row["entry_id"],
                transaction=row.get("transaction"),
                account=row["account"],
                amount_minor=amount,
                currency=currency,
                row=row,
            )
        )
    return postings
