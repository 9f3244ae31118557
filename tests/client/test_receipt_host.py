"""Receipts live on a host of their own (Pleo's file storage), outside the API's budget.

Against a real sandbox, in process and over loopback HTTP: the file URLs it hands out point
at its files host, their downloads take no slot of the request budget, and at most
``download_concurrency`` of them run at once.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from pydantic import SecretStr

from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.transport import DOWNLOAD_ENDPOINT
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server

pytestmark = pytest.mark.anyio

TIGHT_BUDGET = 3
"""Requests per minute: a download that took a slot would make the next ones wait a minute."""


def _sandbox(**config: object) -> tuple[Sandbox, str, str]:
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0, **config))  # type: ignore[arg-type]
    company = sandbox.add_company("Receipts Ltd")
    job = sandbox.queue_export(company.id, count=40, seed=13)
    return sandbox, company.api_key, job.id


async def _receipt_urls(client: PleoClient, job_id: str) -> list[str]:
    return [
        file["url"]
        for page in [p async for p in client.iter_export_items(job_id)]
        for item in page
        for file in item.get("files") or []
    ]


async def _download_all(client: PleoClient, urls: list[str]) -> list[bytes]:
    bodies: dict[int, bytes] = {}

    async def one(index: int, url: str) -> None:
        bodies[index] = await client.download(url)

    with anyio.fail_after(20):  # a download held by the one-minute budget would end here
        async with anyio.create_task_group() as tasks:
            for index, url in enumerate(urls):
                tasks.start_soon(one, index, url)
    return [bodies[i] for i in range(len(urls))]


def _api_calls(sandbox: Sandbox) -> int:
    return sum(1 for record in sandbox.requests if record.path.startswith("/v3/"))


async def test_in_process_receipts_come_from_the_files_host_outside_the_budget() -> None:
    sandbox, key, job_id = _sandbox()
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(key)),
        transport=sandbox.transport(),
        requests_per_minute=TIGHT_BUDGET,
    )
    async with client:
        urls = await _receipt_urls(client, job_id)
        assert len(urls) > TIGHT_BUDGET * 2, "the seed must give enough receipts"
        assert all(url.startswith("https://files.sandbox.invalid/_sandbox/files/") for url in urls)
        bodies = await _download_all(client, urls)
    assert all(bodies)
    assert client.budget.granted == _api_calls(sandbox) == 1
    assert client.stats.budget_wait_seconds < 1  # no wait for a slot of the minute
    assert client.stats.requests_by_endpoint[DOWNLOAD_ENDPOINT] == len(urls)
    downloads = [r for r in sandbox.requests if r.path.startswith("/_sandbox/files/")]
    assert len(downloads) == len(urls)
    assert all(r.status == 200 and r.credential_id is None for r in downloads)


async def test_receipts_on_the_api_origin_do_count_against_the_budget() -> None:
    sandbox, key, job_id = _sandbox(files_base_url="http://sandbox.localhost")
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(key)),
        transport=sandbox.transport(),
        requests_per_minute=1000,
    )
    async with client:
        urls = await _receipt_urls(client, job_id)
        assert urls and all(url.startswith(f"{sandbox.base_url}/_sandbox/files/") for url in urls)
        await _download_all(client, urls)
    assert client.budget.granted == _api_calls(sandbox) + len(urls)


class _InFlight(httpx.AsyncBaseTransport):
    """Counts the requests to the files host that are in flight at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        files = request.url.host == "files.sandbox.invalid"
        self.now += files
        self.most = max(self.most, self.now)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= files


async def test_downloads_in_flight_are_capped_by_download_concurrency() -> None:
    sandbox, key, job_id = _sandbox(file_latency=0.05)
    counting = _InFlight(sandbox.transport())
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(key)),
        transport=counting,
        download_concurrency=3,
    )
    async with client:
        urls = await _receipt_urls(client, job_id)
        await _download_all(client, urls)
    assert len(urls) > 3
    assert counting.most == 3


async def test_download_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="download_concurrency"):
        PleoClient("https://external.pleo.io", ApiKeyAuth(SecretStr("k")), download_concurrency=0)


async def test_served_sandbox_hands_out_receipts_on_its_files_listener() -> None:
    sandbox, key, job_id = _sandbox()
    async with running_server(sandbox, files_port=0) as base_url:
        files_url = sandbox.files_base_url
        assert files_url.startswith("http://127.0.0.1:") and files_url != base_url
        files_host = files_url.removeprefix("http://")
        client = PleoClient(
            base_url,
            ApiKeyAuth(SecretStr(key)),
            requests_per_minute=TIGHT_BUDGET,
            download_hosts=[files_host],
        )
        async with client:
            urls = await _receipt_urls(client, job_id)
            assert urls and all(url.startswith(f"{files_url}/_sandbox/files/") for url in urls)
            bodies = await _download_all(client, urls)
    assert all(bodies)
    assert client.budget.granted == _api_calls(sandbox) == 1
    assert sandbox.files_base_url == "https://files.sandbox.invalid"  # restored
