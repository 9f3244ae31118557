"""Run the sandbox over real HTTP with uvicorn, on the loopback interface by default.

:func:`serve` blocks (for ``pleo-export sandbox serve``); :func:`running_server` is an async
context manager for tests that want a real socket between client and sandbox. Companies,
exports and faults can then be set up through the admin endpoints under ``/_sandbox/``
(unauthenticated: bind to loopback only).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import sniffio

from pleo_export.sandbox.app import Sandbox


def _uvicorn_config(sandbox: Sandbox, host: str, port: int, log_level: str) -> object:
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "serving the sandbox over HTTP needs uvicorn: pip install 'pleo-export[sandbox]'"
        ) from error
    return uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        lifespan="off",
        interface="asgi3",
        log_level=log_level,
        access_log=False,
    )


def serve(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8765, log_level: str = "info"
) -> None:
    """Serve ``sandbox`` until interrupted (Ctrl-C)."""
    import uvicorn

    sandbox.base_url = f"http://{host}:{port}"
    config = _uvicorn_config(sandbox, host, port, log_level)
    uvicorn.Server(config).run()  # type: ignore[arg-type]


@asynccontextmanager
async def running_server(
    sandbox: Sandbox, port: int = 0, *, host: str = "127.0.0.1", log_level: str = "warning"
) -> AsyncIterator[str]:
    """Serve ``sandbox`` on ``host`` while the block runs; yields the base URL.

    ``port=0`` picks a free port. uvicorn runs on asyncio, so this needs the asyncio backend.
    """
    import uvicorn

    if sniffio.current_async_library() != "asyncio":
        raise RuntimeError("running_server needs the asyncio backend (uvicorn runs on asyncio)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(sandbox, host, bound_port, log_level))  # type: ignore[arg-type]
    previous_url = sandbox.base_url
    sandbox.base_url = f"http://{host}:{bound_port}"
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
                    await anyio.sleep(0.01)
            try:
                yield sandbox.base_url
            finally:
                server.should_exit = True
    finally:
        sandbox.base_url = previous_url
        sock.close()
