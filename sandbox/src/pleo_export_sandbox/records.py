"""The sandbox's records: companies, credentials, jobs and their items, and API errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJob,
    ExportJobItem,
    ExportJobItemStatus,
    ExportJobStatus,
)

Clock = Callable[[], float]

SCOPE_JOBS_READ = "export-jobs:read"
SCOPE_JOBS_WRITE = "export-jobs:write"
SCOPE_ITEMS_READ = "export-items:read"
EXPORT_SCOPES = frozenset({SCOPE_JOBS_READ, SCOPE_JOBS_WRITE, SCOPE_ITEMS_READ})
SCOPE_VENDORS_READ = "vendors:read"
SCOPE_VENDORS_WRITE = "vendors:write"
# Pleo does not name the scopes of the Tax Code, Tags and Webhook Subscriptions APIs; these
# are the sandbox's guesses in the same style.
SCOPE_TAX_CODES_READ = "tax-codes:read"
SCOPE_TAX_CODES_WRITE = "tax-codes:write"
SCOPE_TAGS_READ = "tags:read"
SCOPE_TAGS_WRITE = "tags:write"
SCOPE_WEBHOOKS_READ = "webhooks:read"
SCOPE_WEBHOOKS_WRITE = "webhooks:write"
MASTER_DATA_SCOPES = frozenset(
    {
        SCOPE_VENDORS_READ,
        SCOPE_VENDORS_WRITE,
        SCOPE_TAX_CODES_READ,
        SCOPE_TAX_CODES_WRITE,
        SCOPE_TAGS_READ,
        SCOPE_TAGS_WRITE,
        SCOPE_WEBHOOKS_READ,
        SCOPE_WEBHOOKS_WRITE,
    }
)
ALL_SCOPES = EXPORT_SCOPES | MASTER_DATA_SCOPES

UPDATE_LIMIT = 100
"""Most items one ``PUT /v3/export-jobs/{jobId}/items`` may carry (413 above it)."""


class ApiError(Exception):
    """A request broke one of Pleo's rules; becomes an ``ExceptionInfo`` response."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"type": self.code, "message": self.message}


def bad_request(message: str) -> ApiError:
    return ApiError(400, codes.BAD_REQUEST, message)


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, codes.EXPORT_NOT_FOUND, f"Export job not found: {job_id}")


# --- records ----------------------------------------------------------------------------------


@dataclass
class Company:
    id: str
    name: str
    wallet_currency: str
    api_key: str
    contra_accounts_mapped: bool = True
    """``False`` makes job creation and export items answer 400 ``MISSING_CONTRA_ACCOUNTS``."""


@dataclass(frozen=True)
class Credential:
    id: str
    """Stable, non-secret name of the credential (shown in ``RequestRecord.credential_id``)."""
    company_id: str
    kind: str
    """``api_key`` (HTTP Basic) or ``token`` (HTTP Bearer)."""
    secret: str
    scopes: frozenset[str]
    companies: frozenset[str] = frozenset()
    """Organisation-level credential: every company it covers (``company_id`` among them).
    Empty for a company-level credential. See :mod:`pleo_export_sandbox.organisations`."""

    def covers(self, company_id: str) -> bool:
        """Whether this credential may act on ``company_id``."""
        return company_id == self.company_id or company_id in self.companies


@dataclass
class JobItemState:
    accounting_entry_id: str
    seq: int
    status: ExportJobItemStatus = ExportJobItemStatus.PENDING
    exported_at: datetime | None = None
    external_id: str | None = None
    external_url: str | None = None
    failure_reason: str | None = None
    failure_reason_type: str | None = None


@dataclass
class JobState:
    id: str
    company_id: str
    seq: int
    created_at: datetime
    last_updated: float
    """Clock reading of the last event or item update (drives expiry)."""
    last_updated_at: datetime
    expires_in: int
    vendor_based_bookkeeping: bool
    is_interactive: bool = True
    created_by: str | None = None
    status: ExportJobStatus = ExportJobStatus.PENDING
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expired_at: datetime | None = None
    failure_reason: str | None = None
    failure_reason_type: str | None = None
    items: dict[str, JobItemState] = field(default_factory=dict)

    def to_model(self) -> ExportJob:
        return ExportJob(
            id=self.id,
            company_id=self.company_id,
            status=self.status,
            created_at=self.created_at,
            expires_in=self.expires_in,
            is_interactive=self.is_interactive,
            number_of_items=len(self.items),
            vendor_based_bookkeeping=self.vendor_based_bookkeeping,
            created_by=self.created_by,
            started_at=self.started_at,
            completed_at=self.completed_at,
            expired_at=self.expired_at,
            last_updated_at=self.last_updated_at,
            failure_reason=self.failure_reason,
            failure_reason_type=self.failure_reason_type,
        )

    def item_model(self, item: JobItemState) -> ExportJobItem:
        return ExportJobItem(
            accounting_entry_id=item.accounting_entry_id,
            export_job_id=self.id,
            status=item.status,
            exported_at=item.exported_at,
            external_id=item.external_id,
            external_url=item.external_url,
            failure_reason=item.failure_reason,
            failure_reason_type=item.failure_reason_type,
        )

    def status_counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in ExportJobItemStatus}
        for item in self.items.values():
            counts[item.status.value] += 1
        return counts


@dataclass(frozen=True)
class ScheduledExport:
    """An export waiting to become a job."""

    accounting_entry_ids: Sequence[str]
    vendor_based_bookkeeping: bool = False
    is_interactive: bool = True
    created_by: str | None = None


@dataclass(frozen=True)
class ItemUpdate:
    """One validated element of a ``PUT .../items`` body."""

    accounting_entry_id: str
    status: ExportJobItemStatus
    exported_at: datetime | None = None
    external_id: str | None = None
    external_url: str | None = None
    failure_reason: str | None = None
    failure_reason_type: str | None = None


@dataclass(frozen=True)
class UpdateError:
    accounting_entry_id: str
    type: str
    message: str
