"""Write a starter ledger: options, the include of the output file and the chart of accounts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pleo_export import AccountingDimension, AccountingTaxCode, DimensionValue, TaxType
from pleo_export_beancount.render import quote
from pleo_export_beancount.resolve import ROLE_SETTINGS
from pleo_export_beancount.settings import (
    DEFAULT_OUTPUT_NAME,
    BeancountSettings,
    is_valid_account_name,
)


@dataclass(frozen=True)
class StarterAccount:
    """An account to open, tied to a Pleo account code with ``pleo-code`` metadata."""

    account: str
    pleo_code: str | None = None
    name: str | None = None
    """Pleo's name of the account, written as ``pleo-name`` metadata (informational)."""


@dataclass(frozen=True)
class StarterVendor:
    """A vendor's payable account; at least one identifier is needed to match it."""

    name: str
    code: str | None = None
    external_id: str | None = None
    tax_number: str | None = None
    account: str | None = None
    """Default: ``<accounts_payable_account>:<Name>`` derived from ``name``."""
    currency: str | None = None
    """The vendor's default currency (``vendor-currency``); default the operating currency."""
    country: str | None = None
    registration_number: str | None = None


@dataclass(frozen=True)
class StarterChart:
    """What :func:`write_starter_ledger` opens, as plain data."""

    currency: str
    """The operating (wallet) currency."""
    accounts: Sequence[StarterAccount | tuple[str, str]] = ()
    """Accounts with their Pleo codes; ``(account, pleo_code)`` tuples are accepted."""
    vendors: Sequence[StarterVendor] = ()
    tax_codes: Sequence[AccountingTaxCode] = ()
    """Written as ``custom "pleo-tax-code"`` directives."""
    dimensions: Sequence[AccountingDimension] = ()
    """Written as ``custom "pleo-dimension"`` and ``"pleo-dimension-value"`` directives."""
    open_date: date = date(2000, 1, 1)
    title: str = "Pleo export"
    extra_roles: dict[str, str] = field(default_factory=dict)
    """Overrides of the role accounts (setting name -> account) when no settings are given."""


def _component(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words)
    return text if text and (text[0].isupper() or text[0].isdigit()) else ""


