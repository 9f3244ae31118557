"""Each fault kind, in process, and virtual time with trio's MockClock."""

from __future__ import annotations

import anyio
import httpx
import pytest
from trio.testing import MockClock

from pleo_export_sandbox import FaultRule, Sandbox, SandboxConfig
from sandbox.tests.conftest import START, Env, send_event
from tests.support.openapi import OpenApiContract

pytestmark = pytest.mark.anyio


async def test_rate_limit_fault_is_429_and_not_applied(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    armed = env.sandbox.add_fault(
        FaultRule(kind="rate_limit", method="POST", path="/export-job-events$", retry_after=7)
    )
    async with env.client() as client:
        limited = await send_event(client, job.id, "started")
        assert env.sandbox.get_job(job.id).status == "pending"
        accepted = await send_event(client, job.id, "started")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["type"] == "RATE_LIMITED"
    assert accepted.status_code == 202
    assert armed.hits == 1
    assert env.sandbox.requests[0].fault == "rate_limit"


@pytest.mark.parametrize("status", [500, 503])
async def test_server_error_fault(env: Env, status: int) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    env.sandbox.add_fault(FaultRule(kind="server_error", status=status, count=2))
    async with env.client() as client:
        errors = [(await send_event(client, job.id, "started")).status_code for _ in range(2)]
        assert env.sandbox.get_job(job.id).status == "pending"
        ok = await send_event(client, job.id, "started")
    assert errors == [status, status]
    assert ok.status_code == 202


async def test_drop_before_does_not_apply_the_request(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    env.sandbox.add_fault(FaultRule(kind="drop_before", path="/export-job-events"))
    async with env.client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await send_event(client, job.id, "started")
        assert env.sandbox.get_job(job.id).status == "pending"
        assert (await send_event(client, job.id, "started")).status_code == 202
    dropped = env.sandbox.requests[0]
    assert (dropped.status, dropped.fault, dropped.response_body) == (0, "drop_before", None)


async def test_drop_after_applies_the_request_and_loses_the_response(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=1, seed=1)
    env.sandbox.add_fault(FaultRule(kind="drop_after", method="POST"))
    async with env.client() as client:
        with pytest.raises(httpx.ReadError):
            await send_event(client, job.id, "started")
        assert env.sandbox.get_job(job.id).status == "in_progress"
        retry = await send_event(client, job.id, "started")
    assert retry.status_code == 422  # the retry finds the job already started
    assert env.sandbox.requests[0].status == 202


async def test_every_and_count_pick_the_matching_requests(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=2, seed=1)
    armed = env.sandbox.add_fault(
        FaultRule(kind="server_error", method="GET", path=r"/items$", every=2, count=2)
    )
    async with env.client() as client:
        statuses = []
        for _ in range(6):
            statuses.append((await client.get(f"/v3/export-jobs/{job.id}/items")).status_code)
            statuses.append((await client.get(f"/v3/export-jobs/{job.id}")).status_code)
    assert statuses[0::2] == [503, 200, 503, 200, 200, 200]
    assert set(statuses[1::2]) == {200}
    assert (armed.seen, armed.hits) == (3, 2)


async def test_clear_faults(env: Env) -> None:
    env.sandbox.add_fault(FaultRule(kind="server_error", count=None))
    async with env.client() as client:
        assert (await client.get("/v3/export-jobs")).status_code == 503
        env.sandbox.clear_faults()
        assert (await client.get("/v3/export-jobs")).status_code == 200


async def test_file_downloads_can_be_faulted(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=20, seed=1)
    env.sandbox.add_fault(FaultRule(kind="drop_after", path="^/_sandbox/files/"))
    async with env.client() as client:
        items = (await client.get("/v3/export-items", params={"job_id": job.id})).json()["data"]
        url = next(f["url"] for i in items for f in i["files"])
        with pytest.raises(httpx.ReadError):
            await client.get(url)
        assert (await client.get(url)).status_code == 200


def test_fault_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="kind"):
        FaultRule(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every"):
        FaultRule(kind="slow", every=0)


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-mockclock")],
)
async def test_slow_fault_in_virtual_time(openapi_contract: OpenApiContract) -> None:
    sandbox = Sandbox(SandboxConfig(start_time=START), clock=anyio.current_time)
    sandbox.on_exchange = openapi_contract.check_exchange
    company = sandbox.add_company()
    job = sandbox.queue_export(company.id, count=1, seed=1)
    sandbox.add_fault(FaultRule(kind="slow", path="/export-job-events", delay=30.0, count=2))
    async with httpx.AsyncClient(
        transport=sandbox.transport(), base_url=sandbox.base_url, auth=(company.api_key, "")
    ) as client:
        before = anyio.current_time()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/v3/export-job-events", json={"jobId": job.id, "event": "started"}, timeout=5.0
            )
        assert anyio.current_time() - before == pytest.approx(5.0)
        assert sandbox.get_job(job.id).status == "pending"
        slow = await client.post(
            "/v3/export-job-events", json={"jobId": job.id, "event": "started"}, timeout=60.0
        )
        elapsed = anyio.current_time() - before
    assert slow.status_code == 202
    assert elapsed == pytest.approx(35.0)
    assert sandbox.get_job(job.id).started_at == START.replace(second=35)
