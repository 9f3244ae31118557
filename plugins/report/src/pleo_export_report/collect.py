"""What the plugin remembers of one job, item by item, while the engine works on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleo_export import ExportJob, ItemOutcome, JobReport, PostingPlan, PreparedEntry
    from pleo_export_report.reconcile import Reconciliation


class Outcome(StrEnum):
    POSTED = "posted"
    RECOVERED = "already in target"
    FAILED = "failed"
    WOULD_POST = "would post"
    """Dry run: prepared, nothing written."""
    PREPARED = "no outcome"
    """Prepared, but no outcome was recorded (the job stopped before the item was posted)."""


@dataclass(frozen=True)
class Line:
    """One resolved posting, as the connector prepared it."""

    account: str
    amount: int
    currency: str
    tax_code: str | None


@dataclass
class ItemRow:
    """One item of the job, as far as the plugin saw it."""

    reference: str
    outcome: Outcome = Outcome.PREPARED
    date: str = ""
    type: str = ""
    vendor: str = ""
    description: str = ""
    amount: int | None = None
    currency: str = ""
    external_id: str = ""
    external_url: str = ""
    reason_type: str = ""
    message: str = ""
    lines: tuple[Line, ...] | None = None
    """The prepared postings, when the connector prepared the item in this run."""


@dataclass
class JobData:
    """Everything one job's report shows."""

    job_id: str
    company_id: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    resumed: bool = False
    rows: dict[str, ItemRow] = field(default_factory=dict)
    report: JobReport | None = None
    reconciliation: Reconciliation | None = None

    @property
    def dry_run(self) -> bool:
        """Whether the job ran as a dry run: nothing was written to the accounting system."""
        return self.report is not None and self.report.dry_run

    @classmethod
    def for_job(cls, job: ExportJob, *, resumed: bool = False) -> JobData:
        return cls(job_id=job.id, company_id=job.company_id, resumed=resumed)

    def row(self, reference: str) -> ItemRow:
        row = self.rows.get(reference)
        if row is None:
            row = self.rows[reference] = ItemRow(reference)
        return row

    def planned(self, plan: PostingPlan) -> ItemRow:
        """The item's date, type, vendor, description and amount from its plan."""
        item = plan.item
        row = self.row(plan.reference)
        row.date = plan.entries[0].date.isoformat() if plan.entries else ""
        row.type = item.type + (f" / {item.sub_type}" if item.sub_type else "")
        vendor = plan.vendor.name if plan.vendor is not None else ""
        if not vendor and item.supplier is not None:
            vendor = item.supplier.name or ""
        row.vendor = vendor
        row.description = plan.entries[0].narration if plan.entries else ""
        wallet = item.amount.in_wallet_currency
        row.amount, row.currency = wallet.value, wallet.currency
        return row

    def prepared(self, prepared: PreparedEntry) -> None:
        row = self.planned(prepared.plan)
        if prepared.entries:  # the connector's booking date (a closed period moves it)
            row.date = prepared.entries[0].date.isoformat()
        row.lines = tuple(
            Line(p.account, p.amount, p.currency, p.tax_code)
            for entry in prepared.entries
            for p in entry.postings
        )

    def outcome(self, reference: str, outcome: ItemOutcome) -> None:
        row = self.row(reference)
        if outcome.succeeded:
            row.outcome = Outcome.RECOVERED if outcome.recovered else Outcome.POSTED
        else:
            row.outcome = Outcome.FAILED
        row.external_id = outcome.external_id or ""
        row.external_url = outcome.external_url or ""
        reason = outcome.failure_reason_type
        row.reason_type = "" if reason is None else str(getattr(reason, "value", reason))
        row.message = outcome.failure_reason or ""

    def finished(self, report: JobReport) -> None:
        """Take the engine's report; in a dry run, its failures and what would be posted."""
        self.report = report
        if not report.dry_run:
            return
        for row in self.rows.values():
            if row.outcome is Outcome.PREPARED:
                row.outcome = Outcome.WOULD_POST
        for failure in report.failures:
            row = self.row(failure.accounting_entry_id)
            row.outcome = Outcome.FAILED
            row.reason_type = failure.reason_type
            row.message = failure.message

    def ordered_rows(self) -> list[ItemRow]:
        """Failures first, then the rest, each in the order the items were seen."""
        rows = list(self.rows.values())
        return [r for r in rows if r.outcome is Outcome.FAILED] + [
            r for r in rows if r.outcome is not Outcome.FAILED
        ]
