"""The sandbox's OAuth server: authorize, code exchange with PKCE, rotation, reuse detection."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from pleo_export.pleo.oauth import PkcePair, code_challenge
from pleo_export_sandbox.oauth import SANDBOX_OAUTH_DEVIATIONS, OAuthConfig, s256
from tests.oauth.conftest import REDIRECT_URI, OAuthEnv

pytestmark = pytest.mark.anyio


class Browser:
    """Raw HTTP to the sandbox: what a browser and a hand-written client would send."""

    def __init__(self, env: OAuthEnv) -> None:
        self.env = env
        self.pkce = PkcePair.generate()

    def authorize_params(self, **changes: Any) -> dict[str, str]:
        params = {
            "client_id": self.env.client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "export-jobs:read export-jobs:write export-items:read",
            "response_type": "code",
            "state": "st-1",
            "code_challenge_method": "S256",
            "code_challenge": self.pkce.challenge,
        }
        params.update(changes)
        return {k: v for k, v in params.items() if v is not None}

    async def authorize(self, **changes: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.env.sandbox.transport()) as http:
            return await http.get(
                f"{self.env.sandbox.base_url}/oauth/authorize",
                params=self.authorize_params(**changes),
            )

    async def code(self) -> str:
        response = await self.authorize()
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == ["st-1"]
        return query["code"][0]

    async def token(
        self, form: dict[str, str], *, basic: tuple[str, str] | None = None, raw: bool = False
    ) -> httpx.Response:
        if basic is None and not raw:
            basic = (self.env.client.client_id, self.env.client.client_secret)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        async with httpx.AsyncClient(transport=self.env.sandbox.transport()) as http:
            return await http.post(
                f"{self.env.sandbox.base_url}/oauth/token", content=urlencode(form), headers=headers
            )

    async def exchange(self, issued: str, **changes: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": issued,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": self.pkce.verifier.get_secret_value(),
        }
        form.update(changes)
        return await self.token(form)

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def api(self, access_token: str) -> int:
        async with httpx.AsyncClient(transport=self.env.sandbox.transport()) as http:
            response = await http.get(
                f"{self.env.sandbox.base_url}/v3/export-jobs",
                headers={"Authorization": f"Bearer {access_token}"},
            )
        return response.status_code


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error", "error_description"}
    return str(body["error"])


def test_rfc7636_s256_vector() -> None:
    # RFC 7636, appendix B: the server's check and the client's challenge agree with it.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert code_challenge(verifier) == s256(verifier)


async def test_code_flow_issues_opaque_tokens_the_export_api_accepts(env: OAuthEnv) -> None:
    browser = Browser(env)
    response = await browser.exchange(await browser.code())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] != body["refresh_token"]
    assert set(body["scope"].split()) == {
        "export-jobs:read",
        "export-jobs:write",
        "export-items:read",
    }
    assert await browser.api(body["access_token"]) == 200
    env.clock.advance(3600)
    assert await browser.api(body["access_token"]) == 401


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_id": "nobody"}, 400, "invalid_client"),
        ({"redirect_uri": "http://127.0.0.1:8976/callback/"}, 400, "invalid_request"),
        ({"redirect_uri": None}, 400, "invalid_request"),
    ],
)
async def test_authorize_never_redirects_to_an_unverified_uri(
    env: OAuthEnv, change: dict[str, Any], status: int, error: str
) -> None:
    response = await Browser(env).authorize(**change)
    assert response.status_code == status
    assert "location" not in response.headers
    assert _error(response) == error


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "export-jobs:read cards:write"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
    ],
)
async def test_authorize_errors_go_back_to_the_app_with_state(
    env: OAuthEnv, change: dict[str, Any], error: str
) -> None:
    response = await Browser(env).authorize(**change)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == [error]
    assert query["state"] == ["st-1"]
    assert "code" not in query


async def test_declined_consent_is_access_denied(make_oauth_env: Any) -> None:
    env = make_oauth_env(OAuthConfig(auto_approve=False))
    response = await Browser(env).authorize()
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["access_denied"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": PkcePair.generate().verifier.get_secret_value()}, "invalid_grant"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:8976/other"}, "invalid_grant"),
        ({"code": "sbx-code-not-issued"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ],
)
async def test_code_exchange_checks_pkce_redirect_and_code(
    env: OAuthEnv, change: dict[str, str], error: str
) -> None:
    browser = Browser(env)
    response = await browser.exchange(await browser.code(), **change)
    assert response.status_code == 400
    assert _error(response) == error
    assert env.sandbox.oauth.authorisations == {}


async def test_expired_code_is_refused(env: OAuthEnv) -> None:
    browser = Browser(env)
    code = await browser.code()
    env.clock.advance(601)
    response = await browser.exchange(code)
    assert _error(response) == "invalid_grant"


async def test_code_is_single_use_and_a_replay_revokes_what_it_issued(env: OAuthEnv) -> None:
    browser = Browser(env)
    code = await browser.code()
    first = (await browser.exchange(code)).json()
    assert await browser.api(first["access_token"]) == 200
    replay = await browser.exchange(code)
    assert replay.status_code == 400
    assert _error(replay) == "invalid_grant"
    assert await browser.api(first["access_token"]) == 401
    assert _error(await browser.refresh(first["refresh_token"])) == "invalid_grant"


@pytest.mark.parametrize("how", ["basic", "body"])
async def test_client_may_authenticate_with_basic_or_the_form_body(env: OAuthEnv, how: str) -> None:
    browser = Browser(env)
    code = await browser.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": browser.pkce.verifier.get_secret_value(),
    }
    if how == "basic":
        response = await browser.token(form)
    else:
        form["client_id"] = env.client.client_id
        form["client_secret"] = env.client.client_secret
        response = await browser.token(form, raw=True)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("basic", "extra", "status", "error"),
    [
        (("wrong-client", "x"), {}, 401, "invalid_client"),
        (None, {}, 401, "invalid_client"),
        ("secret", {}, 401, "invalid_client"),
        ("ok", {"client_secret": "again"}, 400, "invalid_request"),
    ],
)
async def test_token_endpoint_client_authentication_failures(
    env: OAuthEnv, basic: Any, extra: dict[str, str], status: int, error: str
) -> None:
    browser = Browser(env)
    code = await browser.code()
    if basic == "secret":
        basic = (env.client.client_id, "not-the-secret")
    elif basic == "ok":
        basic = (env.client.client_id, env.client.client_secret)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": browser.pkce.verifier.get_secret_value(),
        **extra,
    }
    response = await browser.token(form, basic=basic, raw=basic is None)
    assert response.status_code == status
    assert _error(response) == error
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_refresh_rotates_and_a_spent_refresh_token_revokes_the_family(
    env: OAuthEnv,
) -> None:
    browser = Browser(env)
    first = (await browser.exchange(await browser.code())).json()
    second_response = await browser.refresh(first["refresh_token"])
    assert second_response.status_code == 200
    second = second_response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # The old access token is thrown away at once; the new one works.
    assert await browser.api(first["access_token"]) == 401
    assert await browser.api(second["access_token"]) == 200

    replay = await browser.refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert _error(replay) == "invalid_grant"
    # Replay protection: the family is revoked, the newest tokens included.
    assert await browser.api(second["access_token"]) == 401
    assert _error(await browser.refresh(second["refresh_token"])) == "invalid_grant"
    (family,) = env.sandbox.oauth.authorisations.values()
    assert family.revoked == "a spent refresh token was used again"


async def test_refresh_error_code_is_configurable(make_oauth_env: Any) -> None:
    env = make_oauth_env(OAuthConfig(refresh_error="invalid_refresh_token"))
    browser = Browser(env)
    response = await browser.refresh("sbx-rt-never-issued")
    assert response.status_code == 400
    assert _error(response) == "invalid_refresh_token"


async def test_refresh_token_expires(make_oauth_env: Any) -> None:
    env = make_oauth_env(OAuthConfig(refresh_token_ttl=100))
    browser = Browser(env)
    first = (await browser.exchange(await browser.code())).json()
    env.clock.advance(100)
    assert _error(await browser.refresh(first["refresh_token"])) == "invalid_grant"


async def test_refresh_may_narrow_but_not_widen_the_scope(env: OAuthEnv) -> None:
    browser = Browser(env)
    first = (await browser.exchange(await browser.code())).json()
    narrowed = await browser.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "export-jobs:read",
        }
    )
    assert narrowed.json()["scope"] == "export-jobs:read"
    widened = await browser.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": narrowed.json()["refresh_token"],
            "scope": "export-jobs:read export-jobs:write",
        }
    )
    assert _error(widened) == "invalid_scope"


async def test_admin_endpoints_register_a_client_and_expire_tokens(env: OAuthEnv) -> None:
    async with httpx.AsyncClient(
        transport=env.sandbox.transport(), base_url=env.sandbox.base_url
    ) as http:
        created = await http.post(
            "/_sandbox/oauth/clients", json={"redirect_uris": ["https://partner.example/cb"]}
        )
        assert created.status_code == 201
        assert created.json()["clientId"] in env.sandbox.oauth.clients
        bad = await http.post("/_sandbox/oauth/clients", json={"redirect_uris": ["ftp://x"]})
        assert bad.status_code == 400
        browser = Browser(env)
        tokens = (await browser.exchange(await browser.code())).json()
        assert (await http.post("/_sandbox/oauth/expire")).json() == {"expired": 1}
    assert await browser.api(tokens["access_token"]) == 401


def test_every_sandbox_choice_is_documented() -> None:
    assert "dead refresh token" in SANDBOX_OAUTH_DEVIATIONS
    assert all(text.strip() for text in SANDBOX_OAUTH_DEVIATIONS.values())
