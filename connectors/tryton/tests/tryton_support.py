"""Helpers for the Tryton tests: settings, a reading client, the engine run, a harness."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.tryton.tests.tryton_items import job
from connectors.tryton.tests.tryton_server import TrytonServer
from pleo_export import (
    ConnectorContext,
    ExportItemFile,
    ExportJobFailureReasonType,
    JobRejected,
    RunReport,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export.testing import plan_item
from pleo_export_sandbox import Sandbox
from pleo_export_tryton import TrytonClient, TrytonConnector, TrytonSettings

CURRENCY = "GBP"


def tryton_settings(server: TrytonServer, **overrides: Any) -> TrytonSettings:
    values: dict[str, Any] = {
        "url": server.url,
        "database": server.database,
        "user": server.user,
        "password": SecretStr(server.password),
        "out_of_pocket_account": "2250",
        "contra_account": "1299",
        "rounding_account": "7990",
        "timeout": 120.0,
    }
    values.update(overrides)
    return TrytonSettings(**values)


@asynccontextmanager
async def tryton_client(server: TrytonServer) -> AsyncIterator[TrytonClient]:
    """A logged-in client with the company in its context, for reading what was booked."""
    client = TrytonClient(
        server.url, server.database, server.user, SecretStr(server.password), timeout=120
    )
    try:
        await client.login()
        preferences = await client.call("model.res.user.get_preferences", True, {})
        client.context = {
            "company": preferences["company"],
            "companies": [preferences["company"]],
            "language": "en",
        }
        yield client
    finally:
        await client.close()


async def run_engine(
    sandbox: Sandbox,
    company_id: str,
    api_key: str,
    settings: TrytonSettings,
    state_path: Path,
    *,
    dry_run: bool = False,
) -> RunReport:
    """Run every pending job of the sandbox into Tryton with the real engine, as the CLI does."""
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(api_key)),
        transport=sandbox.transport(),
        page_size=1000,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    )
    limit = TrytonConnector.manifest.limits.max_attachment_bytes

    async def fetch(file: ExportItemFile) -> bytes:
        return await client.download(file.url, max_bytes=limit)

    context = ConnectorContext(
        logger=logging.getLogger("test.tryton"),
        fetch_attachment=fetch,
        work_dir=state_path.parent,
        dry_run=dry_run,
    )
    store = open_store("sqlite:///:memory:" if dry_run else f"sqlite:///{state_path}")
    connector = TrytonConnector(settings, context)
    options = EngineOptions(company_id=company_id, dry_run=dry_run, retry_base_delay=0.01)
    async with client:
        await store.open()
        try:
            unavailable: JobRejected | None = None
            try:  # as pleo_export.app.open_session does
                await connector.open()
            except JobRejected as rejected:
                unavailable = rejected
            except TargetTemporarilyUnavailable as error:
                unavailable = JobRejected(
                    ExportJobFailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE, error.message
                )
            engine = ExportEngine(
                client=client,
                connector=connector,
                store=store,
                hooks=PluginHost(load_entry_points=False),
                options=options,
                unavailable=unavailable,
            )
            try:
                return await engine.run_pending()
            finally:
                await connector.close()
        finally:
            await store.close()


def money(value: Decimal | int | float | str) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --- the connector on its own, as the engine drives it --------------------------------------


@dataclass
class Harness:
    """Drive a ``TrytonConnector`` against the module's Tryton like the engine does."""

    server: TrytonServer
    tmp_path: Path
    downloads: dict[str, bytes]

    def settings(self, **overrides: Any) -> TrytonSettings:
        return tryton_settings(self.server, **overrides)

    def context(self) -> ConnectorContext:
        async def fetch(file: ExportItemFile) -> bytes:
            return self.downloads[file.url]

        return ConnectorContext(
            logger=logging.getLogger("test.tryton.connector"),
            fetch_attachment=fetch,
            work_dir=self.tmp_path,
        )

    @asynccontextmanager
    async def connector(self, **overrides: Any) -> AsyncIterator[TrytonConnector]:
        connector = TrytonConnector(self.settings(**overrides), self.context())
        await connector.open()
        try:
            yield connector
        finally:
            await connector.close()

    async def prepare(self, item: Any, *, vendor_based: bool = False, **overrides: Any) -> Any:
        async with self.connector(**overrides) as connector:
            the_job = job(vendor_based)
            await connector.check(the_job)
            return await connector.prepare(plan_item(item, the_job))

    async def book(
        self, item: Any, *, vendor_based: bool = False, **overrides: Any
    ) -> tuple[Any, Any]:
        """``find_existing`` (nothing), ``prepare`` and ``post`` one item; the record."""
        async with self.connector(**overrides) as connector:
            the_job = job(vendor_based)
            await connector.check(the_job)
            plan = plan_item(item, the_job)
            assert await connector.find_existing(plan.reference) is None
            prepared = await connector.prepare(plan)
            record = await connector.post(prepared)
            return prepared, record

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[TrytonClient]:
        async with tryton_client(self.server) as client:
            yield client

    async def count(self, model: str, domain: list[Any] | None = None) -> int:
        async with self.reader() as client:
            return int(await client.model(model, "search_count", domain or []))

    async def move_lines(self, move_id: int) -> list[tuple[str, Decimal, str | None]]:
        """``(account code, debit - credit, party code)`` of a move, sorted."""
        async with self.reader() as client:
            rows = await client.search_read(
                "account.move.line",
                [("move", "=", move_id)],
                ["account.code", "debit", "credit", "party.code"],
            )
        return sorted(
            (
                row["account."]["code"],
                row["debit"] - row["credit"],
                (row.get("party.") or {}).get("code"),
            )
            for row in rows
        )

    async def read(self, model: str, record_id: int, fields: list[str]) -> dict[str, Any]:
        async with self.reader() as client:
            (row,) = await client.model(model, "read", [record_id], fields)
            return dict(row)


def record_id(external_id: str) -> tuple[str, int]:
    model, _, number = external_id.partition(",")
    return model, int(number)
