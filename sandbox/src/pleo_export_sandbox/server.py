"""Run the sandbox over real HTTP with uvicorn, on the loopback interface by default.

:func:`serve` blocks (for ``pleo-export sandbox serve``); :func:`running_server` is an async
context manager for tests that want a real socket between client and sandbox. Companies,
exports and faults can then be set up through the admin endpoints under ``/_sandbox/``
(unauthenticated: bind to loopback only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pleo_export.httpserver import running_app, uvicorn_config
from pleo_export_sandbox.app import Sandbox


def serve(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8765, log_level: str = "info"
) -> None:
    """Serve ``sandbox`` until interrupted (Ctrl-C)."""
    import uvicorn

    sandbox.base_url = f"http://{host}:{port}"
    config = uvicorn_config(sandbox.app, host, port, log_level)
    uvicorn.Server(config).run()


@asynccontextmanager
async def running_server(
    sandbox: Sandbox, port: int = 0, *, host: str = "127.0.0.1", log_level: str = "warning"
) -> AsyncIterator[str]:
    """Serve ``sandbox`` on ``host`` while the block runs; yields the base URL.

    ``port=0`` picks a free port. uvicorn runs on asyncio, so this needs the asyncio backend.
    """
    previous_url = sandbox.base_url
    try:
        async with running_app(sandbox.app, port, host=host, log_level=log_level) as url:
            sandbox.base_url = url
            yield url
    finally:
        sandbox.base_url = previous_url
