"""read_booked against a real Tryton: the move lines of journal items and of supplier
invoices with their payments, read back as Tryton holds them."""

from __future__ import annotations

import pytest

from connectors.tryton.tests.tryton_items import item, line, tax, vendor
from connectors.tryton.tests.tryton_support import Harness
from pleo_export import BookedEntry, Capability, PreparedEntry
from pleo_export_tryton import TrytonConnector

pytestmark = pytest.mark.anyio

Lines = dict[tuple[str, str | None], int]


def _prepared(prepared: PreparedEntry) -> Lines:
    sums: Lines = {}
    for entry in prepared.entries:
        for p in entry.postings:
            if p.amount:
                key = (p.account, p.tax_code)
                sums[key] = sums.get(key, 0) + p.amount
    return {k: v for k, v in sums.items() if v}


def _booked(entry: BookedEntry) -> Lines:
    sums: Lines = {}
    for p in entry.postings:
        key = (p.account, p.tax_code)
        sums[key] = sums.get(key, 0) + p.amount
    return {k: v for k, v in sums.items() if v}


async def test_journal_and_invoice_items_read_back_as_prepared(harness: Harness) -> None:
    assert Capability.READ_BOOKED in TrytonConnector.manifest.capabilities
    journal = item(amount=12000, lines=[line(12000, "6100", tax=tax(2000))])
    invoice = item(
        amount=6000,
        lines=[line(6000, "6100", tax=tax(1000))],
        bookkeeping="accounts_payable",
        vendor=vendor("V1001"),
    )
    booked_journal, _ = await harness.book(journal)
    booked_invoice, _ = await harness.book(invoice, vendor_based=True)
    prepared = {
        booked_journal.plan.reference: booked_journal,
        booked_invoice.plan.reference: booked_invoice,
    }
    async with harness.connector() as connector:
        booked = await connector.read_booked([*prepared, "not-in-tryton"])
    assert [b.reference for b in booked] == list(prepared)
    for entry in booked:
        assert entry.postings and all(p.currency == "GBP" for p in entry.postings)
        assert sum(p.amount for p in entry.postings) == 0
        assert _booked(entry) == _prepared(prepared[entry.reference])
    journal_lines = _booked(booked[0])
    assert journal_lines[("6100", "S20")] == 10000 and journal_lines[("2201", "S20")] == 2000
    assert booked[0].external_id and booked[0].external_id.startswith("account.move,")


async def test_a_move_changed_in_tryton_reads_back_changed(harness: Harness) -> None:
    prepared, _ = await harness.book(item(amount=5000, lines=[line(5000, "6100")]), state="draft")
    reference = prepared.plan.reference
    async with harness.reader() as client:
        (move,) = await client.search_read(
            "account.move", [("description", "like", f"pleo:{reference}#%")], ["lines"]
        )
        await client.model("account.move", "delete", [move["id"]], write=True)
    async with harness.connector() as connector:
        assert await connector.read_booked([reference]) == []
