"""read_booked: what the ledger holds under each reference, read back from the beancount
files (as a person may have edited them), for the report plugin's reconciliation."""

from __future__ import annotations

import pytest

from pleo_export import Capability
from pleo_export_beancount import BeancountConnector

pytestmark = pytest.mark.anyio


async def test_booked_lines_read_back_as_prepared(harness, make) -> None:
    assert Capability.READ_BOOKED in BeancountConnector.manifest.capabilities
    taxed = make.item(amount=12500, lines=[make.line(12500, tax=make.tax(2500, code="S25"))])
    plain = make.item(amount=4200, lines=[make.line(4200, "7100", "Travel")])
    prepared = {}
    for export_item in (taxed, plain):
        entry, _ = await harness.book(export_item)
        prepared[entry.plan.reference] = entry

    connector = await harness.connector()
    references = [*prepared, "never-booked"]
    booked = await connector.read_booked(references)
    assert [b.reference for b in booked] == list(prepared)  # in order, the unknown left out
    for entry in booked:
        expected = sorted(
            (p.account, p.amount, p.currency, p.tax_code)
            for e in prepared[entry.reference].entries
            for p in e.postings
        )
        got = sorted((p.account, p.amount, p.currency, p.tax_code) for p in entry.postings)
        assert got == expected
        assert entry.external_id and entry.reference in entry.external_id
    taxed_lines = {(p.account, p.tax_code, p.amount) for p in booked[0].postings}
    assert ("Expenses:Office", "S25", 10000) in taxed_lines
    assert ("Assets:VAT:Input", "S25", 2500) in taxed_lines
    assert sum(p.amount for p in booked[0].postings) == 0


async def test_a_hand_edit_of_the_ledger_is_what_is_read_back(harness, make) -> None:
    entry, _ = await harness.book(make.item(amount=4200, lines=[make.line(4200, "7100")]))
    text = harness.output.read_text(encoding="utf-8")
    assert text.count("42.00 DKK") == 2 and text.count("-42.00 DKK") == 1  # debit and credit
    harness.output.write_text(text.replace("42.00 DKK", "40.00 DKK"), encoding="utf-8")
    connector = await harness.connector()
    (booked,) = await connector.read_booked([entry.plan.reference])
    assert sorted(p.amount for p in booked.postings) == [-4000, 4000]
    assert await connector.read_booked([]) == []
