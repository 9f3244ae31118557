"""A sandbox whose Pleo starts without master data, and a session on it for one connector."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from pydantic import SecretStr

from pleo_export.app import Session, open_session
from pleo_export.cli.common import Context
from pleo_export.cli.run import _run_async
from pleo_export.config import Settings
from pleo_export.pleo.masterdata import PleoMasterData
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.config import RequestRecord

SECRET = "whsec_" + base64.b64encode(b"vendor-flow-secret-of-32-bytes..").decode()
MASTER_DATA_PREFIXES = ("/v1/vendors", "/v0/tax-codes", "/v0/tag-groups", "/v0/tags")


def empty_sandbox() -> tuple[Sandbox, str, SecretStr]:
    """A sandbox company whose Vendors, Tax Code and Tags APIs hold nothing yet."""
    sandbox = Sandbox(SandboxConfig(seed_master_data=False))
    company = sandbox.add_company(wallet_currency="GBP")
    return sandbox, company.id, SecretStr(company.api_key)


def settings_for(
    tmp_path: Path,
    sandbox: Sandbox,
    company_id: str,
    key: SecretStr,
    connector: str,
    values: dict[str, Any],
    **extra: Any,
) -> Settings:
    return Settings(
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        config_dir=tmp_path,
        pleo={"base_url": sandbox.base_url, "api_key": key, "company_id": company_id},
        connector={"name": connector, "settings": values},
        **extra,
    )


@asynccontextmanager
async def session_on(
    settings: Settings, sandbox: Sandbox, *, dry_run: bool = False
) -> AsyncIterator[tuple[Session, PleoMasterData]]:
    async with open_session(settings, dry_run=dry_run, transport=sandbox.transport()) as session:
        assert session.company_id is not None
        yield session, PleoMasterData(session.client, session.company_id)


def master_data_writes(requests: list[RequestRecord]) -> list[str]:
    """The write requests among ``requests`` to the Vendors, Tax Code and Tags APIs."""
    return [
        f"{r.method} {r.path}"
        for r in requests
        if r.method in ("POST", "PUT", "DELETE", "PATCH")
        and r.path.startswith(MASTER_DATA_PREFIXES)
        and not r.path.endswith(":search")
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def watch_config(
    tmp_path: Path,
    sandbox: Sandbox,
    company_id: str,
    connector: str,
    values: dict[str, Any],
    *,
    poll: float,
    listen: str | None,
) -> Path:
    """A configuration for ``run --watch`` against ``sandbox`` (its API key comes from
    ``PLEO_EXPORT_PLEO__API_KEY``); connector settings are strings."""
    lines = [
        "[pleo]",
        f'base_url = "{sandbox.base_url}"',
        f'company_id = "{company_id}"',
        "[state]",
        f'url = "sqlite:///{tmp_path / "state.db"}"',
        "[engine]",
        f"poll_interval = {poll}",
        "[connector]",
        f'name = "{connector}"',
        "[connector.settings]",
        *(f'{key} = "{value}"' for key, value in values.items()),
    ]
    if listen is not None:
        lines += ["[webhooks]", f'listen = "{listen}"', f'secret = "{SECRET}"']
    path = tmp_path / "pleo-export.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@asynccontextmanager
async def watching(config: Path, sandbox: Sandbox) -> AsyncIterator[None]:
    """``pleo-export run --watch`` with ``config``, its Pleo calls going to ``sandbox``."""
    context = Context(config, "warning", None)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(
            lambda: _run_async(
                context, True, False, None, None, True, True, transport=sandbox.transport()
            )
        )
        # The first round has run once the job list was read.
        with anyio.fail_after(30):
            while not any(r.path == "/v3/export-jobs" for r in sandbox.requests):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        yield
        tasks.cancel_scope.cancel()


async def wait_active(sandbox: Sandbox, company_id: str, vendor_id: str) -> Any:
    with anyio.fail_after(30):
        while True:
            vendor = sandbox.master_data(company_id).vendors[vendor_id]
            if vendor.state == "ACTIVE":
                return vendor
            await anyio.sleep(0.02)


def ledger_text(tmp_path: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (tmp_path / "ledger").glob("*.bean*"))
