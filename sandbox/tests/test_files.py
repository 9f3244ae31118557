"""Attachment URLs: real bytes of the declared size, expiring after ``file_url_ttl``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pleo_export_sandbox import SandboxConfig
from sandbox.tests.conftest import START, Env, fetch_all

pytestmark = pytest.mark.anyio


def all_files(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [file for item in items for file in item.get("files") or []]


async def test_files_download_with_declared_size_and_type(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=40, seed=4)
    async with env.client() as client:
        files = all_files(await fetch_all(client, "/v3/export-items", {"job_id": job.id}))
        assert files
        for file in files:
            assert file["url"].startswith("https://files.sandbox.invalid/_sandbox/files/")
            response = await client.get(file["url"])
            assert response.status_code == 200
            assert len(response.content) == file["size"]
            assert response.headers["content-type"] == file["type"]
            assert response.headers["content-length"] == str(file["size"])
    assert {f["type"] for f in files} == {"image/png", "application/pdf"}


async def test_one_in_about_ten_items_has_a_large_file(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=120, seed=1)
    async with env.client() as client:
        items = await fetch_all(client, "/v3/export-items", {"job_id": job.id})
        large = [f for f in all_files(items) if f["size"] > 3 * 1024 * 1024]
        assert 3 <= len(large) <= 25
        content = (await client.get(large[0]["url"])).content
    assert len(content) == large[0]["size"]


async def test_large_files_can_be_turned_off(make_env: Callable[..., Env]) -> None:
    env = make_env(SandboxConfig(large_file_rate=0.0, start_time=START))
    job = env.sandbox.queue_export(env.company.id, count=120, seed=1)
    async with env.client() as client:
        items = await fetch_all(client, "/v3/export-items", {"job_id": job.id})
    assert max(f["size"] for f in all_files(items)) < 1_000_000


async def test_file_urls_expire_a_day_after_the_fetch(make_env: Callable[..., Env]) -> None:
    # Jobs would expire long before the URLs; keep this one alive.
    env = make_env(SandboxConfig(job_expires_in=10**6, start_time=START))
    job = env.sandbox.queue_export(env.company.id, count=20, seed=4)
    async with env.client() as client:
        first = all_files(await fetch_all(client, "/v3/export-items", {"job_id": job.id}))[0]
        env.clock.advance(86_399)
        assert (await client.get(first["url"])).status_code == 200
        env.clock.advance(1)
        expired = await client.get(first["url"])
        fresh = all_files(await fetch_all(client, "/v3/export-items", {"job_id": job.id}))[0]
        renewed = await client.get(fresh["url"])
    assert expired.status_code == 403
    assert "expired" in expired.json()["message"]
    assert fresh["url"] != first["url"]
    assert renewed.status_code == 200 and len(renewed.content) == fresh["size"]


async def test_tampered_file_urls_are_refused(env: Env) -> None:
    job = env.sandbox.queue_export(env.company.id, count=20, seed=4)
    async with env.client() as client:
        url = all_files(await fetch_all(client, "/v3/export-items", {"job_id": job.id}))[0]["url"]
        prefix, _, rest = url.rpartition("/")
        file_id, expires, signature = rest.split(".")
        longer = await client.get(f"{prefix}/{file_id}.{int(expires) + 10**6}.{signature}")
        other = await client.get(f"{prefix}/pdf-999-abc.{expires}.{signature}")
    assert longer.status_code == 403
    assert other.status_code == 403
