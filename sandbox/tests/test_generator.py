"""The generator's items are valid ExportItemV3 objects that the engine can book."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from pleo_export.bookkeeping import plan_item
from pleo_export.ledger import Role
from pleo_export.pleo.models import ExportItem, ExportItemType, ExportJob, ExportJobStatus
from pleo_export_sandbox import DEMO_CHART, UNKNOWN_ACCOUNT_CODE, generate_items, render_file
from pleo_export_sandbox.generator import LARGE_FILE_SIZE, parse_file_id
from tests.support.openapi import OpenApiContract

COMPANY = "8a0c3f3e-1111-4222-8333-444455556666"
NEGATIVE = {"refund", "chargeback", "cashback"}
TRANSFERS = {
    "wallet_topup",
    "wallet_unload",
    "direct_reimbursement",
    "external_reimbursement",
    "invoice_payment",
}


def job_for(vendor_based: bool) -> ExportJob:
    return ExportJob(
        id="8a0c3f3e-1111-4222-8333-444455550000",
        company_id=COMPANY,
        status=ExportJobStatus.IN_PROGRESS,
        created_at="2025-06-02T09:00:00Z",  # type: ignore[arg-type]
        expires_in=3600,
        is_interactive=True,
        number_of_items=1,
        vendor_based_bookkeeping=vendor_based,
    )


def batch(seed: int, **options: Any) -> list[dict[str, Any]]:
    return generate_items(COMPANY, 100, seed, **options)


def test_2000_items_validate_against_the_spec_and_book(openapi_contract: OpenApiContract) -> None:
    types: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    tax_types: Counter[str] = Counter()
    rounding = foreign = unknown = 0
    for seed in range(20):
        vendor_based = seed % 2 == 1
        wallet = ("GBP", "EUR", "SEK", "GBP")[seed % 4]
        items = batch(
            seed,
            wallet_currency=wallet,
            vendor_based_bookkeeping=vendor_based,
            unknown_account_rate=0.05,
            multi_currency_rate=0.3,
        )
        for item in items:
            assert openapi_contract.validate("ExportItemV3", item) == [], item["accountingEntryId"]
            plan = plan_item(ExportItem.model_validate(item), job_for(vendor_based))
            assert all(entry.balance == 0 for entry in plan.entries)
            types[item["type"]] += 1
            methods[plan.method.value] += 1
            rounding += any(p.account.role is Role.ROUNDING for p in plan.postings)
            foreign += item["amount"]["inSupplierCurrency"]["currency"] != wallet
            for line in item["accountingEntryLines"]:
                if "tax" in line:
                    tax_types[line["tax"]["type"]] += 1
                unknown += line.get("account", {}).get("code") == UNKNOWN_ACCOUNT_CODE
    assert sum(types.values()) == 2000
    assert set(types) == {t.value for t in ExportItemType}
    assert set(methods) == {"journal", "accounts_payable"}
    assert set(tax_types) == {"inclusive", "exclusive", "reverse"}
    assert rounding > 0, "no item exercised the 1-minor-unit conversion residual"
    assert foreign > 0
    assert unknown > 0


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_every_type_appears_in_a_batch_of_60(seed: int) -> None:
    items = generate_items(COMPANY, 60, seed)
    assert {i["type"] for i in items} == {t.value for t in ExportItemType}


def test_same_seed_same_items_and_other_seed_other_items() -> None:
    assert batch(5) == batch(5)
    assert batch(5) != batch(6)
    ids = [i["accountingEntryId"] for i in batch(5) + batch(6)]
    assert len(set(ids)) == len(ids)
    other_company = generate_items("8a0c3f3e-1111-4222-8333-444455559999", 100, 5)
    assert not {i["accountingEntryId"] for i in other_company} & set(ids)


def test_types_can_be_restricted() -> None:
    items = generate_items(COMPANY, 30, 1, types=["invoice", ExportItemType.REFUND])
    assert {i["type"] for i in items} == {"invoice", "refund"}


def test_signs_follow_the_bookkeeping_convention() -> None:
    for item in batch(3) + batch(4):
        total = item["amount"]["inWalletCurrency"]["value"]
        if item["type"] in NEGATIVE:
            assert total < 0, item["type"]
        else:
            assert total > 0, item["type"]
        for line in item["accountingEntryLines"]:
            assert (line["lineAmount"]["inWalletCurrency"]["value"] > 0) == (total > 0)


def test_lines_add_up_except_for_a_conversion_residual() -> None:
    residuals = 0
    for seed in range(10):
        for item in batch(seed, multi_currency_rate=0.5):
            lines = item["accountingEntryLines"]
            assert 1 <= len(lines) <= 3
            total = item["amount"]["inWalletCurrency"]["value"]
            line_sum = sum(line["lineAmount"]["inWalletCurrency"]["value"] for line in lines)
            supplier_sum = sum(line["lineAmount"]["inSupplierCurrency"]["value"] for line in lines)
            assert supplier_sum == item["amount"]["inSupplierCurrency"]["value"]
            if total != line_sum:
                residuals += 1
                assert abs(total - line_sum) == 1
                assert len(lines) > 1
                assert item["amount"]["inSupplierCurrency"]["currency"] != "GBP"
    assert residuals > 0


def test_tax_amounts_follow_the_tax_type() -> None:
    seen = set()
    for seed in range(6):
        for item in batch(seed):
            for line in item["accountingEntryLines"]:
                tax = line.get("tax")
                if tax is None:
                    continue
                seen.add(tax["type"])
                for side in ("inWalletCurrency", "inSupplierCurrency"):
                    gross = line["lineAmount"][side]["value"]
                    amount = tax["amount"][side]["value"]
                    net = line["netAmount"][side]["value"]
                    rate = Decimal(str(tax["rate"]))
                    if tax["type"] == "reverse":
                        expected = abs(gross) * rate
                        assert net == gross
                        assert tax["ingoingTaxAccount"] and tax["outgoingTaxAccount"]
                    else:
                        expected = abs(gross) * rate / (1 + rate)
                        assert net == (gross - amount if tax["type"] == "exclusive" else gross)
                    assert abs(abs(amount) - expected) <= Decimal("0.5")
                    assert amount == 0 or (amount > 0) == (gross > 0)
    assert seen == {"inclusive", "exclusive", "reverse"}


def test_unknown_account_rate_controls_unknown_accounts() -> None:
    def unknown_items(items: list[dict[str, Any]]) -> int:
        return sum(
            any(
                line.get("account", {}).get("code") == UNKNOWN_ACCOUNT_CODE
                for line in item["accountingEntryLines"]
            )
            for item in items
        )

    assert unknown_items(batch(1)) == 0
    everything = batch(1, unknown_account_rate=1.0)
    spend = [i for i in everything if i["type"] not in TRANSFERS]
    assert unknown_items(everything) == len(spend)


def test_generated_accounts_are_in_the_chart() -> None:
    chart_codes = {a.code for a in DEMO_CHART.ledger_accounts()}
    assert UNKNOWN_ACCOUNT_CODE not in chart_codes
    used = set()
    for item in batch(1) + batch(2):
        used.add(item["contraAccount"]["code"])
        for line in item["accountingEntryLines"]:
            if "account" in line:
                used.add(line["account"]["code"])
            for key in ("ingoingTaxAccount", "outgoingTaxAccount"):
                if key in line.get("tax", {}):
                    used.add(line["tax"][key])
            for tag in line.get("tags", []):
                assert tag["groupCode"] in {g.code for g in DEMO_CHART.tag_groups}
    assert used <= chart_codes
    assert {"1990", "2201", "2202"} <= used


def test_vendor_based_bookkeeping_adds_vendors_to_payable_items() -> None:
    vendor_codes = {v.code for v in DEMO_CHART.vendors}
    payable = 0
    for item in batch(8, vendor_based_bookkeeping=True):
        method = item["bookkeeping"]["method"]
        if item["type"] in ("invoice", "invoice_payment", "card_purchase"):
            assert method == "accounts_payable"
            assert item["vendor"]["code"] in vendor_codes
            payable += 1
        else:
            assert method in ("journal", "none")
            assert "vendor" not in item
    assert payable > 0
    for item in batch(8):
        assert item["bookkeeping"]["method"] in ("journal", "none")
        assert "vendor" not in item


def test_items_carry_the_context_connectors_need() -> None:
    items = batch(9)
    for item in items:
        assert item["additionalInformation"]["reconciliationId"].startswith("BK-")
        assert item["contraAccount"]["name"] == "Pleo GBP Account"
        assert set(item["_links"]) == {"web", "mobile", "api"}
        if item["type"] == "invoice":
            assert item["additionalInformation"]["invoiceInformation"]["invoiceNumber"]
        if item["type"] == "card_purchase":
            assert item["supplier"]["categoryCode"].isdigit()
            assert item["user"]["name"] and item["team"]["code"]
    spent = {
        i["additionalInformation"]["reconciliationId"]
        for i in items
        if i["type"] == "out_of_pocket"
    }
    reimbursements = [
        i for i in items if i["type"] in ("direct_reimbursement", "external_reimbursement")
    ]
    assert reimbursements
    for item in reimbursements:
        assert set(item["additionalInformation"]["reconciledEntries"]) <= spent


def test_attachments_render_with_the_declared_size() -> None:
    items = generate_items(COMPANY, 40, 11, large_file_rate=0.2)
    files = [f for item in items for f in item["files"]]
    assert files
    kinds = set()
    large = 0
    for file in files:
        file_id = file["url"].rsplit("/", 1)[1]
        kind, size, _ = parse_file_id(file_id)
        content, mime = render_file(file_id)
        assert len(content) == file["size"] == size
        assert mime == file["type"]
        kinds.add(kind)
        large += size == LARGE_FILE_SIZE
        if kind == "png":
            assert content.startswith(b"\x89PNG\r\n\x1a\n") and content.endswith(b"IEND\xaeB`\x82")
        else:
            assert content.startswith(b"%PDF-1.4") and content.endswith(b"%%EOF\n")
    assert kinds == {"png", "pdf"}
    assert large > 0
    assert all(item["files"] == [] for item in generate_items(COMPANY, 40, 11, attachments=False))


def test_pdf_cross_reference_offsets_point_at_objects() -> None:
    content, _ = render_file("pdf-20000-00aa11bb22cc33dd")
    xref = int(content.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert content[xref:].startswith(b"xref")
    table = content[xref:].split(b"\n")[3:8]
    for number, row in enumerate(table, start=1):
        offset = int(row[:10])
        assert content[offset:].startswith(f"{number} 0 obj".encode())
