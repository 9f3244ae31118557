"""Role accounts: connector settings that name the target's account for each of Pleo's roles.

Every connector books the non-expense roles (wallet, out-of-pocket, contra, payable, VAT,
rounding, exchange gain and loss) to accounts the user configures. :class:`RoleAccountSettings`
is the one base for such settings, with one resolver: which setting names a role's account,
the account it names, and the ``missing_configuration`` rejection when it is unset. The
settings keep their own names and defaults (declared by each connector); only the mapping
:attr:`RoleAccountSettings.ROLE_FIELDS` is shared, and a connector overrides it (or the two
methods) where its names differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from pleo_export.connector import ConnectorSettings, ItemRejected
from pleo_export.ledger import Role
from pleo_export.pleo.models import ExportJobItemFailureReasonType

ROLE_FIELDS: Mapping[Role, str] = MappingProxyType(
    {
        Role.WALLET: "wallet_account",
        Role.OUT_OF_POCKET: "out_of_pocket_account",
        Role.CONTRA: "contra_account",
        Role.ACCOUNTS_PAYABLE: "accounts_payable_account",
        Role.TAX_INPUT: "vat_input_account",
        Role.TAX_OUTPUT: "vat_output_account",
        Role.ROUNDING: "rounding_account",
        Role.EXCHANGE_GAIN: "exchange_gain_account",
        Role.EXCHANGE_LOSS: "exchange_loss_account",
    }
)
"""The conventional setting of each role's account (every role but ``expense``)."""


class RoleAccountSettings(ConnectorSettings):
    """Base of connector settings with one account setting per role (see the module)."""

    ROLE_FIELDS: ClassVar[Mapping[Role, str]] = ROLE_FIELDS
    """Role -> the settings field that names its account; override where names differ."""

    def role_setting(self, role: Role) -> str:
        """The key in ``[connector.settings]`` that names the account of ``role``."""
        try:
            return self.ROLE_FIELDS[role]
        except KeyError:
            raise ValueError(
                f"no setting names the {role.value} account: expense accounts come from the "
                "item's category"
            ) from None

    def role_account(self, role: Role) -> str | None:
        """The account configured for ``role``, or ``None`` when it is not set."""
        value = getattr(self, self.role_setting(role))
        return str(value) if value else None

    def require_role_account(self, role: Role, *, needed_by: str = "the item") -> str:
        """The account configured for ``role``; an item needing an unset one is rejected
        ``missing_configuration``, naming the setting to set."""
        account = self.role_account(role)
        if account is None:
            setting = self.role_setting(role)
            raise ItemRejected(
                ExportJobItemFailureReasonType.MISSING_CONFIGURATION,
                f"{needed_by} needs an account for the role {role.value}, and {setting} is not "
                "set: set it in [connector.settings] and export again",
            )
        return account


__all__ = ["ROLE_FIELDS", "RoleAccountSettings"]
