"""Run reports: what happened to each job, readable by people and as JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED_FAILURES = 500
"""Failures kept verbatim per job; beyond that only counts grow, so memory stays flat."""


@dataclass
class ItemFailure:
    accounting_entry_id: str
    reason_type: str
    message: str


@dataclass
class JobReport:
    job_id: str
    company_id: str
    items_total: int = 0
    posted: int = 0
    """Entries written to the target in this run."""
    recovered: int = 0
    """Entries found already in the target (by reference) and reported without posting again."""
    failed: int = 0
    already_final: int = 0
    """Items Pleo already had as successful, failed or abandoned when the job was read."""
    would_post: int = 0
    """Dry run only: items that would have been posted."""
    final_event: str | None = None
    failure_reason_type: str | None = None
    failure_reason: str | None = None
    resumed: bool = False
    dry_run: bool = False
    reported: int = 0
    """Outcomes acknowledged by Pleo in this run."""
    unacknowledged: int = 0
    """Outcomes Pleo could not take (the job ended on Pleo's side first, e.g. it expired)."""
    failures: list[ItemFailure] = field(default_factory=list)
    failure_types: Counter[str] = field(default_factory=Counter)

    def add_failure(self, accounting_entry_id: str, reason_type: str, message: str) -> None:
        self.failed += 1
        self.failure_types[reason_type] += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(ItemFailure(accounting_entry_id, reason_type, message))

    @property
    def succeeded(self) -> int:
        return self.posted + self.recovered

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failure_types"] = dict(self.failure_types)
        data["succeeded"] = self.succeeded
        return data

    def summary(self) -> str:
        if self.dry_run:
            head = f"job {self.job_id}: dry run, {self.items_total} items"
            parts = [f"{self.would_post} would be posted", f"{self.recovered} already in target"]
        else:
            head = f"job {self.job_id}: {self.final_event or 'not finished'}"
            parts = [f"{self.items_total} items", f"{self.posted} posted"]
            parts.append(f"{self.recovered} already in target")
        parts.append(f"{self.failed} failed")
        if self.already_final:
            parts.append(f"{self.already_final} already final in Pleo")
        text = f"{head} ({', '.join(parts)})"
        if self.failure_reason:
            text += f"\n  job failure: {self.failure_reason_type}: {self.failure_reason}"
        return text


@dataclass
class RunReport:
    jobs: list[JobReport] = field(default_factory=list)
    skipped_jobs: list[str] = field(default_factory=list)
    """Ids of jobs seen but left alone: already finished, or claimed by another worker (the
    log line ``job.claimed_elsewhere`` or ``job.skip`` says which)."""
    waiting_elsewhere: dict[str, int] = field(default_factory=dict)
    """Companies skipped because another worker holds their lease, with how many of their
    jobs are pending or in progress in Pleo (waiting behind that worker)."""

    @property
    def jobs_waiting_elsewhere(self) -> int:
        return sum(self.waiting_elsewhere.values())

    @property
    def items_failed(self) -> int:
        return sum(j.failed for j in self.jobs)

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": [j.to_json() for j in self.jobs],
            "skipped_jobs": list(self.skipped_jobs),
            "waiting_elsewhere": dict(self.waiting_elsewhere),
            "totals": {
                "jobs": len(self.jobs),
                "posted": sum(j.posted for j in self.jobs),
                "recovered": sum(j.recovered for j in self.jobs),
                "failed": self.items_failed,
                "would_post": sum(j.would_post for j in self.jobs),
                "waiting_elsewhere": self.jobs_waiting_elsewhere,
            },
        }
