"""Typed models of the Pleo Export API v3 schemas.

Field names follow the OpenAPI spec (``pleo-export-openapi.yml``, components ``*V3``); Python
attributes are snake_case and serialise back to the spec's camelCase aliases. Money is kept in
minor units as ``int``: the spec types ``MoneyModel.value`` as ``number`` but documents minor
units, so a fractional value is rejected rather than rounded.

Models parse leniently (unknown fields are ignored, so a newer Pleo release does not break a
running integration) and serialise strictly: :func:`to_wire` drops ``None`` values, because
several optional fields in the spec are not nullable (``subType``, ``failureReasonType``, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel


def format_timestamp(value: datetime) -> str:
    """Format a timestamp the way Pleo does: UTC, second precision, ``Z`` suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class PleoModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


def to_wire(model: BaseModel) -> dict[str, Any]:
    """Serialise a model as the JSON object Pleo expects (aliases, no nulls)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- enums ---------------------------------------------------------------------------------


class ExportJobStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self not in (ExportJobStatus.PENDING, ExportJobStatus.IN_PROGRESS)


class ExportJobEventType(StrEnum):
    STARTED = "started"
    FAILED = "failed"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"


class ExportJobItemStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    SUCCESSFUL = "successful"
    ABANDONED = "abandoned"

    @property
    def is_final(self) -> bool:
        return self in (
            ExportJobItemStatus.FAILED,
            ExportJobItemStatus.SUCCESSFUL,
            ExportJobItemStatus.ABANDONED,
        )


class ExportJobFailureReasonType(StrEnum):
    """Why a whole job failed (``ExportJobFailureReasonType``)."""

    INVALID_CONFIGURATION = "invalid_configuration"
    MISSING_CONFIGURATION = "missing_configuration"
    AUTHENTICATION_FAILURE = "authentication_failure"
    ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE = "accounting_system_authentication_failure"
    PLEO_RATE_LIMIT = "pleo_rate_limit"
    ACCOUNTING_SYSTEM_RATE_LIMIT = "accounting_system_rate_limit"
    SERVICE_UNREACHABLE = "service_unreachable"
    ACCOUNTING_SYSTEM_UNREACHABLE = "accounting_system_unreachable"
    VALIDATION_FAILURE = "validation_failure"
    AUTHORIZATION_FAILURE = "authorization_failure"
    INTEGRATION_UNUSABLE = "integration_unusable"
    JOB_EXPIRED = "job_expired"
    SERVICE_TIMEOUT = "service_timeout"
    ACCOUNTING_SYSTEM_TIMEOUT = "accounting_system_timeout"
    CANCELED_BY_USER = "canceled_by_user"


class ExportJobItemFailureReasonType(StrEnum):
    """Why one item failed (``ExportJobItemFailureReasonType``, the 18 v3 values)."""

    RECEIPT_UPLOAD_FAILURE = "receipt_upload_failure"
    RECEIPT_DOWNLOAD_FAILURE = "receipt_download_failure"
    RECEIPT_FILE_SIZE_LIMIT_EXCEEDED = "receipt_file_size_limit_exceeded"
    RECEIPT_CONVERSION_FAILURE = "receipt_conversion_failure"
    UNEXPECTED_FAILURE = "unexpected_failure"
    INVALID_CONFIGURATION = "invalid_configuration"
    MISSING_CONFIGURATION = "missing_configuration"
    ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE = "accounting_system_authentication_failure"
    ACCOUNTING_SYSTEM_RATE_LIMIT = "accounting_system_rate_limit"
    ACCOUNTING_SYSTEM_UNREACHABLE = "accounting_system_unreachable"
    VALIDATION_FAILURE = "validation_failure"
    ACCOUNTING_SYSTEM_VALIDATION_FAILURE = "accounting_system_validation_failure"
    AUTHORIZATION_FAILURE = "authorization_failure"
    ACCOUNTING_SYSTEM_TIMEOUT = "accounting_system_timeout"
    VENDOR_UNKNOWN = "vendor_unknown"
    ACCOUNT_UNKNOWN = "account_unknown"
    TAX_CODE_UNKNOWN = "tax_code_unknown"
    TAG_UNKNOWN = "tag_unknown"


class ExportItemType(StrEnum):
    CARD_PURCHASE = "card_purchase"
    CARD_INVOICE = "card_invoice"
    OUT_OF_POCKET = "out_of_pocket"
    MILEAGE = "mileage"
    PER_DIEM = "per_diem"
    EXTERNAL_REIMBURSEMENT = "external_reimbursement"
    DIRECT_REIMBURSEMENT = "direct_reimbursement"
    INVOICE = "invoice"
    INVOICE_PAYMENT = "invoice_payment"
    CHARGEBACK = "chargeback"
    REFUND = "refund"
    CASHBACK = "cashback"
    ATM_WITHDRAWAL = "atm_withdrawal"
    WALLET_TOPUP = "wallet_topup"
    WALLET_UNLOAD = "wallet_unload"
    PERSONAL_SPEND = "personal_spend"
    FEE = "fee"


class ExportItemSubType(StrEnum):
    REIMBURSEMENT_TO_EMPLOYEE_REFUND = "reimbursement_to_employee_refund"
    REIMBURSEMENT_TO_COMPANY = "reimbursement_to_company"
    REIMBURSEMENT_TO_EMPLOYEE = "reimbursement_to_employee"
    INVOICE_PAYMENT_RETURNED = "invoice_payment_returned"
    INVOICE_PAYMENT_SENT = "invoice_payment_sent"
    INTEREST = "interest"


class BookkeepingMethod(StrEnum):
    NONE = "none"
    JOURNAL = "journal"
    ACCOUNTS_PAYABLE = "accounts_payable"


class TaxType(StrEnum):
    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"
    REVERSE = "reverse"


# --- export jobs (control layer) -------------------------------------------------------------


class ExportJob(PleoModel):
    """``ExportJobV3``."""

    id: str
    company_id: str
    status: ExportJobStatus
    created_at: Timestamp
    expires_in: int
    is_interactive: bool
    number_of_items: int
    vendor_based_bookkeeping: bool
    created_by: str | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    expired_at: Timestamp | None = None
    last_updated_at: Timestamp | None = None
    failure_reason: str | None = None
    failure_reason_type: str | None = None


class ExportJobItem(PleoModel):
    """``ExportJobItemV3``: the control-layer record of one accounting entry in a job."""

    accounting_entry_id: str
    export_job_id: str
    status: ExportJobItemStatus
    exported_at: Timestamp | None = None
    external_id: str | None = None
    external_url: str | None = None
    failure_reason: str | None = None
    failure_reason_type: str | None = None


class CreateExportJobEvent(PleoModel):
    job_id: str
    event: ExportJobEventType
    failure_reason: str | None = None
    failure_reason_type: ExportJobFailureReasonType | None = None


class UpdateExportJobItem(PleoModel):
    """``UpdateExportJobItemV3``: one element of the PUT body."""

    accounting_entry_id: str
    status: ExportJobItemStatus
    exported_at: Timestamp | None = None
    external_id: str | None = None
    external_url: str | None = None
    failure_reason: str | None = None
    failure_reason_type: ExportJobItemFailureReasonType | None = None


class ExportJobItemUpdateError(PleoModel):
    accounting_entry_id: str
    message: str
    type: str


class ExportJobItemUpdateResult(PleoModel):
    """``ExportJobItemUpdateV3``: the PUT response."""

    data: list[ExportJobItem]
    errors: list[ExportJobItemUpdateError]


class CreateExportJobOptions(PleoModel):
    vendor_based_bookkeeping: bool | None = False


class CreateExportJob(PleoModel):
    accounting_entry_ids: list[str]
    company_id: str
    employee_id: str | None = None
    is_interactive: bool | None = True
    options: CreateExportJobOptions | None = None


class ExceptionInfo(PleoModel):
    type: str
    message: str | None = None


# --- export items (data layer) ---------------------------------------------------------------


class Money(PleoModel):
    """``MoneyModel``: an amount in minor units of ``currency``."""

    currency: str
    value: int

    @field_validator("value", mode="before")
    @classmethod
    def _whole_minor_units(cls, value: Any) -> Any:
        # Strict: a string that looks like a number ("47003", "1_000") or a boolean is not an
        # amount Pleo sent, and is never coerced into one.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"amount must be a JSON number of minor units, not {_json_type(value)}"
            )
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(
                    f"amount {value!r} is not a whole number of minor units; Pleo sends "
                    "minor units (6366 means 63.66)"
                )
            return int(value)
        return value


def _json_type(value: Any) -> str:
    """How ``value`` was written in JSON, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class DualMoney(PleoModel):
    """An amount in the supplier's currency and in the company wallet's currency."""

    in_supplier_currency: Money
    in_wallet_currency: Money


