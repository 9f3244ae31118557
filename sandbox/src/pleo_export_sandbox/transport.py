"""An httpx transport that serves the sandbox's ASGI app in process.

Unlike ``httpx.ASGITransport`` it emulates the network failures the sandbox injects: a
connection dropped before the request was applied raises :class:`httpx.RemoteProtocolError`,
one dropped after raises :class:`httpx.ReadError`. It also honours the request's read timeout
(``httpx.ReadTimeout``), so a ``slow`` fault behaves as it would over a real socket. It works
on asyncio and trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from starlette.types import ASGIApp, Message, Scope

from pleo_export_sandbox.faults import DROP_HEADER


class SandboxTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            with anyio.fail_after(timeout):
                status, headers, content = await self._call(request, body)
        except TimeoutError:
            raise httpx.ReadTimeout("sandbox did not answer in time", request=request) from None
        drop = dict(headers).get(DROP_HEADER.encode())
        if drop == b"before":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if drop is not None:
            raise httpx.ReadError("Connection reset while reading the response.", request=request)
        return httpx.Response(
            status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            content=content,
            request=request,
        )

    async def _call(
        self, request: httpx.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
            "extensions": {},
        }
        return await call_buffered(self.app, scope, body)


async def call_buffered(
    app: ASGIApp, scope: Scope, body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run ``app`` on a request whose body is ``body`` and buffer its response.

    After the response ends the app sees ``http.disconnect``, as it would from a server.
    """
    request_sent = False
    response_done = anyio.Event()
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await response_done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                response_done.set()

    await app(scope, receive, send)
    response_done.set()
    return status, headers, b"".join(chunks)
