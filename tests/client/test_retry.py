"""Retries: what is retried, how long the client waits, and what it raises in the end.

Waiting tests run in virtual time (trio MockClock), so waits are exact and instant.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import httpx
import pytest
from pytest_httpx import HTTPXMock

from pleo_export.pleo import errors
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportJobEventType
from pleo_export.pleo.ratelimit import RetryPolicy
from tests.client.helpers import BASE_URL, JOB_ID, VIRTUAL_TIME, job

pytestmark = pytest.mark.anyio
JOB_URL = f"{BASE_URL}/v3/export-jobs/{JOB_ID}"


def _recording(
    responses: list[httpx.Response], times: list[float]
) -> Callable[[httpx.Request], httpx.Response]:
    """A callback answering ``responses`` in order and recording when each request arrived."""

    def respond(request: httpx.Request) -> httpx.Response:
        times.append(anyio.current_time())
        return responses[len(times) - 1]

    return respond


def _ok() -> httpx.Response:
    return httpx.Response(200, json={"data": job()})


@VIRTUAL_TIME
async def test_429_waits_at_least_retry_after_seconds(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    times: list[float] = []
    limited = httpx.Response(429, headers={"Retry-After": "7"}, json={"type": "RATE_LIMITED"})
    httpx_mock.add_callback(_recording([limited, _ok()], times), is_reusable=True)
    async with make_client(retry=RetryPolicy()) as client:
        result = await client.get_job(JOB_ID)

    assert result.id == JOB_ID
    assert len(times) == 2
    assert times[1] - times[0] >= 7
    assert (client.stats.retries, client.stats.rate_limited) == (1, 1)


@VIRTUAL_TIME
async def test_retry_after_as_http_date(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    times: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=33), usegmt=True)
    limited = httpx.Response(429, headers={"Retry-After": when})
    httpx_mock.add_callback(_recording([limited, _ok()], times), is_reusable=True)
    async with make_client(retry=RetryPolicy()) as client:
        await client.get_job(JOB_ID)

    # The HTTP-date has second precision and real time passes before the client reads it (up
    # to a few seconds on a loaded machine), so at least 30 of the 33 seconds remain; a client
    # that ignored the date would wait its own short backoff instead.
    assert times[1] - times[0] >= 30


@VIRTUAL_TIME
async def test_retry_after_pauses_every_request_of_the_client(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    other_started: list[float] = []
    limited = httpx.Response(429, headers={"Retry-After": "10"})
    job_times: list[float] = []
    httpx_mock.add_callback(_recording([limited, _ok()], job_times), url=JOB_URL, is_reusable=True)

    def other(request: httpx.Request) -> httpx.Response:
        other_started.append(anyio.current_time())
        return httpx.Response(200, json={"data": job("other")})

    httpx_mock.add_callback(other, url=f"{BASE_URL}/v3/export-jobs/other")
    async with make_client(retry=RetryPolicy()) as client:
        start = anyio.current_time()

        async def later() -> None:
            await anyio.sleep(1)
            await client.get_job("other")

        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get_job, JOB_ID)
            tg.start_soon(later)

    assert other_started[0] - start >= 10


@VIRTUAL_TIME
async def test_backoff_grows_exponentially_up_to_max_delay(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    times: list[float] = []
    busy = [httpx.Response(503, text="busy") for _ in range(4)]
    httpx_mock.add_callback(_recording([*busy, _ok()], times), is_reusable=True)
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0, jitter=False)
    async with make_client(retry=policy) as client:
        await client.get_job(JOB_ID)

    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == [1.0, 2.0, 3.0, 3.0]
    assert client.stats.retries == 4
    assert client.stats.responses_by_status == {503: 4, 200: 1}


async def test_503_is_retried(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(status_code=503, text="unavailable")
    httpx_mock.add_response(json={"data": job()})
    async with make_client() as client:
        assert (await client.get_job(JOB_ID)).id == JOB_ID
    assert len(httpx_mock.get_requests()) == 2


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("connection reset"),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_transport_errors_are_retried(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient], exception: Exception
) -> None:
    httpx_mock.add_exception(exception)
    httpx_mock.add_response(json={"data": job()})
    async with make_client() as client:
        assert (await client.get_job(JOB_ID)).id == JOB_ID
    assert client.stats.retries == 1


async def test_event_post_is_retried_after_a_timeout(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    url = f"{BASE_URL}/v3/export-job-events"
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=url)
    httpx_mock.add_response(url=url, status_code=202)
    async with make_client() as client:
        await client.send_event(JOB_ID, ExportJobEventType.STARTED)
    requests = httpx_mock.get_requests()
    assert len(requests) == 2
    assert requests[0].content == requests[1].content


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_other_4xx_are_not_retried(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient], status: int
) -> None:
    httpx_mock.add_response(status_code=status, json={"type": "X"}, is_reusable=True)
    async with make_client() as client:
        with pytest.raises(errors.PleoHttpError) as raised:
            await client.get_job(JOB_ID)
    assert raised.value.status_code == status
    assert len(httpx_mock.get_requests()) == 1
    assert client.stats.retries == 0


@VIRTUAL_TIME
@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, errors.RateLimited), (500, errors.ServerError), (503, errors.ServerError)],
)
async def test_exhausted_status_retries_raise_the_typed_error(
    httpx_mock: HTTPXMock,
    make_client: Callable[..., PleoClient],
    status: int,
    error_class: type[errors.PleoHttpError],
) -> None:
    httpx_mock.add_response(status_code=status, headers={"Retry-After": "2"}, is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(error_class) as raised:
            await client.get_job(JOB_ID)
    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    assert len(httpx_mock.get_requests()) == 3
    assert client.stats.retries == 2


@VIRTUAL_TIME
@pytest.mark.parametrize(
    "exception",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
    ids=lambda e: type(e).__name__,
)
async def test_exhausted_transport_retries_raise_pleo_unavailable(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient], exception: Exception
) -> None:
    httpx_mock.add_exception(exception, is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(errors.PleoUnavailable) as raised:
            await client.get_job(JOB_ID)
    assert raised.value.__cause__ is exception
    assert len(httpx_mock.get_requests()) == 3


async def test_unsupported_scheme_is_not_retried(make_client: Callable[..., PleoClient]) -> None:
    async with make_client() as client:
        with pytest.raises(errors.PleoApiError, match="not an absolute https URL"):
            await client.download("ftp://files.example.net/receipt.pdf")
    assert client.stats.retries == 0
    assert client.stats.requests == 0


async def test_retries_are_logged_at_info_with_reason_and_wait(
    httpx_mock: HTTPXMock,
    make_client: Callable[..., PleoClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pleo_export")
    httpx_mock.add_response(status_code=502)
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    httpx_mock.add_response(json={"data": job()})
    async with make_client() as client:
        await client.get_job(JOB_ID)

    retries = [r for r in caplog.records if getattr(r, "event", None) == "pleo.retry"]
    # Warnings: they show at the default log level, one per attempt, in words.
    assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]
    assert [getattr(r, "reason", None) for r in retries] == ["status 502", "ConnectError"]
    assert "connection refused; attempt 2 of " in retries[1].getMessage()
    assert all(isinstance(getattr(r, "wait_seconds", None), float) for r in retries)
    assert [getattr(r, "attempt", None) for r in retries] == [1, 2]


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    for attempt, cap in ((1, 0.5), (2, 1.0), (4, 4.0), (10, 30.0)):
        draws = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert len(set(draws)) > 1
        assert max(draws) > cap / 2


def test_retry_after_is_a_floor_even_above_max_delay() -> None:
    policy = RetryPolicy(max_delay=30.0)
    assert policy.delay(1, retry_after=120.0) >= 120.0
    assert RetryPolicy(jitter=False).delay(3, retry_after=0.1) == 2.0
