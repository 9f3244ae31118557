"""Client statistics."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_httpx import HTTPXMock

from pleo_export.pleo.client import DOWNLOAD_ENDPOINT, PleoClient
from pleo_export.pleo.models import ExportJobStatus
from tests.client.helpers import BASE_URL, job, page

pytestmark = pytest.mark.anyio


async def test_requests_are_counted_per_endpoint_template(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=f"{BASE_URL}/v3/export-jobs/a", status_code=503)
    httpx_mock.add_response(url=f"{BASE_URL}/v3/export-jobs/a", json={"data": job("a")})
    httpx_mock.add_response(url=f"{BASE_URL}/v3/export-jobs/b", status_code=429)
    httpx_mock.add_response(url=f"{BASE_URL}/v3/export-jobs/b", json={"data": job("b")})
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-jobs?statuses=pending&limit=1000",
        json=page([job("a")], end_cursor="NEXT", has_next=True),
    )
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-jobs?statuses=pending&limit=1000&after=NEXT",
        json=page([job("b")]),
    )
    httpx_mock.add_response(url="https://files.example.net/r.pdf", content=b"x")
    async with make_client() as client:
        await client.get_job("a")
        await client.get_job("b")
        await client.list_jobs(None, [ExportJobStatus.PENDING])
        await client.download("https://files.example.net/r.pdf")

    stats = client.stats
    assert stats.requests == 7
    assert stats.requests_by_endpoint == {
        "GET /v3/export-jobs/{jobId}": 4,
        "GET /v3/export-jobs": 2,
        DOWNLOAD_ENDPOINT: 1,
    }
    assert stats.responses_by_status == {200: 5, 503: 1, 429: 1}
    assert stats.retries == 2
    assert stats.rate_limited == 1
    assert stats.retry_wait_seconds > 0
