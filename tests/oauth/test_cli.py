"""``pleo-export auth`` and ``run`` end to end: real processes, the sandbox over loopback HTTP.

One module-scoped scenario, whose outcomes the tests below assert on:

1. ``auth login --listen``: the command prints the authorize URL; a "browser" opens it, the
   sandbox approves and redirects to the command's loopback listener; tokens are stored;
2. every access token expires on Pleo's side, then ``run`` exports a job (refresh after 401);
3. someone sends the refresh token that run spent (a restored backup, a copied store): the
   sandbox revokes the installation; the next ``run`` fails with the typed error, exit 2;
   ``auth status`` says revoked;
4. ``auth login`` with nothing to read on stdin prints the URL and how to finish; the browser
   approves; ``auth login --code <redirect URL>`` completes it; ``auth refresh`` rotates the
   new tokens; ``auth status --json`` is authorised again.

Every command logs at debug level into one file; no token, code, verifier or client secret
may appear there or in any output.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process

from pleo_export.demo import write_demo_config
from pleo_export.host import PluginHost
from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server
from tests.oauth.conftest import assert_no_secrets

pytestmark = pytest.mark.anyio


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Scenario:
    sandbox: Sandbox
    results: dict[str, Result] = field(default_factory=dict)
    browser_page: str = ""
    log_text: str = ""
    secrets: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    job_id: str = ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _line_with(process: Process, needle: str) -> str:
    """Read stdout until a line containing ``needle``; return that line."""
    assert process.stdout is not None
    buffer = b""
    while True:
        buffer += await process.stdout.receive()
        for line in buffer.decode(errors="replace").splitlines():
            if needle in line:
                return line.strip()


async def _finish(process: Process, first: str) -> Result:
    assert process.stdout is not None and process.stderr is not None
    out, err = [first], []
    async with anyio.create_task_group() as tasks:

        async def drain(stream: Any, into: list[str]) -> None:
            async for chunk in stream:
                into.append(chunk.decode(errors="replace"))

        tasks.start_soon(drain, process.stdout, out)
        tasks.start_soon(drain, process.stderr, err)
    return Result(await process.wait(), "".join(out), "".join(err))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves the sandbox on asyncio


@pytest.fixture(scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory, openapi_contract: Any) -> Scenario:
    directory = tmp_path_factory.mktemp("oauth-cli")
    sandbox = Sandbox(SandboxConfig())
    company = sandbox.add_company(name="Installed Ltd", wallet_currency="GBP")
    redirect_uri = f"http://127.0.0.1:{_free_port()}/callback"
    client = sandbox.oauth.register_client([redirect_uri], company_id=company.id)
    job = sandbox.queue_export(company.id, count=12, seed=5)
    result = Scenario(sandbox=sandbox, job_id=job.id)

    def check(record: Any) -> None:
        if not record.path.startswith("/oauth/"):
            try:
                openapi_contract.check_exchange(record)
            except Exception as error:
                result.violations.append(str(error))
                raise

    sandbox.on_exchange = check
    connector_cls = PluginHost(load_entry_points=False).load_connector("beancount")
    write_demo_config(directory, connector_cls.scaffold(directory, DEMO_CHART, "GBP"))
    env = {
        **os.environ,
        "PLEO_EXPORT_OAUTH__CLIENT_SECRET": client.client_secret,
        "PLEO_EXPORT_CONFIG": str(directory / "pleo-export.toml"),
    }

    async def cli(name: str, *args: str, stdin: bytes = b"") -> Result:
        done = await anyio.run_process(
            [sys.executable, "-m", "pleo_export.cli", *args],
            cwd=directory,
            env=env,
            input=stdin,
            check=False,
        )
        outcome = Result(done.returncode, done.stdout.decode(), done.stderr.decode())
        result.results[name] = outcome
        return outcome

    def open_cli(*args: str) -> Any:
        return anyio.open_process(
            [sys.executable, "-m", "pleo_export.cli", *args], cwd=directory, env=env
        )

    with anyio.fail_after(240):
        async with running_server(sandbox) as url, httpx.AsyncClient() as browser:
            config = directory / "pleo-export.toml"
            text = config.read_text(encoding="utf-8").replace(
                'base_url = "sandbox"', f'base_url = "{url}"\ncompany_id = "{company.id}"'
            )
            text += (
                f'\n[oauth]\nclient_id = "{client.client_id}"\nredirect_uri = "{redirect_uri}"\n'
                '\n[log]\nlevel = "debug"\nfile = "pleo-export.log"\n'
            )
            config.write_text(text, encoding="utf-8")

            # 1. login --listen, the browser comes back to the command's listener
            async with await open_cli("auth", "login", "--listen", "--timeout", "60") as login:
                authorize = await _line_with(login, "/oauth/authorize?")
                page = await browser.get(authorize, follow_redirects=True)
                result.browser_page = page.text
                result.results["login --listen"] = await _finish(login, authorize)

            # 2. Pleo expires the access token; run refreshes after the 401 and exports
            sandbox.oauth.expire_access_tokens()
            await cli("run", "run", "--json", "--quiet")

            # 3. the spent refresh token is sent again: the installation is revoked
            (spent,) = (
                record.body.split("refresh_token=", 1)[1].split("&", 1)[0]
                for record in sandbox.requests
                if record.path == "/oauth/token" and "grant_type=refresh_token" in record.body
            )
            replay = await browser.post(
                f"{url}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": spent},
                auth=(client.client_id, client.client_secret),
            )
            assert replay.status_code == 400
            sandbox.queue_export(company.id, count=3, seed=6)
            await cli("run revoked", "run", "--quiet")
            await cli("status revoked", "auth", "status")

            # 4. login by pasting: the first command prints the URL, the second completes it
            started = await cli("login prompt", "auth", "login")
            (authorize,) = [line for line in started.stdout.split() if "/oauth/authorize?" in line]
            location = (await browser.get(authorize)).headers["location"]
            await cli("login --code", "auth", "login", "--code", location)
            await cli("refresh", "auth", "refresh")
            await cli("status json", "auth", "status", "--json")

    result.log_text = (directory / "pleo-export.log").read_text(encoding="utf-8")
    result.secrets = _secrets(sandbox, client.client_secret)
    return result


def _secrets(sandbox: Sandbox, client_secret: str) -> set[str]:
    found = {client_secret}
    for record in sandbox.requests:
        if record.path == "/oauth/token":
            for part in str(record.body).split("&"):
                name, _, value = part.partition("=")
                if name in ("code", "code_verifier", "refresh_token"):
                    found.add(value)
            if isinstance(record.response_body, dict):
                found.update(
                    v
                    for k, v in record.response_body.items()
                    if k in ("access_token", "refresh_token")
                )
    return found


async def test_login_with_the_loopback_listener(scenario: Scenario) -> None:
    login = scenario.results["login --listen"]
    assert login.code == 0, login.stderr
    assert "Installed." in login.stdout
    assert "You can close this window" in scenario.browser_page
    (first, *_) = scenario.sandbox.oauth.token_calls
    assert (first.grant_type, first.status) == ("authorization_code", 200)


async def test_run_exports_with_the_oauth_installation(scenario: Scenario) -> None:
    run = scenario.results["run"]
    assert run.code == 0, run.stderr
    (job,) = json.loads(run.stdout)["jobs"]
    assert job["job_id"] == scenario.job_id
    assert job["final_event"] == "completed"
    assert job["posted"] == 12
    statuses = [r.status for r in scenario.sandbox.requests if r.path == "/v3/export-jobs"]
    assert statuses[:2] == [401, 200]  # the expired token, then the refreshed one


async def test_a_replayed_refresh_token_stops_the_next_run_with_a_typed_error(
    scenario: Scenario,
) -> None:
    run = scenario.results["run revoked"]
    assert run.code == 2
    assert "authorization_failure" in run.stderr
    assert "pleo-export auth login" in run.stderr
    status = scenario.results["status revoked"]
    assert status.code == 1
    assert "REVOKED" in status.stdout
    families = scenario.sandbox.oauth.authorisations
    assert families["1"].revoked == "a spent refresh token was used again"


async def test_login_by_pasting_the_redirect_url(scenario: Scenario) -> None:
    started = scenario.results["login prompt"]
    assert started.code == 1
    assert "--code" in started.stderr
    completed = scenario.results["login --code"]
    assert completed.code == 0, completed.stderr
    refreshed = scenario.results["refresh"]
    assert refreshed.code == 0, refreshed.stderr
    assert "refreshed" in refreshed.stdout
    status = scenario.results["status json"]
    assert status.code == 0
    info = json.loads(status.stdout)
    assert info["authorised"] is True and info["revoked"] is False
    assert info["access_token_valid"] is True
    # login, run's refresh, the revocation mark, the new login, auth refresh
    assert info["generation"] == 5
    families = scenario.sandbox.oauth.authorisations
    assert families["2"].revoked is None
    assert families["2"].refreshes == 1


async def test_no_secret_in_any_log_line_or_output(scenario: Scenario) -> None:
    assert "oauth.refreshed" in scenario.log_text  # debug logging was on
    assert len(scenario.secrets) >= 8
    texts = [scenario.log_text]
    for outcome in scenario.results.values():
        texts += [outcome.stdout, outcome.stderr]
    assert_no_secrets(texts, scenario.secrets)


async def test_the_served_export_api_kept_to_the_spec(scenario: Scenario) -> None:
    assert scenario.violations == []
