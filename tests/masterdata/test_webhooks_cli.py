"""``pleo-export webhooks subscribe|list|delete``: in process against the sandbox (SQLite and
PostgreSQL state stores), and as real processes against ``sandbox serve`` over loopback."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pleo_export.cli.common import UsageError
from pleo_export.cli.webhooks import delete_async, list_async, subscribe_async
from pleo_export.config import ConfigError, Settings, load_settings
from pleo_export.state import open_store
from pleo_export.webhook_store import stored_secrets, stored_subscriptions
from pleo_export.webhooks import receiver
from pleo_export_sandbox import Company, Sandbox, SandboxConfig
from tests.masterdata.conftest import START
from tests.support.openapi import OpenApiContract
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.anyio

HOOK_URL = "https://erp.example.test/pleo/webhooks"


def _settings(tmp_path: Path, base_url: str, company: Company, state_url: str) -> Settings:
    config = tmp_path / "pleo-export.toml"
    config.write_text(
        "[pleo]\n"
        f'base_url = "{base_url}"\n'
        f'company_id = "{company.id}"\n'
        "[state]\n"
        f'url = "{state_url}"\n'
    )
    os.environ["PLEO_EXPORT_PLEO__API_KEY"] = company.api_key
    try:
        return load_settings(config)
    finally:
        del os.environ["PLEO_EXPORT_PLEO__API_KEY"]


@pytest.fixture
def sandbox(openapi_contract: OpenApiContract) -> Sandbox:
    sandbox = Sandbox(SandboxConfig(start_time=START))
    sandbox.on_exchange = openapi_contract.check_exchange
    return sandbox


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    with fresh_database("webhooks") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    database: str = request.getfixturevalue("postgres_database")
    return f"{database}?schema=t_{os.urandom(6).hex()}"


async def test_subscribe_stores_the_secret_list_masks_it_delete_forgets_it(
    sandbox: Sandbox, tmp_path: Path, state_url: str
) -> None:
    company = sandbox.add_company()
    settings = _settings(tmp_path, sandbox.base_url, company, state_url)
    transport = sandbox.transport()

    row = await subscribe_async(settings, HOOK_URL, transport=transport)

    record = sandbox.master_data(company.id).subscriptions[row["id"]]
    assert record.endpoint_url == HOOK_URL
    assert set(record.event_types) == {"v1.export-job.created", "v1.vendor.created"}
    assert row["secret"] == "****" + record.secret[-4:]
    store = open_store(settings.state_url())
    await store.open()
    try:
        (stored,) = await stored_subscriptions(store)
    finally:
        await store.close()
    assert stored.subscription_id == row["id"]
    assert stored.secret.get_secret_value() == record.secret
    assert [s.get_secret_value() for s in await stored_secrets(settings)] == [record.secret]

    listed = await list_async(settings, transport=transport)
    assert listed == [row]
    assert record.secret not in json.dumps(listed)

    deleted = await delete_async(settings, row["id"], transport=transport)
    assert deleted == {"id": row["id"], "deleted": True, "secretForgotten": True}
    assert sandbox.master_data(company.id).subscriptions == {}
    assert await stored_secrets(settings) == []
    with pytest.raises(UsageError, match="unknown"):
        await delete_async(settings, row["id"], transport=transport)


async def test_without_a_configured_or_stored_secret_the_receiver_says_how_to_get_one(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    company = sandbox.add_company()
    settings = _settings(tmp_path, sandbox.base_url, company, f"sqlite:///{tmp_path / 's.db'}")
    secrets = await stored_secrets(settings)
    assert secrets == []
    with pytest.raises(ConfigError, match="pleo-export webhooks subscribe"):
        async with receiver("127.0.0.1:0", secrets):
            pass


async def test_a_stored_secret_lets_run_watchs_receiver_accept_pleos_delivery(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    company = sandbox.add_company()
    settings = _settings(tmp_path, sandbox.base_url, company, f"sqlite:///{tmp_path / 's.db'}")
    made = await subscribe_async(settings, HOOK_URL, transport=sandbox.transport())
    async with receiver("127.0.0.1:0", await stored_secrets(settings)) as wakeups:
        assert wakeups.url is not None
        record = sandbox.master_data(company.id).subscriptions[made["id"]]
        record.endpoint_url = wakeups.url  # where this test's receiver listens
        sandbox.queue_export(company.id, count=2, seed=1)
        draft = sandbox.create_draft_vendor(company.id, "Corner Shop")
        assert await sandbox.webhooks.deliver() == 2  # the job and the vendor, both verified
        assert wakeups.received == 2  # each wakes the worker
        assert wakeups.take_vendor_ids() == [draft["id"]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    result = await anyio.run_process(
        [sys.executable, "-m", "pleo_export.cli", *args], cwd=cwd, env=env, check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.slow
async def test_the_commands_as_processes_against_sandbox_serve(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PLEO_EXPORT_CONFIG", None)
    serve_dir = tmp_path / "serve"
    serve_dir.mkdir()
    async with await anyio.open_process(
        [sys.executable, "-m", "pleo_export.cli", "sandbox", "serve", "--port", str(port)],
        cwd=serve_dir,
        env=env,
    ) as server:
        try:
            assert server.stdout is not None
            text = ""
            with anyio.fail_after(60):
                while "listening on" not in text:
                    text += (await server.stdout.receive()).decode()
            values = {
                key.strip(): value.strip()
                for key, _, value in (line.partition(" = ") for line in text.splitlines())
                if value
            }
            company_id, api_key = values["company_id"], values["api_key"]
            work = tmp_path / "work"
            work.mkdir()
            log_file = work / "debug.log"
            (work / "pleo-export.toml").write_text(
                "[pleo]\n"
                f'base_url = "http://127.0.0.1:{port}"\n'
                f'company_id = "{company_id}"\n'
                "[log]\n"
                'level = "debug"\n'
                f'file = "{log_file}"\n'
            )
            cli_env = {**env, "PLEO_EXPORT_PLEO__API_KEY": api_key}
            code, out, err = await _cli(cli_env, work, "webhooks", "subscribe", HOOK_URL, "--json")
            assert code == 0, err
            made: dict[str, Any] = json.loads(out)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", auth=(api_key, "")
            ) as pleo:
                secret = (await pleo.get(f"/v1/subscriptions/{made['id']}/secret")).json()["data"][
                    "secretKey"
                ]
            assert made["secret"] == "****" + secret[-4:]

            code, listed_out, err2 = await _cli(cli_env, work, "webhooks", "list")
            assert code == 0, err2
            assert made["id"] in listed_out and "****" + secret[-4:] in listed_out

            code, deleted_out, err3 = await _cli(
                cli_env, work, "webhooks", "delete", made["id"], "--json"
            )
            assert code == 0, err3
            assert json.loads(deleted_out)["deleted"] is True
            code, empty, _ = await _cli(cli_env, work, "webhooks", "list", "--json")
            assert code == 0 and json.loads(empty) == []

            texts = [out, err, listed_out, err2, deleted_out, err3, log_file.read_text()]
            assert "pleo request" in texts[-1]  # the debug log was written
            for text in texts:
                assert secret not in text and secret.removeprefix("whsec_") not in text
        finally:
            server.terminate()


def test_listen_without_a_configured_secret_is_a_valid_configuration(tmp_path: Path) -> None:
    config = tmp_path / "pleo-export.toml"
    config.write_text('[webhooks]\nlisten = "127.0.0.1:0"\n')
    settings = load_settings(config)
    assert settings.webhooks.listen == "127.0.0.1:0" and settings.webhooks.secret is None


async def test_open_master_data_serves_the_configured_company_or_says_what_is_missing(
    tmp_path: Path,
) -> None:
    from pleo_export.app import open_master_data

    config = tmp_path / "pleo-export.toml"
    config.write_text('[pleo]\nbase_url = "sandbox"\n')
    async with open_master_data(load_settings(config)) as pleo:
        assert pleo.sandbox is not None and pleo.company_id in pleo.sandbox.store.companies
        assert len(await pleo.list_vendors()) == 8  # the demo chart's, in the built-in sandbox
    config.write_text('[pleo]\nbase_url = "https://external.pleo.invalid"\napi_key = "k-123"\n')
    with pytest.raises(ConfigError, match=r"pleo\.company_id"):
        async with open_master_data(load_settings(config)):
            pass
