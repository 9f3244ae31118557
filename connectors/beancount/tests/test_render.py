"""The pure rendering helpers and the starter ledger."""

from __future__ import annotations

import random

import pytest

from pleo_export_beancount import StarterChart, StarterVendor, write_starter_ledger
from pleo_export_beancount.connector import extension_for
from pleo_export_beancount.render import clean_text, link_for, metadata_key, quote, safe_token


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("crlf\r\nend", '"crlf\\nend"'),
        ("tab\there", '"tab\\there"'),
        ("nul\x00bell\x07", '"nul bell "'),
        ("sep\u2028par\u2029nel\x85", '"sep par nel "'),
        ("\u202eevil\u202c", '"evil"'),
        ("lone \ud83d", '"lone \ufffd"'),
        ("Zoë 中文 \U0001f4a9", '"Zoë 中文 \U0001f4a9"'),
    ],
)
def test_quote(raw, expected):
    assert quote(raw) == expected
    assert "\n" not in quote(raw)


def test_quote_round_trips_through_the_beancount_parser():
    from beancount.parser import parser

    rng = random.Random(20240305)
    alphabet = (
        [chr(c) for c in range(0x80)]
        + list("\u2028\u2029\x85\u202e\u2066\ufeffÆØÅ中文\U0001f4a9")
        + ["\ud800", "\udfff"]
    )
    for _ in range(300):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        text = f"2024-01-01 * {quote(raw)}\n  Assets:A  1 DKK\n  Assets:B\n"
        entries, errors, _ = parser.parse_string(text)
        assert errors == [], (raw, errors)
        assert entries[0].narration == clean_text(raw), raw


def test_metadata_key_and_tokens():
    assert metadata_key("dimension-", "DEPT") == "dimension-DEPT"
    assert metadata_key("dimension-", "cost centre/ø") == "dimension-cost_centre__"
    assert safe_token("a b\n;c") == "a_b__c"
    assert safe_token("") == "_"
    assert link_for("6d32ede4-8ede-48da") == "pleo-6d32ede4-8ede-48da"


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("application/pdf", "pdf"),
        ("image/jpeg", "jpg"),
        ("IMAGE/PNG; q=1", "png"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/x-../../etc", "bin"),
        ("", "bin"),
    ],
)
def test_extension_for(mime, ext):
    assert extension_for(mime) == ext


def test_starter_ledger(tmp_path):
    from beancount import loader

    chart = StarterChart(
        currency="EUR",
        accounts=[("Expenses:Office", "6800"), ("Assets:Pleo:Wallet", "1990")],
        vendors=[
            StarterVendor("ACME GmbH", code="1"),
            StarterVendor("acme gmbh", code="2"),
            StarterVendor("ACME GmbH", code="3"),
            StarterVendor("!!!", tax_number="DE1"),
        ],
    )
    ledger = write_starter_ledger(tmp_path, chart)
    entries, errors, options = loader.load_file(str(ledger))
    assert errors == []
    assert options["operating_currency"] == ["EUR"]
    assert (tmp_path / "pleo-export.beancount").exists()
    opens = {e.account: e.meta for e in entries if type(e).__name__ == "Open"}
    assert opens["Assets:Pleo:Wallet"]["pleo-code"] == "1990"  # role and chart merged
    assert opens["Liabilities:AccountsPayable:ACMEGmbH"]["vendor-code"] == "1"
    assert opens["Liabilities:AccountsPayable:AcmeGmbh"]["vendor-code"] == "2"
    assert opens["Liabilities:AccountsPayable:ACMEGmbH-2"]["vendor-code"] == "3"
    assert opens["Liabilities:AccountsPayable:Vendor"]["vendor-tax-number"] == "DE1"
    for role in ("Liabilities:Pleo:OutOfPocket", "Assets:Bank:Contra", "Expenses:Rounding"):
        assert role in opens
    with pytest.raises(FileExistsError):
        write_starter_ledger(tmp_path, chart)
    assert write_starter_ledger(tmp_path, chart, overwrite=True) == ledger
