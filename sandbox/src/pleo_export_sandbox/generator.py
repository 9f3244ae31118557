"""Realistic, deterministic Pleo export items for the sandbox.

:func:`generate_items` draws from :data:`DEMO_CHART` (a small UK company's chart of accounts,
tax codes, tag groups, vendors and merchants) and returns wire-form ``ExportItemV3`` objects.
The same ``(company_id, seed, options)`` always gives the same items.

What the items look like, so connectors can rely on it:

* every one of the 17 ``ExportItemTypeV3`` types appears in any batch with at least 17 items;
* spend types (``card_purchase``, ``invoice``, ``out_of_pocket``, ...) are positive; ``refund``,
  ``chargeback`` and ``cashback`` are negative; transfer types (``wallet_topup``,
  ``wallet_unload``, ``direct_reimbursement``, ``external_reimbursement``,
  ``invoice_payment``) are positive and carry one line without an account
  (see :mod:`pleo_export.bookkeeping` for how each is booked);
* spend items have 1-3 lines whose wallet amounts add up to the total, except that a
  multi-currency item with several lines sometimes carries a one-minor-unit conversion
  residual, which the engine books to its rounding account;
* tax follows the code's type: ``inclusive`` ``tax = round(gross*rate/(1+rate))`` and
  ``netAmount = lineAmount``; ``exclusive`` the same tax with ``netAmount = gross - tax``;
  ``reverse`` ``tax = round(gross*rate)`` and ``netAmount = gross`` with in- and outgoing
  tax accounts;
* attachments are small real PNG and PDF files (:func:`render_file`); a share of items get a
  file just over 3 MB to exercise size limits.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pleo_export.pleo.models import ExportItemType, format_timestamp
from pleo_export_sandbox.amounts import (
    HOME_COUNTRY,
    convert,
    dual,
    tax_for,
    to_minor,
)
from pleo_export_sandbox.chart import (
    DEMO_CHART,
    UNKNOWN_ACCOUNT_CODE,
    Chart,
    ChartAccount,
    ChartVendor,
    Merchant,
    Person,
    TagGroup,
    TagValue,
    TaxCode,
    Team,
    stable_uuid,
)
from pleo_export_sandbox.files import (
    FILE_MIME,
    LARGE_FILE_SIZE,
    make_file_id,
    parse_file_id,
    render_file,
)

__all__ = [  # the chart and the files lived here; their names stay importable from here
    "ALL_TYPES",
    "DEMO_CHART",
    "FILE_MIME",
    "LARGE_FILE_SIZE",
    "NEGATIVE_TYPES",
    "SPEND_TYPES",
    "TRANSFER_TYPES",
    "UNKNOWN_ACCOUNT_CODE",
    "Chart",
    "ChartAccount",
    "ChartVendor",
    "Merchant",
    "Person",
    "TagGroup",
    "TagValue",
    "TaxCode",
    "Team",
    "generate_items",
    "make_file_id",
    "parse_file_id",
    "render_file",
    "tax_for",
]

T = ExportItemType


# --- item generation --------------------------------------------------------------------------

SPEND_TYPES = (
    T.CARD_PURCHASE,
    T.CARD_INVOICE,
    T.OUT_OF_POCKET,
    T.MILEAGE,
    T.PER_DIEM,
    T.INVOICE,
    T.ATM_WITHDRAWAL,
    T.PERSONAL_SPEND,
    T.FEE,
)
NEGATIVE_TYPES = (T.REFUND, T.CHARGEBACK, T.CASHBACK)
TRANSFER_TYPES = (
    T.WALLET_TOPUP,
    T.WALLET_UNLOAD,
    T.DIRECT_REIMBURSEMENT,
    T.EXTERNAL_REIMBURSEMENT,
    T.INVOICE_PAYMENT,
)
ALL_TYPES: tuple[ExportItemType, ...] = tuple(ExportItemType)

# Relative frequency in a batch (card spend dominates, as in a real Pleo account).
_WEIGHTS: dict[ExportItemType, int] = {
    T.CARD_PURCHASE: 40,
    T.CARD_INVOICE: 3,
    T.OUT_OF_POCKET: 10,
    T.MILEAGE: 4,
    T.PER_DIEM: 3,
    T.EXTERNAL_REIMBURSEMENT: 2,
    T.DIRECT_REIMBURSEMENT: 4,
    T.INVOICE: 8,
    T.INVOICE_PAYMENT: 5,
    T.CHARGEBACK: 1,
    T.REFUND: 4,
    T.CASHBACK: 2,
    T.ATM_WITHDRAWAL: 2,
    T.WALLET_TOPUP: 3,
    T.WALLET_UNLOAD: 1,
    T.PERSONAL_SPEND: 2,
    T.FEE: 3,
}

# (low, high) in major units of the wallet currency.
_RANGES: dict[ExportItemType, tuple[float, float]] = {
    T.CARD_PURCHASE: (3, 900),
    T.CARD_INVOICE: (100, 3000),
    T.OUT_OF_POCKET: (5, 400),
    T.MILEAGE: (10, 300),
    T.PER_DIEM: (20, 120),
    T.EXTERNAL_REIMBURSEMENT: (10, 800),
    T.DIRECT_REIMBURSEMENT: (10, 800),
    T.INVOICE: (50, 5000),
    T.INVOICE_PAYMENT: (50, 5000),
    T.CHARGEBACK: (10, 500),
    T.REFUND: (5, 300),
    T.CASHBACK: (1, 50),
    T.ATM_WITHDRAWAL: (20, 300),
    T.WALLET_TOPUP: (1000, 20000),
    T.WALLET_UNLOAD: (500, 5000),
    T.PERSONAL_SPEND: (5, 80),
    T.FEE: (1, 30),
}

_FIXED_ACCOUNT: dict[ExportItemType, str] = {
    T.MILEAGE: "7320",
    T.PER_DIEM: "7310",
    T.ATM_WITHDRAWAL: "1210",
    T.PERSONAL_SPEND: "1560",
    T.FEE: "7900",
    T.CASHBACK: "4900",
}
_MULTI_CURRENCY_TYPES = frozenset(
    {T.CARD_PURCHASE, T.OUT_OF_POCKET, T.INVOICE, T.REFUND, T.CHARGEBACK, T.ATM_WITHDRAWAL}
)
_SPLITTABLE = frozenset({T.CARD_PURCHASE, T.CARD_INVOICE, T.OUT_OF_POCKET, T.INVOICE})
_TAXED = frozenset(
    {T.CARD_PURCHASE, T.CARD_INVOICE, T.OUT_OF_POCKET, T.INVOICE, T.REFUND, T.CHARGEBACK}
)
_WITH_RECEIPTS = frozenset(
    {T.CARD_PURCHASE, T.CARD_INVOICE, T.OUT_OF_POCKET, T.INVOICE, T.REFUND, T.PER_DIEM}
)
_AP_TYPES = frozenset({T.INVOICE, T.INVOICE_PAYMENT, T.CARD_PURCHASE})
_WITHOUT_USER = frozenset(
    {T.INVOICE, T.INVOICE_PAYMENT, T.WALLET_TOPUP, T.WALLET_UNLOAD, T.FEE, T.CARD_INVOICE}
)
_WITHOUT_SUPPLIER = frozenset(
    {T.MILEAGE, T.PER_DIEM, T.FEE, T.CASHBACK, *(set(TRANSFER_TYPES) - {T.INVOICE_PAYMENT})}
)
_TYPE_NOTES: dict[ExportItemType, tuple[str, ...]] = {
    T.MILEAGE: ("Client visit, Reading", "Site visit, Bristol"),
    T.PER_DIEM: ("Per diem, Berlin trip", "Per diem, Paris offsite"),
    T.FEE: ("Card fee", "Overdraft interest"),
    T.CASHBACK: ("Monthly cashback",),
    T.ATM_WITHDRAWAL: ("Cash for petty cash box",),
    T.PERSONAL_SPEND: ("Personal purchase, to be repaid",),
    T.WALLET_TOPUP: (),
    T.WALLET_UNLOAD: (),
    T.DIRECT_REIMBURSEMENT: ("Expense reimbursement",),
    T.EXTERNAL_REIMBURSEMENT: ("Reimbursed via payroll",),
    T.INVOICE_PAYMENT: ("Invoice settlement",),
}
_BASE_DATE = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _default_file_url(file_id: str) -> str:
    return f"https://files.sandbox.localhost/_sandbox/files/{file_id}"


@dataclass
class _Options:
    company_id: str
    wallet_currency: str
    vendor_based_bookkeeping: bool
    unknown_account_rate: float
    multi_currency_rate: float
    attachments: bool
    large_file_rate: float
    large_file_size: int
    file_url: Callable[[str], str]


@dataclass
class _Line:
    supplier: int
    wallet: int
    account: ChartAccount | None = None
    tax: TaxCode | None = None
    tags: list[TagValue] = field(default_factory=list)


def _type_sequence(
    rng: random.Random, count: int, types: Sequence[ExportItemType]
) -> list[ExportItemType]:
    """``count`` types: each of ``types`` at least once when there is room, the rest weighted."""
    chosen = list(types) if count >= len(types) else []
    weights = [_WEIGHTS[t] for t in types]
    chosen += rng.choices(list(types), weights=weights, k=count - len(chosen))
    rng.shuffle(chosen)
    return chosen


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """Split a positive ``total`` into ``parts`` positive shares (each at least ~10%)."""
    if parts == 1 or total < parts * 10:
        return [total]
    weights = [rng.uniform(1, 3) for _ in range(parts)]
    scale = sum(weights)
    shares = [max(1, int(total * w / scale)) for w in weights[:-1]]
    return [*shares, total - sum(shares)]


def _pick_merchant(rng: random.Random, item_type: ExportItemType, opts: _Options) -> Merchant:
    if item_type in (T.INVOICE, T.INVOICE_PAYMENT):
        return rng.choice(DEMO_CHART.invoice_suppliers)
    merchants = DEMO_CHART.merchants
    if opts.vendor_based_bookkeeping and item_type in _AP_TYPES:
        merchants = tuple(m for m in merchants if m.vendor_code)
    return rng.choice(merchants)


def _pick_tax(
    rng: random.Random,
    item_type: ExportItemType,
    merchant: Merchant,
    account: ChartAccount,
    home: str,
) -> TaxCode | None:
    if item_type not in _TAXED:
        return None
    domestic = merchant.country == home
    chart = DEMO_CHART
    if account.code == "6000":
        return chart.tax_code("Z0")
    if not domestic:
        if account.code in ("6200", "6300", "6700") or item_type is T.INVOICE:
            return chart.tax_code("RC20")
        return None  # foreign VAT is not reclaimable
    if item_type is T.INVOICE and rng.random() < 0.5:
        return chart.tax_code("EX20")
    return chart.tax_code("R5") if rng.random() < 0.1 else chart.tax_code("S20")


def _pick_tags(rng: random.Random) -> list[TagValue]:
    tags: list[TagValue] = []
    departments, projects = DEMO_CHART.tag_groups
    if rng.random() < 0.8:
        tags.append(rng.choice(departments.tags))
    if rng.random() < 0.3:
        tags.append(rng.choice(projects.tags))
    return tags


def _line_wire(
    line: _Line, supplier_currency: str, wallet_currency: str, line_id: str
) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "accountingEntryLineId": line_id,
        "lineAmount": dual(supplier_currency, line.supplier, wallet_currency, line.wallet),
    }
    net_supplier, net_wallet = line.supplier, line.wallet
    if line.tax is not None:
        tax_supplier, net_supplier = tax_for(line.supplier, line.tax)
        tax_wallet, net_wallet = tax_for(line.wallet, line.tax)
        tax: dict[str, Any] = {
            "id": line.tax.id,
            "code": line.tax.code,
            "rate": float(line.tax.rate),
            "type": line.tax.type,
            "amount": dual(supplier_currency, tax_supplier, wallet_currency, tax_wallet),
        }
        if line.tax.ingoing_tax_account:
            tax["ingoingTaxAccount"] = line.tax.ingoing_tax_account
        if line.tax.outgoing_tax_account:
            tax["outgoingTaxAccount"] = line.tax.outgoing_tax_account
        wire["tax"] = tax
    wire["netAmount"] = dual(supplier_currency, net_supplier, wallet_currency, net_wallet)
    if line.account is not None:
        wire["account"] = {
            "id": line.account.id,
            "name": line.account.name,
            "code": line.account.code,
        }
        wire["tags"] = [{"id": t.id, "code": t.code, "groupCode": t.group_code} for t in line.tags]
    return wire


class _ItemBuilder:
    """Builds one item; each concern draws from its own random stream, so changing one option
    (say ``multi_currency_rate``) does not reshuffle everything else about the item."""

    def __init__(self, opts: _Options, seed_key: str, index: int, item_type: ExportItemType):
        self.opts = opts
        self.type = item_type
        self.key = f"{seed_key}:{index}"
        self.rng = random.Random(self.key)
        self.id = stable_uuid(f"entry:{self.key}")
        self.home = HOME_COUNTRY.get(opts.wallet_currency, "GB")

    def stream(self, name: str) -> random.Random:
        return random.Random(f"{self.key}:{name}")

    def build(self) -> dict[str, Any]:
        rng, opts, item_type = self.rng, self.opts, self.type
        wallet_currency = opts.wallet_currency
        when = _BASE_DATE + timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 36_000))
        merchant = _pick_merchant(rng, item_type, opts)
        supplier_currency = wallet_currency
        if (
            item_type in _MULTI_CURRENCY_TYPES
            and self.stream("fx").random() < opts.multi_currency_rate
        ):
            supplier_currency = self._foreign_currency(merchant)
        low, high = _RANGES[item_type]
        wallet_total = to_minor(rng.uniform(low, high), wallet_currency)
        if item_type is T.ATM_WITHDRAWAL:
            wallet_total = max(1, round(wallet_total, -3))
        supplier_total = convert(wallet_total, wallet_currency, supplier_currency)
        wallet_total = convert(supplier_total, supplier_currency, wallet_currency)

        item: dict[str, Any] = {
            "_links": {
                "web": {"exportItem": f"https://app.pleo.invalid/export/{self.id}"},
                "mobile": {"exportItem": f"pleo://export/{self.id}"},
                "api": {"exportItem": f"https://external.pleo.invalid/v3/export-items/{self.id}"},
            },
            "companyId": opts.company_id,
            "accountingEntryId": self.id,
            "type": item_type.value,
            "date": format_timestamp(when),
        }
        sub_type = self._sub_type()
        if sub_type:
            item["subType"] = sub_type
        lines = self._lines(merchant, supplier_total, wallet_total, supplier_currency)
        sign = -1 if item_type in NEGATIVE_TYPES else 1
        item["amount"] = dual(
            supplier_currency, sign * supplier_total, wallet_currency, sign * wallet_total
        )
        item["accountingEntryLines"] = [
            _line_wire(
                _Line(sign * ln.supplier, sign * ln.wallet, ln.account, ln.tax, ln.tags),
                supplier_currency,
                wallet_currency,
                stable_uuid(f"line:{self.key}:{n}"),
            )
            for n, ln in enumerate(lines)
        ]
        notes = _TYPE_NOTES.get(item_type, merchant.notes)
        if notes and rng.random() < 0.8:
            item["note"] = rng.choice(notes)
        item["files"] = self._files(item_type, merchant)
        if item_type not in _WITHOUT_SUPPLIER:
            item["supplier"] = self._supplier(merchant)
        self._people(item)
        item["additionalInformation"] = self._additional(item_type, merchant, when)
        self._bookkeeping(item, merchant)
        wallet = DEMO_CHART.wallet_account_for(wallet_currency)
        item["contraAccount"] = {"id": wallet.id, "name": wallet.name, "code": wallet.code}
        if item_type is T.INVOICE or (merchant.account_code == "6200" and rng.random() < 0.5):
            start = when.replace(day=1, hour=0, minute=0, second=0)
            item["servicePeriod"] = {
                "from": format_timestamp(start),
                "to": format_timestamp(start + timedelta(days=30)),
            }
        return item

    def _foreign_currency(self, merchant: Merchant) -> str:
        if merchant.currency != self.opts.wallet_currency:
            return merchant.currency
        options = [c for c in ("EUR", "USD", "SEK") if c != self.opts.wallet_currency]
        return self.stream("fx-currency").choice(options)

    def _sub_type(self) -> str | None:
        roll = self.stream("subtype").random()
        if self.type is T.DIRECT_REIMBURSEMENT:
            return "reimbursement_to_company" if roll < 0.2 else "reimbursement_to_employee"
        if self.type is T.EXTERNAL_REIMBURSEMENT:
            return "reimbursement_to_employee"
        if self.type is T.INVOICE_PAYMENT:
            return "invoice_payment_returned" if roll < 0.1 else "invoice_payment_sent"
        if self.type is T.FEE and roll < 0.2:
            return "interest"
        return None

    def _lines(
        self, merchant: Merchant, supplier_total: int, wallet_total: int, supplier_currency: str
    ) -> list[_Line]:
        item_type, rng = self.type, self.rng
        if item_type in TRANSFER_TYPES:
            return [_Line(supplier_total, wallet_total)]
        parts = 1
        if item_type in _SPLITTABLE:
            parts = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        supplier_parts = _split(rng, supplier_total, parts)
        wallet_currency = self.opts.wallet_currency
        wallet_parts = [convert(p, supplier_currency, wallet_currency) for p in supplier_parts]
        wallet_parts[-1] = wallet_total - sum(wallet_parts[:-1])
        if (
            len(wallet_parts) > 1
            and supplier_currency != wallet_currency
            and self.stream("residual").random() < 0.35
            and wallet_parts[-1] > 2
        ):
            # Pleo converts each line on its own, so the lines can miss the total by a minor unit.
            wallet_parts[-1] += self.stream("residual-sign").choice((-1, 1))
        lines = []
        fixed = _FIXED_ACCOUNT.get(item_type)
        for supplier_part, wallet_part in zip(supplier_parts, wallet_parts, strict=True):
            code = fixed or merchant.account_code
            if parts > 1 and rng.random() < 0.4:
                code = rng.choice(("6100", "6020", "6600", "6400"))
            account = DEMO_CHART.account(code)
            tax = _pick_tax(rng, item_type, merchant, account, self.home)
            lines.append(_Line(supplier_part, wallet_part, account, tax, _pick_tags(rng)))
        unknown = self.stream("unknown")
        if unknown.random() < self.opts.unknown_account_rate:
            unknown.choice(lines).account = DEMO_CHART.unknown_account
        return lines

    def _files(self, item_type: ExportItemType, merchant: Merchant) -> list[dict[str, Any]]:
        if not self.opts.attachments or item_type not in _WITH_RECEIPTS:
            return []
        rng = self.stream("files")
        if item_type is not T.INVOICE and rng.random() < 0.1:
            return []  # a missing receipt
        count = 2 if rng.random() < 0.15 else 1
        large = rng.random() < self.opts.large_file_rate
        files = []
        for n in range(count):
            pdf = item_type in (T.INVOICE, T.CARD_INVOICE) or rng.random() < 0.25
            kind = "pdf" if pdf else "png"
            size = rng.randint(3_000, 90_000) if pdf else rng.randint(6_000, 250_000)
            if large and n == 0:
                size = self.opts.large_file_size
            key = hashlib.sha256(f"{self.key}:file:{n}".encode()).hexdigest()[:16]
            file_id = make_file_id(kind, size, key)
            files.append(
                {"url": self.opts.file_url(file_id), "type": FILE_MIME[kind], "size": size}
            )
        return files

    def _supplier(self, merchant: Merchant) -> dict[str, Any]:
        supplier: dict[str, Any] = {
            "name": merchant.name,
            "categoryCode": merchant.category_code,
            "country": merchant.country,
        }
        if merchant.vendor_code:
            vendor = DEMO_CHART.vendor(merchant.vendor_code)
            supplier["code"] = vendor.code
            supplier["taxIdentifier"] = vendor.tax_registration_number
        return supplier

    def _people(self, item: dict[str, Any]) -> None:
        if self.type in _WITHOUT_USER:
            return
        person = self.rng.choice(DEMO_CHART.people)
        team = DEMO_CHART.team(person.team_code)
        item["user"] = {"id": person.id, "name": person.name, "code": person.code}
        item["team"] = {"id": team.id, "name": team.name, "code": team.code}

    def _additional(
        self, item_type: ExportItemType, merchant: Merchant, when: datetime
    ) -> dict[str, Any]:
        rng = self.stream("additional")
        info: dict[str, Any] = {"reconciliationId": f"BK-{when:%Y%m}-{rng.getrandbits(40):010X}"}
        if merchant.account_code == "6020" and item_type in _TAXED and rng.random() < 0.6:
            info["attendees"] = rng.sample([p.name for p in DEMO_CHART.people], k=rng.randint(1, 3))
        if item_type in (T.INVOICE, T.INVOICE_PAYMENT):
            vendor = DEMO_CHART.vendor(merchant.vendor_code or "")
            invoice_date = when - timedelta(days=rng.randint(0, 20))
            invoice: dict[str, Any] = {
                "invoiceNumber": f"INV-{rng.randint(10_000, 99_999)}",
                "invoiceDate": format_timestamp(invoice_date),
                "dueDate": format_timestamp(invoice_date + timedelta(days=30)),
                "status": "paid" if item_type is T.INVOICE_PAYMENT else "scheduled",
                "supplierBankAccount": {
                    "bankName": "Barclays" if vendor.country == "GB" else "Deutsche Bank",
                    "country": vendor.country,
                    "iban": f"{vendor.country}{rng.randint(10, 99)}BANK{rng.getrandbits(32):010d}",
                    "bic": "BARCGB22" if vendor.country == "GB" else "DEUTDEFF",
                },
            }
            if item_type is T.INVOICE_PAYMENT:
                invoice["paymentDate"] = format_timestamp(when)
            info["invoiceInformation"] = invoice
        return info

    def _bookkeeping(self, item: dict[str, Any], merchant: Merchant) -> None:
        if self.type in TRANSFER_TYPES and self.type is not T.INVOICE_PAYMENT:
            item["bookkeeping"] = {"method": "none"}
            return
        if self.opts.vendor_based_bookkeeping and self.type in _AP_TYPES and merchant.vendor_code:
            item["bookkeeping"] = {"method": "accounts_payable"}
            item["vendor"] = DEMO_CHART.vendor(merchant.vendor_code).to_wire()
            return
        item["bookkeeping"] = {"method": "journal"}


def _link_reimbursements(items: list[dict[str, Any]], seed_key: str) -> None:
    """Point reimbursements' ``reconciledEntries`` at out-of-pocket items of the same batch."""
    spent = [
        i["additionalInformation"]["reconciliationId"]
        for i in items
        if i["type"] == T.OUT_OF_POCKET.value
    ]
    rng = random.Random(f"{seed_key}:reconciled")
    for item in items:
        if item["type"] in (T.DIRECT_REIMBURSEMENT.value, T.EXTERNAL_REIMBURSEMENT.value):
            if spent:
                picks = rng.sample(spent, k=min(len(spent), rng.randint(1, 3)))
            else:
                picks = [f"BK-000000-{rng.getrandbits(40):010X}"]
            item["additionalInformation"]["reconciledEntries"] = picks


