"""Authentication (401), scopes (403), company isolation (404) and the rate limit (429)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from pleo_export_sandbox import SandboxConfig
from sandbox.tests.conftest import START, Env, send_event

pytestmark = pytest.mark.anyio


class RawAuth(httpx.Auth):
    def __init__(self, header: str | None) -> None:
        self.header = header

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        if self.header is not None:
            request.headers["Authorization"] = self.header
        yield request


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"wrong-key:").decode(),
        "Basic not-base64!",
        "Bearer unknown-token",
        "Token abc",
    ],
)
async def test_missing_or_unknown_credentials_are_401(env: Env, header: str | None) -> None:
    async with env.client(auth=RawAuth(header)) as client:
        response = await client.get("/v3/export-jobs")
    assert response.status_code == 401
    assert response.json()["type"] == "UNAUTHORIZED"
    assert "Basic" in response.headers["www-authenticate"]
    assert env.sandbox.requests[-1].credential_id is None


async def test_basic_auth_needs_an_empty_password(env: Env) -> None:
    async with env.client(auth=httpx.BasicAuth(env.company.api_key, "secret")) as client:
        response = await client.get("/v3/export-jobs")
    assert response.status_code == 401
    assert "password must be empty" in response.json()["message"]


async def test_bearer_tokens_and_scopes(env: Env) -> None:
    sb = env.sandbox
    job = sb.queue_export(env.company.id, count=2, seed=1)
    sb.add_token(env.company.id, "reader", scopes=["export-jobs:read"])
    sb.add_token(env.company.id, "writer", scopes=["export-jobs:read", "export-jobs:write"])
    async with env.client(auth=RawAuth("Bearer reader")) as reader:
        listed = await reader.get("/v3/export-jobs")
        start = await send_event(reader, job.id, "started")
        items = await reader.get("/v3/export-items", params={"job_id": job.id})
    async with env.client(auth=RawAuth("Bearer writer")) as writer:
        started = await send_event(writer, job.id, "started")
        data = await writer.get("/v3/export-items", params={"job_id": job.id})
    assert listed.status_code == 200
    assert start.status_code == 403 and "export-jobs:write" in start.json()["message"]
    assert items.status_code == 403 and "export-items:read" in items.json()["message"]
    assert started.status_code == 202
    assert data.status_code == 403
    assert sb.requests[-1].credential_id == "token-2"


async def test_a_credential_only_sees_its_own_company(env: Env) -> None:
    sb = env.sandbox
    other = sb.add_company(name="Other Ltd", api_key="other-key")
    theirs = sb.queue_export(other.id, count=2, seed=1)
    entry = sb.job_items(theirs.id)[0].accounting_entry_id
    async with env.client() as client:
        job = await client.get(f"/v3/export-jobs/{theirs.id}")
        event = await send_event(client, theirs.id, "started")
        items = await client.get(f"/v3/export-jobs/{theirs.id}/items")
        data = await client.get("/v3/export-items", params={"job_id": theirs.id})
        update = await client.put(
            f"/v3/export-jobs/{theirs.id}/items",
            json=[{"accountingEntryId": entry, "status": "failed"}],
        )
        listed = await client.get("/v3/export-jobs")
        lookup = await client.get("/v3/export-job-items", params={"accounting_entry_id": entry})
    for response in (job, event, items, data, update):
        assert response.status_code == 404
        assert response.json()["type"] == "EXPORT_NOT_FOUND"
    assert listed.json()["data"] == []
    assert lookup.status_code == 404
    assert sb.get_job(theirs.id).status == "pending"
    async with env.client("other-key") as client:
        assert (await client.get(f"/v3/export-jobs/{theirs.id}")).status_code == 200


async def test_601st_request_in_a_window_is_429(env: Env) -> None:
    async with env.client() as client:
        first_at = env.clock()
        for _ in range(600):
            response = await client.get("/v3/export-jobs")
            assert response.status_code == 200
            env.clock.advance(1 / 16)  # 600 requests over 37.5 s (exact in binary)
        limited = await client.get("/v3/export-jobs")
        retry_after = int(limited.headers["retry-after"])
        env.clock.advance(retry_after - 1)
        still_limited = await client.get("/v3/export-jobs")
        env.clock.advance(0.5)
        allowed = await client.get("/v3/export-jobs")
    assert limited.status_code == 429
    assert limited.json()["type"] == "RATE_LIMITED"
    # The oldest request leaves the window at first_at + 60; the clock is at first_at + 37.5.
    assert retry_after == 23
    assert env.clock() == pytest.approx(first_at + 60)
    assert still_limited.status_code == 429
    assert int(still_limited.headers["retry-after"]) == 1
    assert allowed.status_code == 200


async def test_rate_limit_is_per_credential(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(rate_limit_per_minute=3, rate_limit_window=10.0, start_time=START))
    env.sandbox.add_api_key(env.company.id, "second-key")
    async with env.client() as client, env.client("second-key") as second:
        statuses = [(await client.get("/v3/export-jobs")).status_code for _ in range(4)]
        other = await second.get("/v3/export-jobs")
        env.clock.advance(10)
        again = await client.get("/v3/export-jobs")
    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200
    assert again.status_code == 200
