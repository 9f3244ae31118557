"""Read back what the delivered files hold for export items (``read_booked``).

The manifest says which file and rows hold each reference; the file is read from the
server (or the local folder) as it is now and those rows are parsed back: the account, the
amount in minor units (debit positive, whatever the sign setting) and the tax code. A file
that was removed or changed since it was published is read as it is, so the report plugin
shows what a reader of the folder sees.
"""

from __future__ import annotations

from collections.abc import Sequence

from pleo_export import BookedEntry, BookedPosting
from pleo_export_sftp.publish import Publisher
from pleo_export_sftp.reader import parse_minor, read_rows
from pleo_export_sftp.settings import SftpSettings
from pleo_export_sftp.storage import Storage


def missing_columns(settings: SftpSettings) -> list[str]:
    """The columns a read-back needs that the files do not have."""
    columns = set(settings.column_list)
    missing = [c for c in ("account", "currency") if c not in columns]
    if "amount" not in columns and not {"debit", "credit"} <= columns:
        missing.append("amount (or debit and credit)")
    return missing


def _text(cell: str) -> str:
    """A cell's value: a neutralised cell's leading apostrophe is not part of it."""
    return cell[1:] if cell.startswith("'") else cell


def _amount(row: dict[str, str], currency: str, settings: SftpSettings) -> int:
    if "amount" in row:
        flip = 1 if settings.sign_convention == "debit_positive" else -1
        return flip * parse_minor(row["amount"], currency, settings)
    debit = parse_minor(row["debit"], currency, settings)
    return debit - parse_minor(row["credit"], currency, settings)


async def read_booked(
    publisher: Publisher, storage: Storage, settings: SftpSettings, references: Sequence[str]
) -> list[BookedEntry]:
    """The rows published under each of ``references``, in that order; a reference that was
    never published, or whose file is gone, is left out."""
    missing = missing_columns(settings)
    if missing:
        raise ValueError(
            f"the delivered files have no {', '.join(missing)} column, so what was booked "
            "cannot be read back: add the columns to columns in [connector.settings]"
        )
    locations = await publisher.locations()
    wanted = [r for r in dict.fromkeys(references) if r in locations]
    by_file: dict[str, list[str]] = {}
    for reference in wanted:
        by_file.setdefault(locations[reference].file, []).append(reference)
    offset = 2 if settings.header_row else 1
    found: dict[str, BookedEntry] = {}
    for name, names_references in by_file.items():
        data = await storage.read(name)
        if data is None:
            continue
        rows = read_rows(data, settings)
        for reference in names_references:
            location = locations[reference]
            postings = []
            for row in rows[location.first_row - offset : location.last_row - offset + 1]:
                currency = _text(row["currency"])
                postings.append(
                    BookedPosting(
                        account=_text(row["account"]),
                        amount=_amount(row, currency, settings),
                        currency=currency,
                        tax_code=_text(row.get("tax_code", "")) or None,
                    )
                )
            found[reference] = BookedEntry(
                reference=reference, external_id=location.external_id, postings=tuple(postings)
            )
    return [found[r] for r in wanted if r in found]
