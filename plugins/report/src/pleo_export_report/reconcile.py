"""Pleo's figures against what the accounting system booked, per account, tax code, currency.

Pleo's side is each item's entries as the connector prepared them for posting (the accounts
resolved to the target's, amounts in minor units, a debit positive). The booked side is what
the connector read back (``read_booked``) under the same references. Only items prepared in
this run can be compared; items found in the target by reference (booked by an earlier run)
are listed as not compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleo_export import BookedEntry
    from pleo_export_report.collect import ItemRow

Key = tuple[str, str, str]
"""(account, tax code or "", currency)"""


@dataclass(frozen=True)
class Total:
    account: str
    tax_code: str
    currency: str
    pleo: int
    booked: int

    @property
    def difference(self) -> int:
        return self.booked - self.pleo


@dataclass(frozen=True)
class Difference:
    """One item whose booked lines differ from Pleo's on one account, tax code and currency."""

    reference: str
    account: str
    tax_code: str
    currency: str
    pleo: int
    booked: int
    note: str

    @property
    def difference(self) -> int:
        return self.booked - self.pleo


@dataclass
class Reconciliation:
    available: bool
    problem: str | None = None
    """Why nothing could be compared (the connector cannot read back, or reading failed)."""
    compared: int = 0
    """Items whose lines were compared."""
    totals: list[Total] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """References of succeeded items with nothing booked under them."""
    not_compared: list[str] = field(default_factory=list)
    """References booked before this run: Pleo's lines were not prepared here."""

    @property
    def balanced(self) -> bool:
        return self.available and not self.differences and not self.missing


def _sums(lines: Iterable[tuple[str, int, str, str | None]]) -> dict[Key, int]:
    sums: dict[Key, int] = defaultdict(int)
    for account, amount, currency, tax_code in lines:
        sums[(account, tax_code or "", currency)] += amount
    return sums


def unavailable(problem: str) -> Reconciliation:
    return Reconciliation(available=False, problem=problem)


def reconcile(
    rows: Mapping[str, ItemRow],
    references: Sequence[str],
    booked: Sequence[BookedEntry] | None,
    problem: str | None,
) -> Reconciliation:
    if booked is None:
        return unavailable(problem or "the connector did not say what it booked")
    by_reference: dict[str, list[tuple[str, int, str, str | None]]] = defaultdict(list)
    for entry in booked:
        by_reference[entry.reference].extend(
            (p.account, p.amount, p.currency, p.tax_code) for p in entry.postings
        )
    result = Reconciliation(available=True)
    pleo_totals: dict[Key, int] = defaultdict(int)
    booked_totals: dict[Key, int] = defaultdict(int)
    for reference in dict.fromkeys(references):
        row = rows.get(reference)
        found = reference in by_reference
        if row is None or row.lines is None:
            if found:
                result.not_compared.append(reference)
            else:
                result.missing.append(reference)
            continue
        result.compared += 1
        pleo = _sums(
            (line.account, line.amount, line.currency, line.tax_code) for line in row.lines
        )
        held = _sums(by_reference.get(reference, []))
        if not found:
            result.missing.append(reference)
        for key, amount in pleo.items():
            pleo_totals[key] += amount
        for key, amount in held.items():
            booked_totals[key] += amount
        for key in sorted(set(pleo) | set(held), key=_order):
            if pleo.get(key, 0) == held.get(key, 0):
                continue
            if not found:
                note = "nothing is booked under this reference"
            elif key not in held:
                note = "Pleo's line is not booked"
            elif key not in pleo:
                note = "booked, but not in Pleo's lines"
            else:
                note = "amounts differ"
            account, tax_code, currency = key
            result.differences.append(
                Difference(
                    reference, account, tax_code, currency, pleo.get(key, 0), held.get(key, 0), note
                )
            )
    for key in sorted(set(pleo_totals) | set(booked_totals), key=_order):
        account, tax_code, currency = key
        result.totals.append(
            Total(account, tax_code, currency, pleo_totals.get(key, 0), booked_totals.get(key, 0))
        )
    return result


def _order(key: Key) -> tuple[str, str, str]:
    account, tax_code, currency = key
    return currency, account, tax_code
