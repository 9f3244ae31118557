"""The loopback HTTP server (``pleo_export.httpserver.running_app``) stopped by cancellation.

``run --watch`` and ``serve`` stop their webhook receiver by cancelling it, and tests run the
watch loop in process. uvicorn's serve task is then cancelled before its shutdown, which would
have taken the listening socket out of the event loop; a socket closed while the loop still
watched it left a stale selector entry, and the next socket that got the same descriptor failed
to connect with ENOENT (seen as "cannot connect to Tryton" right after a watch stopped).
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from pleo_export.httpserver import running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn runs on asyncio


async def _hello(scope, receive, send):  # type: ignore[no-untyped-def]
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_sockets_opened_after_a_cancelled_server_connect() -> None:
    with anyio.CancelScope() as outside:
        async with running_app(_hello) as first:
            async with httpx.AsyncClient() as client:
                assert (await client.get(first)).text == "hello"
            outside.cancel()
            await anyio.sleep(1)  # cancelled here, as the watch loop is

    # The descriptors the cancelled server held are handed out again; each new connection, and
    # a new server on the same loop, must work.
    async with running_app(_hello) as second:
        for _ in range(5):
            async with httpx.AsyncClient() as client:
                assert (await client.get(second)).text == "hello"
