"""Serve an ASGI app with uvicorn inside the caller's task group (asyncio only).

Used by the sandbox (``pleo-export sandbox serve`` and tests) and by the webhook receiver of
``run --watch``. uvicorn is an optional dependency (extras ``sandbox`` and ``webhooks``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio


def uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "serving over HTTP needs uvicorn: pip install 'pleo-export[webhooks]' "
            "(or 'pleo-export[sandbox]')"
        ) from error
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        interface="asgi3",
        log_level=log_level,
        access_log=False,
    )


@asynccontextmanager
async def running_app(
    app: Any, port: int = 0, *, host: str = "127.0.0.1", log_level: str = "warning"
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` while the block runs; yields ``http://host:port``.

    ``port=0`` picks a free port.
    """
    import uvicorn

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "serving over HTTP needs the asyncio backend (uvicorn runs on asyncio)"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(app, host, bound_port, log_level))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
                    await anyio.sleep(0.01)
            try:
                yield f"http://{host}:{bound_port}"
            finally:
                server.should_exit = True
    finally:
        sock.close()
