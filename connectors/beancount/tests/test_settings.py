"""Settings: defaults, validation errors that name the field, environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pleo_export import describe_settings_error
from pleo_export_beancount import BeancountConnector, BeancountSettings


def test_defaults_resolve_beside_the_ledger(tmp_path):
    settings = BeancountSettings(ledger=tmp_path / "books" / "main.beancount")
    assert settings.output_path == tmp_path / "books" / "pleo-export.beancount"
    assert settings.documents_path == tmp_path / "books" / "documents"
    assert settings.beancount_flag == "*"
    assert settings.unknown_vendor == "fail"


def test_unknown_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValidationError) as caught:
        BeancountSettings(ledger=tmp_path / "main.beancount", walet_account="Assets:X")
    message = describe_settings_error("beancount", caught.value.errors())
    assert "walet_account" in message
    assert "Assets:X" not in message  # values are never echoed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wallet_account", "assets:pleo"),
        ("rounding_account", "Expenses"),
        ("vat_input_account", "Assets:VAT Input"),
        ("flag", "maybe"),
        ("unknown_vendor", "ignore"),
        ("closed_period", "next_month"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, field, value):
    with pytest.raises(ValidationError) as caught:
        BeancountSettings(ledger=tmp_path / "main.beancount", **{field: value})
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_account_map_values_are_checked(tmp_path):
    with pytest.raises(ValidationError) as caught:
        BeancountSettings(ledger=tmp_path / "m.beancount", account_map={"6800": "office"})
    assert "account_map['6800']" in str(caught.value)


def test_output_must_not_be_the_ledger(tmp_path):
    with pytest.raises(ValidationError, match="output is the ledger itself"):
        BeancountSettings(ledger=tmp_path / "m.beancount", output=tmp_path / "m.beancount")


def test_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("PLEO_EXPORT_BEANCOUNT_LEDGER", str(tmp_path / "env.beancount"))
    monkeypatch.setenv("PLEO_EXPORT_BEANCOUNT_FLAG", "draft")
    monkeypatch.setenv("PLEO_EXPORT_BEANCOUNT_ACCOUNT_MAP", '{"6800": "Expenses:Office"}')
    settings = BeancountSettings()
    assert settings.ledger == Path(tmp_path / "env.beancount")
    assert settings.beancount_flag == "!"
    assert settings.account_map == {"6800": "Expenses:Office"}


def test_non_ascii_account_names_are_accepted(tmp_path):
    settings = BeancountSettings(ledger=tmp_path / "m.beancount", wallet_account="Assets:Kasse-Ø")
    assert settings.wallet_account == "Assets:Kasse-Ø"


def test_manifest():
    manifest = BeancountConnector.manifest
    assert manifest.id == "beancount"
    assert manifest.settings_model is BeancountSettings
    assert manifest.limits.max_attachment_bytes == 30 * 1024 * 1024
    assert {c.value for c in manifest.capabilities} == {
        "journal",
        "accounts_payable",
        "attachments",
        "lookup_by_reference",
        "read_vendors",
        "read_tax_codes",
        "read_dimensions",
        "create_vendors",
        "read_booked",
    }


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pleo_export.connectors") if e.name == "beancount"]
    assert ep.load() is BeancountConnector


def test_importing_the_package_does_not_import_beancount():
    import subprocess
    import sys

    code = "import sys, pleo_export_beancount; print('beancount' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
