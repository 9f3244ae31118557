"""The sandbox's organisation-level API keys (sandbox/organisations.py) and its job audit
(sandbox/audit.py), which the multi-company worker tests rely on."""

from __future__ import annotations

import httpx
import pytest

from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.audit import JobAudit
from pleo_export_sandbox.organisations import add_organisation_key

pytestmark = pytest.mark.anyio


def _sandbox() -> tuple[Sandbox, list[str], str]:
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    ids = [sandbox.add_company(name=f"Co {n}").id for n in range(3)]
    for n, company in enumerate(ids):
        sandbox.queue_export(company, count=2, seed=n, attachments=False)
    return sandbox, ids, sandbox.add_organisation_key(ids[:2]).secret


def _client(sandbox: Sandbox, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=sandbox.transport(), base_url=sandbox.base_url, auth=(key, "")
    )


async def test_organisation_key_serves_the_companies_it_covers() -> None:
    sandbox, (first, second, third), key = _sandbox()
    jobs = {job.company_id: job.id for job in sandbox.store.jobs.values()}
    async with _client(sandbox, key) as client:
        for company in (first, second):
            listed = await client.get("/v3/export-jobs", params={"company_id": company})
            assert listed.status_code == 200
            assert [j["id"] for j in listed.json()["data"]] == [jobs[company]]
            job = await client.get(f"/v3/export-jobs/{jobs[company]}")
            assert job.status_code == 200
            event = await client.post(
                "/v3/export-job-events", json={"jobId": jobs[company], "event": "started"}
            )
            assert event.status_code == 202
            items = await client.get("/v3/export-items", params={"job_id": jobs[company]})
            assert items.status_code == 200

        no_company = await client.get("/v3/export-jobs")
        assert no_company.status_code == 400
        assert "company_id is required" in no_company.json()["message"]
        other = await client.get("/v3/export-jobs", params={"company_id": third})
        assert other.status_code == 403
        hidden = await client.get(f"/v3/export-jobs/{jobs[third]}")
        assert hidden.status_code == 404
        refused = await client.post(
            "/v3/export-job-events", json={"jobId": jobs[third], "event": "started"}
        )
        assert refused.status_code == 404
    assert sandbox.store.jobs[jobs[third]].status.value == "pending"
    keys = {r.credential_id for r in sandbox.requests}
    assert keys == {"org-key-1"}


def test_organisation_key_rules() -> None:
    sandbox, ids, key = _sandbox()
    with pytest.raises(ValueError, match="already registered"):
        add_organisation_key(sandbox, ids, api_key=key)
    with pytest.raises(ValueError, match="at least one company"):
        add_organisation_key(sandbox, [])
    with pytest.raises(KeyError, match="unknown company"):
        add_organisation_key(sandbox, ["00000000-0000-0000-0000-000000000000"])
    second = add_organisation_key(sandbox, ids)
    assert second.id == "org-key-2"
    assert all(second.covers(company) for company in ids)


async def test_audit_records_transitions_and_who_touched_each_job() -> None:
    sandbox, (first, second, _), key = _sandbox()
    other = sandbox.add_organisation_key([first, second]).secret
    audit = JobAudit.attach(sandbox)
    jobs = {job.company_id: job.id for job in sandbox.store.jobs.values()}
    async with _client(sandbox, key) as a, _client(sandbox, other) as b:
        await a.post("/v3/export-job-events", json={"jobId": jobs[first], "event": "started"})
        await b.get(f"/v3/export-jobs/{jobs[first]}")  # b touches first while a works on it
        await a.post("/v3/export-job-events", json={"jobId": jobs[first], "event": "failed"})
        await b.post("/v3/export-job-events", json={"jobId": jobs[second], "event": "started"})

    moves = [(t.job_id, t.before, t.after, t.credential_id) for t in audit.transitions]
    assert (jobs[first], None, "pending", None) in moves  # known when the audit started
    assert (jobs[first], "pending", "in_progress", "org-key-1") in moves
    assert (jobs[first], "in_progress", "failed", "org-key-1") in moves
    assert (jobs[second], "pending", "in_progress", "org-key-2") in moves
    assert audit.workers_of(jobs[first]) == ["org-key-1", "org-key-2"]
    assert set(audit.jobs_touched_concurrently()) == {jobs[first]}
    assert audit.companies_with_parallel_jobs() == {}