class Account(PleoModel):
    """``AccountV3`` (and ``ContraAccount``): an account as Pleo knows it."""

    id: str
    name: str
    code: str | None = None
    identifier: str | None = None


class Tag(PleoModel):
    id: str
    code: str
    group_code: str


class Tax(PleoModel):
    id: str
    rate: float
    type: str
    amount: DualMoney
    code: str | None = None
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None


class ExportItemLine(PleoModel):
    accounting_entry_line_id: str
    line_amount: DualMoney
    net_amount: DualMoney
    account: Account | None = None
    tags: list[Tag] | None = None
    tax: Tax | None = None


class ExportItemFile(PleoModel):
    url: str
    type: str
    size: int


class SupplierBankAccount(PleoModel):
    bank_name: str
    country: str
    account_number: str | None = None
    bank_code: str | None = None
    bic: str | None = None
    iban: str | None = None


class InvoiceInformation(PleoModel):
    invoice_number: str
    invoice_date: Timestamp
    status: str
    due_date: Timestamp | None = None
    payment_date: Timestamp | None = None
    supplier_bank_account: SupplierBankAccount | None = None


class AdditionalInformation(PleoModel):
    reconciliation_id: str
    attendees: list[str | None] | None = None
    invoice_information: InvoiceInformation | None = None
    reconciled_entries: list[str | None] | None = None


