"""Terminal output shared by the commands that run jobs: progress and the run report."""

from __future__ import annotations

import sys
import time

import click

from pleo_export.cli.common import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
)
from pleo_export.engine.report import JobReport, RunReport
from pleo_export.pleo.models import ExportJob


class TerminalProgress:
    """Progress on stderr: a live line on a terminal, a line every 10% otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = sys.stderr.isatty()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.last_step = -1
        self.started = time.monotonic()

    def job_started(self, job: ExportJob, items: int) -> None:
        self.total, self.done, self.failed, self.last_step = items, 0, 0, -1
        self.started = time.monotonic()
        if self.enabled:
            click.echo(f"job {job.id}: {items} items", err=True)

    def item_done(self, job: ExportJob, succeeded: bool) -> None:
        self.done += 1
        self.failed += 0 if succeeded else 1
        if not self.enabled:
            return
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        line = f"  {self.done}/{self.total} items, {self.failed} failed, {rate:.0f} items/s"
        if self.live:
            click.echo(f"\r{line}", err=True, nl=False)
            return
        step = (10 * self.done) // max(self.total, 1)
        if step != self.last_step:
            self.last_step = step
            click.echo(line, err=True)

    def waiting(self, seconds: float, why: str) -> None:
        """The Pleo client is about to wait ``seconds`` before its next request."""
        if not self.enabled:
            return
        reason = (
            "Pleo asked to slow down (Retry-After)"
            if why == "retry-after"
            else "the request budget (pleo.requests_per_minute) is used up for this minute"
        )
        prefix = "\n" if self.live and self.done else ""
        click.echo(f"{prefix}  waiting {seconds:.0f} s: {reason}", err=True)

    def job_finished(self, job: ExportJob, report: JobReport) -> None:
        if self.enabled and self.live and self.done:
            click.echo("", err=True)


MAX_GROUPS = 10
"""Failure groups shown per job without ``--verbose``."""


def print_report(report: RunReport, *, verbose: bool = False) -> None:
    waiting = report.jobs_waiting_elsewhere
    if not report.jobs and not report.skipped_jobs and not report.waiting_elsewhere:
        click.echo("No pending export jobs.")
        return
    if report.waiting_elsewhere:
        companies = len(report.waiting_elsewhere)
        click.echo(
            f"{waiting} pending {'job waits' if waiting == 1 else 'jobs wait'} behind another "
            f"worker ({companies} {'company' if companies == 1 else 'companies'} leased "
            "elsewhere; they are served when that worker finishes or its lease expires)"
        )
    files: dict[str, str] = {}
    for job in report.jobs:
        click.echo(job.summary())
        groups = job.failure_groups()
        shown = groups if verbose else groups[:MAX_GROUPS]
        for group in shown:
            items = "1 item" if group.count == 1 else f"{group.count} items"
            click.echo(f"  {items}: {group.reason_type}: {group.message}")
            if verbose:
                for entry_id in group.accounting_entry_ids:
                    click.echo(f"      {entry_id}")
            files.update(group.paths)
        if len(shown) < len(groups):
            hidden = sum(g.count for g in groups[len(shown) :])
            click.echo(
                f"  ... {len(groups) - len(shown)} more reasons ({hidden} items); "
                "--verbose or --json lists them"
            )
        unlisted = job.failed - len(job.failures)
        if unlisted > 0:
            click.echo(
                f"  ... {unlisted} more failed items not kept in the report; "
                f"`pleo-export jobs --job {job.job_id}` lists every item"
            )
    for name, path in sorted(files.items()):
        click.echo(f"{name}: {path}")
    if any(job.failures for job in report.jobs) and not verbose:
        click.echo("(--verbose lists the items of each reason; --json has everything)")
    for job_id in report.skipped_jobs:
        click.echo(
            f"job {job_id}: left alone (already finished in Pleo, or claimed by another worker)"
        )


def report_exit_code(report: RunReport) -> int:
    troubled = any(
        j.failure_reason is not None or (j.final_event is None and not j.dry_run)
        for j in report.jobs
    )
    return EXIT_ITEMS_FAILED if report.items_failed or troubled else EXIT_OK
