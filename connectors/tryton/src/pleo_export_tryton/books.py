"""What the connector reads from Tryton: the company, accounts, taxes, journals, periods and
parties, cached for one run (``open`` to ``close``).

Lookups that miss are asked again once (an accountant may have added the account while the
job runs); hits are cached.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pleo_export import VendorRef, normalise_tax_number, tax_number_forms, tax_numbers_match
from pleo_export_tryton.rpc import TrytonClient


@dataclass(frozen=True)
class Company:
    id: int
    name: str
    currency_id: int
    currency: str
    digits: int


@dataclass(frozen=True)
class Account:
    id: int
    code: str
    name: str
    kind: str | None
    """The account type's name; ``None`` for a view account (no moves allowed)."""
    closed: bool
    reconcile: bool
    party_required: bool
    expense: bool
    debt: bool
    payable: bool

    @property
    def postable(self) -> bool:
        return self.kind is not None and not self.closed

    @property
    def label(self) -> str:
        return f"{self.code} ({self.name})"


@dataclass(frozen=True)
class Tax:
    id: int
    name: str
    description: str
    invoice_account: int | None
    credit_note_account: int | None


@dataclass(frozen=True)
class Journal:
    id: int
    code: str
    name: str
    type: str


@dataclass(frozen=True)
class Period:
    id: int
    name: str
    start: dt.date
    end: dt.date
    state: str
    fiscal_year: str
    fiscal_year_state: str

    @property
    def open(self) -> bool:
        return self.state == "open" and self.fiscal_year_state == "open"


@dataclass(frozen=True)
class Party:
    id: int
    name: str
    code: str | None
    payable_account: int | None
    invoice_address: int | None
    matched_on: str
    """Which vendor identifier found the party: ``code``, ``external_id`` or ``tax_number``."""


def _like_pattern(number: str) -> str:
    """An ``ilike`` pattern that finds ``number`` whatever separators it is stored with:
    ``1234`` -> ``%1%2%3%4%`` (every hit is confirmed with ``tax_numbers_match``)."""
    escaped = [re.sub(r"([\\%_])", r"\\\1", c) for c in number]
    return "%" + "%".join(escaped) + "%"


_ACCOUNT_FIELDS = [
    "code",
    "name",
    "closed",
    "reconcile",
    "party_required",
    "type",
    "type.name",
    "type.expense",
    "type.debt",
    "type.payable",
]


def _account(row: dict[str, Any]) -> Account:
    kind = row.get("type.") or {}
    return Account(
        id=row["id"],
        code=str(row.get("code") or ""),
        name=str(row.get("name") or ""),
        kind=kind.get("name") if row.get("type") else None,
        closed=bool(row.get("closed")),
        reconcile=bool(row.get("reconcile")),
        party_required=bool(row.get("party_required")),
        expense=bool(kind.get("expense")),
        debt=bool(kind.get("debt")),
        payable=bool(kind.get("payable")),
    )


