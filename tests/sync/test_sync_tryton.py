"""Master data with a real Tryton: ``sync`` fills an empty Pleo from Tryton's parties, taxes and
analytic accounts, after which a vendor-based job drawn from Pleo's master data books with no
master-data failure and a second sync writes nothing; a vendor created in Pleo appears in Tryton
and is activated in Pleo, announced by webhook over loopback or found by polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.tryton.tests.tryton_server import TrytonServer
from connectors.tryton.tests.tryton_support import CURRENCY, tryton_client
from pleo_export.sync import Kind, run_sync
from pleo_export_sandbox import Sandbox
from tests.sync.support import (
    SECRET,
    empty_sandbox,
    free_port,
    master_data_writes,
    session_on,
    settings_for,
    wait_active,
    watch_config,
    watching,
)

pytestmark = pytest.mark.anyio

MASTER_DATA_FAILURES = {"vendor_unknown", "tax_code_unknown", "tag_unknown"}


def connector_values(server: TrytonServer) -> dict[str, Any]:
    return {
        "url": server.url,
        "database": server.database,
        "user": server.user,
        "out_of_pocket_account": "2250",
        "contra_account": "1299",
        "rounding_account": "7990",
        "timeout": "120",
    }


async def parties_named(server: TrytonServer, name: str) -> list[dict[str, Any]]:
    async with tryton_client(server) as client:
        rows: list[dict[str, Any]] = await client.search_read(
            "party.party", [["name", "=", name]], ["id", "code", "name"]
        )
        return rows


async def test_after_sync_a_vendor_job_books_in_tryton_without_master_data_failures(
    tryton: TrytonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEO_EXPORT_TRYTON_PASSWORD", tryton.password)
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "tryton", connector_values(tryton))

    async with session_on(settings, sandbox) as (session, pleo):
        assert session.engine.unavailable is None, session.engine.unavailable
        first = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        vendors = await pleo.list_vendors()
        taxes = await pleo.list_tax_codes()

        sandbox.queue_export(
            company_id, count=40, seed=23, vendor_based_bookkeeping=True, from_master_data=True
        )
        report = await session.worker.run_pending()

        before = len(sandbox.requests)
        second = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        second_writes = master_data_writes(sandbox.requests[before:])

    assert first.failed == 0
    assert vendors and taxes
    (job,) = report.jobs
    items = [sandbox.export_item(i.accounting_entry_id) for i in sandbox.job_items(job.job_id)]
    assert sum(1 for item in items if item.get("vendor")) >= 3
    reasons = {failure.reason_type for failure in job.failures}
    assert not reasons & MASTER_DATA_FAILURES, job.failures
    assert job.failed == 0, job.failures
    lines = [line for item in items for line in item["accountingEntryLines"]]
    assert any(line.get("tax") for line in lines) and any(line.get("tags") for line in lines)
    assert second.writes == 0
    assert second_writes == []


async def _vendor_appears(
    tryton: TrytonServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    tax_number: str,
    *,
    webhook: bool,
) -> None:
    # A trytond that died under an earlier test shows its log here, not as a connection error.
    alive = tryton.process is not None and tryton.process.poll() is None
    assert alive, f"trytond is not running:\n{tryton.tail()}"
    monkeypatch.setenv("PLEO_EXPORT_TRYTON_PASSWORD", tryton.password)
    sandbox = Sandbox()
    company = sandbox.add_company(wallet_currency=CURRENCY)
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", company.api_key)
    port = free_port()
    config = watch_config(
        tmp_path,
        sandbox,
        company.id,
        "tryton",
        connector_values(tryton),
        poll=3600 if webhook else 0.2,
        listen=f"127.0.0.1:{port}" if webhook else None,
    )

    async with watching(config, sandbox):
        if webhook:
            sandbox.webhooks.subscribe(f"http://127.0.0.1:{port}/pleo/webhooks", secret=SECRET)
        draft = sandbox.create_draft_vendor(
            company.id, name, CURRENCY, country="GB", tax_registration_number=tax_number
        )
        if webhook:
            assert await sandbox.webhooks.deliver() == 1
        vendor = await wait_active(sandbox, company.id, draft["id"])

    (party,) = await parties_named(tryton, name)
    assert vendor.code == party["code"]
    assert vendor.external_id


async def test_a_vendor_created_in_pleo_appears_in_tryton_announced_by_webhook(
    tryton: TrytonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _vendor_appears(
        tryton, tmp_path, monkeypatch, "Webhook Widgets Ltd", "GB7778888", webhook=True
    )


async def test_a_vendor_created_in_pleo_appears_in_tryton_found_by_polling(
    tryton: TrytonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _vendor_appears(
        tryton, tmp_path, monkeypatch, "Polled Parts GmbH", "DE123987654", webhook=False
    )
