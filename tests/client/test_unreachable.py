"""An unreachable Pleo, on real loopback sockets: the error says what happened on the wire,
and every retry is shown while the client waits."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest

from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.errors import PleoUnavailable
from pleo_export.pleo.ratelimit import RequestBudget, RetryPolicy

pytestmark = pytest.mark.anyio

QUICK = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, jitter=False)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_a_closed_port_is_connection_refused_with_every_retry_shown(
    make_client: Callable[..., PleoClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pleo_export")
    async with make_client(base_url=f"http://127.0.0.1:{closed_port()}", retry=QUICK) as client:
        with pytest.raises(PleoUnavailable) as caught:
            await client.get_job("job-1")
    assert "failed after 3 attempt(s): connection refused (ConnectError)" in str(caught.value)
    retries = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "pleo.retry"]
    assert len(retries) == 2, retries
    assert "connection refused; attempt 1 of 3 failed, retrying in" in retries[0]
    assert "attempt 2 of 3" in retries[1]


async def test_a_server_that_never_answers_is_timed_out(
    make_client: Callable[..., PleoClient], silent_server: int
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{silent_server}", retry=QUICK, timeout=0.3)
    async with client:
        with pytest.raises(PleoUnavailable) as caught:
            await client.get_job("job-1")
    assert "timed out waiting for the answer (ReadTimeout)" in str(caught.value)


async def test_a_wait_for_the_request_budget_is_announced() -> None:
    budget = RequestBudget(requests_per_minute=1, window_seconds=1.2)
    waits: list[tuple[float, str]] = []
    budget.on_wait = lambda seconds, why: waits.append((seconds, why))
    await budget.acquire()
    await budget.acquire()  # the window's one request is used: this one waits
    [(seconds, why)] = waits
    assert why == "budget" and 1.0 <= seconds <= 1.2


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_the_progress_display_says_why_the_run_waits(
    capsys: pytest.CaptureFixture[str], anyio_backend: str
) -> None:
    from pleo_export.cli import TerminalProgress

    TerminalProgress().waiting(42.4, "budget")
    TerminalProgress().waiting(5, "retry-after")
    TerminalProgress(enabled=False).waiting(7, "budget")
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "  waiting 42 s: the request budget (pleo.requests_per_minute) is used up for this minute",
        "  waiting 5 s: Pleo asked to slow down (Retry-After)",
    ]
