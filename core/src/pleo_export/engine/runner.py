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

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorError,
    JobRejected,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine.classify import classify
from pleo_export.engine.delivery import Delivery
from pleo_export.engine.job import JobGone, JobRun
from pleo_export.engine.options import (
    MAX_FAILURE_REASON,
    MAX_ITEM_DEPTH,
    MAX_REPORT_BATCH,
    EngineOptions,
    Hooks,
    NoProgress,
    Progress,
)
from pleo_export.engine.prefetch import read_ahead
from pleo_export.engine.reconcile import reconcile
from pleo_export.engine.report import JobReport, RunReport
from pleo_export.engine.reporting import Reporter
from pleo_export.engine.retry import Retries
from pleo_export.logs import redact
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import (
    ExportJob,
    ExportJobEventType,
    ExportJobItemStatus,
    ExportJobStatus,
)
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.state.base import ItemPhase, StateStore

__all__ = [
    "MAX_FAILURE_REASON",
    "MAX_ITEM_DEPTH",
    "MAX_REPORT_BATCH",
    "EngineOptions",
    "ExportEngine",
    "Hooks",
    "JobGone",
    "Progress",
]

log = logging.getLogger("pleo_export.engine")


class ExportEngine:
    """The lifecycle of a job over one connector, one state store and one Pleo client.

    The engine holds only what every job shares; the state of a job lives in the
    :class:`~pleo_export.engine.job.JobRun` that :meth:`process` makes for it. ``unavailable``
    is the problem found when the connector was opened (every job then fails pre-export
    validation with it).
    """

    def __init__(
        self,
        *,
        client: PleoClient,
        connector: Connector[Any],
        store: StateStore,
        hooks: Hooks,
        options: EngineOptions | None = None,
        progress: Progress | None = None,
        unavailable: JobRejected | None = None,
    ) -> None:
        self.client = client
        self.connector = connector
        self.manifest = type(connector).manifest
        self.store = store
        self.hooks = hooks
        self.options = options or EngineOptions()
        self.progress: Progress = progress or NoProgress()
        self.unavailable = unavailable
        """Set when the connector could not open; every job then fails pre-export validation."""
        if not 1 <= self.options.report_batch_size <= MAX_REPORT_BATCH:
            raise ValueError(f"report_batch_size must be between 1 and {MAX_REPORT_BATCH}")
        self.retries = Retries(self.options, self._classify)
        self.reporter = Reporter(
            client=client, store=store, hooks=hooks, progress=self.progress, options=self.options
        )
        self.delivery = Delivery(
            client=client,
            connector=connector,
            store=store,
            hooks=hooks,
            options=self.options,
            retries=self.retries,
            reporter=self.reporter,
        )

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
        """Process pending jobs one at a time, oldest first, until none is left (no leases).

        A shortcut for :func:`pleo_export.engine.worker.run_in_order`, the one job loop.
        """
        from pleo_export.engine.worker import run_in_order

        return await run_in_order(self, max_jobs=max_jobs)

    async def run_job(self, job_id: str) -> JobReport | None:
        """Process one job by id (the manual trigger)."""
        return await self.process(await self.client.get_job(job_id))

    # --- one job ---------------------------------------------------------------------------

    async def process(
        self, job: ExportJob, *, lease_check: Callable[[], None] | None = None
    ) -> JobReport | None:
        """Run the lifecycle for ``job``; ``None`` when the job is not ours to process.

        ``lease_check`` (from the worker) raises ``LeaseLost`` once the company's lease is
        gone; it is called at every item boundary and before anything is sent to Pleo.

        A Pleo API error that outlasts the client's retries stops the job (and the run): it is
        logged as ``job.interrupted`` and raised. The outbox keeps every outcome recorded so
        far, and the next run resumes the job from there.
        """
        try:
            return await self._process(job, lease_check)
        except pleo_errors.PleoApiError as error:
            log.error(
                "Pleo API call failed; the job stops here and is resumed by the next run",
                extra=_ctx(
                    job, event="job.interrupted", error_type=type(error).__name__, error=str(error)
                ),
            )
            raise

    async def _process(
        self, job: ExportJob, lease_check: Callable[[], None] | None
    ) -> JobReport | None:
        if job.status.is_finished:
            log.info("job already finished", extra=_ctx(job, event="job.skip", status=job.status))
            return None
        report = JobReport(job_id=job.id, company_id=job.company_id, dry_run=self.options.dry_run)
        await self.store.upsert_job(job.id, job.company_id)
        claimed = await self._start(job, report)
        if claimed is None:
            return None
        run = JobRun(job=claimed, report=report, lease_check=lease_check)
        self.hooks.job_started(job=run.job, resumed=report.resumed)
        try:
            problem = await self.pre_export_validation(run.job)
            if problem is not None:
                await self._fail_job(run, *problem)
                return report
            try:
                await self._read_control_layer(run)
                self.progress.job_started(run.job, report.items_total)
                await self.reporter.flush(run, force=True)
                await self.delivery.deliver_items(run)
            except pleo_errors.JobStatusUnprocessable as error:
                raise JobGone(
                    f"Pleo no longer serves job {job.id} ({error.message}); it has probably "
                    "expired or been cancelled"
                ) from error
            except pleo_errors.MissingContraAccounts as error:
                await self._fail_job(
                    run,
                    JobReason.MISSING_CONFIGURATION,
                    "Pleo will not hand out export items until every Pleo account has a contra "
                    f"account: map them in Pleo's accounting settings ({error.message})",
                )
                return report
            await self.reporter.flush(run, force=True)
            await self._complete(run)
        except JobGone as gone:
            report.final_event = None
            report.failure_reason = str(gone)
            counts = await self.store.counts(job.id)
            report.unacknowledged = counts.unreported
            log.error(
                "job ended on Pleo's side before it was completed",
                extra=run.ctx(event="job.gone", reason=str(gone)),
            )
        self.progress.job_finished(run.job, report)
        self.hooks.job_finished(job=run.job, report=report)
        await reconcile(self, run)
        return report

    async def _start(self, job: ExportJob, report: JobReport) -> ExportJob | None:
        """Step 2: claim the job (``started``), or resume it; ``None`` if it is not ours."""
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
        """Step 3, pre-export validation: the problem that prevents ``job`` from running, or
        ``None``. Starts nothing and sends nothing to Pleo (``pleo-export check`` calls it
        through :meth:`pleo_export.engine.worker.Worker.check`)."""
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
            await self.retries.call(lambda: self.connector.check(job), during="check")
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

    async def _fail_job(self, run: JobRun, reason: JobReason, message: str) -> None:
        job, report = run.job, run.report
        message = redact(message)
        report.failure_reason_type = reason.value
        report.failure_reason = message
        log.error(
            "pre-export validation failed",
            extra=run.ctx(event="job.validation_failed", reason_type=reason.value),
        )
        if self.options.dry_run:
            report.final_event = None
        else:
            await self._send_final(run, ExportJobEventType.FAILED, reason, message)
            report.final_event = ExportJobEventType.FAILED.value
            await self.store.finish_job(job.id, ExportJobEventType.FAILED.value, message)
        self.progress.job_finished(job, report)
        self.hooks.job_finished(job=job, report=report)

    async def _read_control_layer(self, run: JobRun) -> None:
        """Step 4: every job item (the control layer) into the state store."""
        job, report = run.job, run.report
        statuses: Counter[str] = Counter()
        pages = self.client.iter_job_items(job.id)
        async with read_ahead(pages, enabled=self.options.read_ahead) as stream:
            async for page in stream:
                await self.store.add_items(
                    job.id, [(item.accounting_entry_id, item.status.value) for item in page]
                )
                statuses.update(item.status.value for item in page)
        report.items_total = sum(statuses.values())
        run.final_in_pleo = statuses
        report.already_final = sum(
            n for status, n in statuses.items() if ExportJobItemStatus(status).is_final
        )

    # --- completion ------------------------------------------------------------------------

    async def _complete(self, run: JobRun) -> None:
        """Step 7: the final event, from the outcomes of every item."""
        if self.options.dry_run:
            return
        job, report = run.job, run.report
        counts = await self.store.counts(job.id)
        pleo_failed = run.final_in_pleo.get(ExportJobItemStatus.FAILED.value, 0)
        pleo_failed += run.final_in_pleo.get(ExportJobItemStatus.ABANDONED.value, 0)
        pleo_ok = run.final_in_pleo.get(ExportJobItemStatus.SUCCESSFUL.value, 0)
        failed = counts.failed + pleo_failed
        succeeded = counts.succeeded + pleo_ok
        if counts.queued or counts.posting:
            raise AssertionError(f"job {job.id} has items without an outcome")  # engine bug
        event: ExportJobEventType
        reason: JobReason | None
        message: str | None
        if failed == 0:
            event, reason, message = ExportJobEventType.COMPLETED, None, None
        elif succeeded:
            event, reason, message = ExportJobEventType.COMPLETED_WITH_ERRORS, None, None
        else:
            event = ExportJobEventType.FAILED
            reason, message = await self._job_failure_from_items(run, failed)
        await self._send_final(run, event, reason, message)
        report.final_event = event.value
        report.failure_reason_type = reason.value if reason else None
        report.failure_reason = message
        await self.store.finish_job(job.id, event.value, message)
        log.info(
            "job finished",
            extra=run.ctx(
                event="job.finished",
                final_event=event.value,
                posted=report.posted,
                recovered=report.recovered,
                failed=report.failed,
            ),
        )

    async def _job_failure_from_items(self, run: JobRun, failed: int) -> tuple[JobReason, str]:
        if run.aborted is not None:
            return run.aborted.reason_type, redact(run.aborted.message)
        types: Counter[str] = Counter()
        for record in await self.store.items(run.job.id, [ItemPhase.FAILED]):
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
        run: JobRun,
        event: ExportJobEventType,
        reason: JobReason | None,
        message: str | None,
    ) -> None:
        run.check_lease()
        job = run.job
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

    def _classify(self, error: BaseException, *, during: str) -> ConnectorError:
        """Retryable, terminal or uncertain: see :mod:`pleo_export.engine.classify`."""
        return classify(
            error,
            during=during,
            plugins=self.hooks.classify_error,
            connector=self.connector.classify_error,
            manifest=self.manifest,
        )


def _ctx(job: ExportJob, **fields: Any) -> dict[str, Any]:
    return {"job_id": job.id, "company_id": job.company_id, **fields}


def _job_reason(value: str) -> JobReason:
    try:
        return JobReason(value)
    except ValueError:
        return JobReason.VALIDATION_FAILURE
