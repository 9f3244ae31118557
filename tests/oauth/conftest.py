"""Fixtures for the OAuth tests: a sandbox with an OAuth client, a shared fake clock, helpers.

The sandbox and the client share one clock: the sandbox reads monotonic seconds, the token
manager the matching wall-clock time, so a test moves both by :meth:`SharedClock.advance`.
Every Export API exchange is checked against Pleo's OpenAPI spec (the OAuth endpoints are not
part of that spec and are skipped); a violation fails the test at teardown.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from pleo_export.pleo.auth import BearerTokenAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.oauth import OAuthInstallation
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state.base import StoredToken
from pleo_export_sandbox import Company, Sandbox, SandboxConfig
from pleo_export_sandbox.oauth import OAuthClient, OAuthConfig

START = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
REDIRECT_URI = "http://127.0.0.1:8976/callback"


class SharedClock:
    """Monotonic seconds for the sandbox and the matching UTC time for the token manager."""

    def __init__(self, start: float = 1000.0) -> None:
        self.origin = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.now - self.origin)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class OAuthEnv:
    sandbox: Sandbox
    company: Company
    client: OAuthClient
    clock: SharedClock
    state_url: str
    violations: list[str] = field(default_factory=list)

    def installation(self, **options: Any) -> OAuthInstallation:
        """An unopened installation of ``client`` talking to the in-process sandbox."""
        from pleo_export.state import open_store

        options.setdefault("transport", self.sandbox.transport())
        options.setdefault("clock", self.clock.wall)
        options.setdefault("poll_interval", 0.01)
        return OAuthInstallation(
            store=open_store(self.state_url),
            auth_url=self.sandbox.base_url,
            client_id=self.client.client_id,
            client_secret=SecretStr(self.client.client_secret),
            redirect_uri=REDIRECT_URI,
            **options,
        )

    async def approve(self, url: str) -> str:
        """What the user's browser does: open the authorize URL, return where it redirects."""
        async with httpx.AsyncClient(transport=self.sandbox.transport()) as browser:
            response = await browser.get(url)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    async def login(self, installation: OAuthInstallation) -> StoredToken:
        flow = installation.login()
        request = await flow.start()
        return await flow.complete(await self.approve(request.url))

    def pleo_client(self, auth: httpx.Auth) -> PleoClient:
        return PleoClient(
            self.sandbox.base_url,
            auth,
            transport=self.sandbox.transport(),
            retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
        )

    def token_secrets(self) -> set[str]:
        """Every token, code, verifier and client secret the sandbox has seen or issued."""
        found = {self.client.client_secret}
        pair = f"{quote(self.client.client_id, safe='')}:{quote(self.client.client_secret)}"
        found.add(base64.b64encode(pair.encode()).decode())
        for record in self.sandbox.requests:
            if record.path == "/oauth/token":
                if isinstance(record.body, str):
                    for part in record.body.split("&"):
                        name, _, value = part.partition("=")
                        if name in ("code", "code_verifier", "refresh_token"):
                            found.add(value)
                if isinstance(record.response_body, dict):
                    for name in ("access_token", "refresh_token"):
                        value = record.response_body.get(name)
                        if isinstance(value, str):
                            found.add(value)
            if record.path == "/oauth/authorize":
                location = record.response_headers.get("location", "")
                if "code=" in location:
                    found.add(location.split("code=", 1)[1].split("&", 1)[0])
        return found


def assert_no_secrets(texts: Iterable[str], secrets: set[str]) -> int:
    """Assert that no text contains any secret; returns how many texts were searched."""
    count = 0
    for text in texts:
        count += 1
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:200]!r}"
    return count


def record_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    """Every rendered message, extra field and exception text of the records."""
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
    for record in records:
        yield record.getMessage()
        for key, value in vars(record).items():
            if key not in standard:
                yield f"{key}={value!r}"
        if record.exc_info and record.exc_info[1] is not None:
            yield logging.Formatter().formatException(record.exc_info)


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock()


def build_env(
    directory: Path,
    clock: SharedClock,
    contract: Any,
    oauth: OAuthConfig | None = None,
    config: SandboxConfig | None = None,
) -> OAuthEnv:
    """A sandbox with one company and one OAuth client, its state store in ``directory``."""
    sandbox = Sandbox(config or SandboxConfig(start_time=START), clock=clock)
    if oauth is not None:
        sandbox.oauth.config = oauth
    company = sandbox.add_company(name="Partner Customer Ltd", wallet_currency="GBP")
    client = sandbox.oauth.register_client([REDIRECT_URI], company_id=company.id)
    env = OAuthEnv(sandbox, company, client, clock, f"sqlite:///{directory / 'state.db'}")

    def check(record: Any) -> None:
        if record.path.startswith("/oauth/"):
            return
        try:
            contract.check_exchange(record)
        except Exception as error:
            env.violations.append(str(error))
            raise

    sandbox.on_exchange = check
    return env


@pytest.fixture
def make_oauth_env(
    tmp_path: Path, clock: SharedClock, openapi_contract: Any
) -> Iterator[Callable[..., OAuthEnv]]:
    envs: list[OAuthEnv] = []

    def make(oauth: OAuthConfig | None = None, config: SandboxConfig | None = None) -> OAuthEnv:
        directory = tmp_path / f"env{len(envs)}"
        directory.mkdir()
        env = build_env(directory, clock, openapi_contract, oauth, config)
        envs.append(env)
        return env

    yield make
    problems = [v for env in envs for v in env.violations]
    assert not problems, "\n".join(problems)


@pytest.fixture
def env(make_oauth_env: Callable[..., OAuthEnv]) -> OAuthEnv:
    return make_oauth_env()


def bearer(token: str) -> BearerTokenAuth:
    return BearerTokenAuth(SecretStr(token))
