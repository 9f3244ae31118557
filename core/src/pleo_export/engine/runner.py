"""The export lifecycle, step by step as Pleo's Export API v3 guide defines it.

1. detect pending jobs (``in_progress`` = an interrupted job, resumed without a new ``started``)
2. start the job (``started`` event)
3. pre-export validation (company binding, capabilities, the connector's ``check``, plugins);
   on failure the job gets ``failed`` with a job ``failureReasonType``
4. read every control-layer page (job items) into the state store
5. fetch the data layer (export items) page by page
6. per item: validate, resolve the bookkeeping method, map, look up by reference, post;
   outcomes are recorded in the store and reported in PUT batches of at most 100
7. final event: ``completed``, ``completed_with_errors`` or ``failed``

Rules kept throughout: one job at a time, oldest first; one item's failure never stops the
others; an item whose fate is unknown is looked up in the target before anything is posted
again; every item ends ``successful`` or ``failed`` with a reason.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from pydantic import ValidationError

from pleo_export.bookkeeping import PlanOptions, plan_item
from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorError,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine.classify import classify
from pleo_export.engine.report import JobReport, RunReport
from pleo_export.ledger import ExternalRecord, PostingPlan, PreparedEntry
from pleo_export.logs import redact
from pleo_export.pleo import depth
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import (
    ExportItem,
    ExportJob,
    ExportJobEventType,
    ExportJobItemStatus,
    ExportJobStatus,
    UpdateExportJobItem,
)
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.state.base import ItemOutcome, ItemPhase, ItemRecord, StateStore

log = logging.getLogger("pleo_export.engine")

MAX_REPORT_BATCH = 100
"""Pleo accepts at most 100 item updates per PUT (413 ``EXPORT_JOB_ITEMS_UPDATE_LIMIT``)."""
MAX_FAILURE_REASON = 1000
MAX_ITEM_DEPTH = 32
"""Export items nested deeper than this fail ``validation_failure``. ``ExportItemV3`` is at
most seven levels deep; the limit keeps a hostile item from exhausting the interpreter's
recursion limit anywhere between the client and the connector."""


class Hooks(Protocol):
    """The slice of :class:`~pleo_export.host.PluginHost` the engine calls."""

    def job_started(self, **kwargs: Any) -> None: ...
    def job_finished(self, **kwargs: Any) -> None: ...
    def validate_job(self, **kwargs: Any) -> Sequence[Any]: ...
    def validate_item(self, **kwargs: Any) -> Sequence[Any]: ...
    def map_item(self, **kwargs: Any) -> Any: ...
    def classify_error(self, **kwargs: Any) -> ConnectorError | None: ...
    def item_outcome(self, **kwargs: Any) -> None: ...


class Progress(Protocol):
    def job_started(self, job: ExportJob, items: int) -> None: ...
    def item_done(self, job: ExportJob, succeeded: bool) -> None: ...
    def job_finished(self, job: ExportJob, report: JobReport) -> None: ...


class _NoProgress:
    def job_started(self, job: ExportJob, items: int) -> None:
        pass

    def item_done(self, job: ExportJob, succeeded: bool) -> None:
        pass

    def job_finished(self, job: ExportJob, report: JobReport) -> None:
        pass


@dataclass
class EngineOptions:
    company_id: str | None = None
    """The Pleo company this installation exports; jobs of other companies fail validation."""
    dry_run: bool = False
    report_batch_size: int = MAX_REPORT_BATCH
    report_interval: float = 30.0
    """Report outcomes at least this often (seconds) so a slow job never expires in Pleo."""
    post_attempts: int = 4
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    plan: PlanOptions = field(default_factory=PlanOptions)
    on_preview: Callable[[PreparedEntry], None] | None = None
    """Dry run: called with each entry that would be posted."""


class JobGone(Exception):
    """Pleo finished the job underneath us (expired, cancelled): stop working on it."""


class ExportEngine:
    def __init__(
        self,
        *,
        client: PleoClient,
        connector: Connector[Any],
        store: StateStore,
        hooks: Hooks,
        options: EngineOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.connector = connector
        self.manifest = type(connector).manifest
        self.store = store
        self.hooks = hooks
        self.options = options or EngineOptions()
        self.progress: Progress = progress or _NoProgress()
        self.unavailable: JobRejected | None = None
        """Set when the connector could not open; every job then fails pre-export validation."""
        self._aborted: JobRejected | None = None
        self._final_in_pleo: Counter[str] = Counter()
        self._last_flush = 0.0
        self._recorded_since_flush = 0
        """Outcomes recorded since the last report: spares a store query per item."""
        self.lease_check: Callable[[], None] | None = None
        """Set while a company lease covers the current job (engine/leases.py): raises
        ``LeaseLost`` once the lease is gone. Checked in memory at every item boundary and
        before anything is sent to Pleo, so a worker that lost its lease stops there."""
        self._batching = (
            Capability.BATCH_POSTING in self.manifest.capabilities and not self.options.dry_run
        )
        self._batch: dict[str, PreparedEntry] = {}
        """BATCH_POSTING: prepared entries of the current job waiting for ``post_batch``, by
        accounting entry id, in the order they were prepared."""
        self._batch_limit = 1
        if not 1 <= self.options.report_batch_size <= MAX_REPORT_BATCH:
            raise ValueError(f"report_batch_size must be between 1 and {MAX_REPORT_BATCH}")

    # --- detection -------------------------------------------------------------------------

    async def pending_jobs(self) -> list[ExportJob]:
        """Jobs to work on: pending, plus in_progress ones (interrupted), oldest first."""
        try:
            jobs = await self.client.list_jobs(
                self.options.company_id, [ExportJobStatus.PENDING, ExportJobStatus.IN_PROGRESS]
            )
        except pleo_errors.PleoApiError as error:
            log.error(
                "could not list export jobs in Pleo; nothing was started",
                extra={
                    "event": "jobs.detect_failed",
                    "error_type": type(error).__name__,
                    "error": str(error),
                },
            )
            raise
        return sorted(jobs, key=lambda j: (j.created_at, j.id))

    async def run_pending(self, *, max_jobs: int | None = None) -> RunReport:
        """Process pending jobs one at a time, oldest first, until none is left.

        Pleo allows one unfinished job per company, so the next export of a company only
        appears once the current job is finished: detection repeats after every job.
        """
        report = RunReport()
        seen: set[str] = set()
        while max_jobs is None or len(seen) < max_jobs:
            fresh = [job for job in await self.pending_jobs() if job.id not in seen]
            if not fresh:
                break
            job = fresh[0]
            seen.add(job.id)
            job_report = await self.process(job)
            if job_report is None:
                report.skipped_jobs.append(job.id)
            else:
                report.jobs.append(job_report)
            if self.options.dry_run:
                # Nothing changes in Pleo during a dry run, so no further job can appear.
                for other in fresh[1:]:
                    if max_jobs is not None and len(seen) >= max_jobs:
                        break
                    seen.add(other.id)
                    other_report = await self.process(other)
                    if other_report is not None:
                        report.jobs.append(other_report)
                break
        return report

    async def run_job(self, job_id: str) -> JobReport | None:
        """Process one job by id (the manual trigger)."""
        return await self.process(await self.client.get_job(job_id))

    # --- one job ---------------------------------------------------------------------------

    async def process(self, job: ExportJob) -> JobReport | None:
        """Run the lifecycle for ``job``; ``None`` when the job is not ours to process.

        A Pleo API error that outlasts the client's retries stops the job (and the run): it is
        logged as ``job.interrupted`` and raised. The outbox keeps every outcome recorded so
        far, and the next run resumes the job from there.
        """
        try:
            return await self._process(job)
        except pleo_errors.PleoApiError as error:
            log.error(
                "Pleo API call failed; the job stops here and is resumed by the next run",
                extra=_ctx(
                    job, event="job.interrupted", error_type=type(error).__name__, error=str(error)
                ),
            )
            raise

    async def _process(self, job: ExportJob) -> JobReport | None:
        if job.status.is_finished:
            log.info("job already finished", extra=_ctx(job, event="job.skip", status=job.status))
            return None
        report = JobReport(job_id=job.id, company_id=job.company_id, dry_run=self.options.dry_run)
        await self.store.upsert_job(job.id, job.company_id)
        claimed = await self._start(job, report)
        if claimed is None:
            return None
        job = claimed
        self.hooks.job_started(job=job, resumed=report.resumed)
        try:
            problem = await self.pre_export_validation(job)
            if problem is not None:
                await self._fail_job(job, report, *problem)
                return report
            try:
                await self._read_control_layer(job, report)
                self.progress.job_started(job, report.items_total)
                await self._flush(job, report, force=True)
                await self._process_items(job, report)
            except pleo_errors.JobStatusUnprocessable as error:
                raise JobGone(
                    f"Pleo no longer serves job {job.id} ({error.message}); it has probably "
                    "expired or been cancelled"
                ) from error
            except pleo_errors.MissingContraAccounts as error:
                await self._fail_job(
                    job,
                    report,
                    JobReason.MISSING_CONFIGURATION,
                    "Pleo will not hand out export items until every Pleo account has a contra "
                    f"account: map them in Pleo's accounting settings ({error.message})",
                )
                return report
            await self._flush(job, report, force=True)
            await self._complete(job, report)
        except JobGone as gone:
            report.final_event = None
            report.failure_reason = str(gone)
            counts = await self.store.counts(job.id)
            report.unacknowledged = counts.unreported
            log.error(
                "job ended on Pleo's side before it was completed",
                extra=_ctx(job, event="job.gone", reason=str(gone)),
            )
        self.progress.job_finished(job, report)
        self.hooks.job_finished(job=job, report=report)
        return report

    async def _start(self, job: ExportJob, report: JobReport) -> ExportJob | None:
        if job.status is ExportJobStatus.IN_PROGRESS:
            report.resumed = True
            log.info("resuming interrupted job", extra=_ctx(job, event="job.resume"))
            return job
        if self.options.dry_run:
            return job
        try:
            await self.client.send_event(job.id, ExportJobEventType.STARTED)
        except pleo_errors.InvalidJobStatusChange:
            current = await self.client.get_job(job.id)
            record = await self.store.get_job(job.id)
            if current.status is ExportJobStatus.IN_PROGRESS and record and record.started_by_us:
                report.resumed = True
                return current
            log.warning(
                "job was claimed elsewhere or changed state; leaving it alone",
                extra=_ctx(job, event="job.claimed_elsewhere", status=current.status),
            )
            return None
        await self.store.mark_started(job.id)
        log.info("job started", extra=_ctx(job, event="job.started", items=job.number_of_items))
        # Pleo answered 202: the job is in progress now. Re-reading it would cost a call per job
        # and tell nothing the engine uses.
        return job.model_copy(update={"status": ExportJobStatus.IN_PROGRESS})

    async def pre_export_validation(self, job: ExportJob) -> tuple[JobReason, str] | None:
        """Pre-export validation: the problem that prevents ``job`` from running, or ``None``."""
        if self.unavailable is not None:
            return self.unavailable.reason_type, self.unavailable.message
        company = self.options.company_id
        if company and job.company_id != company:
            return (
                JobReason.INVALID_CONFIGURATION,
                f"job belongs to company {job.company_id} but this installation is bound to "
                f"company {company} (pleo.company_id): fix the configuration",
            )
        capabilities = self.manifest.capabilities
        if job.vendor_based_bookkeeping and Capability.ACCOUNTS_PAYABLE not in capabilities:
            return (
                JobReason.INVALID_CONFIGURATION,
                f"the job uses vendor-based bookkeeping but connector {self.manifest.id!r} "
                "does not support accounts payable: turn vendor-based bookkeeping off in Pleo's "
                "accounting settings or use a connector that supports it",
            )
        try:
            await self._with_retries(lambda: self.connector.check(job), during="check")
        except JobRejected as rejected:
            return rejected.reason_type, rejected.message
        except TargetTemporarilyUnavailable as unavailable:
            return JobReason.ACCOUNTING_SYSTEM_UNREACHABLE, unavailable.message
        except ConnectorError as error:
            return JobReason.VALIDATION_FAILURE, error.message
        problems = self.hooks.validate_job(job=job, manifest=self.manifest)
        if problems:
            return _job_reason(problems[0].reason_type), "; ".join(p.message for p in problems)
        return None

    async def _fail_job(
        self,
        job: ExportJob,
        report: JobReport,
        reason: JobReason,
        message: str,
    ) -> None:
        message = redact(message)
        report.failure_reason_type = reason.value
        report.failure_reason = message
        log.error(
            "pre-export validation failed",
            extra=_ctx(job, event="job.validation_failed", reason_type=reason.value),
        )
        if self.options.dry_run:
            report.final_event = None
        else:
            await self._send_final(job, ExportJobEventType.FAILED, reason, message)
            report.final_event = ExportJobEventType.FAILED.value
            await self.store.finish_job(job.id, ExportJobEventType.FAILED.value, message)
        self.progress.job_finished(job, report)
        self.hooks.job_finished(job=job, report=report)

    async def _read_control_layer(self, job: ExportJob, report: JobReport) -> None:
        statuses: Counter[str] = Counter()
        async for page in self.client.iter_job_items(job.id):
            await self.store.add_items(
                job.id, [(item.accounting_entry_id, item.status.value) for item in page]
            )
            statuses.update(item.status.value for item in page)
        report.items_total = sum(statuses.values())
        self._final_in_pleo = statuses
        report.already_final = sum(
            n for status, n in statuses.items() if ExportJobItemStatus(status).is_final
        )

    # --- items -----------------------------------------------------------------------------

    async def _process_items(self, job: ExportJob, report: JobReport) -> None:
        self._aborted = None
        self._last_flush = anyio.current_time()
        self._batch = {}
        if self._batching:
            self._batch_limit = max(1, self.connector.batch_size())
        dry_seen: set[str] = set()  # a dry run records nothing, so it remembers what it showed
        async for page in self.client.iter_export_items(job.id):
            page_seen: set[str] = set()
            known = await self.store.get_items(
                job.id, [e for e in map(_entry_id, page) if e is not None]
            )
            for raw in page:
                entry_id = _entry_id(raw)
                if entry_id is None:
                    log.error(
                        "export item without accountingEntryId ignored",
                        extra=_ctx(job, event="item.unidentifiable"),
                    )
                    continue
                if entry_id in page_seen or entry_id in self._batch:
                    continue  # a repeat of an item already handled (the snapshot is older)
                page_seen.add(entry_id)
                record = known.get(entry_id)
                if record is None:
                    log.warning(
                        "export item not among the job's items; ignored",
                        extra=_ctx(job, event="item.not_in_job", accounting_entry_id=entry_id),
                    )
                    continue
                if record.phase not in (ItemPhase.QUEUED, ItemPhase.POSTING):
                    continue
                if self.options.dry_run:
                    if entry_id in dry_seen:
                        continue
                    dry_seen.add(entry_id)
                await self._process_item(job, report, record, raw)
                if len(self._batch) >= self._batch_limit:
                    await self._post_batch(job, report)
                await self._flush(job, report)
        if self._batch:
            await self._post_batch(job, report)
        # Control-layer items for which Pleo returned no data.
        for record in await self.store.items(job.id, [ItemPhase.QUEUED, ItemPhase.POSTING]):
            if record.accounting_entry_id in dry_seen:
                continue
            await self._process_item(job, report, record, None)
            await self._flush(job, report)

    async def _process_item(
        self, job: ExportJob, report: JobReport, record: ItemRecord, raw: dict[str, Any] | None
    ) -> None:
        if self.lease_check is not None:
            self.lease_check()
        entry_id = record.accounting_entry_id
        uncertain = record.phase is ItemPhase.POSTING
        try:
            outcome = await self._outcome_for(job, report, entry_id, raw, uncertain)
        except ConnectorError as error:
            rejected = self._as_item_failure(error)
            outcome = ItemOutcome(
                succeeded=False,
                failure_reason_type=rejected.reason_type.value,
                failure_reason=rejected.message[:MAX_FAILURE_REASON],
            )
        if outcome is None:  # dry run, or waiting in a batch
            return
        if self.options.dry_run:
            if not outcome.succeeded:
                reason = redact(outcome.failure_reason or "")
                report.add_failure(entry_id, outcome.failure_reason_type or "", reason)
            return
        await self._record(job, report, entry_id, outcome)

    async def _record(
        self, job: ExportJob, report: JobReport, entry_id: str, outcome: ItemOutcome
    ) -> None:
        outcome = _redacted(outcome)  # a connector's error text may quote its secrets
        await self.store.record_outcome(job.id, entry_id, outcome)
        self._recorded_since_flush += 1
        if outcome.succeeded:
            if outcome.recovered:
                report.recovered += 1
            else:
                report.posted += 1
        else:
            report.add_failure(
                entry_id, outcome.failure_reason_type or "", outcome.failure_reason or ""
            )
        log.info(
            "item %s",
            "exported" if outcome.succeeded else "failed",
            extra=_ctx(
                job,
                event="item.outcome",
                accounting_entry_id=entry_id,
                succeeded=outcome.succeeded,
                recovered=outcome.recovered,
                external_id=outcome.external_id,
                reason_type=outcome.failure_reason_type,
            ),
        )
        self.hooks.item_outcome(job=job, accounting_entry_id=entry_id, outcome=outcome)
        self.progress.item_done(job, outcome.succeeded)

    async def _outcome_for(
        self,
        job: ExportJob,
        report: JobReport,
        entry_id: str,
        raw: dict[str, Any] | None,
        uncertain: bool,
    ) -> ItemOutcome | None:
        if self._aborted is not None:
            raise ItemRejected(
                _item_reason_for_job(self._aborted.reason_type),
                f"not exported: the accounting system stopped accepting entries during this job "
                f"({self._aborted.message})",
            )
        lookup = Capability.LOOKUP_BY_REFERENCE in self.manifest.capabilities
        if raw is None:
            if uncertain and lookup:
                found = await self._lookup(entry_id)
                if found is not None:
                    return _success(found, recovered=True)
            raise ItemRejected(
                ItemReason.VALIDATION_FAILURE,
                "Pleo listed this entry in the job but returned no export item data for it: "
                "export the expense again from Pleo",
            )
        item = _parse_item(raw)
        problems = self.hooks.validate_item(item=item, job=job)
        if problems:
            first = problems[0]
            raise ItemRejected(
                _item_reason(first.reason_type), "; ".join(p.message for p in problems)
            )
        plan = plan_item(item, job, self.options.plan)
        plan = self._apply_mapping_override(plan)
        self._check_attachment_limits(plan)
        if lookup:
            found = await self._lookup(entry_id)
            if found is not None:
                if self.options.dry_run:
                    report.recovered += 1
                    return None
                return _success(found, recovered=True)
        elif uncertain:
            raise ItemRejected(
                ItemReason.UNEXPECTED_FAILURE,
                f"an earlier attempt to post this entry was interrupted and connector "
                f"{self.manifest.id!r} cannot look entries up by reference: check the accounting "
                f"system for an entry with reference {entry_id}; if it is missing, export the "
                "expense again",
            )
        prepared = await self._with_retries(lambda: self.connector.prepare(plan), during="prepare")
        if self.options.dry_run:
            report.would_post += 1
            if self.options.on_preview is not None:
                self.options.on_preview(prepared)
            return None
        if self._batching:
            self._batch[entry_id] = prepared
            return None
        return await self._post(job, entry_id, prepared, lookup)

    async def _post(
        self, job: ExportJob, entry_id: str, prepared: PreparedEntry, lookup: bool
    ) -> ItemOutcome:
        attempts = self.options.post_attempts
        for attempt in range(1, attempts + 1):
            await self.store.record_intent(job.id, entry_id)
            try:
                record = await self.connector.post(prepared)
            except Exception as error:
                classified = self._classify(error, during="post")
                if isinstance(classified, ItemRejected):
                    raise classified from error
                if isinstance(classified, JobRejected):
                    self._aborted = classified
                    raise ItemRejected(
                        _item_reason_for_job(classified.reason_type), classified.message
                    ) from error
                if isinstance(classified, TargetTemporarilyUnavailable):
                    if attempt == attempts:
                        raise self._as_item_failure(classified) from error
                    await self._backoff(attempt, classified.retry_after, entry_id, classified)
                    continue
                # Uncertain: the entry may exist now. Never post again without looking.
                log.warning(
                    "posting did not confirm; the entry may or may not be in the target",
                    extra=_ctx(
                        job,
                        event="target.uncertain",
                        accounting_entry_id=entry_id,
                        attempt=attempt,
                        lookup=lookup,
                        reason=classified.message,
                    ),
                )
                if lookup:
                    try:
                        found = await self._lookup(entry_id)
                    except ConnectorError as lookup_error:
                        if isinstance(lookup_error, JobRejected):
                            self._aborted = lookup_error
                        raise _unconfirmed(entry_id, classified, lookup_error) from lookup_error
                    if found is not None:
                        return _success(found, recovered=True)
                    if attempt < attempts:
                        await self._backoff(attempt, None, entry_id, classified)
                        continue
                raise _unconfirmed(entry_id, classified) from error
            return _success(record, recovered=False)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_batch(self, job: ExportJob, report: JobReport) -> None:
        """Post the collected entries with ``post_batch`` and record every entry's outcome.

        The same rules as for single posts: intents are durable before the call; a transient
        failure retries the batch; an uncertain one looks every entry up by reference and
        re-posts only those not found; nothing is re-posted without a lookup.
        """
        if self.lease_check is not None:
            self.lease_check()
        pending, self._batch = list(self._batch.items()), {}
        lookup = Capability.LOOKUP_BY_REFERENCE in self.manifest.capabilities
        attempts = self.options.post_attempts
        attempt = 0
        while pending:
            attempt += 1
            for entry_id, _ in pending:
                await self.store.record_intent(job.id, entry_id)
            try:
                results = list(await self.connector.post_batch([p for _, p in pending]))
                if len(results) != len(pending):
                    raise OutcomeUncertain(
                        f"post_batch answered {len(results)} results for {len(pending)} entries"
                    )
            except Exception as error:
                classified = self._classify(error, during="post")
                log.warning(
                    "batch post failed",
                    extra=_ctx(
                        job,
                        event="batch.error",
                        entries=len(pending),
                        attempt=attempt,
                        kind=type(classified).__name__,
                        reason=classified.message,
                    ),
                )
                if isinstance(classified, TargetTemporarilyUnavailable) and attempt < attempts:
                    await self._backoff(attempt, classified.retry_after, None, classified)
                    continue
                terminal = (ItemRejected, JobRejected, TargetTemporarilyUnavailable)
                if isinstance(classified, terminal):
                    await self._fail_all(job, report, pending, self._as_item_failure(classified))
                    return
                if not lookup:
                    for entry_id, _ in pending:
                        failure = _unconfirmed(entry_id, classified)
                        await self._fail_all(job, report, [(entry_id, None)], failure)
                    return
                remaining: list[tuple[str, PreparedEntry]] = []
                for entry_id, prepared in pending:
                    try:
                        found = await self._lookup(entry_id)
                    except ConnectorError as lookup_error:
                        if isinstance(lookup_error, JobRejected):
                            self._aborted = lookup_error
                        failure = _unconfirmed(entry_id, classified, lookup_error)
                        await self._fail_all(job, report, [(entry_id, None)], failure)
                        continue
                    if found is not None:
                        await self._record(job, report, entry_id, _success(found, recovered=True))
                    elif attempt < attempts:
                        remaining.append((entry_id, prepared))
                    else:
                        failure = _unconfirmed(entry_id, classified)
                        await self._fail_all(job, report, [(entry_id, None)], failure)
                pending = remaining
                if pending:
                    await self._backoff(attempt, None, None, classified)
                continue
            for (entry_id, _), result in zip(pending, results, strict=True):
                if isinstance(result, ItemRejected):
                    await self._fail_all(job, report, [(entry_id, None)], result)
                else:
                    await self._record(job, report, entry_id, _success(result, recovered=False))
            return

    async def _fail_all(
        self,
        job: ExportJob,
        report: JobReport,
        entries: Sequence[tuple[str, PreparedEntry | None]],
        failure: ItemRejected,
    ) -> None:
        outcome = ItemOutcome(
            succeeded=False,
            failure_reason_type=failure.reason_type.value,
            failure_reason=failure.message[:MAX_FAILURE_REASON],
        )
        for entry_id, _ in entries:
            await self._record(job, report, entry_id, outcome)

    def _as_item_failure(self, error: ConnectorError) -> ItemRejected:
        """Any connector error, turned into this item's failure (and the job's abort)."""
        if isinstance(error, ItemRejected):
            return error
        if isinstance(error, JobRejected):
            self._aborted = error
            return ItemRejected(_item_reason_for_job(error.reason_type), error.message)
        if isinstance(error, TargetTemporarilyUnavailable):
            return ItemRejected(
                error.reason_type,
                f"{error.message} (still failing after {self.options.post_attempts} attempts; "
                "nothing was written for this entry: export it again later)",
            )
        return ItemRejected(ItemReason.UNEXPECTED_FAILURE, error.message)

    async def _lookup(self, entry_id: str) -> ExternalRecord | None:
        found: ExternalRecord | None = await self._with_retries(
            lambda: self.connector.find_existing(entry_id), during="lookup"
        )
        return found

    def _apply_mapping_override(self, plan: PostingPlan) -> PostingPlan:
        override = self.hooks.map_item(plan=plan)
        if override is None:
            return plan
        if not isinstance(override, PostingPlan):
            raise ItemRejected(
                ItemReason.UNEXPECTED_FAILURE,
                f"a plugin's pleo_export_map_item returned {type(override).__name__}, not a "
                "PostingPlan: fix or disable that plugin",
            )
        for entry in override.entries:
            if entry.balance != 0:
                raise ItemRejected(
                    ItemReason.VALIDATION_FAILURE,
                    f"a plugin's mapping override produced an entry that does not balance "
                    f"(off by {entry.balance} minor units): fix or disable that plugin",
                )
        return override

    def _check_attachment_limits(self, plan: PostingPlan) -> None:
        limit = self.manifest.limits.max_attachment_bytes
        if limit is None or Capability.ATTACHMENTS not in self.manifest.capabilities:
            return
        for index, file in enumerate(plan.attachments):
            if file.size > limit:
                raise ItemRejected(
                    ItemReason.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED,
                    f"files[{index}] is {file.size} bytes ({file.type}) but "
                    f"{self.manifest.display_name} accepts at most {limit} bytes per file: "
                    "replace the receipt in Pleo with a smaller file (compress or split it)",
                )

    # --- errors and retries ----------------------------------------------------------------

    def _classify(self, error: BaseException, *, during: str) -> ConnectorError:
        """Retryable, terminal or uncertain: see :mod:`pleo_export.engine.classify`."""
        return classify(
            error,
            during=during,
            plugins=self.hooks.classify_error,
            connector=self.connector.classify_error,
            manifest=self.manifest,
        )

    async def _with_retries(self, call: Callable[[], Awaitable[Any]], *, during: str) -> Any:
        attempts = self.options.post_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except Exception as error:
                classified = self._classify(error, during=during)
                if isinstance(classified, TargetTemporarilyUnavailable) and attempt < attempts:
                    await self._backoff(attempt, classified.retry_after, None, classified)
                    continue
                if classified is error:
                    raise
                raise classified from error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _backoff(
        self, attempt: int, retry_after: float | None, entry_id: str | None, error: Exception
    ) -> None:
        delay = min(
            self.options.retry_max_delay, self.options.retry_base_delay * 2 ** (attempt - 1)
        )
        if retry_after is not None:
            delay = max(delay, retry_after)
        log.info(
            "target not available, retrying",
            extra={
                "event": "target.retry",
                "attempt": attempt,
                "delay_s": delay,
                "accounting_entry_id": entry_id,
                "reason": str(error),
            },
        )
        await anyio.sleep(delay)

    # --- reporting -------------------------------------------------------------------------

    async def _flush(self, job: ExportJob, report: JobReport, *, force: bool = False) -> None:
        """Send recorded outcomes to Pleo: full batches now, the rest when due or forced."""
        if self.options.dry_run:
            return
        batch_size = self.options.report_batch_size
        waiting = anyio.current_time() - self._last_flush < self.options.report_interval
        if not force and self._recorded_since_flush < batch_size and waiting:
            return
        stuck_rounds = 0
        while True:
            pending = await self.store.unreported(job.id, batch_size)
            if not pending:
                self._recorded_since_flush = 0
                return
            due = anyio.current_time() - self._last_flush
            if len(pending) < batch_size and not force and due < self.options.report_interval:
                return
            acknowledged = await self._report_batch(job, pending)
            self._recorded_since_flush = max(0, self._recorded_since_flush - len(acknowledged))
            report.reported += len(acknowledged)
            self._last_flush = anyio.current_time()
            if len(acknowledged) < len(pending):
                stuck_rounds += 1
                if stuck_rounds >= 3:
                    taken = set(acknowledged)
                    refused = [
                        r.accounting_entry_id for r in pending if r.accounting_entry_id not in taken
                    ]
                    await self.store.mark_reported(job.id, refused)
                    report.unacknowledged += len(refused)
                    log.error(
                        "Pleo refused these item updates three times; giving up on them (their "
                        "status in Pleo stays as Pleo has it; see `pleo-export jobs --job`)",
                        extra=_ctx(job, event="report.refused", count=len(refused)),
                    )
                    continue
                await anyio.sleep(self.options.retry_base_delay)

    async def _report_batch(self, job: ExportJob, records: Sequence[ItemRecord]) -> list[str]:
        if self.lease_check is not None:
            self.lease_check()
        updates = [_update_for(r) for r in records]
        try:
            result = await self.client.update_items(job.id, updates)
        except pleo_errors.JobStatusUnprocessable as error:
            raise JobGone(
                f"Pleo no longer accepts updates for job {job.id} ({error.message}); it has "
                "probably expired or been cancelled. Entries already posted are found again by "
                "reference when the expenses are exported in a new job"
            ) from error
        retry_codes = {
            pleo_errors.EXPORT_ENTRY_STATUS_UPDATE_FAILED,
            pleo_errors.ACCOUNTING_ENTRY_UPDATE_FAILED,
        }
        retry = {e.accounting_entry_id for e in result.errors if e.type in retry_codes}
        for refused in result.errors:
            log.warning(
                "Pleo refused an item update",
                extra=_ctx(
                    job,
                    event="report.item_error",
                    accounting_entry_id=refused.accounting_entry_id,
                    code=refused.type,
                    message=refused.message,
                ),
            )
        acknowledged = [
            r.accounting_entry_id for r in records if r.accounting_entry_id not in retry
        ]
        await self.store.mark_reported(job.id, acknowledged)
        log.info(
            "outcomes reported",
            extra=_ctx(job, event="report.batch", count=len(acknowledged), refused=len(retry)),
        )
        return acknowledged

    # --- completion ------------------------------------------------------------------------

    async def _complete(self, job: ExportJob, report: JobReport) -> None:
        if self.options.dry_run:
            return
        counts = await self.store.counts(job.id)
        pleo_failed = self._final_in_pleo.get(ExportJobItemStatus.FAILED.value, 0)
        pleo_failed += self._final_in_pleo.get(ExportJobItemStatus.ABANDONED.value, 0)
        pleo_ok = self._final_in_pleo.get(ExportJobItemStatus.SUCCESSFUL.value, 0)
        failed = counts.failed + pleo_failed
        succeeded = counts.succeeded + pleo_ok
        if counts.queued or counts.posting:
            raise AssertionError(f"job {job.id} has items without an outcome")  # engine bug
        if failed == 0:
            event, reason, message = ExportJobEventType.COMPLETED, None, None
        elif succeeded:
            event, reason, message = ExportJobEventType.COMPLETED_WITH_ERRORS, None, None
        else:
            event = ExportJobEventType.FAILED
            reason, message = await self._job_failure_from_items(job, failed)
        await self._send_final(job, event, reason, message)
        report.final_event = event.value
        report.failure_reason_type = reason.value if reason else None
        report.failure_reason = message
        await self.store.finish_job(job.id, event.value, message)
        log.info(
            "job finished",
            extra=_ctx(
                job,
                event="job.finished",
                final_event=event.value,
                posted=report.posted,
                recovered=report.recovered,
                failed=report.failed,
            ),
        )

    async def _job_failure_from_items(self, job: ExportJob, failed: int) -> tuple[JobReason, str]:
        if self._aborted is not None:
            return self._aborted.reason_type, redact(self._aborted.message)
        types: Counter[str] = Counter()
        for record in await self.store.items(job.id, [ItemPhase.FAILED]):
            if record.outcome and record.outcome.failure_reason_type:
                types[record.outcome.failure_reason_type] += 1
        common = types.most_common(1)
        reason_type = common[0][0] if common else ItemReason.VALIDATION_FAILURE.value
        try:
            reason = JobReason(reason_type)
        except ValueError:
            reason = JobReason.VALIDATION_FAILURE
        return reason, (
            f"none of the {failed} items could be exported; most common reason: {reason_type}. "
            "Open the job in Pleo and review the item errors"
        )

    async def _send_final(
        self,
        job: ExportJob,
        event: ExportJobEventType,
        reason: JobReason | None,
        message: str | None,
    ) -> None:
        if self.lease_check is not None:
            self.lease_check()
        try:
            await self.client.send_event(
                job.id,
                event,
                failure_reason=message[:MAX_FAILURE_REASON] if message else None,
                failure_reason_type=reason,
            )
        except pleo_errors.InvalidJobStatusChange as error:
            current = await self.client.get_job(job.id)
            if current.status.value == event.value:
                return  # an earlier attempt of ours landed; the event is sent exactly once
            raise JobGone(
                f"Pleo refused the final event {event.value} for job {job.id}: the job is "
                f"{current.status.value} ({current.failure_reason_type or 'no reason given'})"
            ) from error


# --- helpers ---------------------------------------------------------------------------------


def _ctx(job: ExportJob, **fields: Any) -> dict[str, Any]:
    return {"job_id": job.id, "company_id": job.company_id, **fields}


def _entry_id(raw: Any) -> str | None:
    entry_id = raw.get("accountingEntryId") if isinstance(raw, dict) else None
    return entry_id if isinstance(entry_id, str) else None


def _unconfirmed(
    entry_id: str, error: ConnectorError, lookup_error: ConnectorError | None = None
) -> ItemRejected:
    looked = (
        f" and looking it up by reference failed too ({lookup_error.message})"
        if lookup_error is not None
        else ""
    )
    return ItemRejected(
        ItemReason.UNEXPECTED_FAILURE,
        f"posting did not confirm ({error.message}){looked}; the entry may or may not be in "
        f"the accounting system: check for reference {entry_id} there before exporting the "
        "expense again",
    )


def _redacted(outcome: ItemOutcome) -> ItemOutcome:
    """``outcome`` with registered secrets (see :func:`pleo_export.logs.redact`) masked."""
    if not outcome.failure_reason:
        return outcome
    return dataclasses.replace(outcome, failure_reason=redact(outcome.failure_reason))


def _success(record: ExternalRecord, *, recovered: bool) -> ItemOutcome:
    return ItemOutcome(
        succeeded=True,
        external_id=record.external_id,
        external_url=record.external_url,
        exported_at=record.exported_at,
        recovered=recovered,
    )


def _update_for(record: ItemRecord) -> UpdateExportJobItem:
    outcome = record.outcome
    if outcome is None:  # the store only returns outcome-bearing items as unreported
        raise AssertionError(f"item {record.accounting_entry_id} has no outcome")
    if outcome.succeeded:
        return UpdateExportJobItem(
            accounting_entry_id=record.accounting_entry_id,
            status=ExportJobItemStatus.SUCCESSFUL,
            external_id=outcome.external_id,
            external_url=outcome.external_url,
            exported_at=outcome.exported_at,
        )
    return UpdateExportJobItem(
        accounting_entry_id=record.accounting_entry_id,
        status=ExportJobItemStatus.FAILED,
        failure_reason_type=_item_reason(outcome.failure_reason_type or ""),
        failure_reason=outcome.failure_reason,
    )


def _parse_item(raw: dict[str, Any]) -> ExportItem:
    path = depth.too_deep(raw, MAX_ITEM_DEPTH)
    if path is not None:
        shown = ".".join(path[:3]) + (".…" if len(path) > 3 else "")
        raise ItemRejected(
            ItemReason.VALIDATION_FAILURE,
            f"the export item from Pleo is nested more than {MAX_ITEM_DEPTH} levels deep (at "
            f"{shown[:200]}), deeper than any export item can be: correct the expense in Pleo "
            "and export it again",
        )
    try:
        return ExportItem.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        raise ItemRejected(
            ItemReason.VALIDATION_FAILURE,
            f"the export item from Pleo does not match the Export API schema ({details}): "
            "correct the expense in Pleo and export it again",
        ) from None


def _item_reason(value: str) -> ItemReason:
    try:
        return ItemReason(value)
    except ValueError:
        return ItemReason.VALIDATION_FAILURE


def _job_reason(value: str) -> JobReason:
    try:
        return JobReason(value)
    except ValueError:
        return JobReason.VALIDATION_FAILURE


def _item_reason_for_job(reason: JobReason) -> ItemReason:
    try:
        return ItemReason(reason.value)
    except ValueError:
        return ItemReason.UNEXPECTED_FAILURE