def generate_items(
    company_id: str,
    count: int,
    seed: int,
    *,
    wallet_currency: str = "GBP",
    types: Iterable[str | ExportItemType] | None = None,
    vendor_based_bookkeeping: bool = False,
    unknown_account_rate: float = 0.0,
    multi_currency_rate: float = 0.2,
    attachments: bool = True,
    file_url: Callable[[str], str] = _default_file_url,
    large_file_rate: float = 0.1,
    large_file_size: int = LARGE_FILE_SIZE,
) -> list[dict[str, Any]]:
    """``count`` wire-form ``ExportItemV3`` objects for ``company_id``, deterministic by seed.

    ``types`` limits the item types (all 17 by default). ``unknown_account_rate`` is the share
    of spend items with one line on :data:`UNKNOWN_ACCOUNT_CODE`; ``multi_currency_rate`` the
    share of eligible items paid in a foreign currency; ``large_file_rate`` the share of items
    with receipts whose first file is ``large_file_size`` bytes. ``file_url`` turns a file id
    (see :func:`render_file`) into the URL put in ``files[].url``.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if wallet_currency not in HOME_COUNTRY:
        raise ValueError(
            f"wallet currency {wallet_currency!r} is not one of {sorted(HOME_COUNTRY)}"
        )
    chosen_types = tuple(ExportItemType(t) for t in types) if types is not None else ALL_TYPES
    if not chosen_types:
        raise ValueError("types must not be empty")
    opts = _Options(
        company_id=company_id,
        wallet_currency=wallet_currency,
        vendor_based_bookkeeping=vendor_based_bookkeeping,
        unknown_account_rate=unknown_account_rate,
        multi_currency_rate=multi_currency_rate,
        attachments=attachments,
        large_file_rate=large_file_rate,
        large_file_size=large_file_size,
        file_url=file_url,
    )
    seed_key = f"{company_id}:{seed}"
    sequence = _type_sequence(random.Random(f"{seed_key}:types"), count, chosen_types)
    items = [_ItemBuilder(opts, seed_key, n, t).build() for n, t in enumerate(sequence)]
    _link_reimbursements(items, seed_key)
    return items
