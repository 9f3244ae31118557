"""Master data read from the ledger (vendors, tax codes, dimensions) and vendors created in it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from connectors.beancount.tests.conftest import CURRENCY, Harness, Make
from pleo_export import JobRejected, TaxType, VendorDraft, contract_problems
from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import DEMO_CHART

pytestmark = pytest.mark.anyio


def test_contract_is_kept() -> None:
    assert contract_problems(BeancountConnector) == []


@pytest.fixture
def demo(tmp_path: Path) -> Harness:
    settings = BeancountConnector.scaffold(tmp_path, DEMO_CHART, "GBP")
    return Harness(directory=tmp_path, ledger=tmp_path / settings["ledger"])


async def test_the_scaffolded_ledger_answers_the_demo_charts_master_data(demo: Harness) -> None:
    connector = await demo.connector()
    vendors = {v.code: v for v in await connector.list_vendors()}
    assert set(vendors) == {v.code for v in DEMO_CHART.vendors}
    for expected in DEMO_CHART.vendors:
        got = vendors[expected.code]
        assert (got.name, got.external_id, got.tax_registration_number) == (
            expected.name,
            expected.external_id,
            expected.tax_registration_number,
        )
        assert (got.currency, got.country) == (expected.default_currency, expected.country)
        assert got.registration_number == expected.registration_number
        assert not got.archived

    taxes = {t.code: t for t in await connector.list_tax_codes()}
    assert set(taxes) == {t.code for t in DEMO_CHART.tax_codes}
    assert taxes["RC20"].type is TaxType.REVERSE
    assert (taxes["RC20"].ingoing_tax_account, taxes["RC20"].outgoing_tax_account) == (
        "2201",
        "2202",
    )
    assert taxes["R5"].rate == Decimal("0.05")
    assert taxes["Z0"].ingoing_tax_account is None

    dimensions = {d.code: d for d in await connector.list_dimensions()}
    assert set(dimensions) == {"DEPT", "PROJ"}
    assert dimensions["DEPT"].name == "Department"
    assert [(v.code, v.name) for v in dimensions["PROJ"].values] == [
        ("ALPHA", "Project Alpha"),
        ("BRAVO", "Project Bravo"),
    ]


async def test_existing_ledgers_read_back_with_defaults_and_closed_accounts_archived(
    harness: Harness,
) -> None:
    with harness.ledger.open("a", encoding="utf-8") as ledger:
        ledger.write("2024-01-31 close Liabilities:AccountsPayable:Globex\n")
    vendors = {v.name: v for v in await (await harness.connector()).list_vendors()}
    assert set(vendors) == {"Acme Ltd.", "Globex", "Initech"}
    # Only a code: it is the external id too. Only an external id: it is the code too.
    assert (vendors["Acme Ltd."].code, vendors["Acme Ltd."].external_id) == ("V100", "V100")
    assert (vendors["Globex"].code, vendors["Globex"].external_id) == ("EXT-9", "EXT-9")
    assert vendors["Globex"].archived and not vendors["Acme Ltd."].archived
    # Only a tax number: the account is the vendor's code; the ledger's operating currency.
    assert vendors["Initech"].code == "Liabilities:AccountsPayable:Initech"
    assert vendors["Initech"].tax_registration_number == "DK 12 34 56 78"
    assert {v.currency for v in vendors.values()} == {CURRENCY}
    assert await (await harness.connector()).list_tax_codes() == []
    assert await (await harness.connector()).list_dimensions() == []


async def test_later_directives_archive_tax_codes_and_dimension_values(harness: Harness) -> None:
    with harness.ledger.open("a", encoding="utf-8") as ledger:
        ledger.write(
            '2020-01-01 custom "pleo-tax-code" "S25"\n  name: "Standard"\n  rate: "25%"\n'
            '  ingoing-tax-account: "5600"\n'
            '2024-06-01 custom "pleo-tax-code" "S25"\n  name: "Standard"\n  rate: "0.25"\n'
            "  archived: TRUE\n"
            '2020-01-01 custom "pleo-dimension" "CC"\n  name: "Cost centre"\n'
            '2020-01-01 custom "pleo-dimension-value" "CC" "100"\n  name: "Head office"\n'
            '2020-01-01 custom "pleo-dimension-value" "CC" "200"\n'
            '2024-06-01 custom "pleo-dimension-value" "CC" "200"\n  archived: TRUE\n'
        )
    connector = await harness.connector()
    (tax,) = await connector.list_tax_codes()
    assert (tax.code, tax.rate, tax.type, tax.archived) == (
        "S25",
        Decimal("0.25"),
        TaxType.INCLUSIVE,
        True,
    )
    (dimension,) = await connector.list_dimensions()
    assert [(v.code, v.name, v.archived) for v in dimension.values] == [
        ("100", "Head office", False),
        ("200", "200", True),
    ]


@pytest.mark.parametrize(
    ("text", "method", "named"),
    [
        ('2020-01-01 custom "pleo-tax-code" "X"\n  rate: "high"\n', "list_tax_codes", "rate"),
        (
            '2020-01-01 custom "pleo-tax-code" "X"\n  rate: "0.1"\n  type: "gross"\n',
            "list_tax_codes",
            "type",
        ),
        ('2020-01-01 custom "pleo-dimension-value" "NOPE" "A"\n', "list_dimensions", "NOPE"),
        (
            '2020-01-01 open Liabilities:AccountsPayable:Bad\n  vendor-country: "Denmark"\n',
            "list_vendors",
            "vendor-country",
        ),
    ],
)
async def test_wrong_master_data_is_a_clear_error(
    harness: Harness, text: str, method: str, named: str
) -> None:
    with harness.ledger.open("a", encoding="utf-8") as ledger:
        ledger.write(text)
    connector = await harness.connector()
    with pytest.raises(JobRejected) as raised:
        await getattr(connector, method)()
    assert named in raised.value.message
    assert str(harness.ledger) in raised.value.message


def draft(**changes: str) -> VendorDraft:
    values = {
        "pleo_id": "5b2a61b4-7d0e-4d62-9b2f-000000000001",
        "name": "Fjord Coffee ApS",
        "currency": "DKK",
        "country": "DK",
        "tax_registration_number": "DK31415926",
    } | changes
    return VendorDraft.model_validate(values)


async def test_create_vendor_opens_one_account_and_answers_it_again(
    harness: Harness, make: Make
) -> None:
    connector = await harness.connector()
    created = await connector.create_vendor(draft())
    assert created.name == "Fjord Coffee ApS"
    assert created.external_id == "Liabilities:AccountsPayable:FjordCoffeeApS"
    assert (created.currency, created.country) == ("DKK", "DK")
    # The same draft again, from this instance and from a new one, and the same vendor by tax
    # number or by name under another Pleo id: always the same vendor, never a second account.
    assert await connector.create_vendor(draft()) == created
    again = await harness.connector()
    assert await again.create_vendor(draft()) == created
    assert await again.create_vendor(draft(pleo_id="other-1", name="Fjord Kaffe")) == created
    assert (
        await again.create_vendor(draft(pleo_id="other-2", tax_registration_number="")) == created
    )
    text = harness.output.read_text(encoding="utf-8")
    assert text.count("open Liabilities:AccountsPayable:FjordCoffeeApS") == 1
    assert await (await harness.connector()).verify() == []
    listed = [v for v in await (await harness.connector()).list_vendors() if v == created]
    assert listed == [created]

    # Pleo activates the vendor with its code: an invoice for it books to the new account.
    vendor = make.vendor("Fjord Coffee ApS", code=created.code)
    prepared = await harness.prepare(
        make.item("invoice", 10000, vendor=vendor, bookkeeping="accounts_payable"),
        vendor_based=True,
    )
    accounts = {p.account for e in prepared.entries for p in e.postings}
    assert created.external_id in accounts


async def test_created_vendor_codes_follow_the_ledgers_numbering(demo: Harness) -> None:
    connector = await demo.connector()
    first = await connector.create_vendor(draft(currency="GBP"))
    second = await connector.create_vendor(
        draft(pleo_id="p-2", name="Fjord Coffee", tax_registration_number="DK27182818")
    )
    assert (first.code, second.code) == ("V2005", "V2006")
    # A second account for a name that is taken gets a suffix.
    assert second.external_id == "Liabilities:AccountsPayable:FjordCoffee"
    third = await connector.create_vendor(
        draft(pleo_id="p-3", name="Fjord-Coffee ApS!", tax_registration_number="DK16180339")
    )
    assert third.external_id == "Liabilities:AccountsPayable:FjordCoffeeApS-2"


async def test_concurrent_creates_of_one_vendor_open_one_account(harness: Harness) -> None:
    connectors = [await harness.connector() for _ in range(3)]
    results = []

    async def create(index: int) -> None:
        results.append(await connectors[index].create_vendor(draft()))

    async with anyio.create_task_group() as group:
        for index in range(3):
            group.start_soon(create, index)
    assert len({r.code for r in results}) == 1
    text = harness.output.read_text(encoding="utf-8")
    assert text.count("open Liabilities:AccountsPayable:FjordCoffeeApS") == 1
    assert await (await harness.connector()).verify() == []
