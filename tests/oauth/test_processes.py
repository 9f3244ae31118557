"""Several processes sharing one SQLite state store need a refresh at the same moment.

Pleo revokes the whole installation when a spent refresh token is sent again, so exactly one
of them may refresh; the others must wait for it and use its result. The sandbox serves over
loopback HTTP and its token endpoint answers slowly (0.5 s), so the processes really overlap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from pydantic import SecretStr

from pleo_export.pleo.oauth import OAuthInstallation
from pleo_export.state import open_store
from pleo_export_sandbox import FaultRule, Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server
from tests.oauth.conftest import REDIRECT_URI

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 2
"""Child processes; the test process itself is a third contender."""


@dataclass
class Race:
    sandbox: Sandbox
    results: list[dict[str, Any]]
    stored_sha: str
    stored_generation: int
    before_generation: int
    api_after_status: int


async def _line(process: Process) -> str:
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = await process.stdout.receive(1)
        data += chunk
    return data.decode().strip()


async def _contend(args: dict[str, Any], url: str) -> dict[str, Any]:
    """What a child process does, from this process, on its own store connection."""
    options = {k: v for k, v in args.items() if k != "store_url"}
    installation = OAuthInstallation(
        store=open_store(args["store_url"]), poll_interval=0.02, **options
    )
    async with installation:
        token = (await installation.manager.access_token()).get_secret_value()
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get(
                "/v3/export-jobs", headers={"Authorization": f"Bearer {token}"}
            )
    return {
        "sha": hashlib.sha256(token.encode()).hexdigest(),
        "refreshes": installation.manager.refreshes,
        "api_status": response.status_code,
    }


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves the sandbox on asyncio


@pytest.fixture(scope="module")
async def race(tmp_path_factory: pytest.TempPathFactory) -> Race:
    directory = tmp_path_factory.mktemp("oauth-race")
    state_url = f"sqlite:///{directory / 'state.db'}"
    sandbox = Sandbox(SandboxConfig())
    company = sandbox.add_company(name="Race Ltd")
    client = sandbox.oauth.register_client([REDIRECT_URI], company_id=company.id)
    with anyio.fail_after(120):
        async with running_server(sandbox) as url:
            installation_args: dict[str, Any] = {
                "auth_url": url,
                "client_id": client.client_id,
                "client_secret": SecretStr(client.client_secret),
                "redirect_uri": REDIRECT_URI,
            }
            installation = OAuthInstallation(store=open_store(state_url), **installation_args)
            installation_args["store_url"] = state_url
            async with installation:
                flow = installation.login()
                request = await flow.start()
                async with httpx.AsyncClient() as browser:
                    location = (await browser.get(request.url)).headers["location"]
                token = await flow.complete(location)
                # The stored access token is now due: every process will want to refresh.
                due = dataclasses.replace(token, expires_at=datetime.now(UTC) - timedelta(1))
                assert await installation.store.replace_token(token.key, token.generation, due)
            sandbox.add_fault(FaultRule(kind="slow", path="^/oauth/token$", delay=0.5, count=None))

            go_file = directory / "go"
            config = {
                "state_url": state_url,
                "auth_url": url,
                "client_id": client.client_id,
                "go_file": str(go_file),
            }
            env = {
                **os.environ,
                "CHILD_CLIENT_SECRET": client.client_secret,
                "PYTHONPATH": str(ROOT),
            }
            command = [sys.executable, "-m", "tests.oauth._refresh_child", json.dumps(config)]
            processes = [
                await anyio.open_process(command, cwd=ROOT, env=env) for _ in range(PROCESSES)
            ]
            try:
                for process in processes:
                    assert await _line(process) == "ready"
                go_file.touch()
                results = [await _contend(installation_args, url)]
                results += [json.loads(await _line(process)) for process in processes]
                for process in processes:
                    assert await process.wait() == 0
            finally:
                for process in processes:
                    if process.returncode is None:
                        process.kill()
                    await process.aclose()
            check = open_store(state_url)
            await check.open()
            try:
                stored = await check.get_token(token.key)
            finally:
                await check.close()
            assert stored is not None
            async with httpx.AsyncClient(base_url=url) as http:
                api_after = await http.get(
                    "/v3/export-jobs", headers={"Authorization": f"Bearer {stored.access_token}"}
                )
    return Race(
        sandbox=sandbox,
        results=results,
        stored_sha=hashlib.sha256(stored.access_token.encode()).hexdigest(),
        stored_generation=stored.generation,
        before_generation=due.generation + 1,
        api_after_status=api_after.status_code,
    )


async def test_exactly_one_refresh_reached_the_token_endpoint(race: Race) -> None:
    calls = race.sandbox.oauth.refresh_calls()
    assert [call.status for call in calls] == [200]
    assert sum(result["refreshes"] for result in race.results) == 1
    assert race.stored_generation == race.before_generation + 1


async def test_every_process_ends_with_the_same_valid_token(race: Race) -> None:
    assert len(race.results) == PROCESSES + 1
    assert {result["sha"] for result in race.results} == {race.stored_sha}
    assert [result["api_status"] for result in race.results] == [200] * (PROCESSES + 1)
    assert race.api_after_status == 200
    (family,) = race.sandbox.oauth.authorisations.values()
    assert family.revoked is None
