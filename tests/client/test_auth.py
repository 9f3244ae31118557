"""Credentials: header formats, the bearer refresh seam, and secrets kept out of sight."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from pleo_export.pleo.auth import ApiKeyAuth, BearerTokenAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.errors import AuthenticationFailed, NotFound
from tests.client.helpers import API_KEY, BASE_URL, JOB_ID, job

JOB_URL = f"{BASE_URL}/v3/export-jobs/{JOB_ID}"
pytestmark = pytest.mark.anyio


def _token_provider(*tokens: str) -> tuple[Callable[[], Awaitable[SecretStr]], list[str]]:
    """An async provider handing out ``tokens`` in order, and the list of tokens handed out."""
    handed_out: list[str] = []
    remaining = list(tokens)

    async def provide() -> SecretStr:
        handed_out.append(remaining.pop(0))
        return SecretStr(handed_out[-1])

    return provide, handed_out


async def test_api_key_is_sent_as_basic_auth_with_empty_password(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=JOB_URL, json={"data": job()})
    async with make_client() as client:
        await client.get_job(JOB_ID)

    request = httpx_mock.get_request()
    assert request is not None
    expected = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


async def test_default_headers(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=JOB_URL, json={"data": job()})
    async with make_client() as client:
        await client.get_job(JOB_ID)

    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("pleo-export/")


def test_empty_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ApiKeyAuth(SecretStr(""))
    with pytest.raises(ValueError, match="token"):
        BearerTokenAuth()


async def test_bearer_token_header(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=JOB_URL, json={"data": job()})
    async with make_client(auth=BearerTokenAuth(SecretStr("tok-abc"))) as client:
        await client.get_job(JOB_ID)

    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Authorization"] == "Bearer tok-abc"


async def test_static_bearer_token_does_not_retry_a_401(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=JOB_URL, status_code=401, json={"type": "UNAUTHORIZED"})
    async with make_client(auth=BearerTokenAuth(SecretStr("tok-abc"))) as client:
        with pytest.raises(AuthenticationFailed):
            await client.get_job(JOB_ID)
    assert len(httpx_mock.get_requests()) == 1


async def test_token_provider_is_asked_lazily_and_once(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    provider, handed_out = _token_provider("tok-1", "tok-2")
    httpx_mock.add_response(url=JOB_URL, json={"data": job()}, is_reusable=True)
    auth = BearerTokenAuth(token_provider=provider)
    async with make_client(auth=auth) as client:
        assert handed_out == []
        await client.get_job(JOB_ID)
        await client.get_job(JOB_ID)

    assert handed_out == ["tok-1"]
    assert [r.headers["Authorization"] for r in httpx_mock.get_requests()] == ["Bearer tok-1"] * 2


async def test_token_provider_refreshes_once_on_401(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    provider, handed_out = _token_provider("stale", "fresh")
    sent: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        # Record at send time: the auth flow re-sends the same request object.
        sent.append(request.headers["Authorization"])
        if len(sent) == 1:
            return httpx.Response(401, json={"type": "UNAUTHORIZED"})
        return httpx.Response(200, json={"data": job()})

    httpx_mock.add_callback(respond, url=JOB_URL, is_reusable=True)
    auth = BearerTokenAuth(token_provider=provider)
    async with make_client(auth=auth) as client:
        result = await client.get_job(JOB_ID)

    assert result.id == JOB_ID
    assert handed_out == ["stale", "fresh"]
    assert sent == ["Bearer stale", "Bearer fresh"]
    assert client.stats.responses_by_status == {401: 1, 200: 1}


async def test_token_provider_second_401_is_an_error_without_another_refresh(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    provider, handed_out = _token_provider("stale", "fresh", "unused")
    httpx_mock.add_response(
        url=JOB_URL, status_code=401, json={"type": "UNAUTHORIZED"}, is_reusable=True
    )
    auth = BearerTokenAuth(token_provider=provider)
    async with make_client(auth=auth) as client:
        with pytest.raises(AuthenticationFailed) as raised:
            await client.get_job(JOB_ID)

    assert raised.value.status_code == 401
    assert handed_out == ["stale", "fresh"]
    assert len(httpx_mock.get_requests()) == 2


async def test_concurrent_401s_share_one_refresh(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    provider, handed_out = _token_provider("stale", "fresh", "unused")

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer fresh":
            return httpx.Response(200, json={"data": job()})
        return httpx.Response(401, json={"type": "UNAUTHORIZED"})

    httpx_mock.add_callback(respond, url=JOB_URL, is_reusable=True)
    auth = BearerTokenAuth(token_provider=provider)
    async with make_client(auth=auth) as client, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(client.get_job, JOB_ID)

    assert handed_out == ["stale", "fresh"]


def test_secrets_are_absent_from_repr_and_str(make_client: Callable[..., PleoClient]) -> None:
    key_auth = ApiKeyAuth(SecretStr(API_KEY))
    bearer = BearerTokenAuth(SecretStr("tok-secret-xyz"))
    client = make_client(auth=key_auth)
    for text in (repr(key_auth), str(key_auth), repr(client), str(client)):
        assert API_KEY not in text
        assert "ApiKeyAuth" in text
    for text in (repr(bearer), str(bearer)):
        assert "tok-secret-xyz" not in text
        assert "BearerTokenAuth" in text


async def test_secrets_and_headers_are_absent_from_logs(
    httpx_mock: HTTPXMock,
    make_client: Callable[..., PleoClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(url=JOB_URL, status_code=503, text="busy")
    httpx_mock.add_response(url=JOB_URL, json={"data": job()})
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-jobs/missing",
        status_code=404,
        json={"type": "EXPORT_NOT_FOUND", "message": "not found"},
    )
    async with make_client() as client:
        await client.get_job(JOB_ID)
        with pytest.raises(NotFound):
            await client.get_job("missing")

    ours = [r for r in caplog.records if r.name.startswith("pleo_export")]
    assert {getattr(r, "event", None) for r in ours} == {"pleo.request", "pleo.retry"}
    encoded = base64.b64encode(f"{API_KEY}:".encode()).decode()
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(map(str, vars(record).values()))
        assert API_KEY not in text
        assert encoded not in text
        assert "authorization" not in text.lower()
