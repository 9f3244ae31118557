"""Export items for the conformance scenarios, in Pleo's wire form (``ExportItemV3``).

Broad scenarios use the sandbox generator (every item type, tax codes, tags, receipts);
focused ones build the exact item they need from the same chart, so each expected outcome is
known item by item. Everything is deterministic: ids derive from the scenario and a key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pleo_export_sandbox.app import FILE_PLACEHOLDER
from pleo_export_sandbox.generator import (
    Chart,
    ChartAccount,
    ChartVendor,
    TaxCode,
    generate_items,
    make_file_id,
    tax_for,
)

NAMESPACE = uuid.UUID("6f1d3f0e-2a4b-4c8e-9f61-5b7c0d2e8a41")

UNKNOWN_VENDOR = ChartVendor(
    name="Conformance Unknown Vendor Ltd",
    code="V9999",
    external_id="AS-9999",
    tax_registration_number="GB999999973",
    country="GB",
    default_currency="GBP",
)
"""A vendor no target knows: not in :data:`pleo_export_sandbox.DEMO_CHART`."""

UNKNOWN_TAX_CODE = TaxCode(
    "ZZ99", "Conformance unknown tax code", Decimal("0.2"), "inclusive", "2201"
)
"""A tax code no target knows: not in the chart's tax codes."""

SMALL_FILE_SIZE = 20_000
"""Bytes of the ordinary receipts of focused scenarios."""


