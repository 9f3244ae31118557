"""Tax registration numbers: one way for every connector to compare them.

Pleo sends a vendor's tax number as the user typed it (``vendor.taxRegistrationNumber`` or
``supplier.taxIdentifier``), and accounting systems store them their own way: ``DK 12 34 56 78``,
``dk12345678``, ``12.34.56.78``, ``GB 123/4567/89``. Two numbers match when they are equal
after :func:`normalise_tax_number`, or when one carries an ISO 3166 country prefix
(``DK12345678``) and the other is the same number without it (``12345678``). Two different
country prefixes never match (``DK12345678`` is not ``SE12345678``).
"""

from __future__ import annotations

import re

__all__ = ["normalise_tax_number", "tax_number_forms", "tax_numbers_match"]

_SEPARATORS = re.compile(r"[\s.\-/\u00a0\u2007\u202f\u200b\ufeff]+")
"""Whitespace (Unicode, so no-break spaces too), dots, dashes and slashes."""

# ISO 3166-1 alpha-2 codes, plus EL (Greece in EU VAT numbers) and XI (Northern Ireland).
_COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW EL XI
    """.split()  # noqa: SIM905
)
_ALIASES = {"EL": "GR"}  # the same country under two prefixes


def normalise_tax_number(value: str) -> str:
    """``value`` upper case, without whitespace (no-break spaces included), ``.``, ``-`` and
    ``/``: ``"dk 12.34-56\\u00a078"`` -> ``"DK12345678"``."""
    return _SEPARATORS.sub("", value).upper()


def _split(normalised: str) -> tuple[str | None, str]:
    """``(country prefix, rest)``; the prefix is ``None`` when the number has none."""
    prefix, rest = normalised[:2], normalised[2:]
    if prefix in _COUNTRIES and rest and any(c.isdigit() for c in rest):
        return _ALIASES.get(prefix, prefix), rest
    return None, normalised


def tax_number_forms(value: str) -> tuple[str, ...]:
    """The spellings under which ``value`` may be stored: normalised, then without its
    country prefix if it has one (``"DK 1234"`` -> ``("DK1234", "1234")``). Empty for a
    value with nothing but separators. Use it to search a system that can only compare exactly;
    confirm each hit with :func:`tax_numbers_match`."""
    normalised = normalise_tax_number(value)
    if not normalised:
        return ()
    prefix, rest = _split(normalised)
    return (normalised,) if prefix is None else (normalised, rest)


def tax_numbers_match(a: str, b: str) -> bool:
    """Whether two tax numbers name the same registration (see the module docs)."""
    na, nb = normalise_tax_number(a), normalise_tax_number(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    (pa, ra), (pb, rb) = _split(na), _split(nb)
    if pa is not None and pb is not None:
        return pa == pb and ra == rb
    return ra == rb
