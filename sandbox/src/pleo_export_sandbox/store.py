"""In-memory state of the sandbox: companies, credentials, accounting entries, export jobs.

The store implements Pleo's rules independently of HTTP, so the ASGI app and the Python API
(``Sandbox.create_job`` and friends) share one behaviour. Every rule violation raises
:class:`ApiError` carrying the HTTP status and the spec's ``ExceptionInfo.type``.

Job state machine (``ExportJobStatus``)::

    pending --started--> in_progress --completed / completed_with_errors--> (final)
    pending | in_progress --failed--> failed
    pending | in_progress --(no event or item update for expiresIn seconds)--> failed(job_expired)

When a job fails (by event or expiry) every item that is not final becomes ``abandoned``.
Expiry is checked lazily, at the start of every store operation.
"""

from __future__ import annotations

import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
)
from pleo_export_sandbox.records import (
    ALL_SCOPES,
    UPDATE_LIMIT,
    ApiError,
    Clock,
    Company,
    Credential,
    ItemUpdate,
    JobItemState,
    JobState,
    ScheduledExport,
    UpdateError,
    bad_request,
    job_not_found,
)

# --- the store --------------------------------------------------------------------------------


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Store:
    """All sandbox state. Not thread-safe: one event loop drives it."""

    def __init__(
        self,
        *,
        clock: Clock,
        start_time: datetime | None,
        job_expires_in: int,
        started_is_idempotent: bool,
        strict_completion: bool,
    ) -> None:
        self.clock = clock
        self.job_expires_in = job_expires_in
        self.started_is_idempotent = started_is_idempotent
        self.strict_completion = strict_completion
        self._start_time = (start_time or datetime.now(UTC)).replace(microsecond=0)
        self._clock_origin: float | None = None
        self.companies: dict[str, Company] = {}
        self.credentials: dict[str, Credential] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.entry_company: dict[str, str] = {}
        self.jobs: dict[str, JobState] = {}
        self.on_job_created: list[Callable[[JobState], None]] = []
        """Called for every new job (the sandbox's webhook emitter listens here)."""
        self.scheduled: dict[str, deque[ScheduledExport]] = {}
        self._seq = 0

    # --- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Sandbox wall-clock time: ``start_time`` plus the clock's progress since first use."""
        reading = self.clock()
        if self._clock_origin is None:
            self._clock_origin = reading
        return self._start_time + timedelta(seconds=reading - self._clock_origin)

    def _at(self, reading: float) -> datetime:
        self.now()
        assert self._clock_origin is not None
        return self._start_time + timedelta(seconds=reading - self._clock_origin)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- companies and credentials ------------------------------------------------------------

    def add_company(
        self,
        name: str,
        wallet_currency: str,
        company_id: str | None = None,
        api_key: str | None = None,
    ) -> Company:
        company_id = company_id or str(uuid.uuid4())
        if not is_uuid(company_id):
            raise ValueError(f"company_id must be a UUID, got {company_id!r}")
        if company_id in self.companies:
            raise ValueError(f"company {company_id} already exists")
        api_key = api_key or f"sandbox-key-{secrets.token_hex(12)}"
        company = Company(company_id, name, wallet_currency, api_key)
        self.companies[company_id] = company
        self.add_credential(company_id, "api_key", api_key, ALL_SCOPES)
        return company

    def add_credential(
        self, company_id: str, kind: str, secret: str, scopes: Iterable[str]
    ) -> Credential:
        self.company(company_id)
        if any(c.kind == kind and c.secret == secret for c in self.credentials.values()):
            raise ValueError(f"that {kind} is already registered")
        number = sum(1 for c in self.credentials.values() if c.kind == kind) + 1
        credential = Credential(
            id=f"{kind}-{number}",
            company_id=company_id,
            kind=kind,
            secret=secret,
            scopes=frozenset(scopes),
        )
        unknown = credential.scopes - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}")
        self.credentials[credential.id] = credential
        return credential

    def find_credential(self, kind: str, secret: str) -> Credential | None:
        for credential in self.credentials.values():
            if credential.kind == kind and secrets.compare_digest(credential.secret, secret):
                return credential
        return None

    def company(self, company_id: str) -> Company:
        try:
            return self.companies[company_id]
        except KeyError:
            raise KeyError(f"unknown company {company_id}") from None

    # --- accounting entries -------------------------------------------------------------------

    def add_entries(self, company_id: str, items: Iterable[dict[str, Any]]) -> list[str]:
        """Store wire-form export items as accounting entries of ``company_id``."""
        self.company(company_id)
        items = list(items)
        ids = [str(item["accountingEntryId"]) for item in items]
        clashes = [i for i in ids if i in self.entries]
        if clashes or len(set(ids)) != len(ids):
            raise ValueError(
                f"accounting entries already exist: {clashes[:3] or ids[:3]}; generate them "
                "with another seed"
            )
        for entry_id, item in zip(ids, items, strict=True):
            if item.get("companyId") != company_id:
                raise ValueError(f"entry {entry_id} belongs to company {item.get('companyId')}")
            self.entries[entry_id] = item
            self.entry_company[entry_id] = company_id
        return ids

    # --- jobs ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Apply what happened with time: expire idle jobs, then start scheduled exports."""
        self._expire_due_jobs()
        self._promote_scheduled()

    def _expire_due_jobs(self) -> None:
        now = self.clock()
        for job in self.jobs.values():
            if job.status.is_finished or now - job.last_updated < job.expires_in:
                continue
            expired_at = self._at(job.last_updated + job.expires_in)
            job.status = ExportJobStatus.FAILED
            job.failure_reason_type = ExportJobFailureReasonType.JOB_EXPIRED.value
            job.failure_reason = (
                f"The export job was not updated for {job.expires_in} seconds and expired."
            )
            job.expired_at = expired_at
            job.completed_at = expired_at
            job.last_updated_at = expired_at
            self._abandon_open_items(job)

    def _promote_scheduled(self) -> None:
        for company_id, queue in self.scheduled.items():
            if queue and self._running_job(company_id) is None:
                export = queue.popleft()
                self._new_job(company_id, export)

    def _running_job(self, company_id: str) -> JobState | None:
        return next(
            (
                j
                for j in self.jobs.values()
                if j.company_id == company_id and not j.status.is_finished
            ),
            None,
        )

    def schedule(self, company_id: str, export: ScheduledExport) -> JobState | None:
        """Queue an export behind the company's unfinished job, as Pleo's export queue does;
        it becomes a pending job once no other job of the company is pending or in progress.
        Returns the job if it could be created at once."""
        self.company(company_id)
        self.refresh()
        queue = self.scheduled.setdefault(company_id, deque())
        if queue or self._running_job(company_id) is not None:
            queue.append(export)
            return None
        return self._new_job(company_id, export)

    @staticmethod
    def _abandon_open_items(job: JobState) -> None:
        for item in job.items.values():
            if not item.status.is_final:
                item.status = ExportJobItemStatus.ABANDONED

    def _touch(self, job: JobState) -> None:
        job.last_updated = self.clock()
        job.last_updated_at = self.now()

    def job(self, job_id: str, company_id: str | None = None) -> JobState:
        """The job, checking expiry first; 404 if unknown or another company's."""
        self.refresh()
        job = self.jobs.get(job_id)
        if job is None or (company_id is not None and job.company_id != company_id):
            raise job_not_found(job_id)
        return job

    def unfinished_job(self, company_id: str) -> JobState | None:
        self.refresh()
        return self._running_job(company_id)

    def create_job(
        self,
        company_id: str,
        accounting_entry_ids: Sequence[str],
        *,
        vendor_based_bookkeeping: bool = False,
        is_interactive: bool = True,
        created_by: str | None = None,
    ) -> JobState:
        company = self.companies.get(company_id)
        if company is None:
            raise bad_request(f"companyId {company_id} is not a company of this sandbox")
        if not company.contra_accounts_mapped:
            raise ApiError(
                400,
                codes.MISSING_CONTRA_ACCOUNTS,
                "Contra accounts are not fully configured. Please map contra accounts in the "
                "Accounting settings.",
            )
        running = self.unfinished_job(company_id)
        if running is not None:
            raise ApiError(
                409,
                codes.EXPORT_ALREADY_IN_PROGRESS,
                f"Export Job already in progress for this company (job {running.id} is "
                f"{running.status.value}).",
            )
        ids = list(dict.fromkeys(accounting_entry_ids))
        if not ids:
            raise bad_request("accountingEntryIds must name at least one accounting entry")
        unknown = [i for i in ids if self.entry_company.get(i) != company_id]
        if unknown:
            raise bad_request(
                f"accountingEntryIds {unknown[:5]} are not accounting entries of company "
                f"{company_id}"
            )
        return self._new_job(
            company_id, ScheduledExport(ids, vendor_based_bookkeeping, is_interactive, created_by)
        )

    def _new_job(self, company_id: str, export: ScheduledExport) -> JobState:
        reading = self.clock()
        now = self.now()
        job = JobState(
            id=str(uuid.uuid4()),
            company_id=company_id,
            seq=self._next_seq(),
            created_at=now,
            last_updated=reading,
            last_updated_at=now,
            expires_in=self.job_expires_in,
            vendor_based_bookkeeping=export.vendor_based_bookkeeping,
            is_interactive=export.is_interactive,
            created_by=export.created_by,
        )
        for entry_id in export.accounting_entry_ids:
            job.items[entry_id] = JobItemState(entry_id, self._next_seq())
        self.jobs[job.id] = job
        for listener in self.on_job_created:
            listener(job)
        return job

    def list_jobs(
        self, company_id: str | None, statuses: Iterable[ExportJobStatus] | None = None
    ) -> list[JobState]:
        """Jobs by ``createdAt`` ascending (creation order breaks ties)."""
        self.refresh()
        wanted = set(statuses) if statuses else None
        jobs = [
            j
            for j in self.jobs.values()
            if (company_id is None or j.company_id == company_id)
            and (wanted is None or j.status in wanted)
        ]
        return sorted(jobs, key=lambda j: (j.created_at, j.seq))

    # --- events -------------------------------------------------------------------------------

    def apply_event(
        self,
        job: JobState,
        event: ExportJobEventType,
        failure_reason: str | None = None,
        failure_reason_type: str | None = None,
    ) -> None:
        self.refresh()
        status = job.status

        def refuse(why: str) -> ApiError:
            return ApiError(
                422,
                codes.INVALID_EXPORT_JOB_STATUS_CHANGE,
                f"Export Job status change failed: {why}",
            )

        if status.is_finished:
            raise refuse(f"job {job.id} is {status.value}; {event.value} is not allowed")
        now = self.now()
        if event is ExportJobEventType.STARTED:
            if status is ExportJobStatus.IN_PROGRESS:
                if not self.started_is_idempotent:
                    raise refuse(f"job {job.id} is already in_progress")
            else:
                job.status = ExportJobStatus.IN_PROGRESS
                job.started_at = now
        elif event is ExportJobEventType.FAILED:
            job.status = ExportJobStatus.FAILED
            job.completed_at = now
            job.failure_reason = failure_reason
            job.failure_reason_type = failure_reason_type
            self._abandon_open_items(job)
        else:
            if status is not ExportJobStatus.IN_PROGRESS:
                raise refuse(f"job {job.id} is {status.value}; send started first")
            open_items = [i for i in job.items.values() if not i.status.is_final]
            if open_items and self.strict_completion:
                raise refuse(
                    f"{len(open_items)} items are still pending or in_progress, e.g. "
                    f"{open_items[0].accounting_entry_id}; update every item first"
                )
            job.status = ExportJobStatus(event.value)
            job.completed_at = now
            if event is ExportJobEventType.COMPLETED_WITH_ERRORS:
                job.failure_reason = failure_reason
                job.failure_reason_type = failure_reason_type
            self._abandon_open_items(job)
        self._touch(job)

    # --- items --------------------------------------------------------------------------------

    def job_items(
        self, job: JobState, status: ExportJobItemStatus | None = None
    ) -> list[JobItemState]:
        self.refresh()
        return [i for i in job.items.values() if status is None or i.status is status]

    def update_items(
        self, job: JobState, updates: Sequence[ItemUpdate]
    ) -> tuple[list[JobItemState], list[UpdateError]]:
        self.refresh()
        if len(updates) > UPDATE_LIMIT:
            raise ApiError(
                413,
                codes.EXPORT_JOB_ITEMS_UPDATE_LIMIT,
                f"Number of items to update is more than {UPDATE_LIMIT} ({len(updates)}).",
            )
        if job.status.is_finished:
            raise ApiError(
                422,
                codes.EXPORT_JOB_STATUS_UNPROCESSABLE,
                f"Export job is finished ({job.status.value}).",
            )
        updated: dict[str, JobItemState] = {}
        errors: list[UpdateError] = []
        for update in updates:
            item = job.items.get(update.accounting_entry_id)
            if item is None:
                errors.append(
                    UpdateError(
                        update.accounting_entry_id,
                        codes.ACCOUNTING_ENTRY_DOES_NOT_EXIST,
                        f"Accounting entry {update.accounting_entry_id} does not exist in "
                        f"export job {job.id}",
                    )
                )
                continue
            if item.status is ExportJobItemStatus.SUCCESSFUL and update.status is not item.status:
                errors.append(
                    UpdateError(
                        update.accounting_entry_id,
                        codes.EXPORT_ENTRY_STATUS_UPDATE_FAILED,
                        f"Accounting entry {update.accounting_entry_id} was already exported "
                        f"successfully; it cannot become {update.status.value}",
                    )
                )
                continue
            # PUT semantics: the element is the item's new tracking state.
            item.status = update.status
            item.exported_at = update.exported_at
            item.external_id = update.external_id
            item.external_url = update.external_url
            item.failure_reason = update.failure_reason
            item.failure_reason_type = update.failure_reason_type
            updated[item.accounting_entry_id] = item
        self._touch(job)
        return list(updated.values()), errors

    def find_job_item(
        self, company_id: str, accounting_entry_id: str
    ) -> tuple[JobState, JobItemState]:
        """The newest job of ``company_id`` holding the entry; 404 ``EXPORT_ENTRY_NOT_FOUND``."""
        self.refresh()
        for job in sorted(self.jobs.values(), key=lambda j: j.seq, reverse=True):
            if job.company_id == company_id and accounting_entry_id in job.items:
                return job, job.items[accounting_entry_id]
        raise ApiError(
            404,
            codes.EXPORT_ENTRY_NOT_FOUND,
            f"Export Job Item not found for accounting entry {accounting_entry_id}",
        )

    def export_entries(self, job: JobState) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, wire item)`` for every entry of a running job (the data layer)."""
        self.refresh()
        if job.status.is_finished:
            raise ApiError(
                422,
                codes.EXPORT_JOB_STATUS_UNPROCESSABLE,
                f"Export Job is finished and can no longer be processed ({job.status.value}).",
            )
        if not self.companies[job.company_id].contra_accounts_mapped:
            raise ApiError(
                400,
                codes.MISSING_CONTRA_ACCOUNTS,
                "Contra accounts are not fully configured. Please map contra accounts in the "
                "Accounting settings.",
            )
        return [(i.seq, self.entries[i.accounting_entry_id]) for i in job.items.values()]
