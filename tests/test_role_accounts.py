"""One role-accounts resolver (``pleo_export.RoleAccountSettings``) for every connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export import ExportJobItemFailureReasonType, ItemRejected, Role, RoleAccountSettings


class _Settings(RoleAccountSettings):
    wallet_account: str = "1990"
    exchange_gain_account: str | None = None


def test_resolver_names_setting_and_account() -> None:
    settings = _Settings()
    assert settings.role_setting(Role.WALLET) == "wallet_account"
    assert settings.role_account(Role.WALLET) == "1990"
    assert settings.role_account(Role.EXCHANGE_GAIN) is None
    assert settings.require_role_account(Role.WALLET) == "1990"
    with pytest.raises(ValueError, match="expense accounts come from the item's category"):
        settings.role_setting(Role.EXPENSE)


def test_an_unset_account_is_missing_configuration_naming_the_setting() -> None:
    with pytest.raises(ItemRejected) as caught:
        _Settings().require_role_account(Role.EXCHANGE_GAIN, needed_by="lines[0]")
    assert caught.value.reason_type is ExportJobItemFailureReasonType.MISSING_CONFIGURATION
    assert caught.value.message.startswith(
        "lines[0] needs an account for the role exchange_gain, and exchange_gain_account is not set"
    )


def test_the_connectors_resolve_roles_through_it(tmp_path: Path) -> None:
    from pleo_export_beancount.settings import BeancountSettings
    from pleo_export_sftp.settings import SftpSettings
    from pleo_export_tryton.settings import TrytonSettings

    beancount = BeancountSettings(ledger=tmp_path / "main.beancount")
    assert beancount.role_account(Role.CONTRA) == "Assets:Bank:Contra"  # its own default
    assert beancount.role_setting(Role.ACCOUNTS_PAYABLE) == "accounts_payable_account"
    sftp = SftpSettings(local_dir=tmp_path)
    assert sftp.role_account(Role.ROUNDING) == "7990"
    tryton = TrytonSettings(
        url="https://erp.test",
        database="db",
        user="u",
        password="p",
        out_of_pocket_account="2250",
        contra_account="1299",
        rounding_account="7990",
        payable_account="2100",
    )
    # Tryton's payable setting keeps its own name.
    assert tryton.role_setting(Role.ACCOUNTS_PAYABLE) == "payable_account"
    assert tryton.role_account(Role.ACCOUNTS_PAYABLE) == "2100"
    assert tryton.role_account(Role.WALLET) is None
    for settings in (beancount, sftp, tryton):
        assert isinstance(settings, RoleAccountSettings)
