"""The client side: login, proactive and 401-driven refresh, reuse, races, secrets in logs."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from pydantic import SecretStr

from pleo_export.pleo.models import ExportJobStatus
from pleo_export.pleo.oauth import (
    AuthorizationDenied,
    OAuthInstallation,
    ReauthorizationRequired,
    RefreshLockTimeout,
    StateMismatch,
    TokenEndpointError,
    TokenEndpointUnavailable,
    code_from_redirect,
    is_dead,
)
from pleo_export.state.base import StoredToken
from pleo_export_sandbox import FaultRule
from pleo_export_sandbox.oauth import OAuthConfig
from tests.oauth.conftest import REDIRECT_URI, OAuthEnv, assert_no_secrets, record_texts

pytestmark = pytest.mark.anyio


async def _jobs(env: OAuthEnv, installation: OAuthInstallation) -> None:
    async with env.pleo_client(installation.auth()) as client:
        await client.list_jobs(env.company.id, [ExportJobStatus.PENDING])


def _statuses(env: OAuthEnv, path: str = "/v3/export-jobs") -> list[int]:
    return [r.status for r in env.sandbox.requests if r.path == path]


# --- pasting the redirect ---------------------------------------------------------------------


def test_code_from_redirect_accepts_url_query_or_bare_code() -> None:
    url = f"{REDIRECT_URI}?code=abc&state=s1"
    assert code_from_redirect(url, expected_state="s1").get_secret_value() == "abc"
    assert code_from_redirect("code=abc&state=s1", expected_state="s1").get_secret_value() == "abc"
    assert code_from_redirect("  abc\n", expected_state="s1").get_secret_value() == "abc"


@pytest.mark.parametrize(
    ("pasted", "error"),
    [
        (f"{REDIRECT_URI}?code=abc&state=other", StateMismatch),
        (f"{REDIRECT_URI}?code=abc", StateMismatch),
        (f"{REDIRECT_URI}?state=s1", StateMismatch),
        (f"{REDIRECT_URI}?error=access_denied&state=s1", AuthorizationDenied),
        ("", StateMismatch),
    ],
)
def test_code_from_redirect_refuses(pasted: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        code_from_redirect(pasted, expected_state="s1")
    assert "abc" not in str(caught.value)


# --- login ------------------------------------------------------------------------------------


async def test_login_stores_the_installation_and_the_token_works(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        token = await env.login(installation)
        assert token.generation == 1
        assert token.expires_at == env.clock.wall() + timedelta(seconds=3600)
        assert await installation.manager.current() == token
        await _jobs(env, installation)
    assert _statuses(env) == [200]
    (call,) = env.sandbox.oauth.token_calls
    assert (call.grant_type, call.status) == ("authorization_code", 200)


async def test_a_login_completes_once_and_only_with_its_own_state(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        flow = installation.login()
        first = await flow.start()
        second = await flow.start()  # a restarted login replaces the first
        with pytest.raises(StateMismatch):
            await flow.complete(await env.approve(first.url))
        redirect = await env.approve(second.url)
        await flow.complete(redirect)
        with pytest.raises(StateMismatch, match="no login is waiting"):
            await flow.complete(redirect)
    assert [c.grant_type for c in env.sandbox.oauth.token_calls] == ["authorization_code"]


async def test_a_started_login_expires(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        flow = installation.login()
        request = await flow.start()
        redirect = await env.approve(request.url)
        env.clock.advance(601)
        with pytest.raises(StateMismatch, match="expired"):
            await flow.complete(redirect)
    assert env.sandbox.oauth.token_calls == []


async def test_wrong_client_secret_names_the_settings(env: OAuthEnv) -> None:
    installation = env.installation()
    installation.endpoint._secret = SecretStr("not-the-secret")
    async with installation:
        with pytest.raises(TokenEndpointError) as caught:
            await env.login(installation)
    assert caught.value.error == "invalid_client"
    assert "oauth.client_secret" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


# --- refresh ----------------------------------------------------------------------------------


async def test_refreshes_proactively_before_expiry(env: OAuthEnv) -> None:
    async with env.installation(refresh_margin=60) as installation:
        first = await env.login(installation)
        await _jobs(env, installation)
        env.clock.advance(3600 - 61)
        await _jobs(env, installation)
        assert installation.manager.refreshes == 0
        env.clock.advance(2)  # 59 s left: inside the margin
        await _jobs(env, installation)
        stored = await installation.manager.current()
    assert installation.manager.refreshes == 1
    assert stored is not None and stored.generation == first.generation + 1
    assert stored.refresh_token != first.refresh_token
    assert _statuses(env) == [200, 200, 200]  # never a 401
    assert len(env.sandbox.oauth.refresh_calls()) == 1


async def test_refreshes_once_after_a_401(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        await env.login(installation)
        async with env.pleo_client(installation.auth()) as client:
            await client.list_jobs(env.company.id, [])
            assert env.sandbox.oauth.expire_access_tokens() == 1
            await client.list_jobs(env.company.id, [])
            await client.list_jobs(env.company.id, [])
    assert _statuses(env) == [200, 401, 200, 200]
    assert installation.manager.refreshes == 1


async def test_a_margin_longer_than_the_token_lifetime_does_not_refresh_on_every_request(
    make_oauth_env: Callable[..., OAuthEnv],
) -> None:
    env = make_oauth_env(OAuthConfig(access_token_ttl=60))
    async with env.installation(refresh_margin=600) as installation:
        await env.login(installation)
        for _ in range(5):
            await _jobs(env, installation)
        env.clock.advance(31)  # past half of the 60 s lifetime
        await _jobs(env, installation)
    assert installation.manager.refreshes == 1
    assert set(_statuses(env)) == {200}


async def test_concurrent_requests_in_one_process_share_one_refresh(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        await env.login(installation)
        env.clock.advance(3600)
        async with env.pleo_client(installation.auth()) as client, anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(client.list_jobs, env.company.id, [])
    assert installation.manager.refreshes == 1
    assert len(env.sandbox.oauth.refresh_calls()) == 1
    assert _statuses(env) == [200] * 20


@pytest.mark.parametrize("error_code", ["invalid_grant", "invalid_refresh_token"])
async def test_reusing_a_spent_refresh_token_revokes_the_installation(
    make_oauth_env: Callable[..., OAuthEnv], error_code: str
) -> None:
    env = make_oauth_env(OAuthConfig(refresh_error=error_code))
    async with env.installation() as installation:
        old = await env.login(installation)
        newer = await installation.manager.refresh_now()
        # A backup of the state store from before the refresh is restored: its refresh token
        # was spent, and sending it again is what Pleo's replay protection punishes.
        assert await installation.store.replace_token(
            old.key, newer.generation, dataclasses.replace(old, expires_at=env.clock.wall())
        )
    async with env.installation() as installation:  # the next run, from the restored store
        manager = installation.manager
        with pytest.raises(ReauthorizationRequired) as caught:
            await _jobs(env, installation)
        stored = await manager.current()
        # Marked dead: no process sends that refresh token again, nor makes any other call.
        calls = len(env.sandbox.oauth.token_calls)
        with pytest.raises(ReauthorizationRequired):
            await _jobs(env, installation)
        with pytest.raises(ReauthorizationRequired):
            await manager.refresh_now()
    assert len(env.sandbox.oauth.token_calls) == calls
    assert stored is not None and is_dead(stored)
    message = str(caught.value)
    assert "authorization_failure" in message
    assert "pleo-export auth login" in message
    assert error_code in message
    for secret in (old.refresh_token, old.access_token, newer.refresh_token):
        assert secret not in message
    # The whole family is revoked, the newest tokens included.
    (family,) = env.sandbox.oauth.authorisations.values()
    assert family.revoked is not None
    assert env.sandbox.oauth.credential_for(newer.access_token) is None
    # Logging in again replaces the dead row.
    async with env.installation() as installation:
        again = await env.login(installation)
        await _jobs(env, installation)
    assert not is_dead(again) and again.generation == stored.generation + 1


async def test_no_tokens_stored_asks_for_a_login(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        with pytest.raises(ReauthorizationRequired, match="no OAuth tokens are stored"):
            await _jobs(env, installation)
    assert env.sandbox.requests == []


async def test_an_unknown_outcome_is_not_retried_blindly(env: OAuthEnv) -> None:
    async with env.installation() as installation:
        await env.login(installation)
        env.clock.advance(3600)
        # The connection breaks before the sandbox applies the refresh.
        env.sandbox.add_fault(FaultRule(kind="drop_before", path="^/oauth/token$"))
        with pytest.raises(TokenEndpointUnavailable, match="outcome is unknown"):
            await _jobs(env, installation)
        assert len(env.sandbox.oauth.refresh_calls()) == 0
        # The next call tries again with the same (unspent) refresh token, and it works.
        await _jobs(env, installation)
    assert len(env.sandbox.oauth.refresh_calls()) == 1
    assert installation.manager.refreshes == 2


async def test_a_lost_answer_spends_the_refresh_token_and_ends_in_a_typed_error(
    env: OAuthEnv,
) -> None:
    async with env.installation() as installation:
        await env.login(installation)
        env.clock.advance(3600)
        # Pleo rotates, but the answer is lost: the new pair never reaches us.
        env.sandbox.add_fault(FaultRule(kind="drop_after", path="^/oauth/token$"))
        with pytest.raises(TokenEndpointUnavailable):
            await _jobs(env, installation)
        with pytest.raises(ReauthorizationRequired):
            await _jobs(env, installation)
    assert [c.status for c in env.sandbox.oauth.refresh_calls()] == [200, 400]


class _FlakyConnect(httpx.AsyncBaseTransport):
    """Refuses the first ``failures`` connections, then forwards to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            self.failures -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_connection_refused_is_retried_because_nothing_was_sent(env: OAuthEnv) -> None:
    async with env.installation(transport=_FlakyConnect(env.sandbox.transport(), 2)) as inst:
        inst.endpoint.connect_backoff = 0.01
        await env.login(inst)
    assert len(env.sandbox.oauth.token_calls) == 1
    async with env.installation(transport=_FlakyConnect(env.sandbox.transport(), 9)) as inst:
        inst.endpoint.connect_attempts = 2
        inst.endpoint.connect_backoff = 0.01
        with pytest.raises(TokenEndpointUnavailable, match="cannot connect"):
            await inst.manager.refresh_now()
    assert len(env.sandbox.oauth.token_calls) == 1


