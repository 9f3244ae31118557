"""Every v3 endpoint and its error statuses; each exchange is checked against the spec."""

from __future__ import annotations

import uuid

import pytest

from pleo_export_sandbox import ApiError
from sandbox.tests.conftest import Env, fetch_all, finish_all_items, send_event, update_items

pytestmark = pytest.mark.anyio
UNKNOWN = str(uuid.UUID(int=1, version=4))


async def test_list_jobs_filters_by_statuses(env: Env) -> None:
    sb, company = env.sandbox, env.company
    first = sb.queue_export(company.id, count=5, seed=1)
    async with env.client() as client:
        await send_event(
            client, first.id, "failed", failureReason="x", failureReasonType="validation_failure"
        )
        env.clock.advance(1)
        second = sb.queue_export(company.id, count=5, seed=2)
        pending = await client.get("/v3/export-jobs", params={"statuses": "pending"})
        both = await client.get(
            "/v3/export-jobs",
            params=[("statuses", "pending"), ("statuses", "failed"), ("company_id", company.id)],
        )
        none = await client.get("/v3/export-jobs", params={"statuses": "completed"})
    assert [j["id"] for j in pending.json()["data"]] == [second.id]
    assert [j["id"] for j in both.json()["data"]] == [first.id, second.id]
    assert both.json()["pagination"]["currentRequestPagination"]["parameters"] == {
        "company_id": [company.id],
        "statuses": ["pending", "failed"],
    }
    assert none.json()["data"] == []


async def test_list_jobs_accepts_comma_separated_statuses(make_env: object) -> None:
    # Not the spec's form (statuses is explode: true), so the contract checker is off here.
    env: Env = make_env(check=False)  # type: ignore[operator]
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    async with env.client() as client:
        response = await client.get("/v3/export-jobs", params={"statuses": "failed,pending"})
    assert [j["id"] for j in response.json()["data"]] == [job.id]


async def test_list_jobs_rejects_bad_filters(env: Env) -> None:
    async with env.client() as client:
        bad_status = await client.get("/v3/export-jobs", params={"statuses": "done"})
        bad_company = await client.get("/v3/export-jobs", params={"company_id": "nope"})
        other_company = await client.get("/v3/export-jobs", params={"company_id": UNKNOWN})
    assert bad_status.status_code == 400
    assert "statuses" in bad_status.json()["message"]
    assert bad_company.status_code == 400
    assert other_company.status_code == 403
    assert other_company.json()["type"] == "FORBIDDEN"


async def test_create_job_and_conflict(env: Env) -> None:
    sb, company = env.sandbox, env.company
    job = sb.queue_export(company.id, count=4, seed=1)
    ids = [i.accounting_entry_id for i in sb.job_items(job.id)]
    body = {
        "accountingEntryIds": ids,
        "companyId": company.id,
        "options": {"vendorBasedBookkeeping": True},
    }
    async with env.client() as client:
        conflict = await client.post("/v3/export-jobs", json=body)
        await send_event(
            client, job.id, "failed", failureReason="retry", failureReasonType="validation_failure"
        )
        created = await client.post("/v3/export-jobs", json=body)
    assert conflict.status_code == 409
    assert conflict.json()["type"] == "EXPORT_ALREADY_IN_PROGRESS"
    assert created.status_code == 201
    data = created.json()["data"]
    assert data["status"] == "pending"
    assert data["numberOfItems"] == 4
    assert data["vendorBasedBookkeeping"] is True
    assert data["expiresIn"] == 3600
    with pytest.raises(ApiError) as raised:
        sb.create_job(company.id, ids)
    assert raised.value.status == 409


async def test_create_job_validates_its_body(env: Env) -> None:
    entry_ids = env.sandbox.add_entries(
        env.company.id,
        [{**item, "companyId": env.company.id} for item in _items(env, 2)],
    )
    async with env.client() as client:
        missing = await client.post("/v3/export-jobs", json={"companyId": env.company.id})
        unknown = await client.post(
            "/v3/export-jobs", json={"accountingEntryIds": [UNKNOWN], "companyId": env.company.id}
        )
        foreign = await client.post(
            "/v3/export-jobs", json={"accountingEntryIds": entry_ids, "companyId": UNKNOWN}
        )
        env.company.contra_accounts_mapped = False
        contra = await client.post(
            "/v3/export-jobs", json={"accountingEntryIds": entry_ids, "companyId": env.company.id}
        )
    assert missing.status_code == 400 and "accountingEntryIds" in missing.json()["message"]
    assert unknown.status_code == 400 and UNKNOWN in unknown.json()["message"]
    assert foreign.status_code == 403
    assert contra.status_code == 400 and contra.json()["type"] == "MISSING_CONTRA_ACCOUNTS"


def _items(env: Env, count: int) -> list[dict[str, object]]:
    from pleo_export_sandbox import generate_items

    return generate_items(env.company.id, count, seed=99)


