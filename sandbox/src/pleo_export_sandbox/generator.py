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
import struct
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pleo_export.money import decimals
from pleo_export.pleo.models import ExportItemType, format_timestamp

T = ExportItemType

UNKNOWN_ACCOUNT_CODE = "6999"
"""Account code put on lines that must fail in the target with ``account_unknown``: the demo
ledger never opens it."""

LARGE_FILE_SIZE = 3_200_000
"""Size in bytes of the "large" attachments: just over 3 MB (3,145,728 bytes), the limit of
several accounting systems, so connectors can exercise ``receipt_file_size_limit_exceeded``."""

FILE_MIME = {"png": "image/png", "pdf": "application/pdf"}


def _uuid(key: str) -> str:
    """A stable UUID (version 4 layout) derived from ``key``."""
    digest = hashlib.sha256(key.encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))


# --- the demo chart ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartAccount:
    code: str
    name: str
    category: str
    """``expense``, ``income``, ``asset`` or ``liability``: how a ledger should open it."""

    @property
    def id(self) -> str:
        """Pleo's id of the account (``AccountV3.id``)."""
        return _uuid(f"account:{self.code}")


@dataclass(frozen=True)
class TaxCode:
    code: str
    name: str
    rate: Decimal
    type: str
    """``inclusive``, ``exclusive`` or ``reverse`` (``TaxTypeV3``)."""
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None

    @property
    def id(self) -> str:
        return _uuid(f"tax:{self.code}")


@dataclass(frozen=True)
class TagValue:
    code: str
    name: str
    group_code: str

    @property
    def id(self) -> str:
        return _uuid(f"tag:{self.group_code}:{self.code}")


@dataclass(frozen=True)
class TagGroup:
    code: str
    name: str
    tags: tuple[TagValue, ...]


@dataclass(frozen=True)
class ChartVendor:
    """A vendor as Pleo's Vendors API knows it (``VendorV3``)."""

    name: str
    code: str
    external_id: str
    tax_registration_number: str
    country: str
    default_currency: str
    registration_number: str | None = None

    @property
    def id(self) -> str:
        return _uuid(f"vendor:{self.code}")

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "externalId": self.external_id,
            "country": self.country,
            "defaultCurrency": self.default_currency,
            "taxRegistrationNumber": self.tax_registration_number,
        }
        if self.registration_number:
            wire["registrationNumber"] = self.registration_number
        return wire


@dataclass(frozen=True)
class Merchant:
    """A card merchant or invoicing supplier (``SupplierV3``)."""

    name: str
    category_code: str
    """Merchant category code (MCC)."""
    country: str
    currency: str
    account_code: str
    vendor_code: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    name: str
    code: str
    team_code: str

    @property
    def id(self) -> str:
        return _uuid(f"user:{self.code}")


@dataclass(frozen=True)
class Team:
    code: str
    name: str

    @property
    def id(self) -> str:
        return _uuid(f"team:{self.code}")


@dataclass(frozen=True)
class Chart:
    """Everything the generator draws from; the beancount demo ledger opens these accounts."""

    expense_accounts: tuple[ChartAccount, ...]
    wallet_account: ChartAccount
    """Pleo's ``contraAccount``: the ledger account mirroring the Pleo wallet."""
    tax_accounts: tuple[ChartAccount, ...]
    unknown_account: ChartAccount
    """Carries :data:`UNKNOWN_ACCOUNT_CODE`; deliberately not in :meth:`ledger_accounts`."""
    tax_codes: tuple[TaxCode, ...]
    tag_groups: tuple[TagGroup, ...]
    vendors: tuple[ChartVendor, ...]
    merchants: tuple[Merchant, ...]
    invoice_suppliers: tuple[Merchant, ...]
    teams: tuple[Team, ...]
    people: tuple[Person, ...]
    unknown_account_code: str = UNKNOWN_ACCOUNT_CODE

    def ledger_accounts(self) -> tuple[ChartAccount, ...]:
        """Every account a target ledger must open for generated items to book."""
        return (*self.expense_accounts, self.wallet_account, *self.tax_accounts)

    def account(self, code: str) -> ChartAccount:
        for account in (*self.ledger_accounts(), self.unknown_account):
            if account.code == code:
                return account
        raise KeyError(code)

    def tax_code(self, code: str) -> TaxCode:
        for tax in self.tax_codes:
            if tax.code == code:
                return tax
        raise KeyError(code)

    def vendor(self, code: str) -> ChartVendor:
        for vendor in self.vendors:
            if vendor.code == code:
                return vendor
        raise KeyError(code)

    def team(self, code: str) -> Team:
        for team in self.teams:
            if team.code == code:
                return team
        raise KeyError(code)

    def wallet_account_for(self, currency: str) -> ChartAccount:
        """The wallet account as Pleo names it for a wallet in ``currency``."""
        if currency == "GBP":
            return self.wallet_account
        return ChartAccount(self.wallet_account.code, f"Pleo {currency} Account", "asset")