def stable_id(*parts: str) -> str:
    """A UUID derived from ``parts``: the same scenario always uses the same ids."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def _money(currency: str, value: int) -> dict[str, Any]:
    return {"currency": currency, "value": value}


def _dual(
    supplier_currency: str, supplier: int, wallet_currency: str, wallet: int
) -> dict[str, Any]:
    return {
        "inSupplierCurrency": _money(supplier_currency, supplier),
        "inWalletCurrency": _money(wallet_currency, wallet),
    }


@dataclass(frozen=True)
class Line:
    """One line of a hand-built item: its account, wallet amount and tax code."""

    account: ChartAccount
    wallet: int
    tax: TaxCode | None = None
    supplier: int | None = None
    """Amount in the supplier currency; default: ``wallet`` converted at a fixed demo rate."""


class ItemFactory:
    """Builds the wire items of one scenario for one sandbox company."""

    def __init__(self, chart: Chart, company_id: str, currency: str, scenario: str) -> None:
        self.chart = chart
        self.company_id = company_id
        self.currency = currency
        self.scenario = scenario

    # --- generated -------------------------------------------------------------------------

    def generated(
        self,
        count: int,
        seed: int,
        *,
        types: Sequence[str] | None = None,
        vendor_based: bool = False,
        multi_currency_rate: float = 0.3,
    ) -> list[dict[str, Any]]:
        """Generator items (every type when ``count >= 17`` and no ``types``), no large files."""
        return generate_items(
            self.company_id,
            count,
            seed,
            wallet_currency=self.currency,
            types=types,
            vendor_based_bookkeeping=vendor_based,
            multi_currency_rate=multi_currency_rate,
            file_url=lambda file_id: FILE_PLACEHOLDER + file_id,
            large_file_rate=0.0,
        )

    # --- hand-built ------------------------------------------------------------------------

    def foreign_currency(self) -> str:
        return "USD" if self.currency == "EUR" else "EUR"

    def account(self, code: str) -> ChartAccount:
        if code == self.chart.unknown_account_code:
            return self.chart.unknown_account
        return self.chart.account(code)

    def tax(self, code: str) -> TaxCode:
        return self.chart.tax_code(code)

    def file(self, key: str, size: int = SMALL_FILE_SIZE, kind: str = "pdf") -> dict[str, Any]:
        file_id = make_file_id(kind, size, stable_id(self.scenario, "file", key).replace("-", ""))
        mime = "application/pdf" if kind == "pdf" else "image/png"
        return {"url": FILE_PLACEHOLDER + file_id, "type": mime, "size": size}

    def spend(
        self,
        key: str,
        lines: Sequence[Line],
        *,
        item_type: str = "card_purchase",
        supplier_currency: str | None = None,
        date: str = "2025-02-10T10:00:00Z",
        vendor: ChartVendor | None = None,
        files: Sequence[dict[str, Any]] = (),
        residual: int = 0,
        note: str | None = None,
    ) -> dict[str, Any]:
        """A spend item whose lines add up to the total, plus ``residual`` minor units.

        ``vendor`` makes it an accounts-payable item (``bookkeeping.method`` accounts_payable).
        A non-zero ``residual`` is a currency-conversion rounding difference, so it needs a
        ``supplier_currency`` other than the wallet currency.
        """
        entry_id = stable_id(self.scenario, "item", key)
        wallet_currency = self.currency
        foreign = supplier_currency or wallet_currency
        wire_lines: list[dict[str, Any]] = []
        total_wallet = residual
        total_supplier = 0
        for number, line in enumerate(lines):
            supplier = line.supplier
            if supplier is None:
                supplier = line.wallet if foreign == wallet_currency else line.wallet * 117 // 100
            total_wallet += line.wallet
            total_supplier += supplier
            wire: dict[str, Any] = {
                "accountingEntryLineId": stable_id(self.scenario, "line", key, str(number)),
                "lineAmount": _dual(foreign, supplier, wallet_currency, line.wallet),
                "account": {
                    "id": line.account.id,
                    "name": line.account.name,
                    "code": line.account.code,
                },
                "tags": [],
            }
            net_supplier, net_wallet = supplier, line.wallet
            if line.tax is not None:
                tax_supplier, net_supplier = tax_for(supplier, line.tax)
                tax_wallet, net_wallet = tax_for(line.wallet, line.tax)
                tax: dict[str, Any] = {
                    "id": line.tax.id,
                    "code": line.tax.code,
                    "rate": float(line.tax.rate),
                    "type": line.tax.type,
                    "amount": _dual(foreign, tax_supplier, wallet_currency, tax_wallet),
                }
                if line.tax.ingoing_tax_account:
                    tax["ingoingTaxAccount"] = line.tax.ingoing_tax_account
                if line.tax.outgoing_tax_account:
                    tax["outgoingTaxAccount"] = line.tax.outgoing_tax_account
                wire["tax"] = tax
            wire["netAmount"] = _dual(foreign, net_supplier, wallet_currency, net_wallet)
            wire_lines.append(wire)
        wallet = self.chart.wallet_account_for(wallet_currency)
        item: dict[str, Any] = {
            "_links": {"web": {"exportItem": f"https://app.pleo.invalid/export/{entry_id}"}},
            "companyId": self.company_id,
            "accountingEntryId": entry_id,
            "type": item_type,
            "date": date,
            "amount": _dual(foreign, total_supplier, wallet_currency, total_wallet),
            "accountingEntryLines": wire_lines,
            "files": list(files),
            "supplier": {
                "name": "Conformance Supplies Ltd",
                "categoryCode": "5942",
                "country": "GB",
            },
            "user": {"id": stable_id("user", "E001"), "name": "Luke Richardson", "code": "E001"},
            "additionalInformation": {
                "reconciliationId": f"BK-CONF-{entry_id[:8].upper()}",
            },
            "bookkeeping": {"method": "journal"},
            "contraAccount": {"id": wallet.id, "name": wallet.name, "code": wallet.code},
            "note": note or f"conformance {self.scenario} {key}",
        }
        if vendor is not None:
            item["bookkeeping"] = {"method": "accounts_payable"}
            item["vendor"] = vendor.to_wire()
            item["supplier"] = {
                "name": vendor.name,
                "code": vendor.code,
                "taxIdentifier": vendor.tax_registration_number,
                "country": vendor.country,
            }
        return item


__all__ = [
    "SMALL_FILE_SIZE",
    "UNKNOWN_TAX_CODE",
    "UNKNOWN_VENDOR",
    "ItemFactory",
    "Line",
    "stable_id",
]
