"""Read back what the ledger holds for export items (``read_booked``), for reconciliation.

The whole ledger is loaded with beancount (so entries a person moved to another file, or
edited after the export, are read as they are now); every transaction whose ``pleo-entry-id``
is one of the references contributes its postings: the account, the amount in minor units of
its currency (debit positive) and the ``pleo-tax-code`` posting metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pleo_export import BookedEntry, BookedPosting, decimals
from pleo_export_beancount.chart import meta_text
from pleo_export_beancount.render import link_for

TAX_CODE = "pleo-tax-code"


def minor_units(number: Decimal, currency: str) -> int:
    """``number`` in minor units of ``currency`` (a ledger edited by hand may hold more
    decimals than the currency has: those round half to even)."""
    try:
        places = decimals(currency)
    except (KeyError, ValueError):
        places = 2
    return int(number.scaleb(places).to_integral_value())


def read_booked(ledger: Path, references: Sequence[str]) -> list[BookedEntry]:
    """The transactions of ``ledger`` booked under each of ``references``, in that order; a
    reference with no transaction is left out."""
    from beancount import loader
    from beancount.core import data

    wanted = set(references)
    entries, _errors, _options = loader.load_file(str(ledger))
    found: dict[str, list[BookedPosting]] = {}
    for entry in entries:
        if not isinstance(entry, data.Transaction):
            continue
        reference = meta_text((entry.meta or {}).get("pleo-entry-id"))
        if reference is None or reference not in wanted:
            continue
        postings = found.setdefault(reference, [])
        for posting in entry.postings:
            units = posting.units
            if units is None or not isinstance(units.number, Decimal):
                continue
            postings.append(
                BookedPosting(
                    account=posting.account,
                    amount=minor_units(units.number, units.currency),
                    currency=units.currency,
                    tax_code=meta_text((posting.meta or {}).get(TAX_CODE)),
                )
            )
    return [
        BookedEntry(reference=r, external_id=link_for(r), postings=tuple(found[r]))
        for r in dict.fromkeys(references)
        if r in found
    ]
