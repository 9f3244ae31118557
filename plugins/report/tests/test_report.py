"""The report plugin after a real export: files, contents, escaping, settings, failures."""

from __future__ import annotations

import csv
import html
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pleo_export import BookedEntry, BookedPosting, Capability, hookimpl
from pleo_export.host import PluginConfigError, PluginHost
from pleo_export.testing import check_plugin
from pleo_export_beancount import BeancountConnector
from pleo_export_report import (
    ItemRow,
    JobData,
    Outcome,
    ReportPlugin,
    file_stem,
    reconcile,
    render_html,
)
from pleo_export_report.collect import Line
from plugins.report.tests.conftest import HOSTILE_NAMES, export, make_hostile

pytestmark = pytest.mark.anyio


async def test_export_writes_html_and_csv_with_every_item(tmp_path: Path) -> None:
    done = await export(tmp_path / "demo", mutate=make_hostile)
    (job,) = done.report.jobs
    assert job.items_total == 24 and job.failed >= 1 and job.posted >= 1
    (page,) = done.html()
    (table,) = done.csv()
    assert page.name == f"{file_stem(job.job_id)}.html" and page.parent == tmp_path / "demo/reports"
    text = page.read_text(encoding="utf-8")

    rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == job.items_total
    by_outcome = {o: [r for r in rows if r["outcome"] == o] for o in ("posted", "failed")}
    assert len(by_outcome["posted"]) == job.posted
    assert len(by_outcome["failed"]) == job.failed
    for row in by_outcome["failed"]:
        assert row["reason_type"] == "account_unknown" and "6999" in row["message"]
        assert html.escape(row["reference"]) in text
    for row in by_outcome["posted"]:
        assert row["external_id"].startswith("pleo-") and row["external_url"].startswith("file:")
        assert (row["amount"] and row["currency"] == "EUR") or row["currency"]
    # Every item is in the page, with its outcome and reference; the counts are there.
    assert text.count('<span class="badge') == job.items_total
    assert f"<th>Failed</th><td>{job.failed}</td>" in text
    assert f"<th>Posted now</th><td>{job.posted}</td>" in text
    assert text.count('href="file:') == job.posted
    # beancount reads back what it booked: every posted item compared, all balanced.
    assert f"Balanced: the {job.posted} items compared are booked exactly" in text
    assert '<table class="totals">' in text and "Differences (0)" in text


