"""The master-data scenarios of the kit on an in-memory connector that keeps master data.

``memory-masterdata`` answers vendors, tax codes and dimensions and creates vendors as the
contract asks (answering an existing vendor with the same tax number or name): it must pass.
``memory-masterdata-duplicating`` creates a new vendor for every call and lists a tax code
twice: the kit must fail it naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

import pytest

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    Capability,
    ConnectorManifest,
    DimensionValue,
    TaxType,
    VendorDraft,
)
from pleo_export.testing import ConformanceSuite, ConnectorTarget
from pleo_export_sandbox import Chart
from tests.support.memory import MemoryConnector
from tests.testing.suites.memory_suite import memory_target

pytest_plugins = ["pleo_export.testing.plugin"]

MASTER_DATA = frozenset(
    {
        Capability.READ_VENDORS,
        Capability.READ_TAX_CODES,
        Capability.READ_DIMENSIONS,
        Capability.CREATE_VENDORS,
    }
)
MASTER_DATA_SCENARIOS = (
    "read_vendors",
    "read_tax_codes",
    "read_dimensions",
    "create_vendor_idempotent",
)


@dataclass
class Books:
    """The master data, shared by every connector instance (it survives 'restarts')."""

    vendors: list[AccountingVendor] = field(default_factory=list)
    tax_codes: list[AccountingTaxCode] = field(default_factory=list)
    dimensions: list[AccountingDimension] = field(default_factory=list)


def books_from(chart: Chart) -> Books:
    return Books(
        vendors=[
            AccountingVendor(
                name=v.name,
                code=v.code,
                external_id=v.external_id,
                currency=v.default_currency,
                country=v.country,
                tax_registration_number=v.tax_registration_number,
            )
            for v in chart.vendors
        ],
        tax_codes=[
            AccountingTaxCode(code=t.code, name=t.name, rate=t.rate, type=TaxType(t.type))
            for t in chart.tax_codes
        ],
        dimensions=[
            AccountingDimension(
                code=g.code,
                name=g.name,
                values=tuple(DimensionValue(code=v.code, name=v.name) for v in g.tags),
            )
            for g in chart.tag_groups
        ],
    )


class MasterDataConnector(MemoryConnector):
    manifest: ClassVar[ConnectorManifest] = MemoryConnector.manifest.model_copy(
        update={
            "id": "memory-masterdata",
            "capabilities": MemoryConnector.manifest.capabilities | MASTER_DATA,
        }
    )
    books: ClassVar[Books] = Books()

    async def list_vendors(self) -> list[AccountingVendor]:
        return list(self.books.vendors)

    async def list_tax_codes(self) -> list[AccountingTaxCode]:
        return list(self.books.tax_codes)

    async def list_dimensions(self) -> list[AccountingDimension]:
        return list(self.books.dimensions)

    def existing(self, draft: VendorDraft) -> AccountingVendor | None:
        for vendor in self.books.vendors:
            if draft.tax_registration_number and (
                vendor.tax_registration_number == draft.tax_registration_number
            ):
                return vendor
        for vendor in self.books.vendors:
            if vendor.name.casefold() == draft.name.casefold():
                return vendor
        return None

    async def create_vendor(self, draft: VendorDraft) -> AccountingVendor:
        found = self.existing(draft)
        if found is not None:
            return found
        number = len(self.books.vendors) + 1
        vendor = AccountingVendor(
            name=draft.name,
            code=f"M{number:04d}",
            external_id=f"memory-vendor-{number}",
            currency=draft.currency,
            country=draft.country,
            tax_registration_number=draft.tax_registration_number,
        )
        self.books.vendors.append(vendor)
        return vendor


class DuplicatingConnector(MasterDataConnector):
    manifest: ClassVar[ConnectorManifest] = MasterDataConnector.manifest.model_copy(
        update={"id": "memory-masterdata-duplicating"}
    )

    def existing(self, draft: VendorDraft) -> AccountingVendor | None:
        return None

    async def list_tax_codes(self) -> list[AccountingTaxCode]:
        codes = list(self.books.tax_codes)
        return [*codes, codes[0].model_copy(update={"rate": Decimal("0.1")})]


@pytest.fixture
def masterdata_target(conformance_chart: Chart) -> Iterator[ConnectorTarget]:
    MasterDataConnector.books = books_from(conformance_chart)
    yield memory_target(conformance_chart)
    MasterDataConnector.books = Books()


class TestConformance(ConformanceSuite):
    connector_id = "memory-masterdata"

    @pytest.fixture
    def connector_target(self, masterdata_target: ConnectorTarget) -> ConnectorTarget:
        return masterdata_target


class TestDuplicating(ConformanceSuite):
    connector_id = "memory-masterdata-duplicating"

    @pytest.fixture
    def connector_target(self, masterdata_target: ConnectorTarget) -> ConnectorTarget:
        return masterdata_target
