"""Export items drawn from a company's current master data, and the sandbox operations that
act on master data the way a Pleo user would (a draft vendor created in the web app).

:func:`restyle_items` takes items from :func:`~pleo_export_sandbox.generator.generate_items`
(which draw from the demo chart) and points their vendors, tax codes and tags at what the
company's Vendors, Tax Code and Tags APIs hold *now*: a vendor, tax code, tag group or tag with
the same code is kept (with Pleo's current id, name and external id), otherwise one is chosen
from what is active, deterministically by seed (a tax code of the same type when there is one).
Tax amounts and net amounts are recomputed for the new rate. When nothing is active an item
loses its vendor (and is booked as a journal), a line its tax or tags. So after ``pleo-export
sync`` has brought the accounting system's master data into Pleo, a job made this way refers
only to vendors, tax codes and tags the accounting system knows.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from pleo_export_sandbox.amounts import dual, tax_for
from pleo_export_sandbox.chart import TaxCode
from pleo_export_sandbox.masterdata_store import (
    CompanyMasterData,
    MasterDataStore,
    TaxCodeRecord,
    VendorRecord,
)
from pleo_export_sandbox.records import ApiError, bad_request
from pleo_export_sandbox.store import Store
from pleo_export_sandbox.webhooks import WebhookEmitter
from pleo_export_sandbox.wire import JsonResponse, json_body

R = TypeVar("R")


def _same_or_pick(
    rows: Sequence[R],
    key: Callable[[R], Any],
    wanted: Any,
    rng: random.Random,
    prefer: Sequence[R] = (),
) -> R | None:
    """The row whose ``key`` is ``wanted``, else one chosen from ``prefer`` (or ``rows``)."""
    for row in rows:
        if wanted is not None and key(row) == wanted:
            return row
    pool = list(prefer) or list(rows)
    return rng.choice(pool) if pool else None


def _item_vendor(vendor: VendorRecord) -> dict[str, Any]:
    """The vendor as an export item carries it (``VendorV3``)."""
    wire = vendor.wire()
    return {
        key: wire[key]
        for key in (
            "id",
            "name",
            "code",
            "externalId",
            "country",
            "defaultCurrency",
            "taxRegistrationNumber",
            "registrationNumber",
        )
        if key in wire
    }


def _retax(line: dict[str, Any], tax: TaxCodeRecord) -> None:
    amount = line["lineAmount"]
    supplier = amount["inSupplierCurrency"]
    wallet = amount["inWalletCurrency"]
    code = TaxCode(
        tax.code or "",
        tax.name,
        tax.rate,
        tax.type,
        tax.ingoing_tax_account,
        tax.outgoing_tax_account,
    )
    tax_supplier, net_supplier = tax_for(supplier["value"], code)
    tax_wallet, net_wallet = tax_for(wallet["value"], code)
    wire: dict[str, Any] = {
        "id": tax.id,
        "code": tax.code,
        "rate": float(tax.rate),
        "type": tax.type,
        "amount": dual(supplier["currency"], tax_supplier, wallet["currency"], tax_wallet),
    }
    if tax.ingoing_tax_account:
        wire["ingoingTaxAccount"] = tax.ingoing_tax_account
    if tax.outgoing_tax_account:
        wire["outgoingTaxAccount"] = tax.outgoing_tax_account
    line["tax"] = wire
    line["netAmount"] = dual(supplier["currency"], net_supplier, wallet["currency"], net_wallet)


def restyle_items(
    items: list[dict[str, Any]], data: CompanyMasterData, seed_key: str
) -> list[dict[str, Any]]:
    """Copies of ``items`` whose vendors, tax codes and tags are ``data``'s active ones."""
    vendors = data.active_vendors()
    taxes = data.open_tax_codes()
    groups = data.open_tags()
    restyled = []
    for index, original in enumerate(items):
        item = copy.deepcopy(original)
        rng = random.Random(f"{seed_key}:master-data:{index}")
        vendor = item.get("vendor")
        if vendor is not None:
            chosen = _same_or_pick(vendors, lambda v: v.code, vendor.get("code"), rng)
            if chosen is None:
                del item["vendor"]
                item["bookkeeping"] = {"method": "journal"}
            else:
                item["vendor"] = _item_vendor(chosen)
                supplier = item.get("supplier")
                if isinstance(supplier, dict):
                    supplier["name"] = chosen.name
                    supplier["code"] = chosen.code
                    supplier["taxIdentifier"] = chosen.tax_registration_number
        for line in item.get("accountingEntryLines", []):
            tax = line.get("tax")
            if tax is not None:
                same_type = [t for t in taxes if t.type == tax.get("type")]
                code = tax.get("code")
                picked = _same_or_pick(taxes, lambda t: t.code, code, rng, same_type)
                if picked is None:
                    del line["tax"]
                    line["netAmount"] = copy.deepcopy(line["lineAmount"])
                else:
                    _retax(line, picked)
            if line.get("tags"):
                line["tags"] = _retag(line["tags"], groups, rng)
        restyled.append(item)
    return restyled


