"""Money for the generated items: minor units, exchange between the demo currencies and
tax by code type."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pleo_export.money import decimals
from pleo_export_sandbox.chart import TaxCode

# Value of one major unit in EUR; only ratios matter.
FX_IN_EUR = {
    "EUR": Decimal("1"),
    "GBP": Decimal("1.17"),
    "USD": Decimal("0.92"),
    "SEK": Decimal("0.088"),
    "DKK": Decimal("0.134"),
    "NOK": Decimal("0.086"),
    "JPY": Decimal("0.0062"),
}
HOME_COUNTRY = {"GBP": "GB", "EUR": "IE", "USD": "US", "SEK": "SE", "DKK": "DK", "NOK": "NO"}


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def convert(minor: int, source: str, target: str) -> int:
    """Convert minor units of ``source`` to minor units of ``target`` at the demo rates."""
    if source == target:
        return minor
    major = Decimal(minor).scaleb(-decimals(source))
    converted = major * FX_IN_EUR.get(source, Decimal(1)) / FX_IN_EUR.get(target, Decimal(1))
    return round_half_up(converted.scaleb(decimals(target)))


def to_minor(major: float, currency: str) -> int:
    return round_half_up(Decimal(str(round(major, 2))).scaleb(decimals(currency)))


def tax_for(gross: int, tax: TaxCode) -> tuple[int, int]:
    """``(tax amount, netAmount)`` in minor units for a line of ``gross`` (sign preserved)."""
    sign = -1 if gross < 0 else 1
    magnitude = abs(gross)
    if tax.type == "reverse":
        return sign * round_half_up(magnitude * tax.rate), gross
    amount = sign * round_half_up(magnitude * tax.rate / (1 + tax.rate))
    if tax.type == "exclusive":
        return amount, gross - amount
    return amount, gross


def money(currency: str, value: int) -> dict[str, Any]:
    return {"currency": currency, "value": value}


def dual(
    supplier_currency: str, supplier: int, wallet_currency: str, wallet: int
) -> dict[str, Any]:

    return {
        "inSupplierCurrency": money(supplier_currency, supplier),
        "inWalletCurrency": money(wallet_currency, wallet),
    }
