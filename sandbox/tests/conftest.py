"""Fixtures for the sandbox tests: a fake clock, a contract-checked sandbox and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pleo_export_sandbox import Company, Sandbox, SandboxConfig
from tests.support.openapi import OpenApiContract, require_contract

START = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    sandbox: Sandbox
    company: Company
    clock: FakeClock

    @asynccontextmanager
    async def client(
        self, api_key: str | None = None, *, auth: Any = None, base_url: str | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        if auth is None:
            auth = httpx.BasicAuth(api_key or self.company.api_key, "")
        async with httpx.AsyncClient(
            transport=self.sandbox.transport(),
            base_url=base_url or self.sandbox.base_url,
            auth=auth,
        ) as client:
            yield client


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def openapi_contract() -> OpenApiContract:
    """Pleo's Export API spec as a checker; skips (fails under CI) when the spec is absent."""
    return require_contract()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_env(openapi_contract: OpenApiContract, clock: FakeClock) -> Callable[..., Env]:
    """A sandbox whose every exchange is checked against the spec, with one company."""

    def make(config: SandboxConfig | None = None, *, check: bool = True) -> Env:
        sandbox = Sandbox(config or SandboxConfig(start_time=START), clock=clock)
        if check:
            sandbox.on_exchange = openapi_contract.check_exchange
        company = sandbox.add_company(name="Test Ltd", wallet_currency="GBP")
        return Env(sandbox, company, clock)

    return make


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


async def fetch_all(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every element of a paginated list, following ``endCursor``."""
    params = dict(params or {})
    elements: list[dict[str, Any]] = []
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        elements += body["data"]
        if not body["pagination"]["hasNextPage"]:
            return elements
        params["after"] = body["pagination"]["endCursor"]


async def send_event(
    client: httpx.AsyncClient, job_id: str, event: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v3/export-job-events", json={"jobId": job_id, "event": event, **extra}
    )


async def update_items(
    client: httpx.AsyncClient, job_id: str, updates: list[dict[str, Any]]
) -> httpx.Response:
    return await client.put(f"/v3/export-jobs/{job_id}/items", json=updates)


async def finish_all_items(
    client: httpx.AsyncClient, sandbox: Sandbox, job_id: str, status: str = "successful"
) -> None:
    ids = [item.accounting_entry_id for item in sandbox.job_items(job_id)]
    for start in range(0, len(ids), 100):
        batch = [{"accountingEntryId": i, "status": status} for i in ids[start : start + 100]]
        response = await update_items(client, job_id, batch)
        assert response.status_code == 200, response.text
        assert response.json()["errors"] == []