class _RacingWriter(httpx.AsyncBaseTransport):
    """Before forwarding a refresh, lets ``write`` change the store (a rogue writer)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, write: Any) -> None:
        self.inner = inner
        self.write = write

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if "grant_type=refresh_token" in body:
            await self.write()
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("usable", [True, False])
async def test_a_lost_compare_and_swap_never_resends_and_uses_the_winner(
    env: OAuthEnv, usable: bool
) -> None:
    async with env.installation() as setup:
        token = await env.login(setup)
    winner = StoredToken(
        key=token.key,
        access_token="sbx-at-written-by-someone-else",
        refresh_token="sbx-rt-written-by-someone-else",
        expires_at=env.clock.wall() + timedelta(seconds=3600 if usable else -1),
        generation=token.generation + 1,
    )

    async def write() -> None:
        async with env.installation() as other:
            assert await other.store.replace_token(token.key, token.generation, winner)

    transport = _RacingWriter(env.sandbox.transport(), write)
    async with env.installation(transport=transport) as installation:
        if usable:
            assert (await installation.manager.refresh_now()).access_token == winner.access_token
        else:
            with pytest.raises(ReauthorizationRequired, match="replaced during a refresh"):
                await installation.manager.refresh_now()
    assert len(env.sandbox.oauth.refresh_calls()) == 1


async def test_waits_for_a_dead_holders_lease_to_expire(env: OAuthEnv) -> None:
    async with env.installation(lease_ttl=30, lease_wait=5) as installation:
        await env.login(installation)
        manager = installation.manager
        ghost = await installation.store.acquire_lease(manager.lease_name, "ghost", 0.3)
        assert ghost is not None
        env.clock.advance(3600)
        with anyio.fail_after(10):
            await _jobs(env, installation)
    assert manager.refreshes == 1


async def test_gives_up_when_another_holder_keeps_the_lease(env: OAuthEnv) -> None:
    async with env.installation(lease_wait=0.2) as installation:
        await env.login(installation)
        manager = installation.manager
        assert await installation.store.acquire_lease(manager.lease_name, "busy", 60)
        env.clock.advance(3600)
        with pytest.raises(RefreshLockTimeout, match="another process"):
            await _jobs(env, installation)
    assert env.sandbox.oauth.refresh_calls() == []


# --- secrets ----------------------------------------------------------------------------------


async def test_no_secret_reaches_logs_exceptions_or_reprs_at_debug(
    env: OAuthEnv, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    async with env.installation() as installation:
        flow = installation.login()
        request = await flow.start()
        with caplog.at_level(logging.WARNING):  # the test's own browser is not under test
            redirect = await env.approve(request.url)
        await flow.complete(redirect)
        await _jobs(env, installation)
        env.clock.advance(3590)
        await _jobs(env, installation)  # proactive refresh
        env.sandbox.oauth.expire_access_tokens()
        await _jobs(env, installation)  # refresh after a 401
        texts += [repr(installation), repr(installation.manager), repr(installation.auth())]
        texts += [repr(installation.endpoint), repr(env.client)]
        stored = await installation.manager.current()
        assert stored is not None
        spent = (await installation.manager.refresh_now()).refresh_token
        assert await installation.store.replace_token(
            stored.key,
            stored.generation + 1,
            dataclasses.replace(stored, expires_at=env.clock.wall()),
        )
    async with env.installation() as installation:
        with pytest.raises(ReauthorizationRequired) as caught:
            await _jobs(env, installation)
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
    secrets = env.token_secrets()
    assert spent in secrets and stored.refresh_token in secrets
    assert len(secrets) >= 9  # client secret, its Basic form, code, verifier, 3+ pairs
    events = {getattr(r, "event", None) for r in caplog.records}
    assert {
        "oauth.installed",
        "oauth.refreshed",
        "oauth.rejected",
        "oauth.refresh.refused",
    } <= events
    searched = assert_no_secrets([*record_texts(caplog.records), *texts], secrets)
    assert searched > 20


async def test_a_refused_refresh_defers_to_a_login_made_meanwhile(env: OAuthEnv) -> None:
    async with env.installation() as setup:
        login = await env.login(setup)
        broken = dataclasses.replace(
            login, refresh_token="sbx-rt-never-issued", expires_at=env.clock.wall()
        )
        assert await setup.store.replace_token(login.key, login.generation, broken)
    relogin = dataclasses.replace(login, generation=login.generation + 2)

    async def write() -> None:  # `pleo-export auth login` finishes in another process
        async with env.installation() as other:
            assert await other.store.replace_token(login.key, login.generation + 1, relogin)

    async with env.installation(transport=_RacingWriter(env.sandbox.transport(), write)) as inst:
        await _jobs(env, inst)
        stored = await inst.manager.current()
    assert stored == relogin  # not marked dead
    assert [call.status for call in env.sandbox.oauth.refresh_calls()] == [400]
    assert _statuses(env) == [200]
