"""The export lifecycle end to end: real engine, real client, in-process sandbox, test target.

Every request the client sends and every response the sandbox returns is checked against
Pleo's OpenAPI spec (the harness sets ``sandbox.on_exchange``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from pleo_export.connector import JobRejected, OutcomeUncertain, TargetTemporarilyUnavailable
from pleo_export.engine import EngineOptions
from pleo_export.hookspecs import Problem, hookimpl
from pleo_export.host import Origin, PluginHost
from pleo_export.ledger import PreparedEntry
from pleo_export.pleo.models import (
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
)
from pleo_export.state.base import ItemPhase
from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE, FaultRule
from tests.engine.conftest import Harness
from tests.support.memory import MemorySettings

pytestmark = pytest.mark.anyio


def _requests(harness: Harness, method: str, fragment: str) -> list[Any]:
    return [r for r in harness.sandbox.requests if r.method == method and fragment in r.path]


def _events(harness: Harness, job_id: str) -> list[str]:
    return [
        r.body["event"]
        for r in _requests(harness, "POST", "/v3/export-job-events")
        if r.status == 202 and r.body.get("jobId") == job_id
    ]


def _assert_every_item_final(harness: Harness, job_id: str) -> dict[str, Any]:
    items = harness.sandbox.job_items(job_id)
    statuses = Counter(i.status for i in items)
    assert set(statuses) <= {ExportJobItemStatus.SUCCESSFUL, ExportJobItemStatus.FAILED}, statuses
    for item in items:
        if item.status is ExportJobItemStatus.SUCCESSFUL:
            assert item.external_id and item.exported_at
        else:
            assert item.failure_reason_type and item.failure_reason
    return {i.accounting_entry_id: i for i in items}


async def test_happy_path_reports_every_item_in_batches_of_at_most_100(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=230, seed=3)
    async with harness.engine() as engine:
        report = await engine.run_pending()

    [job_report] = report.jobs
    assert job_report.final_event == "completed"
    assert job_report.posted == 230 and job_report.failed == 0
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.COMPLETED
    items = _assert_every_item_final(harness, job.id)
    assert all(i.status is ExportJobItemStatus.SUCCESSFUL for i in items.values())
    assert set(harness.target.entries) == set(items)
    assert harness.target.post_calls == 230
    puts = _requests(harness, "PUT", f"/v3/export-jobs/{job.id}/items")
    assert [len(p.body) for p in puts] == [100, 100, 30]
    assert _events(harness, job.id) == ["started", "completed"]
    # The control layer is read completely before the data layer.
    reqs = harness.sandbox.requests
    control = [
        i for i, r in enumerate(reqs) if r.method == "GET" and r.path.endswith(f"{job.id}/items")
    ]
    data = [i for i, r in enumerate(reqs) if r.path == "/v3/export-items"]
    assert control and data and max(control) < min(data)


async def test_unknown_account_fails_only_that_item_with_account_unknown(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(
        harness.company_id, count=120, seed=5, unknown_account_rate=0.1
    )
    unknown = UNKNOWN_ACCOUNT_CODE
    codes = {
        line["account"]["code"]
        for item in harness.sandbox.job_items(job.id)
        for line in harness.sandbox.export_item(item.accounting_entry_id)["accountingEntryLines"]
        if line.get("account")
    }
    assert unknown in codes
    settings = MemorySettings(known_accounts=sorted(codes - {unknown}))
    async with harness.engine(settings=settings) as engine:
        report = await engine.run_pending()

    [job_report] = report.jobs
    assert job_report.final_event == "completed_with_errors"
    items = _assert_every_item_final(harness, job.id)
    failed = [i for i in items.values() if i.status is ExportJobItemStatus.FAILED]
    assert failed, "the generator was asked for unknown accounts"
    for item in failed:
        assert item.failure_reason_type == "account_unknown"
        assert unknown in item.failure_reason
        assert "accountingEntryLines[" in item.failure_reason
    assert len(failed) + job_report.posted == 120
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.COMPLETED_WITH_ERRORS


async def test_failed_pre_export_validation_fails_the_job_before_reading_items(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=10, seed=1)
    harness.target.check_error = JobRejected(
        ExportJobFailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
        "the ledger server at 127.0.0.1:9 refused the connection",
    )
    async with harness.engine() as engine:
        report = await engine.run_pending()

    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "accounting_system_unreachable"
    assert "refused the connection" in (pleo_job.failure_reason or "")
    assert report.jobs[0].final_event == "failed"
    assert not _requests(harness, "GET", "/v3/export-items")
    assert harness.target.post_calls == 0


async def test_vendor_based_job_needs_accounts_payable_support(harness: Harness) -> None:
    from tests.support.memory import MemoryConnector

    class JournalOnly(MemoryConnector):
        manifest = MemoryConnector.manifest.model_copy(
            update={
                "capabilities": frozenset(
                    {
                        c
                        for c in MemoryConnector.manifest.capabilities
                        if c.value != "accounts_payable"
                    }
                )
            }
        )

    job = harness.sandbox.queue_export(
        harness.company_id, count=5, seed=2, vendor_based_bookkeeping=True
    )
    async with harness.engine(connector_cls=JournalOnly) as engine:
        await engine.run_pending()
    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "invalid_configuration"
    assert "accounts payable" in (pleo_job.failure_reason or "")


async def test_an_in_progress_job_is_resumed_without_sending_started_again(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=40, seed=4)
    crashes = {"left": 1}

    def crash_once(prepared: PreparedEntry) -> None:
        if harness.target.post_calls == 15 and crashes["left"]:
            crashes["left"] -= 1
            raise KeyboardInterrupt  # a process dying mid-job: nothing catches it

    harness.target.post_hook = crash_once
    with pytest.raises(KeyboardInterrupt):
        async with harness.engine() as engine:
            await engine.run_pending()
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.IN_PROGRESS

    async with harness.engine() as engine:
        report = await engine.run_pending()
    assert report.jobs[0].resumed
    assert _events(harness, job.id) == ["started", "completed"]
    _assert_every_item_final(harness, job.id)
    assert harness.target.posted_twice == []
    assert len(harness.target.entries) == 40


async def test_crash_after_posting_before_recording_never_posts_twice(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=30, seed=6)
    crashed: list[str] = []

    def die_after_write(prepared: PreparedEntry) -> None:
        if len(harness.target.entries) == 12 and not crashed:
            crashed.append(prepared.plan.reference)
            raise SystemExit("killed right after the target accepted the entry")

    harness.target.after_store_hook = die_after_write
    with pytest.raises(SystemExit):
        async with harness.engine() as engine:
            await engine.run_pending()

    async with harness.engine() as engine:
        uncertain = await engine.store.items(job.id, [ItemPhase.POSTING])
        assert [r.accounting_entry_id for r in uncertain] == crashed
        report = await engine.run_pending()

    [job_report] = report.jobs
    assert job_report.recovered >= 1
    assert harness.target.posted_twice == []
    items = _assert_every_item_final(harness, job.id)
    assert items[crashed[0]].status is ExportJobItemStatus.SUCCESSFUL
    assert items[crashed[0]].external_id == f"MEM-{crashed[0][:8]}"
    assert _events(harness, job.id) == ["started", "completed"]


async def test_uncertain_post_is_looked_up_and_not_reposted(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=8, seed=7)
    seen: set[str] = set()

    def lose_the_answer(prepared: PreparedEntry) -> None:
        ref = prepared.plan.reference
        if ref not in seen:
            seen.add(ref)
            raise OutcomeUncertain("read timeout after the request was sent")

    harness.target.after_store_hook = lose_the_answer
    async with harness.engine() as engine:
        report = await engine.run_pending()
    assert report.jobs[0].recovered == 8
    assert harness.target.post_calls == 8
    assert harness.target.posted_twice == []
    _assert_every_item_final(harness, job.id)


async def test_transient_target_errors_are_retried_then_reported(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=6, seed=8)
    failures = Counter[str]()
    always_down: list[str] = []

    def flaky(prepared: PreparedEntry) -> None:
        ref = prepared.plan.reference
        if not always_down:
            always_down.append(ref)
        failures[ref] += 1
        if ref == always_down[0] or failures[ref] <= 1:
            raise TargetTemporarilyUnavailable("503 from the ledger server", retry_after=0.01)

    harness.target.post_hook = flaky
    async with harness.engine(options=EngineOptions(post_attempts=3)) as engine:
        report = await engine.run_pending()
    items = _assert_every_item_final(harness, job.id)
    failed = [i for i in items.values() if i.status is ExportJobItemStatus.FAILED]
    # The item that never recovers ends failed with the transient reason; the rest succeed.
    assert [i.accounting_entry_id for i in failed] == always_down
    assert [i.failure_reason_type for i in failed] == ["accounting_system_unreachable"]
    assert failures[always_down[0]] == 3  # post_attempts
    assert report.jobs[0].posted == 5


async def test_plugin_item_validation_and_outcome_hooks(harness: Harness) -> None:
    outcomes: list[tuple[str, bool]] = []

    class Policy:
        @hookimpl
        def pleo_export_validate_item(self, item: Any, job: Any) -> list[Problem] | None:
            if item.type == "card_purchase" and not item.files:
                return [Problem("validation_failure", "card purchases need a receipt")]
            return None

        @hookimpl
        def pleo_export_item_outcome(
            self, job: Any, accounting_entry_id: str, outcome: Any
        ) -> None:
            outcomes.append((accounting_entry_id, outcome.succeeded))

    host = PluginHost(load_entry_points=False)
    assert host.register(Policy(), Origin("policy", "tests", "tests", "0"))
    job = harness.sandbox.queue_export(harness.company_id, count=60, seed=9, attachments=False)
    async with harness.engine(host=host) as engine:
        await engine.run_pending()
    items = _assert_every_item_final(harness, job.id)
    card = [
        i
        for i in items.values()
        if harness.sandbox.export_item(i.accounting_entry_id)["type"] == "card_purchase"
    ]
    assert card and all(i.status is ExportJobItemStatus.FAILED for i in card)
    assert all(i.failure_reason == "card purchases need a receipt" for i in card)
    assert len(outcomes) == 60


async def test_dry_run_posts_nothing_and_changes_nothing_in_pleo(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=25, seed=10)
    previews: list[PreparedEntry] = []
    async with harness.engine(
        options=EngineOptions(dry_run=True, on_preview=previews.append)
    ) as engine:
        report = await engine.run_pending()
    assert harness.target.post_calls == 0
    assert not [r for r in harness.sandbox.requests if r.method in ("POST", "PUT")]
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.PENDING
    assert len(previews) == report.jobs[0].would_post == 25
    for prepared in previews:
        for entry in prepared.entries:
            assert sum(p.amount for p in entry.postings) == 0


async def test_rate_limit_and_server_error_bursts_lose_no_item(harness: Harness) -> None:
    harness.sandbox.add_fault(FaultRule(kind="rate_limit", count=5, every=3, retry_after=1))
    harness.sandbox.add_fault(FaultRule(kind="server_error", count=4, every=4, status=503))
    harness.sandbox.add_fault(FaultRule(kind="drop_after", method="PUT", count=1))
    job = harness.sandbox.queue_export(harness.company_id, count=250, seed=11)
    async with harness.engine(page_size=40) as engine:
        report = await engine.run_pending()
    assert report.jobs[0].final_event == "completed"
    items = _assert_every_item_final(harness, job.id)
    assert len(items) == 250
    assert harness.target.posted_twice == []
    statuses = Counter(r.status for r in harness.sandbox.requests)
    assert statuses[429] >= 1 and statuses[503] >= 1


async def test_job_expiring_mid_run_stops_cleanly_and_items_are_found_again(
    make_harness: Any,
) -> None:
    from pleo_export_sandbox import SandboxConfig

    now = {"t": 0.0}
    harness = make_harness(SandboxConfig(job_expires_in=60), clock=lambda: now["t"])
    job = harness.sandbox.queue_export(harness.company_id, count=150, seed=12)

    def slow(prepared: PreparedEntry) -> None:
        now["t"] += 1.0  # each post takes a second of sandbox time: the job expires at 60

    harness.target.post_hook = slow
    async with harness.engine(options=EngineOptions(report_interval=10_000)) as engine:
        report = await engine.run_pending()
    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "job_expired"
    assert report.jobs[0].final_event is None
    posted_before_expiry = set(harness.target.entries)
    assert posted_before_expiry

    # Pleo puts the same expenses in a new job; nothing already in the target is posted again.
    harness.target.post_hook = None
    ids = [i.accounting_entry_id for i in harness.sandbox.job_items(job.id)]
    again = harness.sandbox.create_job(harness.company_id, ids)
    async with harness.engine() as engine:
        report = await engine.run_pending()
    assert report.jobs[0].recovered == len(posted_before_expiry)
    assert harness.target.posted_twice == []
    _assert_every_item_final(harness, again.id)


async def test_started_refused_because_another_worker_took_the_job(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=5, seed=13)
    # Another worker claims the job first, straight through Pleo's API.
    async with httpx.AsyncClient(
        transport=harness.sandbox.transport(), base_url=harness.sandbox.base_url
    ) as other:
        response = await other.post(
            "/v3/export-job-events",
            json={"jobId": job.id, "event": "started"},
            auth=(harness.api_key, ""),
        )
        assert response.status_code == 202
    async with harness.engine() as engine:
        job_now = harness.sandbox.get_job(job.id)
        assert job_now.status is ExportJobStatus.IN_PROGRESS
        report = await engine.process(job.model_copy(update={"status": ExportJobStatus.PENDING}))
    assert report is None  # left alone: not ours
    assert harness.target.post_calls == 0
    assert _events(harness, job.id).count(ExportJobEventType.STARTED.value) == 1


async def test_dry_run_reports_no_spurious_failures(harness: Harness) -> None:
    harness.sandbox.queue_export(harness.company_id, count=30, seed=14)
    async with harness.engine(options=EngineOptions(dry_run=True)) as engine:
        report = await engine.run_pending()
    [job_report] = report.jobs
    assert job_report.would_post == 30
    assert job_report.failed == 0
    assert job_report.failures == []


async def test_job_rejected_while_preparing_aborts_the_rest_of_the_job(harness: Harness) -> None:
    from tests.support.memory import MemoryConnector

    calls = {"n": 0}

    class LosesLogin(MemoryConnector):
        async def prepare(self, plan: Any) -> PreparedEntry:
            calls["n"] += 1
            if calls["n"] == 11:
                raise JobRejected(
                    ExportJobFailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
                    "the ledger server revoked the session: log in again in the settings",
                )
            return await super().prepare(plan)

    job = harness.sandbox.queue_export(harness.company_id, count=25, seed=15)
    async with harness.engine(connector_cls=LosesLogin) as engine:
        report = await engine.run_pending()
    items = _assert_every_item_final(harness, job.id)
    failed = [i for i in items.values() if i.status is ExportJobItemStatus.FAILED]
    assert len(failed) == 15
    assert {i.failure_reason_type for i in failed} == {"accounting_system_authentication_failure"}
    assert calls["n"] == 11  # nothing was prepared after the rejection
    assert report.jobs[0].final_event == "completed_with_errors"


async def test_unmapped_contra_accounts_fail_the_job_with_missing_configuration(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=5, seed=16)
    harness.sandbox.store.companies[harness.company_id].contra_accounts_mapped = False
    async with harness.engine() as engine:
        report = await engine.run_pending()
    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "missing_configuration"
    assert "contra account" in (pleo_job.failure_reason or "")
    assert report.jobs[0].final_event == "failed"
    assert harness.target.post_calls == 0
