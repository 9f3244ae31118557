"""Hand-built v3 export items on the sandbox chart (GBP), in wire form and as models."""

from __future__ import annotations

import uuid
from typing import Any

from pleo_export import ExportItem, ExportJob
from pleo_export_sandbox import DEMO_CHART

CURRENCY = "GBP"
COMPANY_ID = "c0ffee00-0000-4000-8000-000000000001"
TRANSFER_TYPES = {
    "wallet_topup",
    "wallet_unload",
    "direct_reimbursement",
    "external_reimbursement",
    "invoice_payment",
}


def new_id() -> str:
    return str(uuid.uuid4())


def dual(
    wallet: int, *, supplier: int | None = None, supplier_currency: str | None = None
) -> dict[str, Any]:
    return {
        "inWalletCurrency": {"value": wallet, "currency": CURRENCY},
        "inSupplierCurrency": {
            "value": wallet if supplier is None else supplier,
            "currency": supplier_currency or CURRENCY,
        },
    }


def tax(
    amount: int,
    *,
    code: str | None = "S20",
    type: str = "inclusive",
    rate: float = 0.2,
    ingoing: str | None = "2201",
    outgoing: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": new_id(),
        "rate": rate,
        "type": type,
        "amount": dual(amount),
        "code": code,
        "ingoingTaxAccount": ingoing,
    }
    if outgoing is not None:
        data["outgoingTaxAccount"] = outgoing
    return data


def line(
    amount: int,
    code: str | None = "6100",
    *,
    tax: dict[str, Any] | None = None,
    tags: list[tuple[str, str]] | None = None,
    supplier: int | None = None,
    supplier_currency: str | None = None,
) -> dict[str, Any]:
    account: dict[str, Any] = {"id": new_id(), "name": "Office Supplies"}
    if code is not None:
        account["code"] = code
        try:
            account["name"] = DEMO_CHART.account(code).name
        except KeyError:
            account["name"] = f"Account {code}"
    net = amount - (tax["amount"]["inWalletCurrency"]["value"] if tax else 0)
    return {
        "accountingEntryLineId": new_id(),
        "lineAmount": dual(amount, supplier=supplier, supplier_currency=supplier_currency),
        "netAmount": dual(net),
        "account": account,
        "tags": [{"id": new_id(), "groupCode": g, "code": c} for g, c in (tags or [])],
        "tax": tax,
    }


def vendor(code: str = "V1001", **overrides: Any) -> dict[str, Any]:
    """A vendor of the sandbox chart in wire form (``VendorV3``), or one made up."""
    try:
        data = DEMO_CHART.vendor(code).to_wire()
    except KeyError:
        data = {
            "id": new_id(),
            "name": f"Unknown Vendor {code}",
            "code": code,
            "externalId": f"EXT-{code}",
            "country": "GB",
            "defaultCurrency": CURRENCY,
            "taxRegistrationNumber": f"GB{code}999",
        }
    data.update(overrides)
    return data


def wire_item(
    type: str = "card_purchase",
    amount: int = 12000,
    *,
    lines: list[dict[str, Any]] | None = None,
    date: str = "2025-03-04T12:00:00Z",
    entry_id: str | None = None,
    supplier_amount: int | None = None,
    supplier_currency: str | None = None,
    bookkeeping: str | None = "journal",
    vendor: dict[str, Any] | None = None,
    supplier: dict[str, Any] | None = None,
    contra: str | None = "1990",
    invoice_number: str | None = None,
    due_date: str | None = None,
    invoice_date: str | None = None,
    sub_type: str | None = None,
    files: list[dict[str, Any]] | None = None,
    note: str | None = "Printer ink",
) -> dict[str, Any]:
    entry_id = entry_id or new_id()
    if lines is None:
        lines = [] if type in TRANSFER_TYPES else [line(amount)]
    info: dict[str, Any] = {"reconciliationId": f"BK-{entry_id[:8].upper()}"}
    if invoice_number is not None:
        invoice: dict[str, Any] = {
            "invoiceNumber": invoice_number,
            "invoiceDate": invoice_date or date,
            "status": "paid" if type == "invoice_payment" else "scheduled",
        }
        if due_date is not None:
            invoice["dueDate"] = due_date
        info["invoiceInformation"] = invoice
    data: dict[str, Any] = {
        "_links": {"web": {"exportItem": f"https://app.pleo.invalid/export/{entry_id}"}},
        "accountingEntryId": entry_id,
        "accountingEntryLines": lines,
        "additionalInformation": info,
        "amount": dual(amount, supplier=supplier_amount, supplier_currency=supplier_currency),
        "companyId": COMPANY_ID,
        "date": date,
        "type": type,
        "note": note,
        "files": files or [],
    }
    if sub_type is not None:
        data["subType"] = sub_type
    if supplier is not None:
        data["supplier"] = supplier
    elif type not in TRANSFER_TYPES or type == "invoice_payment":
        data["supplier"] = {"name": "AMZN Mktp UK", "country": "GB"}
    if bookkeeping is not None:
        data["bookkeeping"] = {"method": bookkeeping}
    if vendor is not None:
        data["vendor"] = vendor
    if contra is not None:
        wallet = DEMO_CHART.wallet_account
        data["contraAccount"] = {"id": wallet.id, "name": wallet.name, "code": contra}
    return data


def item(*args: Any, **kwargs: Any) -> ExportItem:
    return ExportItem.model_validate(wire_item(*args, **kwargs))


def job(vendor_based: bool = False, job_id: str | None = None) -> ExportJob:
    return ExportJob.model_validate(
        {
            "id": job_id or new_id(),
            "companyId": COMPANY_ID,
            "status": "in_progress",
            "createdAt": "2025-06-01T08:00:00Z",
            "expiresIn": 3600,
            "isInteractive": True,
            "numberOfItems": 1,
            "vendorBasedBookkeeping": vendor_based,
        }
    )
