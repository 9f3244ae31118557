"""The CSV report: the same items as the HTML page, one row each.

The first column, ``run``, says ``export`` for a real run and ``dry run`` for a dry run, so a
row copied out of a dry run's file is never taken for an exported item.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, so
a text cell starting with one of those (a hostile vendor name) gets a leading ``'``; amounts
are plain numbers with a ``.`` decimal point.
"""

from __future__ import annotations

import csv
import io

from pleo_export import format_minor
from pleo_export_report.collect import JobData

COLUMNS = (
    "run",
    "job_id",
    "reference",
    "outcome",
    "date",
    "type",
    "vendor",
    "description",
    "amount",
    "currency",
    "external_id",
    "external_url",
    "reason_type",
    "message",
)

DRY_RUN = "dry run"
"""The ``run`` column of a dry run's rows: nothing was written, nothing sent to Pleo."""
EXPORT = "export"
"""The ``run`` column of a real run's rows."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(data: JobData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    run = DRY_RUN if data.dry_run else EXPORT
    for row in data.ordered_rows():
        amount = ""
        if row.amount is not None and row.currency:
            try:
                amount = format_minor(row.amount, row.currency)
            except (ValueError, KeyError):
                amount = str(row.amount)
        writer.writerow(
            [
                run,
                cell(data.job_id),
                cell(row.reference),
                row.outcome.value,
                row.date,
                cell(row.type),
                cell(row.vendor),
                cell(row.description),
                amount,
                cell(row.currency),
                cell(row.external_id),
                cell(row.external_url),
                cell(row.reason_type),
                cell(row.message),
            ]
        )
    return out.getvalue()