def _tags(group: str, *pairs: tuple[str, str]) -> tuple[TagValue, ...]:
    return tuple(TagValue(code, name, group) for code, name in pairs)


_M = Merchant
DEMO_CHART = Chart(
    expense_accounts=(
        ChartAccount("6000", "Travel", "expense"),
        ChartAccount("6010", "Accommodation", "expense"),
        ChartAccount("6020", "Meals and Entertainment", "expense"),
        ChartAccount("6100", "Office Supplies", "expense"),
        ChartAccount("6200", "Software and Subscriptions", "expense"),
        ChartAccount("6300", "Advertising and Marketing", "expense"),
        ChartAccount("6400", "Telephone and Internet", "expense"),
        ChartAccount("6500", "Training", "expense"),
        ChartAccount("6600", "Equipment", "expense"),
        ChartAccount("6700", "Professional Fees", "expense"),
        ChartAccount("7310", "Per Diem Allowances", "expense"),
        ChartAccount("7320", "Mileage Allowances", "expense"),
        ChartAccount("7900", "Bank Charges and Interest", "expense"),
        ChartAccount("4900", "Cashback Income", "income"),
        ChartAccount("1210", "Petty Cash", "asset"),
        ChartAccount("1560", "Employee Receivables", "asset"),
    ),
    wallet_account=ChartAccount("1990", "Pleo GBP Account", "asset"),
    tax_accounts=(
        ChartAccount("2201", "VAT Input", "asset"),
        ChartAccount("2202", "VAT Output Reverse Charge", "liability"),
    ),
    unknown_account=ChartAccount(UNKNOWN_ACCOUNT_CODE, "Unmapped Category", "expense"),
    tax_codes=(
        TaxCode("S20", "Standard rate 20%", Decimal("0.2"), "inclusive", "2201"),
        TaxCode("R5", "Reduced rate 5%", Decimal("0.05"), "inclusive", "2201"),
        TaxCode("Z0", "Zero rate", Decimal("0"), "inclusive"),
        TaxCode("EX20", "Standard rate 20% on net", Decimal("0.2"), "exclusive", "2201"),
        TaxCode("RC20", "Reverse charge 20%", Decimal("0.2"), "reverse", "2201", "2202"),
    ),
    tag_groups=(
        TagGroup(
            "DEPT",
            "Department",
            _tags(
                "DEPT",
                ("ENG", "Engineering"),
                ("SAL", "Sales"),
                ("OPS", "Operations"),
                ("FIN", "Finance"),
            ),
        ),
        TagGroup(
            "PROJ",
            "Project",
            _tags("PROJ", ("ALPHA", "Project Alpha"), ("BRAVO", "Project Bravo")),
        ),
    ),
    vendors=(
        ChartVendor("Amazon EU S.a.r.l.", "V1001", "AS-1001", "LU20260743", "LU", "GBP"),
        ChartVendor("Google Ireland Ltd", "V1002", "AS-1002", "IE6388047V", "IE", "GBP"),
        ChartVendor("Slack Technologies LLC", "V1003", "AS-1003", "EU372008134", "US", "USD"),
        ChartVendor("BT Group plc", "V1004", "AS-1004", "GB245719348", "GB", "GBP"),
        ChartVendor(
            "Acme Office Cleaning Ltd", "V2001", "AS-2001", "GB123456782", "GB", "GBP", "0871234"
        ),
        ChartVendor(
            "Brightside Marketing Ltd", "V2002", "AS-2002", "GB987654321", "GB", "GBP", "1102938"
        ),
        ChartVendor("Cloudhost GmbH", "V2003", "AS-2003", "DE811907980", "DE", "EUR", "HRB 1234"),
        ChartVendor("Northwind Legal LLP", "V2004", "AS-2004", "GB555123456", "GB", "GBP"),
    ),
    merchants=(
        _M("AMZN Mktp UK", "5942", "GB", "GBP", "6100", "V1001", ("Printer ink", "Notebooks")),
        _M("GOOGLE*ADS8693645259", "7311", "IE", "EUR", "6300", "V1002", ("Search ads",)),
        _M("Slack Technologies", "5734", "US", "USD", "6200", "V1003", ("Slack Pro seats",)),
        _M("BT Business", "4814", "GB", "GBP", "6400", "V1004", ("Broadband",)),
        _M("Pret A Manger", "5814", "GB", "GBP", "6020", None, ("Team lunch", "Client coffee")),
        _M("British Airways", "3005", "GB", "GBP", "6000", None, ("Flight to Edinburgh",)),
        _M("Premier Inn", "7011", "GB", "GBP", "6010", None, ("Hotel, client visit",)),
        _M("Uber *Trip", "4121", "NL", "EUR", "6000", None, ("Taxi to airport",)),
        _M("Atlassian", "5734", "AU", "USD", "6200", None, ("Jira licences",)),
        _M("Apple Store", "5732", "GB", "GBP", "6600", None, ("USB-C adapters",)),
        _M("Coursera", "8299", "US", "USD", "6500", None, ("Online course",)),
        _M("Ryman Stationery", "5111", "GB", "GBP", "6100", None, ("Stationery",)),
        _M("Deutsche Bahn", "4112", "DE", "EUR", "6000", None, ("Train Berlin-Hamburg",)),
        _M("Hotel Adlon Berlin", "7011", "DE", "EUR", "6010", None, ("Conference hotel",)),
        _M("Cafe de Flore", "5812", "FR", "EUR", "6020", None, ("Dinner with partner",)),
        _M("Systembolaget", "5921", "SE", "SEK", "6020", None, ("Office party",)),
        _M("Tokyo Hands", "5999", "JP", "JPY", "6100", None, ("Supplies, Tokyo office",)),
    ),
    invoice_suppliers=(
        _M("Acme Office Cleaning Ltd", "7349", "GB", "GBP", "6700", "V2001", ("Cleaning",)),
        _M("Brightside Marketing Ltd", "7311", "GB", "GBP", "6300", "V2002", ("Campaign",)),
        _M("Cloudhost GmbH", "7372", "DE", "EUR", "6200", "V2003", ("Hosting",)),
        _M("Northwind Legal LLP", "8111", "GB", "GBP", "6700", "V2004", ("Contract review",)),
    ),
    teams=(
        Team("T-ENG", "Engineering"),
        Team("T-SAL", "Sales"),
        Team("T-OPS", "Operations"),
    ),
    people=(
        Person("Luke Richardson", "E001", "T-ENG"),
        Person("Amira Haddad", "E002", "T-ENG"),
        Person("Sofia Lindqvist", "E003", "T-SAL"),
        Person("Tom Okafor", "E004", "T-SAL"),
        Person("Grace Chen", "E005", "T-OPS"),
    ),
)