class Books:
    """Cached reads of one Tryton company's configuration."""

    def __init__(self, client: TrytonClient, company: Company) -> None:
        self.client = client
        self.company = company
        self._accounts: dict[str, Account] | None = None
        self._accounts_by_id: dict[int, Account] = {}
        self._taxes: dict[str, Tax] | None = None
        self._journals: dict[str, Journal] | None = None
        self._periods: list[Period] | None = None
        self._parties: dict[tuple[str, str], Party | None] = {}
        self._currencies: dict[str, int] | None = None
        self._default_payable: int | bool | None = False

    # --- accounts ---------------------------------------------------------------------------

    async def _load_accounts(self) -> dict[str, Account]:
        rows = await self.client.search_read(
            "account.account", [("company", "=", self.company.id)], _ACCOUNT_FIELDS
        )
        accounts: dict[str, Account] = {}
        for row in rows:
            account = _account(row)
            self._accounts_by_id[account.id] = account
            if account.code and (account.code not in accounts or account.postable):
                accounts[account.code] = account
        self._accounts = accounts
        return accounts

    async def account(self, code: str) -> Account | None:
        """The company's account with ``code`` (a postable one if several share the code)."""
        accounts = self._accounts if self._accounts is not None else await self._load_accounts()
        found = accounts.get(code)
        if found is None:
            rows = await self.client.search_read(
                "account.account",
                [("company", "=", self.company.id), ("code", "=", code)],
                _ACCOUNT_FIELDS,
            )
            candidates = [_account(row) for row in rows]
            candidates.sort(key=lambda a: not a.postable)
            if candidates:
                found = candidates[0]
                accounts[code] = found
                self._accounts_by_id[found.id] = found
        return found

    async def account_by_id(self, account_id: int) -> Account | None:
        if account_id not in self._accounts_by_id:
            rows = await self.client.search_read(
                "account.account", [("id", "=", account_id)], _ACCOUNT_FIELDS
            )
            if not rows:
                return None
            self._accounts_by_id[account_id] = _account(rows[0])
        return self._accounts_by_id[account_id]

    async def default_payable(self) -> int | None:
        """The accounting configuration's default payable account, if set."""
        if self._default_payable is False:
            rows = await self.client.model(
                "account.configuration", "read", [1], ["default_account_payable"]
            )
            value = rows[0].get("default_account_payable") if rows else None
            self._default_payable = int(value) if value else None
        return self._default_payable if isinstance(self._default_payable, int) else None

    async def exchange_accounts(self) -> tuple[int | None, int | None]:
        """Tryton's own currency exchange accounts: (credit = gains, debit = losses)."""
        rows = await self.client.model(
            "account.configuration",
            "read",
            [1],
            ["currency_exchange_credit_account", "currency_exchange_debit_account"],
            context={"company": self.company.id},
        )
        row = rows[0] if rows else {}
        credit = row.get("currency_exchange_credit_account")
        debit = row.get("currency_exchange_debit_account")
        return (int(credit) if credit else None, int(debit) if debit else None)

    # --- taxes, journals, currencies -------------------------------------------------------

    async def tax(self, name: str) -> Tax | None:
        if self._taxes is None or name not in self._taxes:
            rows = await self.client.search_read(
                "account.tax",
                [("company", "=", self.company.id), ("parent", "=", None)],
                ["name", "description", "invoice_account", "credit_note_account"],
            )
            self._taxes = {
                row["name"]: Tax(
                    id=row["id"],
                    name=row["name"],
                    description=row.get("description") or "",
                    invoice_account=row.get("invoice_account"),
                    credit_note_account=row.get("credit_note_account"),
                )
                for row in rows
            }
        return self._taxes.get(name)

    async def journal(self, code: str) -> Journal | None:
        if self._journals is None or code not in self._journals:
            rows = await self.client.search_read("account.journal", [], ["code", "name", "type"])
            self._journals = {
                row["code"]: Journal(row["id"], row["code"], row["name"], row["type"])
                for row in rows
                if row.get("code")
            }
        return self._journals.get(code)

    async def currency_id(self, code: str) -> int | None:
        if self._currencies is None:
            rows = await self.client.search_read("currency.currency", [], ["code"])
            self._currencies = {row["code"]: row["id"] for row in rows}
        return self._currencies.get(code)

    # --- periods ------------------------------------------------------------------------------

    async def periods(self, *, refresh: bool = False) -> list[Period]:
        if self._periods is None or refresh:
            rows = await self.client.search_read(
                "account.period",
                [("fiscalyear.company", "=", self.company.id), ("type", "=", "standard")],
                ["name", "start_date", "end_date", "state", "fiscalyear.name", "fiscalyear.state"],
                order=[("start_date", "ASC")],
            )
            self._periods = [
                Period(
                    id=row["id"],
                    name=row["name"],
                    start=row["start_date"],
                    end=row["end_date"],
                    state=row["state"],
                    fiscal_year=(row.get("fiscalyear.") or {}).get("name", ""),
                    fiscal_year_state=(row.get("fiscalyear.") or {}).get("state", "open"),
                )
                for row in rows
            ]
        return self._periods

    async def period_for(self, day: dt.date) -> Period | None:
        for refresh in (False, True):
            for period in await self.periods(refresh=refresh):
                if period.start <= day <= period.end:
                    return period
        return None

    async def first_open_period_after(self, day: dt.date) -> Period | None:
        for period in await self.periods():
            if period.start > day and period.open:
                return period
        return None

    async def open_fiscal_years(self) -> list[str]:
        rows = await self.client.search_read(
            "account.fiscalyear",
            [("company", "=", self.company.id), ("state", "=", "open")],
            ["name"],
        )
        return [row["name"] for row in rows]

    # --- parties ------------------------------------------------------------------------------

    async def vendor_party(self, vendor: VendorRef) -> Party | None:
        """The party for ``vendor``: by code, then external id, then tax number (Pleo's order).

        The code is matched against the party's code; the external id and the tax number
        against the codes of the party's identifiers (tax numbers by ``tax_numbers_match``).
        """
        for key, value in vendor.match_keys():
            cache_key = (key, value)
            if cache_key not in self._parties:
                self._parties[cache_key] = await self._find_party(key, value)
            party = self._parties[cache_key]
            if party is not None:
                return party
        return None

    async def tax_number_parties(self, value: str) -> list[int]:
        """Parties with an identifier that is ``value`` by ``tax_numbers_match`` (separators,
        case and the country prefix do not matter), lowest id first."""
        forms = tax_number_forms(value)
        if not forms:
            return []
        rows = await self.client.search_read(
            "party.identifier",
            [("code", "ilike", _like_pattern(forms[-1]))],
            ["code", "party"],
            order=[("party", "ASC"), ("id", "ASC")],
        )
        return sorted(
            {
                row["party"]
                for row in rows
                if row.get("code") and tax_numbers_match(value, row["code"])
            }
        )

    async def _find_party(self, key: str, value: str) -> Party | None:
        if key == "code":
            domain: list[Any] = [("code", "=", value)]
        elif key == "tax_number":
            ids = await self.tax_number_parties(value)
            if not ids:
                return None
            domain = [("id", "in", ids)]
        else:
            values = sorted({value, normalise_tax_number(value)})
            domain = [("identifiers.code", "in", values)]
        rows = await self.client.search_read(
            "party.party",
            domain,
            ["name", "code", "account_payable"],
            order=[("id", "ASC")],
            limit=2,
            context={"company": self.company.id},
        )
        if not rows:
            return None
        row = rows[0]
        addresses = await self.client.search_read(
            "party.address",
            [("party", "=", row["id"])],
            ["invoice"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        invoice_address = next((a["id"] for a in addresses if a.get("invoice")), None)
        if invoice_address is None and addresses:
            invoice_address = addresses[0]["id"]
        return Party(
            id=row["id"],
            name=row.get("name") or "",
            code=row.get("code"),
            payable_account=row.get("account_payable"),
            invoice_address=invoice_address,
            matched_on=key,
        )


def to_amount(minor: int, digits: int) -> Decimal:
    """Minor units -> a Decimal with the currency's digits: ``6366, 2`` -> ``63.66``."""
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))
