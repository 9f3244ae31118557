"""The item preview of ``pleo-export check``: what the export would do with each item of a
pending job, with nothing written anywhere.

Each item goes the way of a dry run (:meth:`~pleo_export.engine.delivery.Delivery.plan`: parse,
the plugins' item validation, ``plan_item``, the plugins' mapping override, the connector's
attachment limits; then :meth:`~pleo_export.engine.delivery.Delivery.settle`: the look-up by
reference where the connector has it, and ``prepare``, which writes nothing). Only the counts
are kept: item failures are normal in Pleo's lifecycle (reported to Pleo, fixed there by the
finance team), so the preview is a note and never changes ``check``'s verdict.

An interrupted job (``in_progress``) has items Pleo already holds as final (successful, failed
or abandoned): its control layer is read, as the export reads it, and those items are counted
as "already final in Pleo", not previewed. What the preview does not know is the state store
(``check`` opens an in-memory one, as a dry run does): an item an earlier run posted but has not
reported to Pleo counts as "already in the accounting system" only when the connector finds it
by reference (``lookup_by_reference``); without that capability it is prepared like any other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pleo_export.connector import ConnectorError, ItemRejected
from pleo_export.engine.job import JobRun
from pleo_export.engine.report import JobReport
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason

if TYPE_CHECKING:
    from pleo_export.engine.runner import ExportEngine
    from pleo_export.pleo.client import PleoClient
    from pleo_export.pleo.models import ExportJob
    from pleo_export.state.base import ItemOutcome

__all__ = ["ItemPreview", "ItemsPreview"]


@dataclass
class ItemsPreview:
    """The counts of one job's preview."""

    items_total: int
    """The job's items (Pleo's ``numberOfItems``, or the items read when that is more)."""
    checked: int = 0
    would_post: int = 0
    already_in_target: int = 0
    """Found in the accounting system by reference: the export would report, not post them."""
    already_final: int = 0
    """Final in Pleo's control layer (an interrupted job): the export leaves them alone."""
    would_fail: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None
    """Why no item was previewed (the job fails pre-export validation), or ``None``."""

    @property
    def not_checked(self) -> int:
        return max(0, self.items_total - self.checked - self.already_final)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "items_checked": self.checked,
            "would_post": self.would_post,
            "already_in_target": self.already_in_target,
            "already_final": self.already_final,
            "would_fail": dict(self.would_fail.most_common()),
        }
        if self.not_checked:
            data["items_not_checked"] = self.not_checked
        if self.skipped is not None:
            data["items_not_checked_because"] = self.skipped
        return data

    def describe(self) -> str:
        """The one-line note ``check`` prints under the job."""
        if self.skipped is not None:
            return f"items: not checked ({self.skipped})"
        if not self.checked and not self.already_final:
            return f"items: none checked ({self.not_checked:,} not checked)"
        failed = sum(self.would_fail.values())
        scope = (
            f"first {self.checked:,} of {self.items_total:,} items checked: "
            if self.not_checked
            else ""
        )
        already = "".join(
            f"; {n} {what}"
            for n, what in (
                (self.already_in_target, "already in the accounting system"),
                (self.already_final, "already final in Pleo"),
            )
            if n
        )
        if not failed:
            if not self.not_checked and not already:
                return f"items: all {self.checked} would post"
            return f"items: {scope}{self.would_post} of {self.checked} would post{already}"
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.would_fail.most_common())
        return (
            f"items: {scope}{self.would_post} of {self.checked} would post{already}; "
            f"{failed} would fail: {reasons} (`pleo-export run --dry-run --verbose` lists them)"
        )


class ItemPreview:
    """Previews the first ``limit`` items of one job through ``engine``'s delivery, which must
    be a dry run's (it writes nothing then: no outbox, no report to Pleo, no post)."""

    def __init__(self, engine: ExportEngine, job: ExportJob, limit: int) -> None:
        if not engine.options.dry_run:
            raise ValueError("the item preview needs a dry-run engine (it must write nothing)")
        self.delivery = engine.delivery
        self.limit = limit
        self.run = JobRun(
            job=job, report=JobReport(job_id=job.id, company_id=job.company_id, dry_run=True)
        )
        self.result = ItemsPreview(items_total=job.number_of_items)
        self._seen: set[str] = set()
        self._final: set[str] = set()

    async def read_control_layer(self, client: PleoClient) -> None:
        """For an interrupted job: learn which items Pleo already holds as final (the export
        reads the same pages in its step 4), so they are counted rather than previewed."""
        async for page in client.iter_job_items(self.run.job.id):
            self._final.update(i.accounting_entry_id for i in page if i.status.is_final)

    @property
    def full(self) -> bool:
        """The limit is reached: further items are only counted."""
        return self.result.checked >= self.limit

    async def item(self, raw: dict[str, Any]) -> tuple[bool, ItemRejected | None]:
        """Preview one export item as Pleo returned it: ``(previewed, refusal)``, where
        ``refusal`` is why it would fail (``None``: it would post, or is in the target)."""
        entry_id = raw.get("accountingEntryId") if isinstance(raw, dict) else None
        if not isinstance(entry_id, str) or entry_id in self._seen:
            return False, None  # the export ignores it too (no id, or a repeat)
        self._seen.add(entry_id)
        if entry_id in self._final:
            self.result.already_final += 1
            return False, None
        if self.full:
            return False, None
        delivery, run, report = self.delivery, self.run, self.run.report
        found_before = report.recovered
        outcome: ItemOutcome | None
        try:
            plan = delivery.plan(run, raw)
        except ConnectorError as error:
            outcome = delivery.failure(run, error)
        else:
            outcome = await delivery.settle(run, entry_id, plan, uncertain=False)
        self.result.checked += 1
        if outcome is not None and not outcome.succeeded:
            reason = outcome.failure_reason_type or ItemReason.UNEXPECTED_FAILURE
            self.result.would_fail[reason.value] += 1
            return True, ItemRejected(reason, outcome.failure_reason or "")
        if report.recovered > found_before:
            self.result.already_in_target += 1
        else:
            self.result.would_post += 1
        return True, None

    def finish(self, *, read_all: bool) -> ItemsPreview:
        """The counts; ``read_all``: every export item of the job was read from Pleo (so their
        number is known even past the limit)."""
        total = max(self.result.items_total, self.result.checked + self.result.already_final)
        self.result.items_total = max(total, len(self._seen)) if read_all else total
        return self.result