# --- money helpers ----------------------------------------------------------------------------

# Value of one major unit in EUR; only ratios matter.
_FX_IN_EUR = {
    "EUR": Decimal("1"),
    "GBP": Decimal("1.17"),
    "USD": Decimal("0.92"),
    "SEK": Decimal("0.088"),
    "DKK": Decimal("0.134"),
    "NOK": Decimal("0.086"),
    "JPY": Decimal("0.0062"),
}
_HOME_COUNTRY = {"GBP": "GB", "EUR": "IE", "USD": "US", "SEK": "SE", "DKK": "DK", "NOK": "NO"}


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _convert(minor: int, source: str, target: str) -> int:
    """Convert minor units of ``source`` to minor units of ``target`` at the demo rates."""
    if source == target:
        return minor
    major = Decimal(minor).scaleb(-decimals(source))
    converted = major * _FX_IN_EUR.get(source, Decimal(1)) / _FX_IN_EUR.get(target, Decimal(1))
    return _round(converted.scaleb(decimals(target)))


def _to_minor(major: float, currency: str) -> int:
    return _round(Decimal(str(round(major, 2))).scaleb(decimals(currency)))


def tax_for(gross: int, tax: TaxCode) -> tuple[int, int]:
    """``(tax amount, netAmount)`` in minor units for a line of ``gross`` (sign preserved)."""
    sign = -1 if gross < 0 else 1
    magnitude = abs(gross)
    if tax.type == "reverse":
        return sign * _round(magnitude * tax.rate), gross
    amount = sign * _round(magnitude * tax.rate / (1 + tax.rate))
    if tax.type == "exclusive":
        return amount, gross - amount
    return amount, gross


def _money(currency: str, value: int) -> dict[str, Any]:
    return {"currency": currency, "value": value}


def _dual(
    supplier_currency: str, supplier: int, wallet_currency: str, wallet: int
) -> dict[str, Any]:
    return {
        "inSupplierCurrency": _money(supplier_currency, supplier),
        "inWalletCurrency": _money(wallet_currency, wallet),
    }


# --- attachments ------------------------------------------------------------------------------


def make_file_id(kind: str, size: int, key: str) -> str:
    """The id of a generated attachment: everything needed to render it again."""
    return f"{kind}-{size}-{key}"


