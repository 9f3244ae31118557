"""Fixtures: hand-built v3 export items, a starter ledger and a connector harness."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pleo_export import (
    ConnectorContext,
    ExportItem,
    ExportItemFile,
    ExportJob,
    ExternalRecord,
    PreparedEntry,
)
from pleo_export.testing import plan_item
from pleo_export_beancount import (
    BeancountConnector,
    BeancountSettings,
    StarterAccount,
    StarterChart,
    StarterVendor,
    write_starter_ledger,
)

CURRENCY = "DKK"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- export item factory ---------------------------------------------------------------------


def _id() -> str:
    return str(uuid.uuid4())


def money(value: int, currency: str = CURRENCY) -> dict[str, Any]:
    return {"value": value, "currency": currency}


def dual(
    wallet: int,
    *,
    currency: str = CURRENCY,
    supplier: int | None = None,
    supplier_currency: str | None = None,
) -> dict[str, Any]:
    return {
        "inWalletCurrency": money(wallet, currency),
        "inSupplierCurrency": money(
            wallet if supplier is None else supplier, supplier_currency or currency
        ),
    }


def tax(
    amount: int,
    *,
    type: str = "inclusive",
    rate: float = 0.25,
    code: str | None = "S25",
    ingoing: str | None = "5600",
    outgoing: str | None = None,
    supplier: int | None = None,
    supplier_currency: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": _id(),
        "rate": rate,
        "type": type,
        "amount": dual(amount, supplier=supplier, supplier_currency=supplier_currency),
        "code": code,
        "ingoingTaxAccount": ingoing,
    }
    if outgoing is not None:
        data["outgoingTaxAccount"] = outgoing
    return data


def line(
    amount: int,
    code: str | None = "6800",
    name: str = "Office supplies",
    *,
    tax: dict[str, Any] | None = None,
    tags: list[tuple[str, str]] | None = None,
    supplier: int | None = None,
    supplier_currency: str | None = None,
) -> dict[str, Any]:
    account: dict[str, Any] = {"id": _id(), "name": name}
    if code is not None:
        account["code"] = code
    return {
        "accountingEntryLineId": _id(),
        "lineAmount": dual(amount, supplier=supplier, supplier_currency=supplier_currency),
        "netAmount": dual(amount, supplier=supplier, supplier_currency=supplier_currency),
        "account": account,
        "tags": [{"id": _id(), "groupCode": g, "code": c} for g, c in (tags or [])],
        "tax": tax,
    }


TRANSFER_TYPES = {
    "wallet_topup",
    "wallet_unload",
    "direct_reimbursement",
    "external_reimbursement",
    "invoice_payment",
}


def item(
    type: str = "card_purchase",
    amount: int = 12500,
    *,
    lines: list[dict[str, Any]] | None = None,
    supplier_amount: int | None = None,
    supplier_currency: str | None = None,
    entry_id: str | None = None,
    date: str = "2024-03-05T12:00:00Z",
    note: str | None = None,
    supplier_name: str | None = "Office Shop",
    vendor: dict[str, Any] | None = None,
    bookkeeping: str | None = None,
    contra: dict[str, Any] | None = None,
    files: list[dict[str, Any]] | None = None,
    sub_type: str | None = None,
    invoice_number: str | None = None,
    invoice_date: str | None = None,
) -> ExportItem:
    entry_id = entry_id or _id()
    if lines is None:
        lines = [] if type in TRANSFER_TYPES else [line(amount)]
    info: dict[str, Any] = {"reconciliationId": f"R-{entry_id[:8]}"}
    if invoice_number:
        info["invoiceInformation"] = {
            "invoiceNumber": invoice_number,
            "invoiceDate": invoice_date or date,
            "status": "ready",
        }
    data: dict[str, Any] = {
        "_links": {"web": {"exportItem": f"https://app.pleo.io/export/{entry_id}"}},
        "accountingEntryId": entry_id,
        "accountingEntryLines": lines,
        "additionalInformation": info,
        "amount": dual(amount, supplier=supplier_amount, supplier_currency=supplier_currency),
        "companyId": "c0ffee00-0000-4000-8000-000000000001",
        "date": date,
        "type": type,
        "user": {"id": _id(), "name": "Ada Lovelace"},
        "note": note,
        "subType": sub_type,
        "files": files,
        "contraAccount": contra,
        "vendor": vendor,
    }
    if supplier_name is not None:
        data["supplier"] = {"name": supplier_name}
    if bookkeeping is not None:
        data["bookkeeping"] = {"method": bookkeeping}
    return ExportItem.model_validate(data)


def vendor(name: str, **identifiers: str) -> dict[str, Any]:
    data: dict[str, Any] = {"id": _id(), "name": name, "defaultCurrency": CURRENCY}
    keys = {"code": "code", "external_id": "externalId", "tax_number": "taxRegistrationNumber"}
    for key, value in identifiers.items():
        data[keys[key]] = value
    return data


def job(vendor_based: bool = False) -> ExportJob:
    return ExportJob.model_validate(
        {
            "id": "j0b00000-0000-4000-8000-000000000042",
            "companyId": "c0ffee00-0000-4000-8000-000000000001",
            "status": "in_progress",
            "createdAt": "2024-03-06T08:00:00Z",
            "expiresIn": 3600,
            "isInteractive": True,
            "numberOfItems": 1,
            "vendorBasedBookkeeping": vendor_based,
        }
    )


# --- ledger and harness ----------------------------------------------------------------------

CHART = StarterChart(
    currency=CURRENCY,
    accounts=[
        StarterAccount("Expenses:Office", "6800", "Office supplies"),
        ("Expenses:Travel", "7100"),
        ("Expenses:Software", "6900"),
        ("Assets:VAT:Input", "5600"),
        ("Liabilities:VAT:Output", "5610"),
        ("Assets:Pleo:DKK", "1990"),
    ],
    vendors=[
        StarterVendor("Acme Ltd.", code="V100"),
        StarterVendor("Globex", external_id="EXT-9"),
        StarterVendor("Initech", tax_number="DK 12 34 56 78"),
    ],
)


@dataclass
class Harness:
    """A ledger directory plus helpers to run the connector like the engine does."""

    directory: Path
    ledger: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    downloads: dict[str, bytes | Exception] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    @property
    def settings(self) -> BeancountSettings:
        return BeancountSettings(ledger=self.ledger, **self.overrides)

    @property
    def output(self) -> Path:
        return self.settings.output_path

    async def _fetch(self, file: ExportItemFile) -> bytes:
        self.fetched.append(file.url)
        result = self.downloads[file.url]
        if isinstance(result, Exception):
            raise result
        return result

    def context(self) -> ConnectorContext:
        return ConnectorContext(
            logger=logging.getLogger("pleo_export.test.beancount"),
            fetch_attachment=self._fetch,
            work_dir=self.directory,
        )

    async def connector(self) -> BeancountConnector:
        connector = BeancountConnector(self.settings, self.context())
        await connector.open()
        return connector

    async def prepare(self, export_item: ExportItem, vendor_based: bool = False) -> PreparedEntry:
        connector = await self.connector()
        the_job = job(vendor_based)
        await connector.check(the_job)
        return await connector.prepare(plan_item(export_item, the_job))

    async def book(
        self, export_item: ExportItem, vendor_based: bool = False
    ) -> tuple[PreparedEntry, ExternalRecord]:
        connector = await self.connector()
        the_job = job(vendor_based)
        await connector.check(the_job)
        plan = plan_item(export_item, the_job)
        assert await connector.find_existing(plan.reference) is None
        prepared = await connector.prepare(plan)
        record = await connector.post(prepared)
        await connector.close()
        return prepared, record

    def load(self) -> tuple[list[Any], dict[tuple[str, str], Decimal]]:
        """Load the ledger, assert it has no errors and return entries and balances."""
        from beancount import loader
        from beancount.core import data

        entries, errors, _ = loader.load_file(str(self.ledger))
        assert [e.message for e in errors] == []
        balances: dict[tuple[str, str], Decimal] = {}
        for entry in entries:
            if isinstance(entry, data.Transaction):
                for p in entry.postings:
                    key = (p.account, p.units.currency)
                    balances[key] = balances.get(key, Decimal(0)) + p.units.number
        return entries, {k: v for k, v in balances.items() if v != 0}

    def balances(self) -> dict[str, Decimal]:
        """Non-zero balances per account (all in the wallet currency)."""
        _, balances = self.load()
        assert {currency for _, currency in balances} <= {CURRENCY}
        return {account: amount for (account, _), amount in balances.items()}


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    ledger = write_starter_ledger(tmp_path, CHART)
    return Harness(directory=tmp_path, ledger=ledger)


class Make:
    """The item factory, handed to tests by the ``make`` fixture."""

    money = staticmethod(money)
    dual = staticmethod(dual)
    tax = staticmethod(tax)
    line = staticmethod(line)
    item = staticmethod(item)
    vendor = staticmethod(vendor)
    job = staticmethod(job)


@pytest.fixture
def make() -> Make:
    return Make()