def _retag(
    tags: list[dict[str, Any]], groups: list[Any], rng: random.Random
) -> list[dict[str, Any]]:
    chosen: list[dict[str, Any]] = []
    used: set[str] = set()
    for tag in tags:
        spare = [g for g in groups if g[0].id not in used]
        pair = _same_or_pick(spare, lambda g: g[0].code, tag.get("groupCode"), rng)
        if pair is None:
            continue
        group, values = pair
        used.add(group.id)
        value = _same_or_pick(values, lambda t: t.code, tag.get("code"), rng)
        assert value is not None  # open_tags() leaves out groups without open tags
        chosen.append({"id": value.id, "code": value.code, "groupCode": group.code})
    return chosen


# --- sandbox operations -----------------------------------------------------------------------


class MasterDataOperations:
    """What a Pleo user does to master data, as a Python API and ``/_sandbox/`` routes; mixed
    into :class:`~pleo_export_sandbox.app.Sandbox`."""

    store: Store
    masterdata: MasterDataStore
    webhooks: WebhookEmitter

    def master_data(self, company_id: str) -> CompanyMasterData:
        """The company's vendors, tax codes, tag groups, tags and subscriptions, as stored."""
        self.store.company(company_id)
        return self.masterdata.company(company_id)

    def create_draft_vendor(
        self,
        company_id: str,
        name: str,
        default_currency: str | None = None,
        *,
        country: str | None = None,
        tax_registration_number: str | None = None,
        registration_number: str | None = None,
    ) -> dict[str, Any]:
        """A vendor created in Pleo's web app: ``DRAFT``, no code or external id, and a
        ``v1.vendor.created`` event queued for the webhook subscribers. Returns its wire form
        (``VendorResponse``)."""
        company = self.store.company(company_id)
        vendor = self.masterdata.create_vendor(
            company_id,
            {
                "name": name,
                "default_currency": default_currency or company.wallet_currency,
                "country": country,
                "tax_registration_number": tax_registration_number,
                "registration_number": registration_number,
            },
        )
        return vendor.wire()

    def _vendor_created(self, vendor: VendorRecord) -> None:
        self.webhooks.vendor_created(vendor.company_id, vendor.wire())

    async def _admin_draft_vendor(self, request: Request) -> Response:
        company_id = request.path_params["companyId"]
        if company_id not in self.store.companies:
            raise ApiError(404, "COMPANY_NOT_FOUND", f"No company {company_id} in this sandbox.")
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise bad_request('the body needs a vendor name: {"name": "..."}')
        allowed = {"name", "defaultCurrency", "country", "taxRegistrationNumber"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise bad_request(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
        vendor = self.create_draft_vendor(
            company_id,
            body["name"],
            body.get("defaultCurrency"),
            country=body.get("country"),
            tax_registration_number=body.get("taxRegistrationNumber"),
        )
        return JsonResponse({"data": vendor}, status_code=201)
