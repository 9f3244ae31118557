"""Draft vendors a connector cannot create stay drafts, with the reason said once; a draft
matched by ``sync vendors`` after someone created it in the books is activated. A draft refused
with ``vendor_unknown`` (waiting for the books to list it) is offered again every round and
activated once they do; any other refusal is offered again only once the vendor changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pleo_export import AccountingVendor, ItemRejected, VendorDraft
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.connector import Capability
from pleo_export.host import PluginHost
from pleo_export.pleo.masterdata_models import VendorState
from pleo_export.sync import Action, Kind, run_sync
from pleo_export.sync.drafts import DraftStatus, DraftVendors
from pleo_export_sandbox import DEMO_CHART
from tests.sync.support import empty_sandbox, session_on, settings_for

pytestmark = pytest.mark.anyio

NEW_VENDOR = """
2000-01-01 open Liabilities:AccountsPayable:FreshPaint
  vendor-name: "Fresh Paint Ltd"
  vendor-code: "V4001"
  vendor-external-id: "AS-4001"
  vendor-tax-number: "GB1112222"
  vendor-currency: "GBP"
"""


async def test_a_connector_that_cannot_create_vendors_leaves_the_draft_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = PluginHost(load_entry_points=False).load_connector("beancount")
    reduced = cls.manifest.capabilities - {Capability.CREATE_VENDORS}
    monkeypatch.setattr(cls, "manifest", cls.manifest.model_copy(update={"capabilities": reduced}))
    values = cls.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "beancount", values)
    draft = sandbox.create_draft_vendor(company_id, "Fresh Paint Ltd", "GBP")

    async with session_on(settings, sandbox) as (session, pleo):
        drafts = DraftVendors(session.connector, pleo)
        (first,) = await drafts.handle_ids([draft["id"]])
        (again,) = await drafts.handle_ids([draft["id"]])
        still = await pleo.get_vendor(draft["id"])

        # Someone creates the vendor in the books; `sync vendors` matches the draft by name.
        with (tmp_path / "ledger" / "main.beancount").open("a", encoding="utf-8") as ledger:
            ledger.write(NEW_VENDOR)
        await session.connector.open()  # the ledger is read again
        report = await run_sync(session.connector, pleo, [Kind.VENDORS], dry_run=False)
        activated = await pleo.get_vendor(draft["id"])

    assert first.status is DraftStatus.NOT_CREATED
    assert "does not declare create_vendors" in first.message
    assert "pleo-export sync vendors" in first.message
    assert again.repeated and not first.repeated
    assert still.state is VendorState.DRAFT
    (vendors,) = report.kinds
    assert vendors.plan is not None
    (change,) = [c for c in vendors.plan.changes if c.code == "V4001"]
    assert (change.action, change.pleo_id) == (Action.ACTIVATE, draft["id"])
    assert activated.state is VendorState.ACTIVE
    assert (activated.code, activated.external_id) == ("V4001", "AS-4001")


async def test_a_draft_refused_as_vendor_unknown_is_offered_again_until_the_books_list_it(
    tmp_path: Path,
) -> None:
    # The SFTP connector (in a local directory) cannot create vendors: it requests them and
    # refuses with vendor_unknown until the receiving system's vendor list has them.
    cls = PluginHost(load_entry_points=False).load_connector("sftp")
    values = cls.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "sftp", values)
    draft = sandbox.create_draft_vendor(company_id, "Fresh Paint Ltd", "GBP")
    vendors_csv = tmp_path / "outbox" / "vendors.csv"

    async with session_on(settings, sandbox) as (session, pleo):
        drafts = DraftVendors(session.connector, pleo)
        (first,) = await drafts.poll()
        (second,) = await drafts.poll()
        (third,) = await drafts.poll()
        with vendors_csv.open("a", encoding="utf-8", newline="") as listed:
            listed.write("V4001,Fresh Paint Ltd,AS-4001,,,GBP,GB,\r\n")
        (fourth,) = await drafts.poll()
        activated = await pleo.get_vendor(draft["id"])

    assert [o.status for o in (first, second, third)] == [DraftStatus.REJECTED] * 3
    assert "now requested" in first.message and "already requested" in second.message
    assert third.repeated and not second.repeated
    assert fourth.status is DraftStatus.ACTIVATED, fourth.message
    assert activated.state is VendorState.ACTIVE
    assert (activated.code, activated.external_id) == ("V4001", "AS-4001")


async def test_a_draft_refused_for_another_reason_is_offered_again_only_once_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = PluginHost(load_entry_points=False).load_connector("beancount")
    offered: list[str] = []

    async def refuse(self: object, draft: VendorDraft) -> AccountingVendor:
        offered.append(draft.name)
        raise ItemRejected(
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE, "the name is not allowed: rename it"
        )

    monkeypatch.setattr(cls, "create_vendor", refuse)
    values = cls.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "beancount", values)
    draft = sandbox.create_draft_vendor(company_id, "Fresh Paint Ltd", "GBP")

    async with session_on(settings, sandbox) as (session, pleo):
        drafts = DraftVendors(session.connector, pleo)
        (first,) = await drafts.poll()
        (second,) = await drafts.poll()
        sandbox.master_data(company_id).vendors[draft["id"]].updated_at += timedelta(seconds=1)
        (third,) = await drafts.poll()

    assert [o.status for o in (first, second, third)] == [DraftStatus.REJECTED] * 3
    assert "the name is not allowed" in first.message
    assert second.repeated
    assert offered == ["Fresh Paint Ltd", "Fresh Paint Ltd"]  # not in the second round