class Bookkeeping(PleoModel):
    method: str


class Supplier(PleoModel):
    account: str | None = None
    category_code: str | None = None
    code: str | None = None
    country: str | None = None
    name: str | None = None
    tax_identifier: str | None = None


class Vendor(PleoModel):
    id: str
    name: str
    default_currency: str
    code: str | None = None
    country: str | None = None
    external_id: str | None = None
    registration_number: str | None = None
    tax_registration_number: str | None = None


class User(PleoModel):
    id: str
    name: str
    code: str | None = None


class Team(PleoModel):
    id: str
    name: str
    code: str | None = None


class ServicePeriod(PleoModel):
    from_: Timestamp = Field(alias="from")
    to: Timestamp


class Links(PleoModel):
    api: dict[str, str] | None = None
    mobile: dict[str, str] | None = None
    web: dict[str, str] | None = None


class ExportItem(PleoModel):
    """``ExportItemV3``: the full accounting payload of one accounting entry."""

    links: Links = Field(alias="_links")
    accounting_entry_id: str
    accounting_entry_lines: list[ExportItemLine]
    additional_information: AdditionalInformation
    amount: DualMoney
    company_id: str
    date: Timestamp
    type: str
    bookkeeping: Bookkeeping | None = None
    contra_account: Account | None = None
    files: list[ExportItemFile] | None = None
    note: str | None = None
    service_period: ServicePeriod | None = None
    sub_type: str | None = None
    supplier: Supplier | None = None
    team: Team | None = None
    user: User | None = None
    vendor: Vendor | None = None


# --- pagination ------------------------------------------------------------------------------


class CurrentRequestPagination(PleoModel):
    parameters: dict[str, list[str]]
    after: str | None = None
    before: str | None = None
    limit: int | None = None
    offset: int | None = None
    sorting_keys: list[str] | None = None
    sorting_order: list[str] | None = None


class PageInfo(PleoModel):
    """``CursorPageInfo``."""

    current_request_pagination: CurrentRequestPagination
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None = None
    end_cursor: str | None = None
    total: int | None = None
