"""Settings of the SFTP connector (``[connector.settings]`` or ``PLEO_EXPORT_SFTP_*``).

Three groups: where the files go (an SFTP server or a local directory), what the CSV looks
like (layout, columns, delimiter, decimal separator, date format, encoding, signs) and which
account of the receiving system stands for each of Pleo's roles.
"""

from __future__ import annotations

import codecs
import re
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from pleo_export import RoleAccountSettings
from pleo_export_sftp.layout import (
    COLUMNS,
    LAYOUT_COLUMNS,
    TAG_COLUMN_PREFIX,
    is_safe_name,
)

PER_JOB = "job"
"""``batch_size = "job"``: one file per job, whatever its size."""
PER_JOB_BATCH_SIZE = 1_000_000
"""The batch size handed to the engine for ``batch_size = "job"``: larger than any job."""

_ACCOUNT_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def _check_account(value: str, where: str) -> str:
    if not value.strip():
        raise ValueError(f"{where} is empty: name an account of the receiving system")
    if _ACCOUNT_FORBIDDEN.search(value):
        raise ValueError(f"{where} contains control characters: remove them")
    if value != value.strip():
        raise ValueError(f"{where} has leading or trailing spaces: remove them")
    return value


class SftpSettings(RoleAccountSettings):
    """Where the CSV files go, what they look like and which accounts stand for Pleo's roles.

    Relative paths (``local_dir``, ``private_key``, ``known_hosts``) are resolved against the
    configuration file's directory by the engine.
    """

    model_config = SettingsConfigDict(
        env_prefix="PLEO_EXPORT_SFTP_", extra="forbid", env_nested_delimiter="__"
    )

    # --- destination -----------------------------------------------------------------------

    local_dir: Path | None = None
    """Deliver into this local directory instead of an SFTP server (same publishing rules)."""
    host: str | None = None
    """The SFTP server's host name or address. Exactly one of ``host`` and ``local_dir``."""
    port: int = Field(default=22, ge=1, le=65535)
    username: str | None = None
    """The SSH user; required with ``host``."""
    password: SecretStr | None = None
    """Password authentication (``PLEO_EXPORT_SFTP_PASSWORD``); never put it in the file."""
    private_key: Path | None = None
    """An OpenSSH private key file for public-key authentication."""
    private_key_passphrase: SecretStr | None = None
    """The passphrase of ``private_key`` if it is encrypted
    (``PLEO_EXPORT_SFTP_PRIVATE_KEY_PASSPHRASE``)."""
    known_hosts: Path | None = None
    """An OpenSSH ``known_hosts`` file with the server's host key; required with ``host``.
    The connection is refused when the server's key does not match an entry: there is no
    trust-on-first-use."""
    remote_dir: str = "."
    """The directory on the server the files are published in (relative to the login
    directory unless it starts with ``/``). It must exist."""
    connect_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for the TCP connection, the SSH handshake and the login."""
    operation_timeout: float = Field(default=120.0, gt=0)
    """Seconds one SFTP operation (open, write of a file, rename, listing) may take."""

    # --- files -----------------------------------------------------------------------------

    file_prefix: str = "pleo"
    """First part of every published file name: ``<prefix>-<job id>-<batch hash>.csv`` and
    ``<prefix>-<accounting entry id>-<n>.<ext>`` for receipts. Letters, digits, ``._-``."""
    manifest_name: str = "pleo-export-manifest.json"
    """The manifest in ``remote_dir``: which entry is in which file, with checksums."""
    batch_size: int | Literal["job"] = 1000
    """Entries per CSV file; ``"job"`` writes one file per export job."""
    attachments: bool = True
    """Upload the receipts beside the CSV file and list their names in the ``attachments``
    column."""

    # --- CSV -------------------------------------------------------------------------------

    layout: Literal["journal-lines", "debit-credit"] = "journal-lines"
    """The default column set: ``journal-lines`` has one signed ``amount`` column,
    ``debit-credit`` a ``debit`` and a ``credit`` column. ``columns`` overrides it."""
    columns: list[str] | None = None
    """The columns, in order (see the column reference); default: the layout's columns.
    ``tag:<GROUP>`` adds a column with the code of the line's tag in that tag group."""
    headers: dict[str, str] = {}
    """Header text per column (column -> header); default: the column name."""
    header_row: bool = True
    """Write a header row first."""
    delimiter: str = ","
    """One character between cells: ``,``, ``;``, ``|`` or a tab."""
    decimal_separator: Literal[".", ","] = "."
    date_format: str = "%Y-%m-%d"
    """A ``strftime`` pattern for the ``date`` column, e.g. ``%d.%m.%Y``."""
    encoding: str = "utf-8"
    """A Python codec: ``utf-8``, ``utf-8-sig`` (with BOM), ``cp1252``, ``iso-8859-1`` ..."""
    unencodable: Literal["fail", "replace"] = "fail"
    """A character the encoding cannot represent fails the item (``fail``) or is written as
    ``?`` (``replace``)."""
    line_terminator: Literal["crlf", "lf"] = "crlf"
    sign_convention: Literal["debit_positive", "credit_positive"] = "debit_positive"
    """The sign of ``amount``, ``supplier_amount`` and ``tax_amount``: debits positive and
    credits negative, or the other way round. ``debit``/``credit`` are never negative."""

    # --- accounts --------------------------------------------------------------------------

    account_map: dict[str, str] = {}
    """Pleo account code -> account of the receiving system. Unmapped codes are written as
    Pleo sends them."""
    accounts: list[str] | None = None
    """The expense accounts the receiving system knows (after ``account_map``). An item on
    any other account fails with ``account_unknown``. Leave it out to accept every code."""
    wallet_account: str = "1290"
    """The Pleo wallet, when Pleo sends no ``contraAccount`` code."""
    out_of_pocket_account: str = "2250"
    contra_account: str = "1299"
    """The other side of wallet top-ups, unloads and external reimbursements."""
    accounts_payable_account: str = "2100"
    """Payable account for vendors not in ``vendor_accounts`` (see ``unknown_vendor``)."""
    vendor_accounts: dict[str, str] = {}
    """Vendor code, external id or tax number -> payable account. Codes and external ids
    match exactly; tax numbers as :func:`pleo_export.tax_numbers_match` says (case,
    separators and the country prefix do not matter)."""
    unknown_vendor: Literal["fallback", "fail"] = "fail"
    """A vendor matching nothing in ``vendor_accounts`` fails with ``vendor_unknown``
    (``fail``, the default) or is booked to ``accounts_payable_account`` (``fallback``)."""
    tax_codes: list[str] | None = None
    """The tax codes the receiving system knows (after ``tax_code_map``). A line with any
    other code fails with ``tax_code_unknown``. Leave it out to accept every code."""
    tax_code_map: dict[str, str] = {}
    """Pleo tax code -> tax code of the receiving system (written in ``tax_code``)."""
    closed_before: date | None = None
    """The receiving system's books are closed for days before this one: such entries fail
    with ``accounting_system_validation_failure`` instead of being delivered."""
    vat_input_account: str = "2610"
    """Deductible VAT, when the tax line names no ingoing tax account."""
    vat_output_account: str = "2620"
    """Reverse-charge VAT due, when the tax line names no outgoing tax account."""
    rounding_account: str = "7990"
    exchange_gain_account: str | None = None
    """Realised exchange gains: a foreign-currency invoice paid for less than it was booked
    at. A payment that needs it while it is unset fails with ``missing_configuration``."""
    exchange_loss_account: str | None = None
    """Realised exchange losses (paid for more); may be the same account as the gains."""

    # --- master data (pleo-export sync) ----------------------------------------------------

    vendors_file: str | None = None
    """A CSV file in the delivery directory listing the receiving system's vendors (columns
    ``code``, ``name``, ``currency``, ``external_id``, ``tax_number``, ``registration_number``,
    ``country``, ``archived``), read by ``pleo-export sync vendors``, and once per job by the
    export: a vendor it lists is a known vendor (see ``accounts.payable_account``)."""
    tax_codes_file: str | None = None
    """A CSV file there listing its tax codes (``code``, ``rate``, ``name``, ``type``,
    ``ingoing_tax_account``, ``outgoing_tax_account``, ``archived``)."""
    dimensions_file: str | None = None
    """A CSV file there listing its dimensions' values (``dimension``, ``code``, ``name``,
    ``dimension_name``, ``archived``), synchronised as Pleo tag groups and tags."""
    vendor_requests_file: str | None = None
    """A CSV file there to which vendors created in Pleo but missing from ``vendors_file``
    are appended, once each, for the accounting team to create."""

    # --- validation ------------------------------------------------------------------------

    @field_validator("vendors_file", "tax_codes_file", "dimensions_file", "vendor_requests_file")
    @classmethod
    def _master_data_file(cls, value: str | None) -> str | None:
        if value is not None and not is_safe_name(value):
            raise ValueError(
                "must be a file name in the delivery directory: letters, digits, '.', '_' or "
                "'-', not starting with '.' or '-', e.g. 'vendors.csv'"
            )
        return value

    @field_validator("host", "username")
    @classmethod
    def _no_blank(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or _ACCOUNT_FORBIDDEN.search(value)):
            raise ValueError("must not be empty or contain control characters")
        return value

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, value: str) -> str:
        if not value or "\x00" in value or _ACCOUNT_FORBIDDEN.search(value):
            raise ValueError(
                "must be a directory path on the server without control characters, "
                "e.g. 'upload/pleo' or '/srv/sftp/pleo'"
            )
        return value

    @field_validator("file_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not is_safe_name(value) or len(value) > 40:
            raise ValueError(
                "use 1 to 40 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
            )
        return value

    @field_validator("manifest_name")
    @classmethod
    def _manifest_name(cls, value: str) -> str:
        if not is_safe_name(value) or value.endswith(".csv"):
            raise ValueError(
                "use letters, digits, '.', '_' or '-' (not starting with '.' or '-', not "
                "ending in .csv), e.g. 'pleo-export-manifest.json'"
            )
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError('must be at least 1, or "job" for one file per job')
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty: list at least the columns the receiving system reads")
        unknown = [
            c
            for c in value
            if c not in COLUMNS
            and not (c.startswith(TAG_COLUMN_PREFIX) and len(c) > len(TAG_COLUMN_PREFIX))
        ]
        if unknown:
            raise ValueError(
                f"unknown columns {unknown}: choose from {', '.join(COLUMNS)} or tag:<GROUP>"
            )
        duplicates = sorted({c for c in value if value.count(c) > 1})
        if duplicates:
            raise ValueError(f"columns {duplicates} appear more than once: list each once")
        if "entry_id" not in value:
            raise ValueError(
                "must include entry_id: it is how a reader (and a person) ties a row to the "
                "Pleo expense"
            )
        if not {"amount", "debit", "credit"} & set(value):
            raise ValueError("must include amount, or debit and credit")
        if ("debit" in value) != ("credit" in value):
            raise ValueError("debit and credit go together: list both or neither")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for column, header in value.items():
            if column not in COLUMNS and not column.startswith(TAG_COLUMN_PREFIX):
                raise ValueError(f"headers[{column!r}]: {column!r} is not a column")
            if _ACCOUNT_FORBIDDEN.search(header):
                raise ValueError(f"headers[{column!r}] contains control characters")
        return value

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if len(value) != 1 or value in "\"'\r\n" or value.isalnum() or value in ".-+":
            raise ValueError("must be one character such as ',', ';', '|' or a tab")
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        first, second = date(2024, 1, 2), date(2025, 11, 30)
        try:
            a, b = first.strftime(value), second.strftime(value)
        except ValueError as error:
            raise ValueError(f"is not a strftime pattern: {error}") from None
        if a == b or not a or a != a.strip() or _ACCOUNT_FORBIDDEN.search(a):
            raise ValueError(
                "must print day, month and year, without surrounding spaces, e.g. '%Y-%m-%d' "
                "or '%d.%m.%Y'"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"{value!r} is not a known text encoding: use e.g. utf-8, utf-8-sig, cp1252"
            ) from None
        if not getattr(info, "_is_text_encoding", True) or not (
            info.name in ("utf-8", "utf-8-sig") or len("a".encode(value)) == 1
        ):
            raise ValueError(
                f"{value!r} is not a byte-oriented text encoding: use utf-8, utf-8-sig, cp1252, "
                "iso-8859-1 or similar"
            )
        return value

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
    def _role_account(cls, value: str) -> str:
        return _check_account(value, "the account")

    @field_validator("exchange_gain_account", "exchange_loss_account")
    @classmethod
    def _optional_role_account(cls, value: str | None) -> str | None:
        return None if value is None else _check_account(value, "the account")

    @field_validator("account_map", "vendor_accounts", "tax_code_map")
    @classmethod
    def _maps(cls, value: dict[str, str]) -> dict[str, str]:
        for key, account in value.items():
            if not key.strip():
                raise ValueError("a key is empty: use the Pleo code or vendor identifier")
            _check_account(account, f"[{key!r}]")
        return value

    @model_validator(mode="after")
    def _destination(self) -> SftpSettings:
        if (self.host is None) == (self.local_dir is None):
            raise ValueError(
                "set exactly one of host (an SFTP server) and local_dir (a local directory)"
            )
        if self.host is not None:
            missing = [name for name in ("username", "known_hosts") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} must be set with host: known_hosts holds the "
                    "server's host key (ssh-keyscan prints it; check its fingerprint with the "
                    "server's administrator)"
                )
            if self.password is None and self.private_key is None:
                raise ValueError(
                    "set private_key (recommended) or password to log in to the SFTP server"
                )
        for setting in ("vendors_file", "tax_codes_file", "dimensions_file"):
            name = getattr(self, setting)
            if name is not None and (
                name == self.manifest_name or name.startswith(f"{self.file_prefix}-")
            ):
                raise ValueError(
                    f"{setting} {name!r} is the manifest or starts with file_prefix "
                    f"{self.file_prefix!r}-, like the files pleo-export publishes: rename it"
                )
        if self.vendor_requests_file is not None and self.vendor_requests_file in (
            self.manifest_name,
            self.vendors_file,
            self.tax_codes_file,
            self.dimensions_file,
        ):
            raise ValueError(
                "vendor_requests_file must be a file of its own, not the manifest or a file "
                "pleo-export reads"
            )
        if self.decimal_separator == self.delimiter:
            raise ValueError(
                "decimal_separator and delimiter are the same character: use delimiter ';' "
                "with decimal_separator ','"
            )
        return self

    # --- derived ---------------------------------------------------------------------------

    @property
    def column_list(self) -> list[str]:
        """The columns written, in order."""
        return list(self.columns) if self.columns is not None else list(LAYOUT_COLUMNS[self.layout])

    @property
    def engine_batch_size(self) -> int:
        return PER_JOB_BATCH_SIZE if self.batch_size == PER_JOB else int(self.batch_size)

    @property
    def newline(self) -> str:
        return "\r\n" if self.line_terminator == "crlf" else "\n"

    @property
    def destination(self) -> str:
        """A description of where files go, for messages (never includes secrets)."""
        if self.local_dir is not None:
            return f"local directory {self.local_dir}"
        return f"sftp://{self.username}@{self.host}:{self.port} directory {self.remote_dir}"
