"""The job and item state machines, expiry included (with a fake clock)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pleo_export_sandbox import SandboxConfig
from sandbox.tests.conftest import START, Env, fetch_all, finish_all_items, send_event, update_items

pytestmark = pytest.mark.anyio


async def test_lifecycle_sets_timestamps(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    async with env.client() as client:
        env.clock.advance(10)
        await send_event(client, job.id, "started")
        env.clock.advance(20)
        await finish_all_items(client, env.sandbox, job.id)
        env.clock.advance(30)
        assert (await send_event(client, job.id, "completed")).status_code == 202
        data = (await client.get(f"/v3/export-jobs/{job.id}")).json()["data"]
    assert data["status"] == "completed"
    assert data["createdAt"] == "2025-06-02T09:00:00Z"
    assert data["startedAt"] == "2025-06-02T09:00:10Z"
    assert data["completedAt"] == "2025-06-02T09:01:00Z"
    assert data["lastUpdatedAt"] == "2025-06-02T09:01:00Z"
    assert "failureReason" not in data and "expiredAt" not in data


async def test_started_twice_is_422_by_default(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    async with env.client() as client:
        assert (await send_event(client, job.id, "started")).status_code == 202
        again = await send_event(client, job.id, "started")
    assert again.status_code == 422
    assert again.json()["type"] == "INVALID_EXPORT_JOB_STATUS_CHANGE"


async def test_started_can_be_made_idempotent(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(started_is_idempotent=True, start_time=START))
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    async with env.client() as client:
        await send_event(client, job.id, "started")
        env.clock.advance(5)
        again = await send_event(client, job.id, "started")
    assert again.status_code == 202
    job_now = env.sandbox.get_job(job.id)
    assert job_now.status == "in_progress"
    assert job_now.started_at == START
    assert job_now.last_updated_at is not None and job_now.last_updated_at.second == 5


@pytest.mark.parametrize("event", ["completed", "completed_with_errors"])
async def test_completion_requires_in_progress(env: Env, event: str) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    async with env.client() as client:
        response = await send_event(client, job.id, event)
    assert response.status_code == 422
    assert env.sandbox.get_job(job.id).status == "pending"


@pytest.mark.parametrize("event", ["started", "failed", "completed", "completed_with_errors"])
async def test_no_event_changes_a_finished_job(env: Env, event: str) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await finish_all_items(client, env.sandbox, job.id)
        await send_event(client, job.id, "completed")
        response = await send_event(client, job.id, event, failureReasonType="validation_failure")
    assert response.status_code == 422
    assert env.sandbox.get_job(job.id).status == "completed"


async def test_pending_job_can_fail_and_items_are_abandoned(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=4, seed=1)
    async with env.client() as client:
        response = await send_event(
            client,
            job.id,
            "failed",
            failureReason="Failed to reach the Accounting System.",
            failureReasonType="accounting_system_unreachable",
        )
        data = (await client.get(f"/v3/export-jobs/{job.id}")).json()["data"]
        items = await fetch_all(client, f"/v3/export-jobs/{job.id}/items")
    assert response.status_code == 202
    assert data["status"] == "failed"
    assert data["failureReasonType"] == "accounting_system_unreachable"
    assert data["failureReason"] == "Failed to reach the Accounting System."
    assert data["completedAt"] == "2025-06-02T09:00:00Z"
    assert {i["status"] for i in items} == {"abandoned"}


async def test_failing_a_running_job_keeps_final_items(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=4, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await update_items(
            client,
            job.id,
            [
                {"accountingEntryId": ids[0], "status": "successful", "externalId": "A"},
                {
                    "accountingEntryId": ids[1],
                    "status": "failed",
                    "failureReasonType": "account_unknown",
                },
                {"accountingEntryId": ids[2], "status": "in_progress"},
            ],
        )
        await send_event(client, job.id, "failed", failureReasonType="accounting_system_timeout")
    statuses = [i.status.value for i in env.sandbox.job_items(job.id)]
    assert statuses == ["successful", "failed", "abandoned", "abandoned"]


async def test_strict_completion_refuses_open_items(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await update_items(
            client,
            job.id,
            [
                {"accountingEntryId": ids[0], "status": "successful"},
                {"accountingEntryId": ids[1], "status": "in_progress"},
            ],
        )
        early = await send_event(client, job.id, "completed_with_errors")
        await update_items(
            client,
            job.id,
            [
                {
                    "accountingEntryId": ids[1],
                    "status": "failed",
                    "failureReasonType": "tag_unknown",
                },
                {
                    "accountingEntryId": ids[2],
                    "status": "failed",
                    "failureReasonType": "tag_unknown",
                },
            ],
        )
        done = await send_event(
            client,
            job.id,
            "completed_with_errors",
            failureReason="2 of 3 items failed",
            failureReasonType="validation_failure",
        )
    assert early.status_code == 422
    assert "2 items are still pending or in_progress" in early.json()["message"]
    assert done.status_code == 202
    finished = env.sandbox.get_job(job.id)
    assert finished.status == "completed_with_errors"
    assert finished.failure_reason == "2 of 3 items failed"


async def test_lenient_completion_abandons_open_items(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(strict_completion=False, start_time=START))
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    first = env.sandbox.job_items(job.id)[0].accounting_entry_id
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await update_items(client, job.id, [{"accountingEntryId": first, "status": "successful"}])
        response = await send_event(client, job.id, "completed")
    assert response.status_code == 202
    assert [i.status.value for i in env.sandbox.job_items(job.id)] == [
        "successful",
        "abandoned",
        "abandoned",
    ]


async def test_job_expires_after_inactivity(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    first = env.sandbox.job_items(job.id)[0].accounting_entry_id
    async with env.client() as client:
        env.clock.advance(1800)
        await send_event(client, job.id, "started")  # refreshes lastUpdatedAt
        env.clock.advance(3000)
        await update_items(client, job.id, [{"accountingEntryId": first, "status": "successful"}])
        env.clock.advance(3599)
        alive = (await client.get(f"/v3/export-jobs/{job.id}")).json()["data"]
        env.clock.advance(1)
        expired = (await client.get(f"/v3/export-jobs/{job.id}")).json()["data"]
        failed_jobs = await fetch_all(client, "/v3/export-jobs", {"statuses": "failed"})
        items = await client.get("/v3/export-items", params={"job_id": job.id})
        update = await update_items(
            client, job.id, [{"accountingEntryId": first, "status": "failed"}]
        )
        event = await send_event(client, job.id, "completed")
    assert alive["status"] == "in_progress"
    assert alive["lastUpdatedAt"] == "2025-06-02T10:20:00Z"
    assert expired["status"] == "failed"
    assert expired["failureReasonType"] == "job_expired"
    assert expired["expiredAt"] == "2025-06-02T11:20:00Z"
    assert [j["id"] for j in failed_jobs] == [job.id]
    assert items.status_code == 422
    assert update.status_code == 422
    assert event.status_code == 422
    assert [i.status.value for i in env.sandbox.job_items(job.id)] == [
        "successful",
        "abandoned",
        "abandoned",
    ]


async def test_expiry_frees_the_company_for_a_new_job(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(job_expires_in=60, start_time=START))
    first = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    env.clock.advance(60)
    second = env.sandbox.queue_export(env.company.id, count=1, seed=2)
    assert env.sandbox.get_job(first.id).failure_reason_type == "job_expired"
    assert env.sandbox.get_job(second.id).status == "pending"
    assert second.expires_in == 60