class EditsTheLedger:
    """Stands for a person who changes a booked amount by hand before the read-back."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.changed: str | None = None

    @hookimpl
    def pleo_export_job_finished(self) -> None:
        text = self.output.read_text(encoding="utf-8")
        current = ""
        lines = text.splitlines(keepends=True)
        for n, line in enumerate(lines):
            if line.startswith("; pleo-export begin "):
                current = line.split()[-1]
            found = re.match(r"^(\s+Expenses:\S+\s+)(\d+)\.(\d\d)( \w{3}.*)$", line, re.DOTALL)
            if found and self.changed is None:
                lines[n] = f"{found[1]}{int(found[2]) + 1}.{found[3]}{found[4]}"
                self.changed = current
        self.output.write_text("".join(lines), encoding="utf-8")


async def test_a_booked_amount_changed_by_hand_is_listed_as_a_difference(tmp_path: Path) -> None:
    editor = EditsTheLedger(tmp_path / "demo" / "ledger" / "pleo-export.beancount")
    done = await export(tmp_path / "demo", items=8, unknown_account_rate=0.0, extra=[editor])
    (page,) = done.html()
    text = page.read_text(encoding="utf-8")
    assert editor.changed
    assert "1 difference in 8 items compared; 0 items with nothing booked" in text
    (row,) = re.findall(r'<tr class="diff"><td class="ref">([^<]*)</td>', text)
    assert row == editor.changed
    assert "amounts differ" in text and "1.00 GBP</td>" in text


async def test_hostile_vendor_names_are_escaped_in_html_and_csv(tmp_path: Path) -> None:
    done = await export(tmp_path / "demo", mutate=make_hostile)
    (page,) = done.html()
    text = page.read_text(encoding="utf-8")
    tags = _tags(text)
    names = {name for name, _ in tags}
    assert names <= ALLOWED_TAGS, names - ALLOWED_TAGS
    assert [name for name, _ in tags].count("h1") == 1
    assert not [attrs for _, attrs in tags if any(key.startswith("on") for key in attrs)]
    for name in HOSTILE_NAMES:
        assert html.escape(name, quote=True) in text, name
    (table,) = done.csv()
    rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    vendors = {r["vendor"] for r in rows if r["vendor"]}
    assert "'" + HOSTILE_NAMES[3] in vendors  # a formula is shown as text, never run
    assert HOSTILE_NAMES[3] not in vendors
    assert "<script>alert('vendor')</script>" in vendors  # CSV keeps the text as it is


async def test_formats_and_directory_come_from_the_settings(tmp_path: Path) -> None:
    done = await export(tmp_path / "demo", items=6, table='directory = "out"\nformats = ["csv"]\n')
    assert done.directory == (tmp_path / "demo" / "out").resolve()
    assert len(done.csv()) == 1 and done.html() == []


def test_a_misspelt_setting_names_the_table_and_field(tmp_path: Path) -> None:
    host = PluginHost(strict=True)
    with pytest.raises(PluginConfigError, match=r"plugins\.report\.formats"):
        host.configure_plugins({"report": {"formats": ["pdf"]}}, tmp_path)
    with pytest.raises(PluginConfigError, match=r"plugins\.report\.dirctory: unknown setting"):
        host.configure_plugins({"report": {"dirctory": "x"}}, tmp_path)


async def test_an_unwritable_directory_is_logged_and_the_export_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the report folder should be", encoding="utf-8")
    table = f'directory = "{blocker}/reports"\n'
    with caplog.at_level(logging.ERROR, logger="pleo_export_report"):
        done = await export(tmp_path / "demo", items=6, table=table)
    (job,) = done.report.jobs
    assert job.final_event in {"completed", "completed_with_errors"}
    assert job.posted + job.failed == 6
    assert any(r.__dict__.get("event") == "report.write_failed" for r in caplog.records)


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead",
    "tbody", "tr", "th", "td", "span", "a",
}  # fmt: skip


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _TagCollector()
    collector.feed(text)
    return collector.tags


def _row(reference: str, *lines: Line) -> ItemRow:
    return ItemRow(reference, Outcome.POSTED, lines=lines)


def test_reconciliation_lists_every_difference() -> None:
    eur = "EUR"
    rows = {
        "a": _row(
            "a", Line("Expenses:Food", 1000, eur, "V25"), Line("Assets:Pleo", -1000, eur, None)
        ),
        "b": _row(
            "b", Line("Expenses:Food", 500, eur, "V25"), Line("Assets:Pleo", -500, eur, None)
        ),
        "c": _row(
            "c", Line("Expenses:Travel", 700, eur, None), Line("Assets:Pleo", -700, eur, None)
        ),
        "d": ItemRow("d", Outcome.RECOVERED),
    }
    booked = [
        BookedEntry(
            reference="a",
            postings=(
                BookedPosting(account="Expenses:Food", amount=1000, currency=eur, tax_code="V25"),
                BookedPosting(account="Assets:Pleo", amount=-1000, currency=eur),
            ),
        ),
        BookedEntry(  # b: booked with another amount and without its tax code
            reference="b",
            postings=(
                BookedPosting(account="Expenses:Food", amount=550, currency=eur),
                BookedPosting(account="Assets:Pleo", amount=-550, currency=eur),
            ),
        ),
        BookedEntry(reference="d", postings=()),
    ]
    result = reconcile(rows, ["a", "b", "c", "d"], booked, None)
    assert result.available and not result.balanced
    assert result.compared == 3 and result.missing == ["c"] and result.not_compared == ["d"]
    found = {(d.reference, d.account, d.tax_code, d.pleo, d.booked) for d in result.differences}
    assert found == {
        ("b", "Assets:Pleo", "", -500, -550),
        ("b", "Expenses:Food", "", 0, 550),
        ("b", "Expenses:Food", "V25", 500, 0),
        ("c", "Assets:Pleo", "", -700, 0),
        ("c", "Expenses:Travel", "", 700, 0),
    }
    totals = {(t.account, t.tax_code): (t.pleo, t.booked) for t in result.totals}
    assert totals[("Expenses:Food", "V25")] == (1500, 1000)
    assert totals[("Assets:Pleo", "")] == (-2200, -1550)

    data = JobData(job_id="job-1", company_id="co", rows=rows, reconciliation=result)
    page = render_html(data)
    assert "5 differences in 3 items compared; 1 item with nothing booked" in page
    assert page.count('<tr class="diff"><td class="ref">') == 5
    assert 'id="not-compared"' in page


def test_a_run_that_only_found_earlier_entries_has_nothing_to_compare() -> None:
    rows = {"d": ItemRow("d", Outcome.RECOVERED)}
    result = reconcile(rows, ["d"], [BookedEntry(reference="d")], None)
    assert result.balanced and result.compared == 0 and result.not_compared == ["d"]
    page = render_html(JobData(job_id="j", company_id="c", rows=rows, reconciliation=result))
    assert "Nothing to compare: 1 item found in the accounting system, booked by an earlier" in page


def test_unavailable_reconciliation_says_why() -> None:
    problem = "connector 'x' cannot read back what it booked"
    result = reconcile({}, ["a"], None, problem)
    page = render_html(JobData(job_id="j", company_id="c", reconciliation=result))
    assert f"Not reconciled: {html.escape(problem)}." in page


def test_only_safe_links_are_made() -> None:
    rows = {
        "a": ItemRow("a", Outcome.POSTED, external_id="x", external_url="javascript:alert(1)"),
        "b": ItemRow("b", Outcome.POSTED, external_id="y", external_url="https://erp.example/1"),
    }
    page = render_html(JobData(job_id="j", company_id="c", rows=rows))
    assert "javascript:" not in page
    assert '<a href="https://erp.example/1" rel="noopener noreferrer">y</a>' in page


def test_file_names_never_leave_the_directory() -> None:
    assert file_stem("../../etc/passwd") == "job-_.._etc_passwd"
    assert "/" not in file_stem("a/b") and file_stem("") == "job-unnamed"


def test_the_plugin_class_is_what_the_entry_point_names() -> None:
    host = PluginHost(strict=True)
    assert isinstance(host.pm.get_plugin("report"), ReportPlugin)
    assert Capability.READ_BOOKED.value == "read_booked"
    assert BeancountConnector.manifest.id == "beancount"


async def test_the_plugin_passes_the_plugin_conformance_check(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    checked = await check_plugin("report", settings={"directory": str(reports)}, work_dir=tmp_path)
    assert set(checked.hooks) == {
        "pleo_export_job_started",
        "pleo_export_map_item",
        "pleo_export_item_prepared",
        "pleo_export_item_outcome",
        "pleo_export_job_finished",
        "pleo_export_job_reconciled",
    }
    assert set(checked.settings_fields) == {"directory", "formats", "keep"}
    assert checked.failed_as_is == {}
    assert sorted(reports.glob("job-*.html")) and sorted(reports.glob("job-*.csv"))
