"""Attachment downloads: credentials stay home, size caps stop the transfer, redirects."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from pleo_export.pleo import errors
from pleo_export.pleo.client import (
    DOWNLOAD_ENDPOINT,
    AttachmentTooLarge,
    DownloadRefused,
    PleoClient,
    RedirectRefused,
)
from tests.client.helpers import BASE_URL, JOB_ID, VIRTUAL_TIME, job

pytestmark = pytest.mark.anyio
SIGNED = "https://files.example.net/receipts/r1.pdf?X-Amz-Signature=deadbeef"


async def test_download_from_the_api_host_carries_no_credentials(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=f"{BASE_URL}/files/r1.pdf", content=b"%PDF-1.7")
    async with make_client() as client:
        assert await client.download(f"{BASE_URL}/files/r1.pdf") == b"%PDF-1.7"
        with pytest.raises(DownloadRefused, match="not an absolute https URL"):
            await client.download("/files/r1.pdf")
    request = httpx_mock.get_request()
    assert request is not None
    assert "Authorization" not in request.headers


@pytest.mark.parametrize("url", [SIGNED, "https://pleo.test:8443/files/r1.pdf"])
async def test_no_credentials_to_another_origin(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient], url: str
) -> None:
    httpx_mock.add_response(url=url, content=b"%PDF-1.7")
    async with make_client() as client:
        assert await client.download(url) == b"%PDF-1.7"
    request = httpx_mock.get_request()
    assert request is not None
    assert "Authorization" not in request.headers
    assert client.stats.requests_by_endpoint == {DOWNLOAD_ENDPOINT: 1}


@VIRTUAL_TIME
async def test_foreign_downloads_do_not_spend_the_api_budget(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=f"{BASE_URL}/v3/export-jobs/{JOB_ID}", json={"data": job()})
    httpx_mock.add_response(url=SIGNED, content=b"x", is_reusable=True)
    async with make_client(requests_per_minute=1) as client:
        start = anyio.current_time()
        await client.get_job(JOB_ID)
        for _ in range(3):
            await client.download(SIGNED)
        assert anyio.current_time() == start


async def test_declared_size_over_the_cap_is_refused_before_reading(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=SIGNED, content=b"x" * 5000)
    async with make_client() as client:
        with pytest.raises(AttachmentTooLarge) as raised:
            await client.download(SIGNED, max_bytes=4096)
    assert raised.value.declared == 5000
    assert "deadbeef" not in str(raised.value), "pre-signed query strings stay out of errors"


async def test_streamed_body_stops_past_the_cap(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for n in range(100):
            sent.append(n)
            yield b"x" * 1000

    httpx_mock.add_callback(
        lambda request: httpx.Response(200, stream=IteratorStream(chunks())), url=SIGNED
    )
    async with make_client() as client:
        with pytest.raises(AttachmentTooLarge):
            await client.download(SIGNED, max_bytes=2500)
    assert len(sent) == 3


async def test_body_exactly_at_the_cap_is_fine(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_callback(
        lambda request: httpx.Response(200, stream=IteratorStream([b"ab", b"cd"])), url=SIGNED
    )
    async with make_client() as client:
        assert await client.download(SIGNED, max_bytes=4) == b"abcd"


async def test_download_is_retried_and_errors_are_typed(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=SIGNED, status_code=503)
    httpx_mock.add_exception(httpx.ReadError("reset"), url=SIGNED)
    httpx_mock.add_response(url=SIGNED, content=b"ok")
    httpx_mock.add_response(url=f"{BASE_URL}/files/gone.pdf", status_code=404, text="gone")
    async with make_client() as client:
        assert await client.download(SIGNED) == b"ok"
        with pytest.raises(errors.NotFound):
            await client.download(f"{BASE_URL}/files/gone.pdf")
    assert client.stats.retries == 2


async def test_uses_the_injected_transport(make_client: Callable[..., PleoClient]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"in-process")

    async with make_client(transport=httpx.MockTransport(handler)) as client:
        assert await client.download(SIGNED) == b"in-process"
    assert [str(r.url) for r in seen] == [SIGNED]
    assert "Authorization" not in seen[0].headers


async def test_redirect_to_another_host_is_refused(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-jobs/{JOB_ID}",
        status_code=302,
        headers={"Location": "https://evil.example.com/steal"},
    )
    async with make_client() as client:
        with pytest.raises(RedirectRefused):
            await client.get_job(JOB_ID)
    assert [r.url.host for r in httpx_mock.get_requests()] == ["pleo.test"]


async def test_same_host_redirect_is_followed_without_credentials(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=f"{BASE_URL}/files/r1.pdf", status_code=307, headers={"Location": "/files/r1-v2.pdf"}
    )
    httpx_mock.add_response(url=f"{BASE_URL}/files/r1-v2.pdf", content=b"v2")
    async with make_client() as client:
        assert await client.download(f"{BASE_URL}/files/r1.pdf") == b"v2"
    second = httpx_mock.get_requests()[1]
    assert "Authorization" not in second.headers


async def test_redirect_loop_is_a_pleo_error(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=f"{BASE_URL}/files/loop.pdf",
        status_code=302,
        headers={"Location": "/files/loop.pdf"},
        is_reusable=True,
    )
    async with make_client() as client:
        with pytest.raises(errors.PleoUnavailable) as raised:
            await client.download(f"{BASE_URL}/files/loop.pdf")
    assert isinstance(raised.value.__cause__, httpx.TooManyRedirects)
    assert client.stats.retries == 0
