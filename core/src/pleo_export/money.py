"""Minor units and currencies.

Pleo sends amounts as whole numbers of a currency's minor unit (6366 GBP means 63.66). The
number of decimals per currency follows ISO 4217; arithmetic stays in integers and only
formatting goes through :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 currencies whose minor unit is not 1/100.
_ZERO_DECIMALS = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
_THREE_DECIMALS = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])
_FOUR_DECIMALS = frozenset(["CLF", "UYW"])
# Codes in Pleo's MoneyModel enum that are not spendable currencies.
_NOT_CURRENCIES = frozenset(
    "UNDEFINED XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX XAD".split()  # noqa: SIM905
)


def is_known_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency that can be booked."""
    return len(code) == 3 and code.isalpha() and code.isupper() and code not in _NOT_CURRENCIES


def decimals(currency: str) -> int:
    if currency in _ZERO_DECIMALS:
        return 0
    if currency in _THREE_DECIMALS:
        return 3
    if currency in _FOUR_DECIMALS:
        return 4
    return 2


def to_decimal(minor: int, currency: str) -> Decimal:
    """``6366, "GBP"`` -> ``Decimal("63.66")``."""
    return Decimal(minor).scaleb(-decimals(currency))


def format_minor(minor: int, currency: str) -> str:
    """``-6366, "GBP"`` -> ``"-63.66"``; always the currency's full number of decimals."""
    places = decimals(currency)
    return f"{to_decimal(minor, currency):.{places}f}"
