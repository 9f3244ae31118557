"""Serve an ASGI app with uvicorn inside the caller's task group (asyncio only).

Used by the sandbox (``pleo-export sandbox serve`` and tests) and by the webhook receiver of
``run --watch``. uvicorn is an optional dependency (extras ``sandbox`` and ``webhooks``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from pleo_export.outage import sole_error

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
    b"Retry-After: 5\r\n\r\n"
)


class CannotListen(OSError):
    """The listening socket could not be bound (address in use, no permission, bad host)."""


@dataclass(frozen=True)
class ServerLimits:
    """Limits for a server that strangers can reach (the webhook receiver).

    Every connection serves one request and is closed (``Connection: close``). A connection
    whose request (headers and body) has not arrived within ``read_timeout`` seconds of
    connecting is closed; connections beyond ``max_connections`` are answered 503 and closed
    at once, so slow or idle clients cannot exhaust the process's file descriptors. Request
    headers larger than ``max_header_bytes`` are refused by the HTTP parser (400).
    ``on_refused(kind, client)`` is told of every connection closed for a limit (``kind`` is
    ``"connection_limit"`` or ``"read_timeout"``).
    """

    max_connections: int = 64
    read_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    on_refused: Callable[[str, str], None] | None = None


def _guarded_protocol(limits: ServerLimits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a per-connection deadline and a connection cap."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    def refused(kind: str, client: Any) -> None:
        if limits.on_refused is not None:
            where = f"{client[0]}:{client[1]}" if isinstance(client, tuple) else "unknown"
            limits.on_refused(kind, where)

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.write(_BUSY)
                transport.close()
                refused("connection_limit", self.client)
                return
            self._deadline = self.loop.call_later(limits.read_timeout, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and self.cycle.response_started:
                return  # answered: the connection closes when the answer is written
            refused("read_timeout", self.client)
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return GuardedH11Protocol


def uvicorn_config(
    app: Any, host: str, port: int, log_level: str, limits: ServerLimits | None = None
) -> Any:
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "serving over HTTP needs uvicorn: pip install 'pleo-export[webhooks]' "
            "(or 'pleo-export[sandbox]')"
        ) from error
    guarded: dict[str, Any] = {}
    if limits is not None:
        guarded = {
            "http": _guarded_protocol(limits),
            "h11_max_incomplete_event_size": limits.max_header_bytes,
            "headers": [("connection", "close")],
            "server_header": False,
            "timeout_keep_alive": 1,
        }
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        interface="asgi3",
        log_level=log_level,
        access_log=False,
        **guarded,
    )


@asynccontextmanager
async def running_app(
    app: Any,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    limits: ServerLimits | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` while the block runs; yields ``http://host:port``.

    ``port=0`` picks a free port. ``limits`` guards a server that strangers can reach.

    Raises:
        CannotListen: ``host:port`` cannot be bound (the message names the address).
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
        try:
            sock.bind((host, port))
        except (OSError, OverflowError, UnicodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
        bound_port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(app, host, bound_port, log_level, limits))
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(server.serve, [sock])
                with anyio.fail_after(10):
                    while not server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
                        await anyio.sleep(0.01)
                try:
                    yield f"http://{host}:{bound_port}"
                finally:
                    server.should_exit = True
        except BaseExceptionGroup as group:
            # The task group wraps what the caller's block raised; hand back the error itself
            # (a Pleo outage, a configuration error) rather than an ExceptionGroup.
            sole = sole_error(group)
            if sole is group:
                raise
            raise sole from sole.__cause__
    finally:
        # Cancelled from outside (the watch stopping), uvicorn's serve task never reaches its
        # shutdown, which would have taken the listening socket out of the event loop. Closing
        # a socket the loop still watches leaves a stale selector entry, and the next socket
        # that gets the same descriptor fails to connect (ENOENT from epoll).
        if sock.fileno() != -1:
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
