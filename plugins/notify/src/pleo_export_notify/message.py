"""What a notification says: one summary per job, as email text and as JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pleo_export import ExportJob, JobReport

ACTION = {
    "account_unknown": "create the account in the accounting system or change the category in Pleo",
    "tax_code_unknown": "create the tax code in the accounting system or change it in Pleo",
    "vendor_unknown": "create the vendor in the accounting system or change it in Pleo",
    "accounting_system_unreachable": "nothing to change: export the items again once the "
    "accounting system answers",
    "receipt_download_failure": "export the items again from Pleo (receipt links expire)",
}
"""What to do about a failure reason, when the item's own message may not say it."""

GENERIC_ACTION = (
    "fix what each message names (in Pleo or in the accounting system), then export the "
    "failed items again from Pleo"
)


@dataclass(frozen=True)
class FailedItem:
    reference: str
    """The item's Pleo accounting entry id: the reference the entry carries in the target."""
    reason_type: str
    message: str


@dataclass(frozen=True)
class Summary:
    """One job's outcome, as every channel reports it."""

    job_id: str
    company_id: str
    status: str
    """``completed``, ``completed_with_errors``, ``failed`` or ``ended_in_pleo``."""
    items_total: int
    succeeded: int
    failed: int
    by_reason: dict[str, int]
    items: tuple[FailedItem, ...]
    job_failure: FailedItem | None = None
    """Why the job as a whole failed (its reference is the job id)."""
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def unlisted(self) -> int:
        return self.failed - len(self.items)

    @property
    def has_failures(self) -> bool:
        return self.failed > 0 or self.job_failure is not None


def summarise(job: ExportJob, report: JobReport, max_items: int) -> Summary:
    status = "ended_in_pleo" if report.final_event is None else report.final_event
    job_failure = None
    if report.failure_reason:
        job_failure = FailedItem(
            reference=job.id,
            reason_type=report.failure_reason_type or "unknown",
            message=report.failure_reason,
        )
    by_reason = Counter(dict(report.failure_types))
    return Summary(
        job_id=job.id,
        company_id=job.company_id,
        status=status,
        # A job that failed before its items were read reports none; Pleo's count still holds.
        items_total=report.items_total or job.number_of_items,
        succeeded=report.succeeded,
        failed=report.failed,
        by_reason=dict(by_reason.most_common()),
        items=tuple(
            FailedItem(f.accounting_entry_id, f.reason_type, f.message)
            for f in report.failures[:max_items]
        ),
        job_failure=job_failure,
    )


def subject(summary: Summary, prefix: str) -> str:
    head = f"{prefix} " if prefix else ""
    if summary.job_failure is not None and summary.status != "completed_with_errors":
        what = f"failed ({summary.job_failure.reason_type})"
        if summary.status == "ended_in_pleo":
            what = "ended in Pleo before it was completed"
        return f"{head}export job {summary.job_id} {what}"
    if summary.failed:
        return (
            f"{head}export job {summary.job_id}: {summary.failed} of {summary.items_total} "
            "items failed"
        )
    return f"{head}export job {summary.job_id}: {summary.status}, {summary.succeeded} items"


def text(summary: Summary) -> str:
    """The email body: plain text, readable in any mail client."""
    lines = [
        f"Pleo export job {summary.job_id} (company {summary.company_id}) ended "
        f"{summary.status.replace('_', ' ')}.",
        f"{summary.items_total} items: {summary.succeeded} exported, {summary.failed} failed.",
    ]
    if summary.job_failure is not None and not summary.succeeded and not summary.failed:
        lines[1] = f"{summary.items_total} items, none exported: the job stopped before them."

    if summary.job_failure is not None:
        failure = summary.job_failure
        lines += ["", f"The job failed: {failure.reason_type}: {failure.message}"]
    if summary.by_reason:
        lines += ["", "Failed items by reason:"]
        lines += [f"  {reason}: {count}" for reason, count in summary.by_reason.items()]
    if summary.items:
        shown = len(summary.items)
        lines += ["", f"The first {shown} failed item(s), by reference:"]
        for item in summary.items:
            lines.append(f"  - {item.reference}: {item.reason_type}: {item.message}")
        if summary.unlisted:
            lines.append(f"  ... and {summary.unlisted} more (see pleo-export's log or Pleo)")
    if summary.has_failures:
        lines += ["", "What to do:"]
        for reason in summary.by_reason:
            lines.append(f"  {reason}: {ACTION.get(reason, GENERIC_ACTION)}")
        if not summary.by_reason:
            lines.append(f"  {GENERIC_ACTION}")
    lines += ["", f"Sent by pleo-export-notify at {summary.sent_at.isoformat()}."]
    return "\n".join(lines) + "\n"


def payload(summary: Summary) -> dict[str, Any]:
    """The webhook's JSON body (documented field by field in docs/notify.md)."""
    return {
        "type": "pleo_export.job_finished",
        "job_id": summary.job_id,
        "company_id": summary.company_id,
        "status": summary.status,
        "items": {
            "total": summary.items_total,
            "succeeded": summary.succeeded,
            "failed": summary.failed,
        },
        "job_failure": (
            None
            if summary.job_failure is None
            else {
                "reason_type": summary.job_failure.reason_type,
                "message": summary.job_failure.message,
            }
        ),
        "failures_by_reason": summary.by_reason,
        "failed_items": [
            {
                "reference": item.reference,
                "reason_type": item.reason_type,
                "message": item.message,
                "action": ACTION.get(item.reason_type, GENERIC_ACTION),
            }
            for item in summary.items
        ],
        "failed_items_not_listed": summary.unlisted,
        "sent_at": summary.sent_at.isoformat(),
    }


__all__ = ["FailedItem", "Summary", "payload", "subject", "summarise", "text"]
