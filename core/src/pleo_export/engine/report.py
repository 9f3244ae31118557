"""Run reports: what happened to each job, readable by people and as JSON."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

MAX_LISTED_FAILURES = 500
"""Failures kept verbatim per job; beyond that only counts grow, so memory stays flat."""


@dataclass
class ItemFailure:
    accounting_entry_id: str
    reason_type: str
    message: str


_INDEX = re.compile(r"\[\d+\]")
_ABSOLUTE_PATH = re.compile(r"(?<![\w./~-])/(?:[\w.@+~-]+/)+[\w.@+~-]+")


@dataclass
class FailureGroup:
    """Failed items that share a reason (the message with line indexes and file folders
    taken out), for a summary that says "12 items: ..." once instead of 12 lines."""

    reason_type: str
    message: str
    """The shared message; line indexes read ``[*]`` and files are named by their name only
    (:attr:`paths` has the full paths)."""
    accounting_entry_ids: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    """File name -> full path, for the files the message names."""

    @property
    def count(self) -> int:
        return len(self.accounting_entry_ids)


def group_failures(failures: list[ItemFailure]) -> list[FailureGroup]:
    """``failures`` grouped by reason, the largest group first."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    for failure in failures:
        paths: dict[str, str] = {}

        def shorten(match: re.Match[str], found: dict[str, str] = paths) -> str:
            name = PurePosixPath(match.group(0)).name
            found[name] = match.group(0)
            return name

        message = _ABSOLUTE_PATH.sub(shorten, _INDEX.sub("[*]", failure.message))
        key = (failure.reason_type, message)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(failure.reason_type, message)
        group.accounting_entry_ids.append(failure.accounting_entry_id)
        group.paths.update(paths)
    return sorted(groups.values(), key=lambda g: -g.count)


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

    def failure_groups(self) -> list[FailureGroup]:
        return group_failures(self.failures)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failure_types"] = dict(self.failure_types)
        data["failure_groups"] = [
            {"reason_type": g.reason_type, "message": g.message, "items": g.count}
            for g in self.failure_groups()
        ]
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