async def test_get_job(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    other = env.sandbox.add_company(name="Other Ltd")
    other_job = env.sandbox.queue_export(other.id, count=3, seed=1)
    async with env.client() as client:
        found = await client.get(f"/v3/export-jobs/{job.id}")
        missing = await client.get(f"/v3/export-jobs/{UNKNOWN}")
        not_ours = await client.get(f"/v3/export-jobs/{other_job.id}")
        malformed = await client.get("/v3/export-jobs/123")
    assert found.json()["data"]["id"] == job.id
    assert found.json()["data"]["createdAt"] == "2025-06-02T09:00:00Z"
    assert "failureReasonType" not in found.json()["data"]
    assert missing.status_code == 404 and missing.json()["type"] == "EXPORT_NOT_FOUND"
    assert not_ours.status_code == 404 and not_ours.json()["type"] == "EXPORT_NOT_FOUND"
    assert malformed.status_code == 400


async def test_events_validate_their_body(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    async with env.client() as client:
        alias = await client.post(
            "/v3/export-job-events", json={"exportJobId": job.id, "event": "started"}
        )
        bad_event = await send_event(client, job.id, "begun")
        bad_reason = await send_event(client, job.id, "failed", failureReasonType="oops")
        unknown = await send_event(client, UNKNOWN, "started")
        started = await send_event(client, job.id, "started")
    assert alias.status_code == 400
    assert "exportJobId" in alias.json()["message"]
    assert bad_event.status_code == 400 and "event" in bad_event.json()["message"]
    assert bad_reason.status_code == 400 and "failureReasonType" in bad_reason.json()["message"]
    assert unknown.status_code == 404 and unknown.json()["type"] == "EXPORT_NOT_FOUND"
    assert started.status_code == 202 and started.content == b""
    assert env.sandbox.get_job(job.id).status == "in_progress"


async def test_job_items_filter_by_status(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=6, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await update_items(client, job.id, [{"accountingEntryId": ids[1], "status": "failed"}])
        pending = await fetch_all(client, f"/v3/export-jobs/{job.id}/items", {"status": "pending"})
        failed = await fetch_all(client, f"/v3/export-jobs/{job.id}/items", {"status": "failed"})
        bad = await client.get(f"/v3/export-jobs/{job.id}/items", params={"status": "done"})
        missing = await client.get(f"/v3/export-jobs/{UNKNOWN}/items")
    assert [i["accountingEntryId"] for i in pending] == ids[:1] + ids[2:]
    assert [i["accountingEntryId"] for i in failed] == [ids[1]]
    assert bad.status_code == 400
    assert missing.status_code == 404


async def test_update_items(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        await send_event(client, job.id, "started")
        response = await update_items(
            client,
            job.id,
            [
                {
                    "accountingEntryId": ids[0],
                    "status": "successful",
                    "externalId": "JE-1",
                    "externalUrl": "https://erp.example/JE-1",
                    "exportedAt": "2025-06-02T09:05:00Z",
                },
                {
                    "accountingEntryId": ids[1],
                    "status": "failed",
                    "failureReason": "Vendor not found",
                    "failureReasonType": "vendor_unknown",
                },
                {"accountingEntryId": UNKNOWN, "status": "successful"},
            ],
        )
        downgrade = await update_items(
            client, job.id, [{"accountingEntryId": ids[0], "status": "failed"}]
        )
    assert response.status_code == 200
    body = response.json()
    assert [i["accountingEntryId"] for i in body["data"]] == ids[:2]
    assert body["errors"] == [
        {
            "accountingEntryId": UNKNOWN,
            "message": f"Accounting entry {UNKNOWN} does not exist in export job {job.id}",
            "type": "ACCOUNTING_ENTRY_DOES_NOT_EXIST",
        }
    ]
    first, second, third = env.sandbox.job_items(job.id)
    assert (first.status, first.external_id, first.external_url) == (
        "successful",
        "JE-1",
        "https://erp.example/JE-1",
    )
    assert (
        first.exported_at is not None
        and first.exported_at.isoformat() == "2025-06-02T09:05:00+00:00"
    )
    assert (second.status, second.failure_reason_type) == ("failed", "vendor_unknown")
    assert third.status == "pending"
    assert downgrade.json()["errors"][0]["type"] == "EXPORT_ENTRY_STATUS_UPDATE_FAILED"


async def test_update_items_errors(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    entry = env.sandbox.job_items(job.id)[0].accounting_entry_id
    async with env.client() as client:
        too_many = await update_items(
            client, job.id, [{"accountingEntryId": entry, "status": "successful"}] * 101
        )
        bad_status = await update_items(
            client,
            job.id,
            [
                {"accountingEntryId": entry, "status": "successful"},
                {"accountingEntryId": entry, "status": "done"},
            ],
        )
        bad_reason = await update_items(
            client,
            job.id,
            [{"accountingEntryId": entry, "status": "failed", "failureReasonType": "job_expired"}],
        )
        bad_id = await update_items(
            client, job.id, [{"accountingEntryId": "x", "status": "failed"}]
        )
        not_array = await client.put(f"/v3/export-jobs/{job.id}/items", json={"items": []})
        missing = await update_items(client, UNKNOWN, [])
        await send_event(
            client, job.id, "failed", failureReason="x", failureReasonType="validation_failure"
        )
        finished = await update_items(
            client, job.id, [{"accountingEntryId": entry, "status": "successful"}]
        )
    assert (
        too_many.status_code == 413 and too_many.json()["type"] == "EXPORT_JOB_ITEMS_UPDATE_LIMIT"
    )
    assert bad_status.status_code == 400
    assert "element [1].status" in bad_status.json()["message"]
    assert bad_reason.status_code == 400
    assert "element [0].failureReasonType" in bad_reason.json()["message"]
    assert bad_id.status_code == 400 and "element [0].accountingEntryId" in bad_id.json()["message"]
    assert not_array.status_code == 400
    assert missing.status_code == 404
    assert (
        finished.status_code == 422 and finished.json()["type"] == "EXPORT_JOB_STATUS_UNPROCESSABLE"
    )
    assert env.sandbox.job_items(job.id)[0].status == "abandoned"


async def test_export_items(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=30, seed=3)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        items = await fetch_all(client, "/v3/export-items", {"job_id": job.id, "limit": 7})
        no_job = await client.get("/v3/export-items")
        unknown = await client.get("/v3/export-items", params={"job_id": UNKNOWN})
        env.company.contra_accounts_mapped = False
        contra = await client.get("/v3/export-items", params={"job_id": job.id})
        env.company.contra_accounts_mapped = True
        await send_event(client, job.id, "started")
        await finish_all_items(client, env.sandbox, job.id)
        await send_event(client, job.id, "completed")
        finished = await client.get("/v3/export-items", params={"job_id": job.id})
    assert [i["accountingEntryId"] for i in items] == ids
    stored = env.sandbox.export_item(ids[0])
    assert {k: v for k, v in items[0].items() if k != "files"} == {
        k: v for k, v in stored.items() if k != "files"
    }
    assert no_job.status_code == 400 and "job_id" in no_job.json()["message"]
    assert unknown.status_code == 404
    assert contra.status_code == 400 and contra.json()["type"] == "MISSING_CONTRA_ACCOUNTS"
    assert (
        finished.status_code == 422 and finished.json()["type"] == "EXPORT_JOB_STATUS_UNPROCESSABLE"
    )


async def test_find_job_item_by_accounting_entry(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=3, seed=1)
    entry = env.sandbox.job_items(job.id)[2].accounting_entry_id
    async with env.client() as client:
        found = await client.get("/v3/export-job-items", params={"accounting_entry_id": entry})
        explicit = await client.get(
            "/v3/export-job-items",
            params={"accounting_entry_id": entry, "company_id": env.company.id},
        )
        missing = await client.get("/v3/export-job-items", params={"accounting_entry_id": UNKNOWN})
        no_entry = await client.get("/v3/export-job-items")
    assert found.json() == explicit.json()
    assert found.json()["data"] == {
        "accountingEntryId": entry,
        "exportJobId": job.id,
        "status": "pending",
    }
    assert missing.status_code == 404 and missing.json()["type"] == "EXPORT_ENTRY_NOT_FOUND"
    assert no_entry.status_code == 400


async def test_unknown_route_is_a_404_exception_info(make_env: object) -> None:
    env: Env = make_env(check=False)  # type: ignore[operator]
    async with env.client() as client:
        response = await client.get("/v3/nothing-here")
        wrong_method = await client.delete("/v3/export-jobs")
    assert response.status_code == 404 and response.json()["type"] == "NOT_FOUND"
    assert wrong_method.status_code == 405


async def test_scheduled_exports_wait_for_the_running_job(env: Env) -> None:
    sb = env.sandbox
    first = sb.schedule_export(env.company.id, count=3, seed=1)
    assert first is not None
    assert sb.schedule_export(env.company.id, count=4, seed=2) is None
    async with env.client() as client:
        jobs = await fetch_all(client, "/v3/export-jobs")
        assert [j["id"] for j in jobs] == [first.id]
        await send_event(client, first.id, "started")
        await finish_all_items(client, sb, first.id)
        await send_event(client, first.id, "completed")
        pending = await fetch_all(client, "/v3/export-jobs", {"statuses": "pending"})
    assert len(pending) == 1
    assert pending[0]["numberOfItems"] == 4


async def test_records_capture_each_exchange(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=2, seed=1)
    async with env.client() as client:
        await send_event(client, job.id, "started")
        await client.get("/v3/export-jobs", params={"statuses": "in_progress"})
    event, listing = env.sandbox.requests
    assert (event.method, event.path, event.status) == ("POST", "/v3/export-job-events", 202)
    assert event.body == {"jobId": job.id, "event": "started"}
    assert event.credential_id == "api_key-1"
    assert listing.query == {"statuses": ["in_progress"]}
    assert listing.response_body["data"][0]["status"] == "in_progress"