def parse_file_id(file_id: str) -> tuple[str, int, str]:
    """``(kind, size, key)`` of a file id; ``ValueError`` if it is not one."""
    kind, size, key = file_id.split("-", 2)
    if kind not in FILE_MIME or not size.isdigit() or not key.isalnum():
        raise ValueError(f"not a sandbox file id: {file_id!r}")
    return kind, int(size), key


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _filler(key: str, size: int) -> bytes:
    """``size`` printable bytes derived from ``key``."""
    unit = hashlib.sha256(key.encode()).hexdigest().encode()
    return (unit * (size // len(unit) + 1))[:size]


def _png(key: str, size: int) -> bytes:
    """A 96x128 greyscale "receipt" (text-like bars), padded with a private chunk to ``size``."""
    rng = random.Random(key)
    width, height = 96, 128
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        text_row = y % 8 in (2, 3, 4) and 8 <= y < height - 8
        bar = rng.randint(20, width - 12) if text_row else 0
        rows.extend(40 if text_row and 6 <= x < bar else 250 for x in range(width))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    head += _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
    tail = _png_chunk(b"IEND", b"")
    padding = size - len(head) - len(tail) - 12
    if padding < 0:
        raise ValueError(f"a PNG needs at least {len(head) + len(tail) + 12} bytes, not {size}")
    # "paDd": ancillary, private, safe-to-copy; decoders skip it.
    return head + _png_chunk(b"paDd", _filler(key, padding)) + tail


def _pdf(key: str, size: int) -> bytes:
    """A one-page PDF receipt with a correct xref table, padded with comments to ``size``."""
    text = f"Receipt {key[:8].upper()} - generated by the pleo-export sandbox"
    stream = f"BT /F1 12 Tf 40 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]

    def build(padding: int) -> bytes:
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        if padding:
            filler = _filler(key, padding)
            lines = [b"%" + filler[i : i + 77] + b"\n" for i in range(0, padding, 79)]
            block = b"".join(lines)[:padding]
            out += block[:-1] + b"\n" if len(block) > 1 else b"\n"
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
        out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
        out += f"startxref\n{xref}\n%%EOF\n".encode()
        return bytes(out)

    padding = max(0, size - len(build(0)))
    for _ in range(3):  # the startxref number may grow by a digit
        document = build(padding)
        if len(document) == size:
            return document
        padding += size - len(document)
        if padding < 0:
            break
    raise ValueError(f"cannot build a PDF of exactly {size} bytes")


def render_file(file_id: str) -> tuple[bytes, str]:
    """The bytes and MIME type of a generated attachment; ``len(bytes)`` is the id's size."""
    kind, size, key = parse_file_id(file_id)
    content = _png(key, size) if kind == "png" else _pdf(key, size)
    return content, FILE_MIME[kind]


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
        "lineAmount": _dual(supplier_currency, line.supplier, wallet_currency, line.wallet),
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
            "amount": _dual(supplier_currency, tax_supplier, wallet_currency, tax_wallet),
        }
        if line.tax.ingoing_tax_account:
            tax["ingoingTaxAccount"] = line.tax.ingoing_tax_account
        if line.tax.outgoing_tax_account:
            tax["outgoingTaxAccount"] = line.tax.outgoing_tax_account
        wire["tax"] = tax
    wire["netAmount"] = _dual(supplier_currency, net_supplier, wallet_currency, net_wallet)
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
        self.id = _uuid(f"entry:{self.key}")
        self.home = _HOME_COUNTRY.get(opts.wallet_currency, "GB")

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
        wallet_total = _to_minor(rng.uniform(low, high), wallet_currency)
        if item_type is T.ATM_WITHDRAWAL:
            wallet_total = max(1, round(wallet_total, -3))
        supplier_total = _convert(wallet_total, wallet_currency, supplier_currency)
        wallet_total = _convert(supplier_total, supplier_currency, wallet_currency)

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
        item["amount"] = _dual(
            supplier_currency, sign * supplier_total, wallet_currency, sign * wallet_total
        )
        item["accountingEntryLines"] = [
            _line_wire(
                _Line(sign * ln.supplier, sign * ln.wallet, ln.account, ln.tax, ln.tags),
                supplier_currency,
                wallet_currency,
                _uuid(f"line:{self.key}:{n}"),
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
        wallet_parts = [_convert(p, supplier_currency, wallet_currency) for p in supplier_parts]
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
    if wallet_currency not in _HOME_COUNTRY:
        raise ValueError(
            f"wallet currency {wallet_currency!r} is not one of {sorted(_HOME_COUNTRY)}"
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