def write_starter_ledger(
    directory: Path,
    chart: StarterChart,
    *,
    settings: BeancountSettings | None = None,
    filename: str = "main.beancount",
    overwrite: bool = False,
) -> Path:
    """Create ``directory/filename``, a ledger ready for the connector, and return its path.

    It sets ``option "operating_currency"``, includes the output file (created empty), opens
    the role accounts of ``settings`` (or the defaults), the chart's accounts with
    ``pleo-code`` metadata and one payable account per vendor with ``vendor-code``,
    ``vendor-external-id`` and ``vendor-tax-number`` metadata.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ledger = directory / filename
    if ledger.exists() and not overwrite:
        raise FileExistsError(f"{ledger} exists; pass overwrite=True to replace it")

    roles: dict[str, str] = {}
    for setting in ROLE_SETTINGS.values():
        if settings is not None:
            value = getattr(settings, setting)
        else:
            value = chart.extra_roles.get(setting, BeancountSettings.model_fields[setting].default)
        if value is not None:  # an optional role left unset (the exchange accounts)
            roles[setting] = str(value)
    output = settings.output_path if settings is not None else directory / DEFAULT_OUTPUT_NAME

    opens: dict[str, dict[str, str]] = {}
    for setting, account in roles.items():
        opens.setdefault(account, {})["pleo-role"] = setting.removesuffix("_account")
    for spec in chart.accounts:
        entry = spec if isinstance(spec, StarterAccount) else StarterAccount(*spec)
        meta = opens.setdefault(entry.account, {})
        if entry.pleo_code:
            meta["pleo-code"] = entry.pleo_code
        if entry.name:
            meta["pleo-name"] = entry.name
    payable_root = roles["accounts_payable_account"]
    for vendor in chart.vendors:
        if vendor.account is not None:
            account = vendor.account
        else:
            component = _component(vendor.name) or "Vendor"
            account = f"{payable_root}:{component}"
            suffix = 2
            while account in opens:
                account = f"{payable_root}:{component}-{suffix}"
                suffix += 1
        meta = opens.setdefault(account, {})
        meta["vendor-name"] = vendor.name
        for key, value in (
            ("vendor-code", vendor.code),
            ("vendor-external-id", vendor.external_id),
            ("vendor-tax-number", vendor.tax_number),
            ("vendor-registration-number", vendor.registration_number),
            ("vendor-currency", vendor.currency),
            ("vendor-country", vendor.country),
        ):
            if value:
                meta[key] = value
    for account in opens:
        if not is_valid_account_name(account):
            raise ValueError(f"{account!r} is not a beancount account name")

    try:
        include = output.absolute().relative_to(directory.absolute()).as_posix()
    except ValueError:
        include = output.absolute().as_posix()
    lines = [
        f'option "title" {quote(chart.title)}',
        f'option "operating_currency" "{chart.currency}"',
        "",
        "; Transactions exported from Pleo are appended to this file by pleo-export.",
        f"include {quote(include)}",
        "",
    ]
    for account in sorted(opens):
        lines.append(f"{chart.open_date.isoformat()} open {account}")
        for key, value in opens[account].items():
            lines.append(f"  {key}: {quote(value)}")
    lines += _master_data(chart)
    ledger.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.exists():
        output.touch()
    return ledger


def _master_data(chart: StarterChart) -> list[str]:
    """The ``custom`` directives of the chart's tax codes and dimensions."""
    day = chart.open_date.isoformat()
    lines: list[str] = []
    for tax in chart.tax_codes:
        lines += [
            f'{day} custom "pleo-tax-code" {quote(tax.code)}',
            f"  name: {quote(tax.name)}",
            f'  rate: "{tax.rate}"',
            f'  type: "{tax.type.value}"',
        ]
        if tax.ingoing_tax_account:
            lines.append(f"  ingoing-tax-account: {quote(tax.ingoing_tax_account)}")
        if tax.outgoing_tax_account:
            lines.append(f"  outgoing-tax-account: {quote(tax.outgoing_tax_account)}")
        if tax.archived:
            lines.append("  archived: TRUE")
    for dimension in chart.dimensions:
        lines += [
            f'{day} custom "pleo-dimension" {quote(dimension.code)}',
            f"  name: {quote(dimension.name)}",
        ]
        if dimension.archived:
            lines.append("  archived: TRUE")
        for value in dimension.values:
            lines += [
                f'{day} custom "pleo-dimension-value" {quote(dimension.code)} {quote(value.code)}',
                f"  name: {quote(value.name)}",
            ]
            if value.archived:
                lines.append("  archived: TRUE")
    return ([""] if lines else []) + lines


def starter_from_chart(chart: Any, currency: str) -> StarterChart:
    """The starter chart of the sandbox's :data:`pleo_export_sandbox.DEMO_CHART`: its expense,
    wallet and VAT accounts with ``pleo-code`` metadata, and each vendor with its identifiers."""
    roots = {"expense": "Expenses", "income": "Income", "asset": "Assets"}
    roots["liability"] = "Liabilities"
    accounts = []
    for account in chart.ledger_accounts():
        words = re.findall(r"[A-Za-z0-9]+", account.name)
        leaf = "".join(w[:1].upper() + w[1:] for w in words) or "Account"
        if not leaf[0].isalpha():
            leaf = "A" + leaf
        root = roots.get(account.category, "Expenses")
        accounts.append(
            StarterAccount(f"{root}:Pleo{account.code}:{leaf}", account.code, account.name)
        )
    vendors = [
        StarterVendor(
            name=v.name,
            code=v.code,
            external_id=v.external_id,
            tax_number=v.tax_registration_number,
            currency=v.default_currency,
            country=v.country,
            registration_number=v.registration_number,
        )
        for v in chart.vendors
    ]
    tax_codes = [
        AccountingTaxCode(
            code=t.code,
            name=t.name,
            rate=t.rate,
            type=TaxType(t.type),
            ingoing_tax_account=t.ingoing_tax_account,
            outgoing_tax_account=t.outgoing_tax_account,
        )
        for t in chart.tax_codes
    ]
    dimensions = [
        AccountingDimension(
            code=g.code,
            name=g.name,
            values=tuple(DimensionValue(code=v.code, name=v.name) for v in g.tags),
        )
        for g in chart.tag_groups
    ]
    return StarterChart(
        currency=currency,
        accounts=accounts,
        vendors=vendors,
        tax_codes=tax_codes,
        dimensions=dimensions,
    )
