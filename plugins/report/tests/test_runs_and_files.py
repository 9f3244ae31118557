"""Where the reports go, how a dry run's report is kept apart from a real run's, and `keep`."""

from __future__ import annotations

import csv
import itertools
import os
import uuid
from pathlib import Path

import pytest

import pleo_export_sandbox.store
from pleo_export import JobReport
from pleo_export_report import JobData, ReportPlugin, ReportSettings, file_stem
from plugins.report.tests.conftest import export

pytestmark = pytest.mark.anyio


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


class _SameJobIds:
    """The sandbox store's ``uuid`` module, giving each new session the same job ids, so a
    dry run after a real run sees the same job (as when Pleo still lists it)."""

    UUID = uuid.UUID

    def __init__(self) -> None:
        self.made = itertools.count(1)

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=next(self.made), version=4)


async def test_a_dry_run_writes_a_marked_report_and_leaves_the_real_one_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pleo_export_sandbox.store, "uuid", _SameJobIds())
    real = await export(tmp_path / "demo", items=8)
    (job,) = real.report.jobs
    (page,) = real.html()
    (table,) = real.csv()
    before = {path: path.read_bytes() for path in (page, table)}
    assert [r["run"] for r in _rows(table)] == ["export"] * 8
    assert "DRY RUN" not in page.read_text(encoding="utf-8")

    monkeypatch.setattr(pleo_export_sandbox.store, "uuid", _SameJobIds())
    dry = await export(tmp_path / "demo", dry_run=True, fresh=False)
    (dry_job,) = dry.report.jobs
    assert dry_job.job_id == job.job_id and dry_job.dry_run
    # The real run's files are untouched, byte for byte; the dry run has its own names.
    assert {path: path.read_bytes() for path in (page, table)} == before
    assert real.html() == [page] and real.csv() == [table]
    stem = file_stem(job.job_id, dry_run=True)
    assert stem == f"dry-run-{file_stem(job.job_id)}"
    dry_page = real.directory / f"{stem}.html"
    dry_table = real.directory / f"{stem}.csv"
    text = dry_page.read_text(encoding="utf-8")
    assert f"<title>DRY RUN: Pleo export report: job {job.job_id}</title>" in text
    assert f"<h1>DRY RUN: Pleo export report: job {job.job_id}</h1>" in text
    assert 'id="dry-run">DRY RUN: a preview. Nothing was written' in text
    assert "<th>Posted now</th>" not in text and "<th>Would be posted</th>" in text
    rows = _rows(dry_table)
    assert len(rows) == 8 and {r["run"] for r in rows} == {"dry run"}
    assert not [r for r in rows if r["outcome"] in {"posted", "already in target"}]
    assert not [r for r in rows if r["external_id"] or r["external_url"]]


async def test_with_no_report_table_the_reports_go_to_reports_beside_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the configuration file's folder
    done = await export(tmp_path / "demo", items=4, table=None)
    assert done.plugin.settings == ReportSettings(directory=(tmp_path / "demo/reports").resolve())
    assert len(done.html()) == 1 and len(done.csv()) == 1
    assert list(elsewhere.iterdir()) == []


def _report_files(directory: Path, *names: str, age: int) -> None:
    """Report-like files, ``age`` seconds old."""
    for name in names:
        path = directory / name
        path.write_text("an older report", encoding="utf-8")
        then = path.stat().st_mtime - age
        os.utime(path, (then, then))


def test_keep_deletes_the_reports_of_older_jobs_and_nothing_else(tmp_path: Path) -> None:
    plugin = ReportPlugin()
    plugin.configure(ReportSettings(directory=tmp_path, keep=2))
    _report_files(tmp_path, "job-a.html", "job-a.csv", age=300)
    _report_files(tmp_path, "job-b.html", "job-b.csv", age=200)
    _report_files(tmp_path, "job-c.html", age=100)
    _report_files(tmp_path, "dry-run-job-d.html", "dry-run-job-d.csv", age=400)
    others = ["notes.txt", "job-a.pdf", "main.beancount", ".job-e.html.x1y2", "job-f.html.bak"]
    _report_files(tmp_path, *others, age=500)

    written = plugin.write(JobData(job_id="new", company_id="acme"))
    assert written == [tmp_path / "job-new.csv", tmp_path / "job-new.html"]
    left = sorted(p.name for p in tmp_path.iterdir())
    # The job just written and the latest older one (c) stay; a and b are gone. The dry run's
    # report is not a real run's to delete, and files the plugin does not name are left.
    assert left == sorted(["job-new.csv", "job-new.html", "job-c.html", "dry-run-job-d.html",
                           "dry-run-job-d.csv", *others])  # fmt: skip


def test_a_dry_run_with_keep_deletes_only_older_dry_run_reports(tmp_path: Path) -> None:
    plugin = ReportPlugin()
    plugin.configure(ReportSettings(directory=tmp_path, keep=1))
    _report_files(tmp_path, "job-a.html", "job-a.csv", age=300)
    _report_files(tmp_path, "dry-run-job-b.html", "dry-run-job-b.csv", age=200)
    data = JobData(job_id="c", company_id="acme")
    data.report = JobReport(job_id="c", company_id="acme", dry_run=True)
    plugin.write(data)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["dry-run-job-c.csv", "dry-run-job-c.html", "job-a.csv", "job-a.html"]


def test_without_keep_every_report_stays(tmp_path: Path) -> None:
    plugin = ReportPlugin()
    plugin.configure(ReportSettings(directory=tmp_path, formats=("csv",)))
    for n in range(5):
        plugin.write(JobData(job_id=f"j{n}", company_id="acme"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"job-j{n}.csv" for n in range(5)]


def test_keep_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="keep"):
        ReportSettings(keep=0)
