"""The plugin: collects what the engine tells about a job and writes its reports."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from pleo_export import PluginSettings, hookimpl
from pleo_export_report.collect import JobData
from pleo_export_report.reconcile import reconcile
from pleo_export_report.render import render_html
from pleo_export_report.table import render_csv

if TYPE_CHECKING:
    from pleo_export import (
        BookedEntry,
        ExportJob,
        ItemOutcome,
        JobReport,
        PostingPlan,
        PreparedEntry,
    )

log = logging.getLogger("pleo_export_report")

Format = Literal["html", "csv"]

MAX_REMEMBERED = 1000
"""Paths kept in :attr:`ReportPlugin.written` (the latest)."""


class ReportSettings(PluginSettings):
    """``[plugins.report]``."""

    directory: Path = Path("reports")
    """Where the reports are written (created when missing); relative to the configuration
    file's folder."""
    formats: tuple[Format, ...] = Field(default=("html", "csv"), min_length=1)
    """Which reports to write: ``html``, ``csv`` or both."""
    keep: int | None = Field(default=None, ge=1)
    """Keep the reports of only this many jobs in :attr:`directory`, the latest written;
    older report files are deleted after each write. Unset: every report is kept."""


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

DRY_RUN_PREFIX = "dry-run-"
"""What a dry run's report file names start with, so they never replace a real run's."""

REPORT_FILE = re.compile(rf"^(?:{re.escape(DRY_RUN_PREFIX)})?job-[A-Za-z0-9_.-]+\.(?:html|csv)$")
"""The names of the files the plugin writes (and with ``keep``, deletes)."""


def file_stem(job_id: str, *, dry_run: bool = False) -> str:
    """``job-<job id>`` (``dry-run-job-<job id>`` for a dry run), with anything but letters,
    digits, ``_``, ``.`` and ``-`` replaced."""
    stem = "job-" + (_UNSAFE.sub("_", job_id).lstrip(".") or "unnamed")
    return DRY_RUN_PREFIX + stem if dry_run else stem


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class ReportPlugin:
    """Writes ``job-<id>.html`` and ``job-<id>.csv`` after every job, ``dry-run-job-<id>.*``
    after a dry run (see the README)."""

    settings_model: ClassVar[type[ReportSettings]] = ReportSettings

    def __init__(self) -> None:
        self.settings = ReportSettings()
        self.current: JobData | None = None
        """The job being worked on, or the last one (kept for its reconciliation)."""
        self.written: list[Path] = []
        """The files written, in order (the latest :data:`MAX_REMEMBERED`)."""

    def configure(self, settings: ReportSettings) -> None:
        self.settings = settings

    def _job(self, job: ExportJob) -> JobData:
        if self.current is None or self.current.job_id != job.id:
            self.current = JobData.for_job(job)
        return self.current

    @hookimpl
    def pleo_export_job_started(self, job: ExportJob, resumed: bool) -> None:
        self.current = JobData.for_job(job, resumed=resumed)

    @hookimpl(trylast=True)
    def pleo_export_map_item(self, plan: PostingPlan) -> None:
        """Only looks: the item's date, vendor and amount, also for an item that then fails
        in the connector's prepare. Never replaces the plan."""
        data = self.current
        if data is not None and plan.job.id == data.job_id:
            data.planned(plan)

    @hookimpl
    def pleo_export_item_prepared(self, job: ExportJob, prepared: PreparedEntry) -> None:
        self._job(job).prepared(prepared)

    @hookimpl
    def pleo_export_item_outcome(
        self, job: ExportJob, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        self._job(job).outcome(accounting_entry_id, outcome)

    @hookimpl
    def pleo_export_job_finished(self, job: ExportJob, report: JobReport) -> None:
        data = self._job(job)
        data.finished(report)
        self.write(data)

    @hookimpl
    def pleo_export_job_reconciled(
        self,
        job: ExportJob,
        references: Sequence[str],
        booked: Sequence[BookedEntry] | None,
        problem: str | None,
    ) -> None:
        data = self._job(job)
        data.reconciliation = reconcile(data.rows, references, booked, problem)
        self.write(data)

    def write(self, data: JobData) -> list[Path]:
        """Write the configured reports of ``data``; a failure is logged, never raised (a
        report must not stop an export)."""
        stem = file_stem(data.job_id, dry_run=data.dry_run)
        directory = self.settings.directory
        formats = self.settings.formats
        csv_name = f"{stem}.csv" if "csv" in formats else None
        written: list[Path] = []
        try:
            if "csv" in formats:
                path = directory / f"{stem}.csv"
                write_atomically(path, render_csv(data))
                written.append(path)
            if "html" in formats:
                path = directory / f"{stem}.html"
                write_atomically(path, render_html(data, csv_name=csv_name))
                written.append(path)
        except OSError as error:
            log.error(
                "could not write the job report into %s: %s; check [plugins.report] directory",
                directory,
                error,
                extra={"event": "report.write_failed", "job_id": data.job_id},
            )
            return written
        for path in written:
            if path not in self.written:
                self.written.append(path)
        del self.written[:-MAX_REMEMBERED]  # a service runs for months: stay small
        log.info(
            "job report written",
            extra={
                "event": "report.written",
                "job_id": data.job_id,
                "dry_run": data.dry_run,
                "files": [str(p) for p in written],
            },
        )
        if self.settings.keep is not None:
            self.prune(keep=self.settings.keep, current=stem)
        return written

    def prune(self, *, keep: int, current: str) -> list[Path]:
        """Delete the report files of all but the latest ``keep`` jobs in the directory, of
        the same kind as ``current`` (the stem just written, always kept): a real run prunes
        real runs' reports, a dry run only dry runs'. Only files named as this plugin names
        them are touched; a failure is logged. Returns the files deleted."""
        directory = self.settings.directory
        dry_run = current.startswith(DRY_RUN_PREFIX)
        stems: dict[str, list[Path]] = {}
        try:
            for path in directory.iterdir():
                if not REPORT_FILE.match(path.name) or not path.is_file():
                    continue
                if path.name.startswith(DRY_RUN_PREFIX) != dry_run:
                    continue
                stems.setdefault(path.name.rsplit(".", 1)[0], []).append(path)
            latest = {
                stem: max(p.stat().st_mtime_ns for p in paths) for stem, paths in stems.items()
            }
        except OSError as error:
            log.error(
                "could not list old job reports in %s: %s; check [plugins.report] directory",
                directory,
                error,
                extra={"event": "report.prune_failed"},
            )
            return []
        order = sorted(latest, key=lambda stem: (stem != current, -latest[stem], stem))
        deleted: list[Path] = []
        for stem in order[keep:]:
            for path in sorted(stems[stem]):
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as error:
                    log.error(
                        "could not delete the old job report %s: %s",
                        path,
                        error,
                        extra={"event": "report.prune_failed"},
                    )
                    continue
                deleted.append(path)
        if deleted:
            gone = set(deleted)
            self.written = [path for path in self.written if path not in gone]
            log.info(
                "old job reports deleted (keep = %d)",
                keep,
                extra={"event": "report.pruned", "files": [str(p) for p in deleted]},
            )
        return deleted
