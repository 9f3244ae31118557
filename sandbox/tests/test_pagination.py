"""Cursor pagination on every list endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pleo_export_sandbox import SandboxConfig
from sandbox.tests.conftest import START, Env, fetch_all, send_event, update_items

pytestmark = pytest.mark.anyio


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Follow ``endCursor`` and check the page flags on the way."""
    seen: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        body = (await client.get(path, params=query)).json()
        page = body["pagination"]
        assert len(body["data"]) <= params["limit"]
        assert page["hasPreviousPage"] == bool(seen)
        assert page["currentRequestPagination"]["limit"] == params["limit"]
        seen += body["data"]
        assert page["hasNextPage"] == (len(seen) < page["total"])
        if not page["hasNextPage"]:
            return seen
        query["after"] = page["endCursor"]


@pytest.mark.parametrize("limit", [1, 7, 50, 120, 1000])
async def test_job_items_and_export_items_walk_in_insertion_order(env: Env, limit: int) -> None:
    job = env.sandbox.queue_export(env.company.id, count=120, seed=2)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    async with env.client() as client:
        items = await walk(client, f"/v3/export-jobs/{job.id}/items", {"limit": limit})
        exported = await walk(client, "/v3/export-items", {"job_id": job.id, "limit": limit})
    assert [i["accountingEntryId"] for i in items] == ids
    assert [i["accountingEntryId"] for i in exported] == ids


async def test_jobs_walk_oldest_first(env: Env) -> None:
    created = []
    async with env.client() as client:
        for seed in range(5):
            job = env.sandbox.queue_export(env.company.id, count=1, seed=seed)
            created.append(job.id)
            await send_event(client, job.id, "failed", failureReasonType="validation_failure")
            env.clock.advance(60)
        for limit in (1, 2, 3, 5):
            jobs = await walk(client, "/v3/export-jobs", {"limit": limit})
            assert [j["id"] for j in jobs] == created


async def test_default_and_maximum_page_size(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(page_size_default=10, page_size_max=25, start_time=START))
    job = env.sandbox.queue_export(env.company.id, count=60, seed=1)
    async with env.client() as client:
        default = (await client.get(f"/v3/export-jobs/{job.id}/items")).json()
        capped = (await client.get(f"/v3/export-jobs/{job.id}/items", params={"limit": 500})).json()
        everything = await fetch_all(client, f"/v3/export-jobs/{job.id}/items", {"limit": 500})
    assert len(default["data"]) == 10
    assert len(capped["data"]) == 25
    assert capped["pagination"]["currentRequestPagination"]["limit"] == 25
    assert len(everything) == 60


async def test_offset_and_before(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=20, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    path = f"/v3/export-jobs/{job.id}/items"
    async with env.client() as client:
        by_offset = (await client.get(path, params={"offset": 15, "limit": 10})).json()
        last = (await client.get(path, params={"offset": 16, "limit": 4})).json()
        before = (
            await client.get(path, params={"before": last["pagination"]["startCursor"], "limit": 6})
        ).json()
        empty = (await client.get(path, params={"offset": 40})).json()
    assert [i["accountingEntryId"] for i in by_offset["data"]] == ids[15:]
    assert by_offset["pagination"]["hasPreviousPage"] is True
    assert by_offset["pagination"]["hasNextPage"] is False
    assert by_offset["pagination"]["currentRequestPagination"]["offset"] == 15
    assert [i["accountingEntryId"] for i in before["data"]] == ids[10:16]
    assert before["pagination"]["hasNextPage"] is True
    assert empty["data"] == [] and empty["pagination"]["total"] == 20
    assert "startCursor" not in empty["pagination"]


async def test_cursors_survive_status_changes_between_pages(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=10, seed=1)
    ids = [i.accounting_entry_id for i in env.sandbox.job_items(job.id)]
    path = f"/v3/export-jobs/{job.id}/items"
    async with env.client() as client:
        await send_event(client, job.id, "started")
        first = (await client.get(path, params={"status": "pending", "limit": 4})).json()
        done = [
            {"accountingEntryId": i["accountingEntryId"], "status": "successful"}
            for i in first["data"]
        ]
        await update_items(client, job.id, done)
        rest = await fetch_all(
            client,
            path,
            {"status": "pending", "limit": 4, "after": first["pagination"]["endCursor"]},
        )
    assert [i["accountingEntryId"] for i in first["data"] + rest] == ids


@pytest.mark.parametrize(
    "params",
    [
        {"after": "MZXW6===", "offset": 1},
        {"after": "abc"},
        {"before": "MZXW6==="},  # base32 of "foo": not a cursor this server issued
        {"limit": -1},
        {"sorting_order": "UP"},
    ],
)
async def test_bad_pagination_parameters_are_400(env: Env, params: dict[str, Any]) -> None:
    async with env.client() as client:
        response = await client.get("/v3/export-jobs", params=params)
    assert response.status_code == 400
    assert response.json()["type"] == "BAD_REQUEST"


async def test_sorting_parameters_are_echoed(env: Env) -> None:
    env.sandbox.queue_export(env.company.id, count=1, seed=1)
    async with env.client() as client:
        body = (
            await client.get(
                "/v3/export-jobs", params={"sorting_keys": "createdAt", "sorting_order": "ASC"}
            )
        ).json()
    request = body["pagination"]["currentRequestPagination"]
    assert request["sortingKeys"] == ["createdAt"]
    assert request["sortingOrder"] == ["ASC"]
