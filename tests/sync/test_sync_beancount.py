"""``sync`` against the sandbox and a real beancount ledger: after it, a vendor-based job drawn
from Pleo's master data exports with no master-data failure, and a second sync writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export.host import PluginHost
from pleo_export.pleo.masterdata_models import VendorState
from pleo_export.sync import Action, Kind, SyncPlan, run_sync
from pleo_export.sync.apply import apply_plan
from pleo_export_sandbox import DEMO_CHART
from tests.sync.support import empty_sandbox, master_data_writes, session_on, settings_for

pytestmark = pytest.mark.anyio

MASTER_DATA_FAILURES = {"vendor_unknown", "tax_code_unknown", "tag_unknown"}


def _beancount(tmp_path: Path) -> dict[str, object]:
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    return connector.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined, no-any-return]


async def test_after_sync_a_vendor_job_from_pleos_master_data_has_no_master_data_failure(
    tmp_path: Path,
) -> None:
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "beancount", _beancount(tmp_path))

    async with session_on(settings, sandbox) as (session, pleo):
        first = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        vendors = await pleo.list_vendors()
        taxes = await pleo.list_tax_codes()
        groups = await pleo.list_tag_groups()

        sandbox.queue_export(
            company_id, count=60, seed=11, vendor_based_bookkeeping=True, from_master_data=True
        )
        report = await session.worker.run_pending()

        before = len(sandbox.requests)
        second = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        second_writes = master_data_writes(sandbox.requests[before:])

    # The first sync brought the ledger's master data into the empty Pleo.
    assert first.failed == 0
    assert {v.code for v in vendors} == {v.code for v in DEMO_CHART.vendors}
    assert all(v.state is VendorState.ACTIVE for v in vendors)
    assert {t.code for t in taxes} == {t.code for t in DEMO_CHART.tax_codes}
    assert {g.code for g in groups} == {g.code for g in DEMO_CHART.tag_groups}
    # The job drew its vendors, tax codes and tags from that data, and all of them booked.
    (job,) = report.jobs
    items = [sandbox.export_item(i.accounting_entry_id) for i in sandbox.job_items(job.job_id)]
    assert sum(1 for item in items if item.get("vendor")) >= 5
    lines = [line for item in items for line in item["accountingEntryLines"]]
    assert any(line.get("tax") for line in lines) and any(line.get("tags") for line in lines)
    reasons = {failure.reason_type for failure in job.failures}
    assert not reasons & MASTER_DATA_FAILURES, job.failures
    assert job.failed == 0
    # A second sync plans nothing and sends no write request.
    assert second.writes == 0
    assert second_writes == []
    assert all(outcome.plan is not None and outcome.plan.writes == () for outcome in second.kinds)


async def test_a_dry_run_plans_but_writes_nothing_and_an_interrupted_sync_converges(
    tmp_path: Path,
) -> None:
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "beancount", _beancount(tmp_path))

    async with session_on(settings, sandbox) as (session, pleo):
        before = len(sandbox.requests)
        dry = await run_sync(session.connector, pleo, [Kind.VENDORS], dry_run=True)
        dry_writes = master_data_writes(sandbox.requests[before:])
        # "Interrupted": only the first three vendors were written before the stop.
        (outcome,) = dry.kinds
        assert outcome.plan is not None
        partial = await apply_plan(SyncPlan(Kind.VENDORS, outcome.plan.writes[:3]), pleo)
        resumed = await run_sync(session.connector, pleo, [Kind.VENDORS], dry_run=False)
        again = await run_sync(session.connector, pleo, [Kind.VENDORS], dry_run=True)

    assert dry_writes == []
    assert partial.writes == 3
    assert outcome.plan.count(Action.CREATE) == len(DEMO_CHART.vendors)
    (resumed_kind,) = resumed.kinds
    assert resumed_kind.plan is not None
    assert resumed_kind.plan.count(Action.CREATE) == len(DEMO_CHART.vendors) - 3
    assert resumed.writes == len(DEMO_CHART.vendors) - 3
    (again_kind,) = again.kinds
    assert again_kind.plan is not None and again_kind.plan.writes == ()


async def test_a_renamed_dimension_updates_its_tag_group_and_keeps_pleos_metadata(
    tmp_path: Path,
) -> None:
    values = _beancount(tmp_path)
    with (tmp_path / "ledger" / "main.beancount").open("a", encoding="utf-8") as ledger:
        ledger.write('\n2020-01-01 custom "pleo-dimension" "DEPT"\n  name: "Cost centre"\n')
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "beancount", values)

    async with session_on(settings, sandbox) as (session, pleo):
        group = await pleo.create_tag_group(
            code="DEPT", name="Department", metadata={"source": "erp"}
        )
        report = await run_sync(session.connector, pleo, [Kind.TAGS], dry_run=False)
        (after,) = [g for g in await pleo.list_tag_groups() if g.code == "DEPT"]

    (tags,) = report.kinds
    assert tags.plan is not None
    (renamed,) = [c for c in tags.plan.changes if c.code == "DEPT" and c.group_code is None]
    assert (renamed.action, renamed.pleo_id) == (Action.UPDATE, group.id)
    assert after.name == "Cost centre"
    assert after.metadata == {"source": "erp"}
