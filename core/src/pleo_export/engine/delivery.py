"""Delivery: each export item of a job, from Pleo's data to an outcome in the outbox.

Per item (step 6 of the lifecycle): parse and validate it, run the plugins' item validation,
plan the entries (:mod:`pleo_export.bookkeeping`), let a plugin override the plan, check the
connector's attachment limits, look the entry up by reference, prepare it, and post it (one by
one, or collected for ``post_batch``). Every connector call retries through
:class:`~pleo_export.engine.retry.Retries`; an item whose post did not confirm is looked up
before anything is posted again. The outcome goes to :class:`~pleo_export.engine.reporting.
Reporter`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from pleo_export.attachments import check_size
from pleo_export.bookkeeping import plan_item
from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorError,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine.job import JobRun
from pleo_export.engine.options import MAX_FAILURE_REASON, MAX_ITEM_DEPTH, EngineOptions, Hooks
from pleo_export.engine.prefetch import ReceiptPrefetch
from pleo_export.engine.reporting import Reporter
from pleo_export.engine.retry import Again, Retries
from pleo_export.ledger import ExternalRecord, PostingPlan, PreparedEntry
from pleo_export.logs import redact
from pleo_export.pleo import depth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportItem
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.state.base import ItemOutcome, ItemPhase, ItemRecord, StateStore

log = logging.getLogger("pleo_export.engine")


class Delivery:
    """The item steps of one engine; the per-job state lives in the :class:`JobRun`."""

    def __init__(
        self,
        *,
        client: PleoClient,
        connector: Connector[Any],
        store: StateStore,
        hooks: Hooks,
        options: EngineOptions,
        retries: Retries,
        reporter: Reporter,
    ) -> None:
        self.client = client
        self.connector = connector
        self.manifest = type(connector).manifest
        self.store = store
        self.hooks = hooks
        self.options = options
        self.retries = retries
        self.reporter = reporter
        self.batching = (
            Capability.BATCH_POSTING in self.manifest.capabilities and not options.dry_run
        )
        self.lookup = Capability.LOOKUP_BY_REFERENCE in self.manifest.capabilities
        self.prefetch: ReceiptPrefetch | None = None
        """The running job's receipt prefetch (:mod:`pleo_export.engine.prefetch`), if any."""

    async def deliver_items(self, run: JobRun) -> None:
        """Every export item of the job, page by page, to an outcome (steps 5 and 6); see
        :class:`~pleo_export.engine.pipeline.ItemPipeline` for what runs at the same time."""
        from pleo_export.engine.pipeline import ItemPipeline

        await ItemPipeline(self).run(run)

    async def deliver(self, run: JobRun, record: ItemRecord, raw: dict[str, Any] | None) -> None:
        """One item to its outcome, recorded in the outbox (not in a dry run)."""
        run.check_lease()
        entry_id = record.accounting_entry_id
        uncertain = record.phase is ItemPhase.POSTING
        try:
            outcome = await self._outcome_for(run, entry_id, raw, uncertain)
        except ConnectorError as error:
            outcome = self.failure(run, error)
        await self.conclude(run, entry_id, outcome)

    async def settle(
        self, run: JobRun, entry_id: str, plan: PostingPlan, uncertain: bool
    ) -> ItemOutcome | None:
        """The connector's part of one planned item (look-up, prepare, post), its failure
        included; ``None`` as for :meth:`_outcome_for`."""
        try:
            return await self._settle(run, entry_id, plan, uncertain)
        except ConnectorError as error:
            return self.failure(run, error)

    def failure(self, run: JobRun, error: ConnectorError) -> ItemOutcome:
        """The failed outcome of an item that raised ``error``."""
        rejected = self._as_item_failure(run, error)
        return ItemOutcome(
            succeeded=False,
            failure_reason_type=rejected.reason_type,
            failure_reason=rejected.message[:MAX_FAILURE_REASON],
        )

    async def conclude(self, run: JobRun, entry_id: str, outcome: ItemOutcome | None) -> None:
        """Record ``outcome`` in the outbox (a dry run only counts failures)."""
        if outcome is None:  # dry run, or waiting in a batch
            return
        if self.options.dry_run:
            if not outcome.succeeded:
                reason = redact(outcome.failure_reason or "")
                run.report.add_failure(entry_id, outcome.failure_reason_type or "", reason)
            return
        await self.reporter.record(run, entry_id, outcome)

    async def _outcome_for(
        self, run: JobRun, entry_id: str, raw: dict[str, Any] | None, uncertain: bool
    ) -> ItemOutcome | None:
        """Validate, plan, look up, prepare and post one item: its outcome, or ``None`` when
        there is none yet (a dry run, or the entry waits in a batch)."""
        if raw is None:
            self._check_aborted(run)
            if uncertain and self.lookup:
                found = await self._lookup(entry_id)
                if found is not None:
                    return _success(found, recovered=True)
            raise ItemRejected(
                ItemReason.VALIDATION_FAILURE,
                "Pleo listed this entry in the job but returned no export item data for it: "
                "export the expense again from Pleo",
            )
        plan = self.plan(run, raw)
        if self.prefetch is not None:
            self.prefetch.start(plan.attachments)
        return await self._settle(run, entry_id, plan, uncertain)

    def plan(self, run: JobRun, raw: dict[str, Any]) -> PostingPlan:
        """Parse, validate and plan one item (no I/O); raises :class:`ItemRejected`."""
        self._check_aborted(run)
        item = _parse_item(raw)
        problems = self.hooks.validate_item(item=item, job=run.job)
        if problems:
            first = problems[0]
            raise ItemRejected(
                _item_reason(first.reason_type), "; ".join(p.message for p in problems)
            )
        plan = plan_item(item, run.job, self.options.plan)
        plan = self._apply_mapping_override(plan)
        self._check_attachment_limits(plan)
        return plan

    def _check_aborted(self, run: JobRun) -> None:
        if run.aborted is not None:
            raise ItemRejected(
                _item_reason_for_job(run.aborted.reason_type),
                f"not exported: the accounting system stopped accepting entries during this job "
                f"({run.aborted.message})",
            )

    async def _settle(
        self, run: JobRun, entry_id: str, plan: PostingPlan, uncertain: bool
    ) -> ItemOutcome | None:
        report = run.report
        self._check_aborted(run)
        if self.lookup:
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
        prepared = await self.retries.call(lambda: self.connector.prepare(plan), during="prepare")
        self.hooks.item_prepared(job=run.job, prepared=prepared)
        if self.options.dry_run:
            report.would_post += 1
            if self.options.on_preview is not None:
                self.options.on_preview(prepared)
            return None
        if self.batching:
            run.batch[entry_id] = prepared
            return None
        self._check_aborted(run)
        return await self._post(run, entry_id, prepared, self.lookup)

    async def _post(
        self, run: JobRun, entry_id: str, prepared: PreparedEntry, lookup: bool
    ) -> ItemOutcome:
        """``post`` with the retry rules: the intent is durable before every attempt; an
        uncertain attempt is looked up by reference before anything is posted again."""
        job = run.job

        async def attempt_post(attempt: int) -> ItemOutcome | Again:
            await self.store.record_intent(job.id, entry_id)
            try:
                record = await self.connector.post(prepared)
            except Exception as error:
                classified = self.retries.classify(error, during="post")
                if isinstance(classified, ItemRejected):
                    raise classified from error
                if isinstance(classified, JobRejected):
                    run.aborted = classified
                    raise ItemRejected(
                        _item_reason_for_job(classified.reason_type), classified.message
                    ) from error
                if isinstance(classified, TargetTemporarilyUnavailable):
                    if attempt == self.retries.attempts:
                        raise self._as_item_failure(run, classified) from error
                    return Again(classified, classified.retry_after, entry_id)
                # Uncertain: the entry may exist now. Never post again without looking.
                log.warning(
                    "posting did not confirm; the entry may or may not be in the target",
                    extra=run.ctx(
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
                            run.aborted = lookup_error
                        raise _unconfirmed(entry_id, classified, lookup_error) from lookup_error
                    if found is not None:
                        return _success(found, recovered=True)
                    if attempt < self.retries.attempts:
                        return Again(classified, None, entry_id)
                raise _unconfirmed(entry_id, classified) from error
            return _success(record, recovered=False)

        return await self.retries.run(attempt_post)

    async def post_batch(self, run: JobRun) -> None:
        """Post the collected entries with ``post_batch`` and record every entry's outcome.

        The same rules as for single posts: intents are durable before the call; a transient
        failure retries the batch; an uncertain one looks every entry up by reference and
        re-posts only those not found; nothing is re-posted without a lookup.
        """
        run.check_lease()
        job = run.job
        pending, run.batch = list(run.batch.items()), {}
        posted = list(pending)
        lookup = Capability.LOOKUP_BY_REFERENCE in self.manifest.capabilities
        attempts = self.retries.attempts

        async def attempt_batch(attempt: int) -> Again | None:
            nonlocal pending
            for entry_id, _ in pending:
                await self.store.record_intent(job.id, entry_id)
            try:
                results = list(await self.connector.post_batch([p for _, p in pending]))
                if len(results) != len(pending):
                    raise OutcomeUncertain(
                        f"post_batch answered {len(results)} results for {len(pending)} entries"
                    )
            except Exception as error:
                classified = self.retries.classify(error, during="post")
                log.warning(
                    "batch post failed",
                    extra=run.ctx(
                        event="batch.error",
                        entries=len(pending),
                        attempt=attempt,
                        kind=type(classified).__name__,
                        reason=classified.message,
                    ),
                )
                if isinstance(classified, TargetTemporarilyUnavailable) and attempt < attempts:
                    return Again(classified, classified.retry_after)
                terminal = (ItemRejected, JobRejected, TargetTemporarilyUnavailable)
                if isinstance(classified, terminal):
                    await self._fail_all(run, pending, self._as_item_failure(run, classified))
                    return None
                if not lookup:
                    for entry_id, _ in pending:
                        failure = _unconfirmed(entry_id, classified)
                        await self._fail_all(run, [(entry_id, None)], failure)
                    return None
                remaining: list[tuple[str, PreparedEntry]] = []
                for entry_id, prepared in pending:
                    try:
                        found = await self._lookup(entry_id)
                    except ConnectorError as lookup_error:
                        if isinstance(lookup_error, JobRejected):
                            run.aborted = lookup_error
                        failure = _unconfirmed(entry_id, classified, lookup_error)
                        await self._fail_all(run, [(entry_id, None)], failure)
                        continue
                    if found is not None:
                        await self.reporter.record(run, entry_id, _success(found, recovered=True))
                    elif attempt < attempts:
                        remaining.append((entry_id, prepared))
                    else:
                        failure = _unconfirmed(entry_id, classified)
                        await self._fail_all(run, [(entry_id, None)], failure)
                pending = remaining
                return Again(classified) if pending else None
            for (entry_id, _), result in zip(pending, results, strict=True):
                if isinstance(result, ItemRejected):
                    await self._fail_all(run, [(entry_id, None)], result)
                else:
                    await self.reporter.record(run, entry_id, _success(result, recovered=False))
            return None

        if pending:
            try:
                await self.retries.run(attempt_batch)
            finally:
                if self.prefetch is not None:
                    for _, prepared in posted:
                        self.prefetch.discard(prepared.plan.attachments)

    async def _fail_all(
        self,
        run: JobRun,
        entries: Sequence[tuple[str, PreparedEntry | None]],
        failure: ItemRejected,
    ) -> None:
        outcome = ItemOutcome(
            succeeded=False,
            failure_reason_type=failure.reason_type,
            failure_reason=failure.message[:MAX_FAILURE_REASON],
        )
        for entry_id, _ in entries:
            await self.reporter.record(run, entry_id, outcome)

    def _as_item_failure(self, run: JobRun, error: ConnectorError) -> ItemRejected:
        """Any connector error, turned into this item's failure (and the job's abort)."""
        if isinstance(error, ItemRejected):
            return error
        if isinstance(error, JobRejected):
            run.aborted = error
            return ItemRejected(_item_reason_for_job(error.reason_type), error.message)
        if isinstance(error, TargetTemporarilyUnavailable):
            return ItemRejected(
                error.reason_type,
                f"{error.message} (still failing after {self.options.post_attempts} attempts; "
                "nothing was written for this entry: export it again later)",
            )
        return ItemRejected(ItemReason.UNEXPECTED_FAILURE, error.message)

    async def _lookup(self, entry_id: str) -> ExternalRecord | None:
        return await self.retries.call(
            lambda: self.connector.find_existing(entry_id), during="lookup"
        )

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
        if Capability.ATTACHMENTS in self.manifest.capabilities:
            check_size(plan.attachments, limit, target=self.manifest.display_name)


# --- helpers ---------------------------------------------------------------------------------


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


def _success(record: ExternalRecord, *, recovered: bool) -> ItemOutcome:
    return ItemOutcome(
        succeeded=True,
        external_id=record.external_id,
        external_url=record.external_url,
        exported_at=record.exported_at,
        recovered=recovered,
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


def _item_reason_for_job(reason: JobReason) -> ItemReason:
    try:
        return ItemReason(reason.value)
    except ValueError:
        return ItemReason.UNEXPECTED_FAILURE
