"""Through the engine: unknown vendor, unknown account and a closed period fail their items
with the right reason while the rest of the job succeeds; refused logins and an unreachable
Tryton fail the job; a dry run writes nothing.

The module's Tryton has period 2025-02 closed. One vendor-based job of sandbox items (some on
the unknown account 6999) plus hand-made items whose vendor Tryton does not know is exported
with ``closed_period = "fail"``, then the items that failed on the closed period are exported
again in a new job with ``closed_period = "first_open_date"``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from connectors.tryton.tests.tryton_items import job as planning_job
from connectors.tryton.tests.tryton_items import line, vendor, wire_item
from connectors.tryton.tests.tryton_server import TrytonServer, free_port
from connectors.tryton.tests.tryton_support import (
    CURRENCY,
    run_engine,
    tryton_client,
    tryton_settings,
)
from pleo_export import ExportItem, ExportJobItemStatus, RunReport
from pleo_export.testing import plan_item
from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE, Sandbox, SandboxConfig, generate_items
from pleo_export_sandbox.app import FILE_PLACEHOLDER
from pleo_export_tryton import VENDOR_UNKNOWN_MESSAGE

CLOSED = "2025-02"
COMPANY_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "pleo-export-tryton-failures"))


@dataclass
class Scenario:
    server: TrytonServer
    sandbox: Sandbox
    items: dict[str, ExportItem]
    dry_run: RunReport
    counts_before: dict[str, int]
    counts_after_dry_run: dict[str, int]
    first: RunReport
    second: RunReport
    first_job: str
    second_job: str


def _expected(item: ExportItem) -> str | None:
    """The reason type this item must fail with under closed_period = "fail", or None."""
    if item.vendor is not None and item.vendor.code == "V9999":
        return "vendor_unknown"
    # The dates the item is booked on: a supplier invoice's is its invoice date.
    plan = plan_item(item, planning_job(vendor_based=True))
    if CLOSED in {entry.date.strftime("%Y-%m") for entry in plan.entries}:
        return "accounting_system_validation_failure"
    codes = {ln.account.code for ln in item.accounting_entry_lines if ln.account is not None}
    if UNKNOWN_ACCOUNT_CODE in codes:
        return "account_unknown"
    return None


async def _counts(server: TrytonServer) -> dict[str, int]:
    async with tryton_client(server) as client:
        return {
            model: await client.model(model, "search_count", [])
            for model in ("account.move", "account.invoice", "ir.attachment")
        }


async def _close_period(server: TrytonServer, name: str) -> None:
    async with tryton_client(server) as client:
        (period_id,) = await client.model("account.period", "search", [("name", "=", name)])
        await client.model("account.period", "close", [period_id], write=True)


async def _scenario(server: TrytonServer, work: Path) -> Scenario:
    await _close_period(server, CLOSED)
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    company = sandbox.add_company(
        name="Pleo Sandbox Ltd", wallet_currency=CURRENCY, company_id=COMPANY_ID
    )
    wires = generate_items(
        company.id,
        70,
        seed=31,
        vendor_based_bookkeeping=True,
        unknown_account_rate=0.15,
        file_url=lambda file_id: FILE_PLACEHOLDER + file_id,
    )
    for day in ("2025-03-12T10:00:00Z", "2025-04-02T10:00:00Z"):
        wire = wire_item(
            "card_purchase",
            4500,
            lines=[line(4500, "6100")],
            date=day,
            bookkeeping="accounts_payable",
            vendor=vendor("V9999"),
        )
        wire["companyId"] = company.id
        wires.append(wire)
    ids = sandbox.add_entries(company.id, wires)
    items = {i: ExportItem.model_validate(sandbox.export_item(i)) for i in ids}
    job = sandbox.create_job(company.id, ids, vendor_based_bookkeeping=True)

    settings = tryton_settings(server)
    counts_before = await _counts(server)
    dry_run = await run_engine(
        sandbox, company.id, company.api_key, settings, work / "dry.db", dry_run=True
    )
    counts_after_dry_run = await _counts(server)
    first = await run_engine(sandbox, company.id, company.api_key, settings, work / "one.db")

    closed = [
        i for i, it in items.items() if _expected(it) == "accounting_system_validation_failure"
    ]
    again = sandbox.create_job(company.id, closed, vendor_based_bookkeeping=True)
    second = await run_engine(
        sandbox,
        company.id,
        company.api_key,
        tryton_settings(server, closed_period="first_open_date"),
        work / "two.db",
    )
    return Scenario(
        server=server,
        sandbox=sandbox,
        items=items,
        dry_run=dry_run,
        counts_before=counts_before,
        counts_after_dry_run=counts_after_dry_run,
        first=first,
        second=second,
        first_job=job.id,
        second_job=again.id,
    )


@pytest.fixture(scope="module")
def scenario(tryton: TrytonServer, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return anyio.run(_scenario, tryton, tmp_path_factory.mktemp("failures"))


def test_the_job_mixes_every_failure_with_successes(scenario: Scenario) -> None:
    expected = [_expected(it) for it in scenario.items.values()]
    assert expected.count("vendor_unknown") == 2
    assert expected.count("account_unknown") >= 3
    assert expected.count("accounting_system_validation_failure") >= 3
    assert expected.count(None) >= 30


def test_a_dry_run_writes_nothing(scenario: Scenario) -> None:
    assert scenario.counts_after_dry_run == scenario.counts_before
    (job,) = scenario.dry_run.jobs
    assert job.would_post == sum(1 for it in scenario.items.values() if _expected(it) is None)
    assert job.failed == len(scenario.items) - job.would_post


def test_each_failure_has_its_reason_and_the_rest_succeeds(scenario: Scenario) -> None:
    (report,) = scenario.first.jobs
    assert report.final_event == "completed_with_errors"
    job_items = {i.accounting_entry_id: i for i in scenario.sandbox.job_items(scenario.first_job)}
    for entry_id, it in scenario.items.items():
        reported = job_items[entry_id]
        reason = _expected(it)
        if reason is None:
            assert reported.status == ExportJobItemStatus.SUCCESSFUL, reported.failure_reason
            assert reported.external_id
            continue
        assert reported.status == ExportJobItemStatus.FAILED
        assert reported.failure_reason_type == reason, reported.failure_reason
        message = reported.failure_reason or ""
        if reason == "vendor_unknown":
            assert message.startswith(VENDOR_UNKNOWN_MESSAGE)
            assert "V9999" in message
        elif reason == "account_unknown":
            assert f"account.code {UNKNOWN_ACCOUNT_CODE}" in message
            assert "change the category in Pleo" in message
        else:
            assert "closed accounting period" in message
            assert 'closed_period = "fail"' in message
            assert f"period {CLOSED} is closed" in message


def test_first_open_date_books_closed_period_items_in_the_next_period(
    scenario: Scenario,
) -> None:
    (report,) = scenario.second.jobs
    job_items = scenario.sandbox.job_items(scenario.second_job)
    booked = []
    for job_item in job_items:
        it = scenario.items[job_item.accounting_entry_id]
        codes = {ln.account.code for ln in it.accounting_entry_lines if ln.account is not None}
        if UNKNOWN_ACCOUNT_CODE in codes:  # the next check after the period
            assert job_item.failure_reason_type == "account_unknown"
        else:
            assert job_item.status == ExportJobItemStatus.SUCCESSFUL, job_item.failure_reason
            booked.append(job_item)
    assert len(booked) >= 3
    assert report.posted == len(booked)

    async def read() -> list[dict[str, Any]]:
        async with tryton_client(scenario.server) as client:
            rows: list[dict[str, Any]] = []
            for job_item in booked:
                model, _, number = (job_item.external_id or "").partition(",")
                fields = ["description"] + (
                    ["date"] if model == "account.move" else ["accounting_date", "invoice_date"]
                )
                (row,) = await client.model(model, "read", [int(number)], fields)
                rows.append(row)
            return rows

    for row in anyio.run(read):
        booked = row.get("date") or row.get("accounting_date")
        assert booked == dt.date(2025, 3, 1)
        assert (
            "is in a closed period; booked on the first open date of 2025-03"
            in (row["description"])
        )
        assert "[Pleo date 2025-02-" in row["description"]


def test_refused_login_fails_the_job_with_authentication_failure(
    tryton: TrytonServer, tmp_path: Path
) -> None:
    sandbox = Sandbox(SandboxConfig())
    company = sandbox.add_company(name="Login Ltd", wallet_currency=CURRENCY)
    sandbox.queue_export(company.id, count=3, seed=5)
    settings = tryton_settings(tryton, password="not-the-password")
    report = anyio.run(
        run_engine, sandbox, company.id, company.api_key, settings, tmp_path / "state.db"
    )
    (job,) = report.jobs
    assert job.final_event == "failed"
    assert job.failure_reason_type == "accounting_system_authentication_failure"
    assert "Tryton refused the login of user 'admin'" in (job.failure_reason or "")
    assert "PLEO_EXPORT_TRYTON_PASSWORD" in (job.failure_reason or "")
    assert "not-the-password" not in (job.failure_reason or "")


def test_unreachable_tryton_fails_the_job_as_unreachable(
    tryton: TrytonServer, tmp_path: Path
) -> None:
    sandbox = Sandbox(SandboxConfig())
    company = sandbox.add_company(name="Down Ltd", wallet_currency=CURRENCY)
    sandbox.queue_export(company.id, count=3, seed=6)
    settings = tryton_settings(tryton, url=f"http://127.0.0.1:{free_port()}", timeout=5)
    report = anyio.run(
        run_engine, sandbox, company.id, company.api_key, settings, tmp_path / "state.db"
    )
    (job,) = report.jobs
    assert job.final_event == "failed"
    assert job.failure_reason_type == "accounting_system_unreachable"
    assert "cannot connect to Tryton" in (job.failure_reason or "")
