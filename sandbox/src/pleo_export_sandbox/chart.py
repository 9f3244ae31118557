"""The demo chart: the accounts, tax codes, tag groups, vendors, merchants and people the
sandbox's generated items draw from (:data:`DEMO_CHART`)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

UNKNOWN_ACCOUNT_CODE = "6999"
"""Account code put on lines that must fail in the target with ``account_unknown``: the demo
ledger never opens it."""


def stable_uuid(key: str) -> str:
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
        return stable_uuid(f"account:{self.code}")


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
        return stable_uuid(f"tax:{self.code}")


@dataclass(frozen=True)
class TagValue:
    code: str
    name: str
    group_code: str

    @property
    def id(self) -> str:
        return stable_uuid(f"tag:{self.group_code}:{self.code}")


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
        return stable_uuid(f"vendor:{self.code}")

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
        return stable_uuid(f"user:{self.code}")


@dataclass(frozen=True)
class Team:
    code: str
    name: str

    @property
    def id(self) -> str:
        return stable_uuid(f"team:{self.code}")


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
