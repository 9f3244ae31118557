"""Settings of the Tryton connector (``[connector.settings]`` or ``PLEO_EXPORT_TRYTON_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from pleo_export import ExportItemType, Role, RoleAccountSettings

CounterRole = Literal["wallet", "out_of_pocket", "contra"]


class TrytonSettings(RoleAccountSettings):
    """Where Tryton is, who logs in, and which Tryton accounts and journals play Pleo's roles.

    Accounts are named by their Tryton **code**. Pleo's own account codes (the expense
    category of each line, the ``contraAccount`` and the VAT accounts of a tax code) are
    looked up among the company's accounts by code as they are; ``account_map`` translates
    codes that differ.
    """

    model_config = SettingsConfigDict(
        env_prefix="PLEO_EXPORT_TRYTON_", extra="forbid", env_nested_delimiter="__"
    )

    ROLE_FIELDS: ClassVar[Mapping[Role, str]] = {
        **RoleAccountSettings.ROLE_FIELDS,
        Role.ACCOUNTS_PAYABLE: "payable_account",
    }

    url: str
    """Base URL of the Tryton server, e.g. ``https://erp.example.com`` (JSON-RPC is at
    ``<url>/<database>/rpc/``)."""
    database: str
    user: str = "admin"
    password: SecretStr
    """Use ``PLEO_EXPORT_TRYTON_PASSWORD`` rather than the configuration file."""
    company: str | None = None
    """The Tryton company to book into: its name or numeric id. Default: the user's current
    company."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for one Tryton request."""

    journal: str = "MISC"
    """Code of the journal that takes journal entries (one move per item)."""
    invoice_journal: str = "EXP"
    """Code of the expense journal that takes supplier invoices and credit notes."""
    payment_journal: str = "CASH"
    """Code of the journal that takes the payment side of accounts-payable items."""

    wallet_account: str | None = None
    """The Pleo wallet, used when an item carries no ``contraAccount``."""
    out_of_pocket_account: str
    """What the company owes employees for out-of-pocket spend until it is reimbursed."""
    contra_account: str
    """The other side of wallet top-ups, unloads and external reimbursements."""
    payable_account: str | None = None
    """Payable account for items without a vendor; default: the accounting configuration's
    default payable account. A vendor's own payable account always wins."""
    vat_input_account: str | None = None
    """Deductible VAT when Pleo names no ingoing tax account; default: the tax's account."""
    vat_output_account: str | None = None
    """Reverse-charge VAT due when Pleo names no outgoing tax account."""
    rounding_account: str
    """Where currency-conversion residuals between lines and total are booked."""
    exchange_gain_account: str | None = None
    """Realised exchange gains, when a foreign-currency invoice is paid for less than it was
    booked at. Default: the Currency Exchange Credit Account of Tryton's accounting
    configuration."""
    exchange_loss_account: str | None = None
    """Realised exchange losses (paid for more). Default: the Currency Exchange Debit Account
    of Tryton's accounting configuration."""
    counter_accounts: dict[ExportItemType, dict[CounterRole, str]] = {}
    """Per item type, the account code for its counter roles (``wallet``, ``out_of_pocket``,
    ``contra``), e.g. ``{"mileage": {"out_of_pocket": "2251"}}``. Wins over Pleo's
    ``contraAccount`` and the role accounts above; a vendor's payable account is never
    replaced."""
    account_map: dict[str, str] = {}
    """Pleo account code -> Tryton account code, for codes that differ between the two."""
    tax_map: dict[str, str] = {}
    """Pleo tax code -> name of the Tryton tax. Default: the tax named like the Pleo code."""
    tax_types: dict[str, Literal["inclusive", "exclusive", "reverse"]] = {}
    """Pleo tax code -> the type ``pleo-export sync`` gives it in Pleo. Default: ``reverse``
    for a Tryton tax whose child taxes cancel out, else ``inclusive`` (Tryton does not record
    whether Pleo's amounts include the tax)."""
    vendor_category: str | None = None
    """Name of the Tryton party category that holds the vendors: ``pleo-export sync`` reads
    only its parties (and those of its sub-categories), and vendors created from Pleo are put
    in it. Default: every party but the company's own and its employees'."""

    state: Literal["posted", "draft"] = "posted"
    """``posted`` posts moves and invoices (numbered, final); ``draft`` leaves them for review
    (no reconciliation of payments then)."""
    closed_period: Literal["fail", "first_open_date"] = "fail"
    """An item dated in a closed period (or closed fiscal year) fails, or is booked on the
    first day of the next open period, its own date kept in the description."""
    confirm_warnings: bool = False
    """Tryton asks users to confirm some actions (for example a supplier invoice whose
    reference the vendor already used). ``false`` fails the item with Tryton's question and
    leaves the draft for a person to post; ``true`` confirms and posts."""
    attachments: bool = True
    """Attach Pleo's receipts to the invoice or move (``ir.attachment``)."""
    batch_size: int = Field(default=25, ge=1, le=200)
    """Items written together: one request creates (and one posts) the records of up to this
    many items. A record Tryton refuses is retried alone, so it fails only its own item."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not an http(s) URL: give the Tryton server's address, e.g. "
                "'https://erp.example.com' or 'http://127.0.0.1:8000'"
            )
        return value

    @field_validator("database", "user", "journal", "invoice_journal", "payment_journal")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("account_map", "tax_map")
    @classmethod
    def _no_blank_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, target in value.items():
            if not key.strip() or not target.strip():
                raise ValueError(f"{key!r} = {target!r}: neither side may be empty")
        return value

    def account_code(self, pleo_code: str) -> str:
        """The Tryton code for a Pleo account code (``account_map``, else the same code)."""
        return self.account_map.get(pleo_code, pleo_code)
