"""Receipt downloads: a total deadline per download, and only URLs that are safe to fetch.

A receipt URL comes from an export item, so it is data, not configuration: it must not turn
into an authenticated request to the Pleo API (a relative path or a ``file:`` URL joined onto
the base URL) or a request into the local network, and a server trickling one byte a second
must not hold a download for longer than ``download_timeout``, whatever the per-read timeout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from pydantic import SecretStr

from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import DownloadRefused, DownloadTimedOut, PleoClient
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import DEMO_CHART, Sandbox
from pleo_export_sandbox.server import running_server

pytestmark = pytest.mark.anyio

BASE_URL = "https://pleo.test"
API_KEY = "pk_live_hostile-downloads-key"
TRICKLE_BYTES = 60
"""A trickling answer declares and sends at most this many bytes, one a second."""


def _client(transport: httpx.AsyncBaseTransport | None = None, **options: object) -> PleoClient:
    return PleoClient(
        BASE_URL,
        ApiKeyAuth(SecretStr(API_KEY)),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, jitter=False),
        transport=transport,
        **options,  # type: ignore[arg-type]
    )


async def _trickle(stream: SocketStream) -> None:
    """Answer one request with a body that arrives one byte a second (bounded)."""
    async with stream:
        request = b""
        with anyio.move_on_after(5):
            while b"\r\n\r\n" not in request:
                request += await stream.receive()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {TRICKLE_BYTES}\r\n\r\n".encode()
        try:
            await stream.send(head)
            for _ in range(TRICKLE_BYTES):
                await stream.send(b"x")
                await anyio.sleep(1)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the client gave up, as it should


@pytest.fixture
async def trickle_url() -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)  # noqa: S610 - not Django
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, _trickle)
        yield f"http://127.0.0.1:{port}/receipts/slow.pdf"
        tasks.cancel_scope.cancel()


async def test_a_trickling_download_stops_at_the_total_deadline(trickle_url: str) -> None:
    async with _client(timeout=3, download_timeout=4, download_hosts=["127.0.0.1"]) as client:
        started = time.monotonic()
        with pytest.raises(DownloadTimedOut, match="within 4 s"):
            await client.download(trickle_url)
        elapsed = time.monotonic() - started
    # Each byte arrives well within the 3 s read timeout; only the total deadline stops it.
    assert 3.5 < elapsed < 8, elapsed


def _recording() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"%PDF-1.7 or an API answer")

    return httpx.MockTransport(handler), seen


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/v3/export-jobs",
        "v3/export-jobs?company_id=x",
        "//evil.example.com/r.pdf",
        "ftp://files.example.net/r.pdf",
        "http://files.example.net/r.pdf",
        "https://127.0.0.1/r.pdf",
        "https://localhost:8443/r.pdf",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/r.pdf",
        "https://[::1]/r.pdf",
        "https://[fe80::1]/r.pdf",
        "https://sandbox.localhost/r.pdf",
        "https://" + "a" * 5000 + ".example.net:99999/r.pdf",
    ],
)
async def test_unsafe_receipt_urls_are_refused_without_a_request(url: str) -> None:
    transport, seen = _recording()
    async with _client(transport) as client:
        with pytest.raises(DownloadRefused) as refused:
            await client.download(url)
    assert seen == []
    assert len(str(refused.value)) < 400  # a hostile URL is quoted cut short


@pytest.mark.parametrize(
    "url",
    [
        "https://files.example.net/receipts/r1.pdf?X-Amz-Signature=deadbeef",
        f"{BASE_URL}/files/r1.pdf",
    ],
)
async def test_pleo_credentials_are_never_sent_with_a_receipt(url: str) -> None:
    transport, seen = _recording()
    async with _client(transport) as client:
        assert await client.download(url) == b"%PDF-1.7 or an API answer"
    assert [str(r.url) for r in seen] == [url]
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:8765/_sandbox/files/x"),
        (["127.0.0.1:8765"], "http://127.0.0.1:8765/_sandbox/files/x"),
        (["[::1]:8765"], "http://[::1]:8765/x"),
        (["files.internal"], "http://files.internal/x"),
    ],
)
async def test_plain_http_and_loopback_only_from_allowed_hosts(
    allowed: list[str], url: str
) -> None:
    transport, seen = _recording()
    async with _client(transport, download_hosts=allowed) as client:
        assert await client.download(url)
    async with _client(transport, download_hosts=["other.example"]) as client:
        with pytest.raises(DownloadRefused):
            await client.download(url)
    assert len(seen) == 1
    assert "Authorization" not in seen[0].headers


# --- through the real wiring: pleo-export run against a served sandbox ---------------------

SANDBOX_KEY = "pleo-api-key-receipts-0123456789abcdef"
SANDBOX_COMPANY = "7d2c4e1a-3f5b-4c8d-9e6f-1a2b3c4d5e6f"
HOSTILE_URLS = [
    "file:///etc/passwd",
    "/v3/export-jobs",
    "https://169.254.169.254/latest/meta-data/",
]


async def test_hostile_receipt_urls_fail_their_items_and_are_never_requested(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox()
    sandbox.add_company("Receipts Ltd", "GBP", company_id=SANDBOX_COMPANY, api_key=SANDBOX_KEY)
    job = sandbox.queue_export(SANDBOX_COMPANY, count=12, seed=31, unknown_account_rate=0.0)
    with_files = [
        item.accounting_entry_id
        for item in sandbox.job_items(job.id)
        if sandbox.store.entries[item.accounting_entry_id].get("files")
    ]
    assert len(with_files) > len(HOSTILE_URLS), "the seed must give enough receipts"
    hostile = dict(zip(with_files, HOSTILE_URLS, strict=False))
    for entry_id, url in hostile.items():
        for file in sandbox.store.entries[entry_id]["files"]:
            file["url"] = url
    ledger = BeancountConnector.scaffold(tmp_path, DEMO_CHART, "GBP")["ledger"]
    async with running_server(sandbox) as base_url:
        (tmp_path / "pleo-export.toml").write_text(
            f'[pleo]\nbase_url = "{base_url}"\ncompany_id = "{SANDBOX_COMPANY}"\n'
            '[state]\nurl = "sqlite:///state.db"\n'
            f'[connector]\nname = "beancount"\n[connector.settings]\nledger = "{ledger}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
        env["PLEO_EXPORT_PLEO__API_KEY"] = SANDBOX_KEY
        result = await anyio.run_process(
            [sys.executable, "-m", "pleo_export.cli", "run", "--json", "--quiet"],
            cwd=tmp_path,
            env=env,
            check=False,
        )
    assert result.returncode == 1, result.stderr.decode()[-3000:]
    statuses = {item.accounting_entry_id: item for item in sandbox.job_items(job.id)}
    for entry_id in hostile:
        item = statuses[entry_id]
        assert item.status == "failed", item
        assert item.failure_reason_type == "receipt_download_failure", item
        assert "was not downloaded" in (item.failure_reason or "")
    others = [i for e, i in statuses.items() if e not in hostile]
    assert others and all(i.status == "successful" for i in others)
    # None of them reached the network: no request for /etc/passwd, no bare list-jobs call
    # (the engine's own carries company_id and statuses), nothing to the metadata address.
    assert not [r for r in sandbox.requests if r.path == "/etc/passwd"]
    assert not [r for r in sandbox.requests if r.path == "/v3/export-jobs" and not r.query]
    assert SANDBOX_KEY not in result.stdout.decode() + result.stderr.decode()
