"""Master data read from a real Tryton (parties, taxes, analytic accounts) and parties created
for vendors made in Pleo."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.tryton.tests.tryton_items import item, line, vendor
from connectors.tryton.tests.tryton_support import Harness
from pleo_export import JobRejected, TaxType, VendorDraft, contract_problems
from pleo_export_sandbox import DEMO_CHART
from pleo_export_tryton import TrytonConnector

pytestmark = pytest.mark.anyio


def test_contract_is_kept() -> None:
    assert contract_problems(TrytonConnector) == []


async def test_the_template_parties_are_the_charts_vendors(harness: Harness) -> None:
    async with harness.connector() as connector:
        vendors = {v.code: v for v in await connector.list_vendors()}
    assert set(vendors) == {v.code for v in DEMO_CHART.vendors}, "company party excluded"
    for expected in DEMO_CHART.vendors:
        got = vendors[expected.code]
        assert got.name == expected.name
        assert got.external_id == expected.external_id
        assert got.country == expected.country
        assert got.currency == "GBP"
        assert not got.archived
        assert got.tax_registration_number == expected.tax_registration_number


async def test_inactive_parties_are_archived_vendors(harness: Harness) -> None:
    async with harness.reader() as client:
        (party,) = await client.search_read("party.party", [("code", "=", "V2004")], ["id"])
        await client.model("party.party", "write", [party["id"]], {"active": False}, write=True)
    try:
        async with harness.connector() as connector:
            vendors = {v.code: v for v in await connector.list_vendors()}
        assert vendors["V2004"].archived
        assert not vendors["V2003"].archived
    finally:
        async with harness.reader() as client:
            await client.model("party.party", "write", [party["id"]], {"active": True}, write=True)


async def test_taxes_are_tax_codes_with_their_accounts(harness: Harness) -> None:
    async with harness.connector(tax_types={"EX20": "exclusive"}) as connector:
        taxes = {t.code: t for t in await connector.list_tax_codes()}
    assert set(taxes) == {t.code for t in DEMO_CHART.tax_codes}
    assert (taxes["S20"].rate, taxes["S20"].type, taxes["S20"].name) == (
        Decimal("0.2"),
        TaxType.INCLUSIVE,
        "Standard rate 20%",
    )
    assert taxes["EX20"].type is TaxType.EXCLUSIVE
    assert taxes["R5"].ingoing_tax_account == "2201"
    assert taxes["Z0"].rate == 0


async def test_a_reverse_charge_tax_with_child_taxes_and_tax_map(harness: Harness) -> None:
    async with harness.reader() as client:
        accounts = {
            row["code"]: row["id"]
            for row in await client.search_read(
                "account.account", [("code", "in", ["2201", "2202"])], ["code"]
            )
        }
        (company,) = await client.search_read("company.company", [], ["id"])
        children = [
            {
                "name": f"EU acquisition {sign}",
                "description": f"EU acquisition {sign}",
                "type": "percentage",
                "rate": Decimal(sign + "0.25"),
                "company": company["id"],
                "invoice_account": accounts[code],
                "credit_note_account": accounts[code],
            }
            for sign, code in (("", "2201"), ("-", "2202"))
        ]
        (parent,) = await client.model(
            "account.tax",
            "create",
            [
                {
                    "name": "EU-RC-25",
                    "description": "EU reverse charge 25%",
                    "type": "none",
                    "company": company["id"],
                    "childs": [("create", children)],
                }
            ],
            write=True,
        )
    try:
        async with harness.connector(tax_map={"RC25": "EU-RC-25"}) as connector:
            taxes = {t.code: t for t in await connector.list_tax_codes()}
        tax = taxes["RC25"]
        assert (tax.type, tax.rate, tax.name) == (
            TaxType.REVERSE,
            Decimal("0.25"),
            "EU reverse charge 25%",
        )
        assert (tax.ingoing_tax_account, tax.outgoing_tax_account) == ("2201", "2202")
        assert "EU acquisition " not in " ".join(taxes)
    finally:
        async with harness.reader() as client:
            await client.model("account.tax", "write", [parent], {"active": False}, write=True)


async def test_analytic_roots_are_dimensions(harness: Harness) -> None:
    async with harness.connector() as connector:
        dimensions = {d.code: d for d in await connector.list_dimensions()}
    assert set(dimensions) == {g.code for g in DEMO_CHART.tag_groups}
    for group in DEMO_CHART.tag_groups:
        got = dimensions[group.code]
        assert got.name == group.name
        assert sorted((v.code, v.name) for v in got.values) == sorted(
            (t.code, t.name) for t in group.tags
        )


def draft(**changes: str) -> VendorDraft:
    values = {
        "pleo_id": "8f7c1c1e-0000-4000-8000-00000000a001",
        "name": "Fjord Coffee ApS",
        "currency": "DKK",
        "country": "DK",
        "tax_registration_number": "DK31415926",
    } | changes
    return VendorDraft.model_validate(values)


async def test_create_vendor_creates_one_party_that_books(harness: Harness) -> None:
    async with harness.connector() as connector:
        created = await connector.create_vendor(draft())
        assert await connector.create_vendor(draft()) == created
        assert await connector.create_vendor(draft(pleo_id="other", name="Fjord")) == created
    async with harness.connector() as connector:
        assert await connector.create_vendor(draft(tax_registration_number="")) == created
        listed = [v for v in await connector.list_vendors() if v.code == created.code]
    assert listed == [created]
    assert created.name == "Fjord Coffee ApS"
    assert (created.country, created.tax_registration_number) == ("DK", "DK31415926")
    assert created.external_id == created.code  # a new party has no untyped identifier
    async with harness.reader() as client:
        rows = await client.search_read(
            "party.identifier", [("party.code", "=", created.code)], ["type", "code"]
        )
        assert [(r["type"], r["code"]) for r in rows] == [(None, "DK31415926")]
        assert (
            await client.model("party.party", "search_count", [("name", "=", "Fjord Coffee ApS")])
            == 1
        )

    # Activated in Pleo with its code, the vendor's invoices book to the new party.
    invoice = item(
        "invoice",
        12_000,
        lines=[line(12_000, "6100")],
        vendor=vendor(
            created.code,
            name=created.name,
            externalId=created.external_id,
            taxRegistrationNumber="DK31415926",
        ),
        bookkeeping="accounts_payable",
        invoice_number="FC-1",
    )
    prepared = await harness.prepare(invoice, vendor_based=True)
    assert prepared.entries


async def test_a_typed_tax_identifier_is_read_compact_with_its_country(
    harness: Harness,
) -> None:
    async with harness.reader() as client:
        (party,) = await client.search_read("party.party", [("code", "=", "V1004")], ["id"])
        (identifier,) = await client.model(
            "party.identifier",
            "create",
            [{"party": party["id"], "type": "gb_vat", "code": "GB245719348", "sequence": 0}],
            write=True,
        )
    try:
        async with harness.connector() as connector:
            vendors = {v.code: v for v in await connector.list_vendors()}
        # Tryton keeps gb_vat numbers as "245 7193 48"; Pleo writes them as GB245719348.
        assert vendors["V1004"].tax_registration_number == "GB245719348"
        assert vendors["V1004"].external_id == "AS-1004"
    finally:
        async with harness.reader() as client:
            await client.model("party.identifier", "delete", [identifier], write=True)


async def test_an_unknown_vendor_category_is_a_clear_error(harness: Harness) -> None:
    async with harness.connector(vendor_category="Suppliers") as connector:
        with pytest.raises(JobRejected) as raised:
            await connector.list_vendors()
    assert "vendor_category" in raised.value.message
    assert "'Suppliers'" in raised.value.message


async def test_a_vendor_category_narrows_and_takes_new_vendors(harness: Harness) -> None:
    async with harness.reader() as client:
        (category,) = await client.model(
            "party.category", "create", [{"name": "Pleo vendors"}], write=True
        )
        (acme,) = await client.search_read("party.party", [("code", "=", "V2001")], ["id"])
        await client.model(
            "party.party", "write", [acme["id"]], {"categories": [("add", [category])]}, write=True
        )
    async with harness.connector(vendor_category="Pleo vendors") as connector:
        assert [v.code for v in await connector.list_vendors()] == ["V2001"]
        created = await connector.create_vendor(
            draft(pleo_id="p-3", name="Aurora Print Oy", country="FI", tax_registration_number="")
        )
        assert sorted(v.code for v in await connector.list_vendors()) == sorted(
            ["V2001", created.code]
        )
