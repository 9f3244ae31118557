"""One rule for comparing tax registration numbers, used by every connector."""

from __future__ import annotations

import pytest

import pleo_export
from pleo_export import normalise_tax_number, tax_number_forms, tax_numbers_match


def test_the_helpers_are_public_api() -> None:
    assert {"normalise_tax_number", "tax_numbers_match", "tax_number_forms"} <= set(
        pleo_export.__all__
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dk 12.34-56 78", "DK12345678"),
        ("DK\u00a012\u202f34\u200756/78", "DK12345678"),
        ("\tgb 123/4567/89\n", "GB123456789"),
        ("nl123456789b01", "NL123456789B01"),
        (" - / . ", ""),
    ],
)
def test_normalise_ignores_case_whitespace_dots_dashes_and_slashes(
    value: str, expected: str
) -> None:
    assert normalise_tax_number(value) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DK12345678", "dk 12 34 56 78"),
        ("12345678", "DK12345678"),
        ("DK-12.34.56.78", "12 34 56 78"),
        ("GB 123/4567/89", "123456789"),
        ("EL123456789", "GR123456789"),
        ("EL123456789", "123456789"),
        ("ATU12345678", "U12345678"),
        ("12345678", "12345678"),
    ],
)
def test_numbers_that_match(a: str, b: str) -> None:
    assert tax_numbers_match(a, b)
    assert tax_numbers_match(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DK12345678", "SE12345678"),
        ("DK12345678", "DK12345679"),
        ("12345678", "123456789"),
        ("", ""),
        ("DK12345678", ""),
        ("--", "--"),
    ],
)
def test_numbers_that_do_not_match(a: str, b: str) -> None:
    assert not tax_numbers_match(a, b)
    assert not tax_numbers_match(b, a)


def test_forms_are_the_number_with_and_without_its_country_prefix() -> None:
    assert tax_number_forms("dk 12 34") == ("DK1234", "1234")
    assert tax_number_forms("1234") == ("1234",)
    assert tax_number_forms("ABC") == ("ABC",)  # no digits: no prefix to take off
    assert tax_number_forms(" . ") == ()
