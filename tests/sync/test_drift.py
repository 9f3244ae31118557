"""Master-data drift found before a job starts: in the items of pending jobs and in Pleo's
master data, against a real beancount ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pleo_export.host import PluginHost
from pleo_export.sync import Kind
from pleo_export.sync.drift import find_drift
from pleo_export_sandbox import DEMO_CHART, Sandbox
from tests.sync.support import session_on, settings_for

pytestmark = pytest.mark.anyio

CLOSED = """
2020-01-01 close Liabilities:AccountsPayable:BTGroupPlc
2020-01-01 custom "pleo-tax-code" "S20"
  name: "Standard rate 20%"
  rate: "0.20"
  type: "inclusive"
  archived: TRUE
"""


async def test_a_closed_vendor_on_pending_items_blocks_and_an_ignored_tax_code_does_not(
    tmp_path: Path,
) -> None:
    """The connector decides: beancount refuses items of a closed vendor's account
    (vendor_unknown) but books a closed tax code's items all the same (tax codes are metadata
    in the ledger), so only the vendor blocks; Pleo-only differences are notes."""
    cls = PluginHost(load_entry_points=False).load_connector("beancount")
    values = cls.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    with (tmp_path / "ledger" / "main.beancount").open("a", encoding="utf-8") as ledger:
        ledger.write(CLOSED)
    sandbox = Sandbox()  # Pleo holds the demo chart's master data
    company = sandbox.add_company(wallet_currency="GBP")
    key = SecretStr(company.api_key)
    settings = settings_for(tmp_path, sandbox, company.id, key, "beancount", values)
    job = sandbox.queue_export(company.id, count=80, seed=5, vendor_based_bookkeeping=True)
    items = [sandbox.export_item(i.accounting_entry_id) for i in sandbox.job_items(job.id)]
    with_bt = sum(1 for i in items if (i.get("vendor") or {}).get("code") == "V1004")
    with_s20 = sum(
        1
        for i in items
        if any((line.get("tax") or {}).get("code") == "S20" for line in i["accountingEntryLines"])
    )
    assert with_bt and with_s20  # the seed gives both

    async with session_on(settings, sandbox, dry_run=True) as (session, pleo):
        jobs = await session.engine.pending_jobs()
        drift = await find_drift(session.connector, pleo, session.client, jobs)

    by_key = {(d.kind, d.code, d.items > 0): d for d in drift.findings}
    on_items_vendor = by_key[(Kind.VENDORS, "V1004", True)]
    on_items_tax = by_key[(Kind.TAX_CODES, "S20", True)]
    in_pleo_vendor = by_key[(Kind.VENDORS, "V1004", False)]
    assert on_items_vendor.items == with_bt and on_items_vendor.blocking
    assert "refuses" in on_items_vendor.problem and "vendor_unknown" in on_items_vendor.problem
    assert on_items_tax.items == with_s20 and not on_items_tax.blocking
    assert "accepts" in on_items_tax.problem
    assert not in_pleo_vendor.blocking and "archives it in Pleo" in in_pleo_vendor.problem
    assert {d.code for d in drift.blocking} == {"V1004"}
    assert drift.not_checked == []
