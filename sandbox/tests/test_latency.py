"""``api_latency`` and ``file_latency``: the sandbox as a far-away Pleo, in process and served.

In process the delay is measured on trio's virtual clock (exact, no waiting); over loopback
HTTP only a lower bound is asserted, so a slow machine cannot make the test fail.
"""

from __future__ import annotations

import math
import time

import anyio
import httpx
import pytest
from trio.testing import MockClock

from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server
from sandbox.tests.conftest import START
from tests.support.openapi import OpenApiContract

pytestmark = pytest.mark.anyio

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-mockclock")],
)


def _file_url(items: list[dict[str, object]]) -> str:
    return next(
        str(f["url"])
        for item in items
        for f in item["files"]  # type: ignore[attr-defined]
    )


@VIRTUAL
@pytest.mark.parametrize(("api", "files"), [(0.05, 0.2), (0.0, 0.0)])
async def test_in_process_latency_on_api_calls_and_downloads(
    openapi_contract: OpenApiContract, api: float, files: float
) -> None:
    sandbox = Sandbox(
        SandboxConfig(start_time=START, api_latency=api, file_latency=files),
        clock=anyio.current_time,
    )
    sandbox.on_exchange = openapi_contract.check_exchange
    company = sandbox.add_company()
    job = sandbox.queue_export(company.id, count=20, seed=2)
    async with httpx.AsyncClient(
        transport=sandbox.transport(), base_url=sandbox.base_url, auth=(company.api_key, "")
    ) as client:
        before = anyio.current_time()
        response = await client.get("/v3/export-items", params={"job_id": job.id})
        assert response.status_code == 200
        assert anyio.current_time() - before == pytest.approx(api)

        url = _file_url(response.json()["data"])
        before = anyio.current_time()
        download = await client.get(url)
        assert download.status_code == 200
        assert anyio.current_time() - before == pytest.approx(files)

        before = anyio.current_time()
        event = await client.post(
            "/v3/export-job-events", json={"jobId": job.id, "event": "started"}
        )
        assert event.status_code == 202
        assert anyio.current_time() - before == pytest.approx(api)


async def test_served_sandbox_delays_api_calls_and_downloads() -> None:
    api, files = 0.3, 0.6
    sandbox = Sandbox(SandboxConfig(api_latency=api, file_latency=files))
    company = sandbox.add_company()
    job = sandbox.queue_export(company.id, count=20, seed=2)
    async with (
        running_server(sandbox) as base_url,
        httpx.AsyncClient(base_url=base_url, auth=(company.api_key, "")) as client,
    ):
        started = time.monotonic()
        response = await client.get("/v3/export-items", params={"job_id": job.id})
        api_seconds = time.monotonic() - started
        assert response.status_code == 200

        started = time.monotonic()
        download = await client.get(_file_url(response.json()["data"]))
        file_seconds = time.monotonic() - started
        assert download.status_code == 200
        # Lower bounds only (the event loop may wake a clock tick early); the file delay is
        # the larger one, so it shows the download took file_latency, not api_latency.
        assert api_seconds >= api - 0.02
        assert file_seconds >= files - 0.02


@pytest.mark.parametrize("name", ["api_latency", "file_latency"])
@pytest.mark.parametrize("value", [-0.001, 10.5, math.nan, math.inf])
def test_latency_out_of_range_names_the_setting(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"SandboxConfig.{name} must be between 0 and 10"):
        SandboxConfig(**{name: value})  # type: ignore[arg-type]
