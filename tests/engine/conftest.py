"""Fixtures wiring the real engine, the real client, the in-process sandbox and a test target."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pleo_export.connector import ConnectorContext
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportItemFile
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export.state.base import StateStore
from pleo_export_sandbox import Sandbox, SandboxConfig
from tests.support.memory import MemoryConnector, MemorySettings, MemoryTarget, fresh_target


@dataclass
class Harness:
    sandbox: Sandbox
    company_id: str
    api_key: str
    target: MemoryTarget
    state_url: str
    tmp_path: Path

    @asynccontextmanager
    async def engine(
        self,
        *,
        settings: MemorySettings | None = None,
        options: EngineOptions | None = None,
        store: StateStore | None = None,
        requests_per_minute: int = 500,
        window_seconds: float = 60.0,
        page_size: int = 1000,
        retry: RetryPolicy | None = None,
        host: PluginHost | None = None,
        connector_cls: type[MemoryConnector] = MemoryConnector,
    ) -> AsyncIterator[ExportEngine]:
        client = PleoClient(
            self.sandbox.base_url,
            ApiKeyAuth(SecretStr(self.api_key)),
            transport=self.sandbox.transport(),
            requests_per_minute=requests_per_minute,
            window_seconds=window_seconds,
            page_size=page_size,
            retry=retry or RetryPolicy(base_delay=0.01, max_delay=0.05),
        )
        own_store = store is None
        store = store or open_store(self.state_url)

        async def fetch(file: ExportItemFile) -> bytes:
            return await client.download(file.url)

        context = ConnectorContext(
            logger=logging.getLogger("test.connector"),
            fetch_attachment=fetch,
            work_dir=self.tmp_path,
        )
        connector = connector_cls(settings or MemorySettings(), context)
        opts = options or EngineOptions()
        opts.company_id = opts.company_id or self.company_id
        opts.retry_base_delay = min(opts.retry_base_delay, 0.01)
        async with client:
            if own_store:
                await store.open()
            await connector.open()
            try:
                yield ExportEngine(
                    client=client,
                    connector=connector,
                    store=store,
                    hooks=host or PluginHost(load_entry_points=False),
                    options=opts,
                )
            finally:
                await connector.close()
                if own_store:
                    await store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_harness(tmp_path: Path, openapi_contract: Any) -> Iterator[Callable[..., Harness]]:
    """Sandboxes whose every exchange is checked against the OpenAPI spec.

    Violations are collected and fail the test at teardown, so a retry or an ``except`` in the
    code under test can never hide one.
    """
    violations: list[str] = []

    def check(record: Any) -> None:
        try:
            openapi_contract.check_exchange(record)
        except Exception as error:
            violations.append(str(error))
            raise

    def make(config: SandboxConfig | None = None, clock: Any = None) -> Harness:
        sandbox = Sandbox(config or SandboxConfig(), clock=clock)
        sandbox.on_exchange = check
        company = sandbox.add_company(name="Test Co", wallet_currency="GBP")
        return Harness(
            sandbox=sandbox,
            company_id=company.id,
            api_key=company.api_key,
            target=fresh_target(),
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            tmp_path=tmp_path,
        )

    yield make
    assert not violations, "\n".join(violations)


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
