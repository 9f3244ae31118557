"""``/metrics``, ``/healthz`` and ``/readyz``: a small ASGI app, served with uvicorn in the
service's own event loop while the service runs."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pleo_export import ServiceView

log = logging.getLogger("pleo_export.plugins.metrics")

MIN_READY_MAX_AGE = 60.0
"""``/readyz``'s default allowance is three poll intervals, and never less than this."""


class CannotServeMetrics(OSError):
    """``plugins.metrics.listen`` cannot be bound; the message names the setting."""


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6); a ``ValueError`` names the setting."""
    problem = (
        f"plugins.metrics.listen {value[:80]!r} must be host:port with a port from 0 to 65535 "
        "(0: any free port), e.g. 127.0.0.1:9464 or [::1]:9464"
    )
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise ValueError(problem)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(problem) from None
    elif ":" in host or not all(c.isalnum() or c in ".-_" for c in host):
        raise ValueError(problem)
    if int(port) > 65535:
        raise ValueError(problem)
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (of ``listen``) is reachable from this machine only: ``localhost`` or a
    loopback address. Any other name or address may be reachable from other hosts."""
    if host.lower() in {"localhost", "localhost.", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, url: str) -> bool:
    """Log ``metrics.exposed`` (a warning) when the endpoints listen beyond loopback; return
    whether they do."""
    if is_loopback(host):
        return False
    log.warning(
        "metrics endpoints at %s have no authentication and may be reachable from other "
        "hosts: allow only your Prometheus (firewall, network policy or an authenticating "
        "reverse proxy), see docs/metrics.md 'Protecting the endpoints'",
        url,
        extra={"event": "metrics.exposed", "url": url},
    )
    return True


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str


class Readiness:
    """Whether the service is doing its job: its last round reached Pleo, and a round
    succeeded recently or one is running now."""

    def __init__(self, service: ServiceView, max_age: float | None = None) -> None:
        self.service = service
        self.max_age = (
            max_age if max_age is not None else max(MIN_READY_MAX_AGE, 3 * service.poll_interval)
        )

    def check(self, now: datetime | None = None) -> Verdict:
        now = now or datetime.now(UTC)
        service = self.service
        last = service.last_round
        success = service.last_success
        if last is not None and not last.succeeded:
            return Verdict(
                False,
                f"the last round could not reach Pleo (at {last.finished_at.isoformat()}): "
                f"{last.error}",
            )
        running = service.round_started_at
        if success is None:
            if running is not None:
                return Verdict(False, f"starting: the first round runs since {running.isoformat()}")
            return Verdict(False, "starting: no round has finished yet")
        if running is not None:
            return Verdict(True, f"a round runs since {running.isoformat()}")
        age = (now - success.finished_at).total_seconds()
        if age > self.max_age:
            return Verdict(
                False,
                f"no round has succeeded for {age:.0f} s (allowed: {self.max_age:.0f} s); the "
                "watch loop may be stuck",
            )
        return Verdict(True, f"the last round succeeded {age:.0f} s ago")


def endpoints_app(registry: CollectorRegistry, readiness: Readiness) -> Starlette:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_request: Request) -> Response:
        # The process answers: its event loop runs. Whether it gets work done is /readyz.
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        verdict = readiness.check()
        return JSONResponse(
            {"ready": verdict.ready, "reason": verdict.reason},
            status_code=200 if verdict.ready else 503,
        )

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


@asynccontextmanager
async def serving(app: Starlette, listen: str) -> AsyncIterator[str]:
    """Serve ``app`` on ``listen`` while the block runs; yield ``http://host:port``.

    Raises:
        CannotServeMetrics: the address cannot be bound (in use, no permission, unknown host).
    """
    import uvicorn

    asyncio.get_running_loop()  # uvicorn runs on asyncio only
    host, port = parse_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host, port))
        except (OSError, OverflowError, UnicodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise CannotServeMetrics(
                f"plugins.metrics.listen {listen!r}: cannot listen on {host}:{port}: {reason}; "
                "pick a free port (or 0 for any) on an address of this machine"
            ) from None
        bound = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            host=host,
            port=bound,
            lifespan="off",
            interface="asgi3",
            log_level="warning",
            access_log=False,
            server_header=False,
        )
        server = uvicorn.Server(config)
        url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(server.serve, [sock])
                with anyio.fail_after(10):
                    while not server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
                        await anyio.sleep(0.01)
                log.info(
                    "serving metrics",
                    extra={"event": "metrics.listening", "url": f"{url}/metrics"},
                )
                warn_if_exposed(host, url)
                try:
                    yield url
                finally:
                    server.should_exit = True
        except BaseExceptionGroup as group:
            # The task group wraps what the service raised; hand back the error itself.
            if len(group.exceptions) == 1 and not isinstance(
                group.exceptions[0], BaseExceptionGroup
            ):
                raise group.exceptions[0] from group.exceptions[0].__cause__
            raise
    finally:
        # Cancelled from outside, uvicorn never reaches its shutdown: take the socket out of
        # the event loop before closing it, or the next socket given its descriptor fails to
        # connect (a stale epoll entry).
        if sock.fileno() != -1:
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
