"""Settings of the beancount connector (``[connector.settings]`` or ``PLEO_EXPORT_BEANCOUNT_*``)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from pleo_export import RoleAccountSettings

DEFAULT_OUTPUT_NAME = "pleo-export.beancount"
DEFAULT_DOCUMENTS_DIR = "documents"

# Beancount's lexer: a root component starting with an upper-case letter, then one or more
# components starting with an upper-case letter or a digit; non-ASCII letters are allowed.
_ACCOUNT_RE = re.compile(
    r"^(?:[A-Z]|[^\x00-\x7f\s])(?:[A-Za-z0-9-]|[^\x00-\x7f\s])*"
    r"(?::(?:[A-Z0-9]|[^\x00-\x7f\s])(?:[A-Za-z0-9-]|[^\x00-\x7f\s])*)+$"
)


def is_valid_account_name(name: str) -> bool:
    """Whether ``name`` is syntactically a beancount account (``Expenses:Office-Supplies``)."""
    return bool(_ACCOUNT_RE.match(name))


def _check_account(name: str) -> str:
    if not is_valid_account_name(name):
        raise ValueError(
            f"{name!r} is not a beancount account name: use colon-separated components that "
            "start with a capital letter or digit, e.g. 'Expenses:Office-Supplies'"
        )
    return name


class BeancountSettings(RoleAccountSettings):
    """Where the ledger lives and which beancount accounts stand for Pleo's roles.

    Relative paths in the configuration file are resolved against the configuration's
    directory by the engine; absolute paths are used as they are.
    """

    model_config = SettingsConfigDict(
        env_prefix="PLEO_EXPORT_BEANCOUNT_", extra="forbid", env_nested_delimiter="__"
    )

    ledger: Path
    """The main ledger file. It must ``include`` the output file; it is what ``check`` and the
    account, vendor and idempotency lookups load."""
    output: Path | None = None
    """The file transactions are appended to; default ``pleo-export.beancount`` beside the
    ledger. pleo-export owns this file: edit transactions elsewhere."""
    documents_dir: Path | None = None
    """Where receipts are stored (``<dir>/<YYYY>/<accountingEntryId>-<n>.<ext>``); default
    ``documents/`` beside the ledger."""

    wallet_account: str = "Assets:Pleo:Wallet"
    """The Pleo wallet, used when no account carries the ``pleo-code`` of Pleo's contraAccount."""
    out_of_pocket_account: str = "Liabilities:Pleo:OutOfPocket"
    """What the company owes employees for out-of-pocket spend until it is reimbursed."""
    contra_account: str = "Assets:Bank:Contra"
    """The other side of wallet top-ups, unloads and external reimbursements."""
    accounts_payable_account: str = "Liabilities:AccountsPayable"
    """Fallback payable account (items without a vendor, or ``unknown_vendor = "fallback"``)."""
    vat_input_account: str = "Assets:VAT:Input"
    """Deductible VAT, used when no account carries the tax line's ``pleo-code``."""
    vat_output_account: str = "Liabilities:VAT:Output"
    """Reverse-charge output VAT, used when no account carries the tax line's ``pleo-code``."""
    rounding_account: str = "Expenses:Rounding"
    """Where currency-conversion residuals between lines and total are booked."""
    exchange_gain_account: str | None = None
    """Realised exchange gains: a foreign-currency invoice paid for less than it was booked
    at (e.g. ``Income:ExchangeGains``). Needed only when such a payment comes; it then fails
    with ``missing_configuration`` while this is unset."""
    exchange_loss_account: str | None = None
    """Realised exchange losses: a foreign-currency invoice paid for more than it was booked
    at (e.g. ``Expenses:ExchangeLosses``); may be the same account as the gains."""

    account_map: dict[str, str] = {}
    """Pleo account code -> beancount account; wins over ``pleo-code`` metadata."""
    unknown_vendor: Literal["fail", "fallback"] = "fail"
    """A vendor matching no ``open`` directive fails the item (``vendor_unknown``) or is booked
    to ``accounts_payable_account``."""
    flag: Literal["posted", "draft"] = "posted"
    """``posted`` writes transactions with flag ``*``, ``draft`` with ``!`` (to review)."""
    closed_period: Literal["fail", "first_open_date"] = "fail"
    """What to do with entries dated before ``closed_before``: fail the item, or book it on
    ``closed_before`` (the original date is kept as ``pleo-original-date`` metadata)."""
    closed_before: date | None = None
    """Entries dated before this day are in a closed accounting period."""

    @field_validator(
        "wallet_account",
        "out_of_pocket_account",
        "contra_account",
        "accounts_payable_account",
        "vat_input_account",
        "vat_output_account",
        "rounding_account",
    )
    @classmethod
    def _account_name(cls, value: str) -> str:
        return _check_account(value)

    @field_validator("exchange_gain_account", "exchange_loss_account")
    @classmethod
    def _optional_account_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_account(value)

    @field_validator("account_map")
    @classmethod
    def _account_map(cls, value: dict[str, str]) -> dict[str, str]:
        for code, account in value.items():
            if not code.strip():
                raise ValueError("an account_map key is empty: use the Pleo account code")
            try:
                _check_account(account)
            except ValueError as error:
                raise ValueError(f"account_map[{code!r}]: {error}") from None
        return value

    @model_validator(mode="after")
    def _distinct_files(self) -> BeancountSettings:
        if self.output_path.resolve() == self.ledger.resolve():
            raise ValueError(
                "output is the ledger itself: pleo-export appends to its own file, which the "
                "ledger includes; set output to another file"
            )
        return self

    @property
    def output_path(self) -> Path:
        """The output file, defaulting to ``pleo-export.beancount`` beside the ledger."""
        return self.output if self.output is not None else self.ledger.parent / DEFAULT_OUTPUT_NAME

    @property
    def documents_path(self) -> Path:
        """The documents directory, defaulting to ``documents/`` beside the ledger."""
        if self.documents_dir is not None:
            return self.documents_dir
        return self.ledger.parent / DEFAULT_DOCUMENTS_DIR

    @property
    def beancount_flag(self) -> str:
        """``*`` for posted entries, ``!`` for drafts."""
        return "*" if self.flag == "posted" else "!"
