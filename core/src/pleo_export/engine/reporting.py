"""Reporting: outcomes into the outbox, and from the outbox to Pleo in PUT batches.

:meth:`Reporter.record` writes an item's outcome to the state store (the outbox) before
anything else hears of it; :meth:`Reporter.flush` sends the outbox's unreported outcomes to
Pleo, at most ``report_batch_size`` (100) per PUT, and marks what Pleo acknowledged. An
outcome is reported at least once; Pleo's refusals are retried, then given up on loudly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import anyio

from pleo_export.engine.job import JobGone, JobRun
from pleo_export.engine.options import EngineOptions, Hooks, Progress
from pleo_export.logs import redact
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.pleo.models import (
    ExportJobItemStatus,
    UpdateExportJobItem,
)
from pleo_export.state.base import ItemOutcome, ItemRecord, StateStore

log = logging.getLogger("pleo_export.engine")


class Reporter:
    """The outbox of one engine: records outcomes and reports them to Pleo."""

    def __init__(
        self,
        *,
        client: PleoClient,
        store: StateStore,
        hooks: Hooks,
        progress: Progress,
        options: EngineOptions,
    ) -> None:
        self.client = client
        self.store = store
        self.hooks = hooks
        self.progress = progress
        self.options = options

    async def record(self, run: JobRun, entry_id: str, outcome: ItemOutcome) -> None:
        """Make ``outcome`` durable in the outbox, count it, log it and tell the plugins."""
        report = run.report
        outcome = _redacted(outcome)  # a connector's error text may quote its secrets
        await self.store.record_outcome(run.job.id, entry_id, outcome)
        run.recorded_since_flush += 1
        due = run.report_due
        if due is not None and run.recorded_since_flush >= self.options.report_batch_size:
            due.set()
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
            extra=run.ctx(
                event="item.outcome",
                accounting_entry_id=entry_id,
                succeeded=outcome.succeeded,
                recovered=outcome.recovered,
                external_id=outcome.external_id,
                reason_type=outcome.failure_reason_type,
            ),
        )
        self.hooks.item_outcome(job=run.job, accounting_entry_id=entry_id, outcome=outcome)
        self.progress.item_done(run.job, outcome.succeeded)

    async def report_in_background(self, run: JobRun) -> None:
        """Flush whenever a full PUT waits or ``report_interval`` has passed, until
        :meth:`stop_background`; a flush under way is finished first, never cut off."""
        run.reporting_stopped = False
        run.report_due = anyio.Event()
        checked = -math.inf
        try:
            while True:
                due_at = max(run.last_flush, checked) + self.options.report_interval
                with anyio.move_on_after(max(0.0, due_at - anyio.current_time())):
                    await run.report_due.wait()
                if run.reporting_stopped:
                    return
                run.report_due = anyio.Event()
                checked = anyio.current_time()
                await self.flush(run)
        finally:
            run.report_due = None

    def stop_background(self, run: JobRun) -> None:
        """Let :meth:`report_in_background` return once its flush (if any) is done."""
        run.reporting_stopped = True
        if run.report_due is not None:
            run.report_due.set()

    async def flush(self, run: JobRun, *, force: bool = False) -> None:
        """Send recorded outcomes to Pleo: full batches now, the rest when due or forced."""
        if self.options.dry_run:
            return
        job, report = run.job, run.report
        batch_size = self.options.report_batch_size
        waiting = anyio.current_time() - run.last_flush < self.options.report_interval
        if not force and run.recorded_since_flush < batch_size and waiting:
            return
        stuck_rounds = 0
        while True:
            pending = await self.store.unreported(job.id, batch_size)
            if not pending:
                run.recorded_since_flush = 0
                return
            due = anyio.current_time() - run.last_flush
            if len(pending) < batch_size and not force and due < self.options.report_interval:
                return
            acknowledged = await self._report_batch(run, pending)
            run.recorded_since_flush = max(0, run.recorded_since_flush - len(acknowledged))
            report.reported += len(acknowledged)
            run.last_flush = anyio.current_time()
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
                        extra=run.ctx(event="report.refused", count=len(refused)),
                    )
                    continue
                await anyio.sleep(self.options.retry_base_delay)

    async def _report_batch(self, run: JobRun, records: Sequence[ItemRecord]) -> list[str]:
        run.check_lease()
        job = run.job
        updates = [update_for(r) for r in records]
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
                extra=run.ctx(
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
            extra=run.ctx(event="report.batch", count=len(acknowledged), refused=len(retry)),
        )
        return acknowledged


def update_for(record: ItemRecord) -> UpdateExportJobItem:
    """The PUT body entry for an outbox record that has an outcome."""
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


def _redacted(outcome: ItemOutcome) -> ItemOutcome:
    """``outcome`` with registered secrets (see :func:`pleo_export.logs.redact`) masked."""
    if not outcome.failure_reason:
        return outcome
    return dataclasses.replace(outcome, failure_reason=redact(outcome.failure_reason))


def _item_reason(value: str) -> ItemReason:
    try:
        return ItemReason(value)
    except ValueError:
        return ItemReason.VALIDATION_FAILURE
