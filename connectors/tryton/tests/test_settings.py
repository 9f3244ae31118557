"""Settings: validation, environment variables, secrets, and the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pleo_export import ExportItemType
from pleo_export.config import ConfigError, connector_settings
from pleo_export.host import PluginHost
from pleo_export_tryton import TrytonConnector, TrytonSettings

REQUIRED: dict[str, Any] = {
    "url": "https://erp.example.com/",
    "database": "books",
    "password": "pw-from-file",
    "out_of_pocket_account": "2250",
    "contra_account": "1299",
    "rounding_account": "7990",
}


def _load(values: dict[str, Any]) -> TrytonSettings:
    settings = connector_settings(TrytonConnector.manifest, values, Path("."))
    assert isinstance(settings, TrytonSettings)
    return settings


def test_defaults_and_normalised_url() -> None:
    settings = _load(dict(REQUIRED))
    assert settings.url == "https://erp.example.com"
    assert (settings.journal, settings.invoice_journal, settings.payment_journal) == (
        "MISC",
        "EXP",
        "CASH",
    )
    assert settings.state == "posted"
    assert settings.closed_period == "fail"
    assert settings.confirm_warnings is False
    assert "pw-from-file" not in repr(settings)


def test_password_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLEO_EXPORT_TRYTON_PASSWORD", "pw-from-env")
    settings = _load(dict(REQUIRED))
    assert settings.password.get_secret_value() == "pw-from-env"


def test_counter_accounts_per_item_type() -> None:
    settings = _load({**REQUIRED, "counter_accounts": {"mileage": {"out_of_pocket": "2251"}}})
    assert settings.counter_accounts == {ExportItemType.MILEAGE: {"out_of_pocket": "2251"}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "erp.example.com"}, "url"),
        ({"counter_accounts": {"mileage": {"expense": "6000"}}}, "counter_accounts"),
        ({"counter_accounts": {"gift": {"wallet": "1990"}}}, "counter_accounts"),
        ({"state": "final"}, "state"),
        ({"closed_period": "skip"}, "closed_period"),
        ({"jurnal": "MISC"}, "jurnal"),
        ({"account_map": {"6000": ""}}, "account_map"),
    ],
)
def test_invalid_settings_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load({**REQUIRED, **change})
    assert field in str(caught.value)
    assert "pw-from-file" not in str(caught.value)


def test_missing_required_settings_are_named() -> None:
    values = {k: v for k, v in REQUIRED.items() if k not in ("password", "contra_account")}
    with pytest.raises(ConfigError) as caught:
        _load(values)
    assert "password" in str(caught.value)
    assert "contra_account" in str(caught.value)


def test_the_entry_point_loads_the_connector() -> None:
    loaded = PluginHost(load_entry_points=False).load_connector("tryton")
    assert loaded is TrytonConnector
    assert loaded.manifest.id == "tryton"
    assert {c.value for c in loaded.manifest.capabilities} >= {
        "journal",
        "accounts_payable",
        "lookup_by_reference",
        "attachments",
        "batch_posting",
    }
