"""Fixtures of the master-data client tests: the sandbox in process, every exchange checked
against Pleo's specs, and a :class:`PleoMasterData` for its company."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.masterdata import PleoMasterData
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export_sandbox import Company, Sandbox, SandboxConfig
from tests.support.openapi import OpenApiContract

START = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


@dataclass
class MasterDataEnv:
    sandbox: Sandbox
    company: Company
    client: PleoClient
    pleo: PleoMasterData

    def requests(self, prefix: str = "/v") -> list[str]:
        return [f"{r.method} {r.path}" for r in self.sandbox.requests if r.path.startswith(prefix)]


@pytest.fixture
def make_md_env(
    openapi_contract: OpenApiContract,
) -> Callable[..., Any]:
    """An async context manager factory: ``async with make_md_env(page_size=3) as env``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(
        config: SandboxConfig | None = None, **client_options: Any
    ) -> AsyncIterator[MasterDataEnv]:
        sandbox = Sandbox(config or SandboxConfig(start_time=START))
        sandbox.on_exchange = openapi_contract.check_exchange
        company = sandbox.add_company(name="Test Ltd", wallet_currency="GBP")
        options: dict[str, Any] = {
            "retry": RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, jitter=False),
            "transport": sandbox.transport(),
        }
        options.update(client_options)
        client = PleoClient(sandbox.base_url, ApiKeyAuth(SecretStr(company.api_key)), **options)
        async with client:
            yield MasterDataEnv(sandbox, company, client, PleoMasterData(client, company.id))

    return make


@pytest.fixture
async def md_env(make_md_env: Callable[..., Any]) -> AsyncIterator[MasterDataEnv]:
    async with make_md_env() as env:
        yield env
