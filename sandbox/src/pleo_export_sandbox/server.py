"""Run the sandbox over real HTTP with uvicorn, on the loopback interface by default.

:func:`serve` blocks (for ``pleo-export sandbox serve``); :func:`running_server` is an async
context manager for tests that want a real socket between client and sandbox. Companies,
exports and faults can then be set up through the admin endpoints under ``/_sandbox/``
(unauthenticated: bind to loopback only).

Receipt files can be served on a listener of their own (``files_port``), as Pleo serves
receipts from storage apart from its API: a client then counts only the API's requests
against its budget. A client must allow that plain-``http`` loopback address for downloads
(``pleo.receipt_hosts``).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from pleo_export.httpserver import CannotListen, running_app, uvicorn_config
from pleo_export_sandbox.app import Sandbox


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError, UnicodeError) as error:
        sock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def _url(host: str, sock: socket.socket) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def serve(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 8765,
    log_level: str = "info",
    *,
    files_port: int | None = None,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve ``sandbox`` until interrupted (Ctrl-C).

    ``files_port`` serves the receipt files on a second listener (``0``: any free port), and
    the sandbox hands out file URLs on it; ``None`` serves them from the API's own address.
    ``on_ready(api_url, files_url)`` is called once both are bound, before serving.

    Raises:
        CannotListen: an address cannot be bound (the message names it).
    """
    import uvicorn

    sockets = [_bind(host, port)]
    try:
        if files_port is not None:
            sockets.append(_bind(host, files_port))
        sandbox.base_url = _url(host, sockets[0])
        sandbox.files_base_url = _url(host, sockets[-1])
        if on_ready is not None:
            on_ready(sandbox.base_url, sandbox.files_base_url)
        bound = sockets[0].getsockname()[1]
        uvicorn.Server(uvicorn_config(sandbox.app, host, bound, log_level)).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


@asynccontextmanager
async def running_server(
    sandbox: Sandbox,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    files_port: int | None = None,
) -> AsyncIterator[str]:
    """Serve ``sandbox`` on ``host`` while the block runs; yields the API's base URL.

    ``port=0`` picks a free port. ``files_port`` serves the receipt files on a second
    listener (``0``: a free port; ``sandbox.files_base_url`` then names it); ``None`` keeps
    them on the API's address, where a client's budget counts them. uvicorn runs on asyncio,
    so this needs the asyncio backend.
    """
    previous = sandbox.base_url, sandbox.files_base_url
    try:
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(
                running_app(sandbox.app, port, host=host, log_level=log_level)
            )
            files_url = url
            if files_port is not None:
                files_url = await stack.enter_async_context(
                    running_app(sandbox.app, files_port, host=host, log_level=log_level)
                )
            sandbox.base_url, sandbox.files_base_url = url, files_url
            yield url
    finally:
        sandbox.base_url, sandbox.files_base_url = previous
