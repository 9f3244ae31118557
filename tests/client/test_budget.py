"""The request budget: no more than N request starts in any sliding window."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from pytest_httpx import HTTPXMock

from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.ratelimit import RequestBudget
from tests.client.helpers import BASE_URL, VIRTUAL_TIME, job, max_starts_in_any_window

pytestmark = pytest.mark.anyio


def test_window_checker_counts_half_open_windows() -> None:
    assert max_starts_in_any_window([0, 1, 2, 10, 10.5], 10) == 4
    assert max_starts_in_any_window([0, 5, 10, 15], 10) == 2
    assert max_starts_in_any_window([0, 9.9, 10, 19.9], 10) == 2
    assert max_starts_in_any_window([], 10) == 0


@VIRTUAL_TIME
async def test_three_times_the_budget_at_once() -> None:
    budget = RequestBudget(5, window_seconds=10.0)
    start = anyio.current_time()
    starts: list[float] = []

    async def one() -> None:
        await budget.acquire()
        starts.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(one)

    assert len(starts) == 15
    assert max_starts_in_any_window(starts, 10.0) == 5
    # It is a limiter, not a brake: the third batch starts as soon as the window allows.
    assert max(starts) == pytest.approx(20.0)


@VIRTUAL_TIME
async def test_staggered_arrivals_respect_every_sliding_window() -> None:
    # A fixed-window counter would let 3 at t=9 and 3 more at t=10.5 through (6 in [9, 19)).
    budget = RequestBudget(3, window_seconds=10.0)
    start = anyio.current_time()
    starts: list[float] = []

    async def arrive(at: float) -> None:
        await anyio.sleep(at)
        await budget.acquire()
        starts.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for at in (0.0, 9.0, 9.0, 10.5, 10.5, 10.5, 15.0, 19.5, 19.5, 30.0):
            tg.start_soon(arrive, at)

    assert len(starts) == 10
    assert max_starts_in_any_window(starts, 10.0) <= 3


@VIRTUAL_TIME
async def test_acquire_reports_its_wait_and_pause_delays_everyone() -> None:
    budget = RequestBudget(100, window_seconds=60.0)
    assert await budget.acquire() == 0.0
    budget.pause_until(anyio.current_time() + 5.0)
    budget.pause_until(anyio.current_time() + 1.0)  # a shorter pause does not cut it short
    waits: list[float] = []

    async def one() -> None:
        waits.append(await budget.acquire())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert waits == [pytest.approx(5.0)] * 3


def test_budget_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RequestBudget(0)
    with pytest.raises(ValueError, match="window_seconds"):
        RequestBudget(10, window_seconds=0)


@VIRTUAL_TIME
async def test_client_requests_share_the_budget(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    starts: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        starts.append(anyio.current_time())
        return httpx.Response(200, json={"data": job(request.url.path.rsplit("/", 1)[-1])})

    httpx_mock.add_callback(respond, is_reusable=True)
    client = make_client(requests_per_minute=4, window_seconds=60.0)
    async with client, anyio.create_task_group() as tg:
        for n in range(12):
            tg.start_soon(client.get_job, f"job-{n}")

    assert len(starts) == 12
    assert max_starts_in_any_window(starts, 60.0) == 4
    assert max(starts) - min(starts) == pytest.approx(120.0)
    assert client.stats.budget_wait_seconds == pytest.approx(4 * 60.0 + 4 * 120.0)


@VIRTUAL_TIME
async def test_retries_take_budget_slots_too(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    starts: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        starts.append(anyio.current_time())
        if len(starts) == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"data": job()})

    httpx_mock.add_callback(respond, url=f"{BASE_URL}/v3/export-jobs/x", is_reusable=True)
    async with make_client(requests_per_minute=1, window_seconds=30.0) as client:
        await client.get_job("x")

    assert starts[1] - starts[0] >= 30.0
