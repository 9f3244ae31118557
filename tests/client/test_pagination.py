"""Cursor pagination and its guards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_httpx import HTTPXMock

from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.errors import ResponseSchemaError
from pleo_export.pleo.models import ExportJobItemStatus, ExportJobStatus
from tests.client.helpers import BASE_URL, COMPANY_ID, JOB_ID, job, job_item, page

pytestmark = pytest.mark.anyio
JOBS_URL = f"{BASE_URL}/v3/export-jobs"
ITEMS_URL = f"{BASE_URL}/v3/export-jobs/{JOB_ID}/items"


async def test_list_jobs_follows_cursors_across_three_pages(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    base = {"company_id": COMPANY_ID, "statuses": ["pending", "in_progress"], "limit": "2"}
    httpx_mock.add_response(
        url=JOBS_URL,
        match_params=base,
        json=page([job("j1"), job("j2")], end_cursor="CURSORA", has_next=True),
    )
    httpx_mock.add_response(
        url=JOBS_URL,
        match_params={**base, "after": "CURSORA"},
        json=page([job("j3"), job("j4")], end_cursor="CURSORB", has_next=True),
    )
    httpx_mock.add_response(
        url=JOBS_URL,
        match_params={**base, "after": "CURSORB"},
        json=page([job("j5")], end_cursor="CURSORC", has_next=False),
    )
    async with make_client(page_size=2) as client:
        jobs = await client.list_jobs(
            COMPANY_ID, [ExportJobStatus.PENDING, ExportJobStatus.IN_PROGRESS]
        )

    assert [j.id for j in jobs] == ["j1", "j2", "j3", "j4", "j5"]
    requests = httpx_mock.get_requests()
    assert len(requests) == 3
    # Repeated params, snake_case names, and no cursor on the first page.
    assert requests[0].url.params.get_list("statuses") == ["pending", "in_progress"]
    assert "after" not in requests[0].url.params


async def test_list_jobs_without_company_or_statuses(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=JOBS_URL, match_params={"limit": "1000"}, json=page([]))
    async with make_client() as client:
        assert await client.list_jobs(None, []) == []


async def test_iter_job_items_yields_one_list_per_page(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    base = {"status": "pending", "limit": "2"}
    httpx_mock.add_response(
        url=ITEMS_URL,
        match_params=base,
        json=page([job_item("e1"), job_item("e2")], end_cursor="AAAA", has_next=True),
    )
    httpx_mock.add_response(
        url=ITEMS_URL,
        match_params={**base, "after": "AAAA"},
        json=page([job_item("e3"), job_item("e4")], end_cursor="BBBB", has_next=True),
    )
    httpx_mock.add_response(
        url=ITEMS_URL,
        match_params={**base, "after": "BBBB"},
        json=page([job_item("e5")], end_cursor="CCCC"),
    )
    async with make_client(page_size=2) as client:
        pages = [
            [item.accounting_entry_id for item in items]
            async for items in client.iter_job_items(JOB_ID, status=ExportJobItemStatus.PENDING)
        ]

    assert pages == [["e1", "e2"], ["e3", "e4"], ["e5"]]


async def test_iter_export_items_passes_raw_dicts_through(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    malformed = {"accountingEntryId": "e2", "amount": "not money"}
    good = {"accountingEntryId": "e1", "type": "card_purchase"}
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-items",
        match_params={"job_id": JOB_ID, "limit": "1000"},
        json=page([good, malformed]),
    )
    async with make_client() as client:
        pages = [items async for items in client.iter_export_items(JOB_ID)]

    assert pages == [[good, malformed]]


async def test_iter_export_items_rejects_a_non_object_item(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=f"{BASE_URL}/v3/export-items",
        match_params={"job_id": JOB_ID, "limit": "1000"},
        json=page([{}, "x"]),
    )
    async with make_client() as client:
        with pytest.raises(ResponseSchemaError, match=r"data\.1"):
            [items async for items in client.iter_export_items(JOB_ID)]


async def test_a_repeated_cursor_stops_instead_of_looping(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=ITEMS_URL,
        match_params={"limit": "1000"},
        json=page([job_item("e1")], end_cursor="SAME", has_next=True),
    )
    httpx_mock.add_response(
        url=ITEMS_URL,
        match_params={"limit": "1000", "after": "SAME"},
        json=page([job_item("e2")], end_cursor="SAME", has_next=True),
    )
    seen: list[list[str]] = []

    async def consume(client: PleoClient) -> None:
        async for items in client.iter_job_items(JOB_ID):
            seen.append([i.accounting_entry_id for i in items])

    async with make_client() as client:
        with pytest.raises(ResponseSchemaError, match="endCursor"):
            await consume(client)

    assert seen == [["e1"], ["e2"]]
    assert len(httpx_mock.get_requests()) == 2


async def test_a_cursor_cycle_over_several_pages_is_caught(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    for after, nxt in ((None, "AAAA"), ("AAAA", "BBBB"), ("BBBB", "AAAA")):
        params = {"limit": "1000"} | ({"after": after} if after else {})
        httpx_mock.add_response(
            url=ITEMS_URL, match_params=params, json=page([], end_cursor=nxt, has_next=True)
        )
    async with make_client() as client:
        with pytest.raises(ResponseSchemaError, match="repeats"):
            [items async for items in client.iter_job_items(JOB_ID)]
    assert len(httpx_mock.get_requests()) == 3


async def test_has_next_page_without_cursor_is_a_schema_error(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        url=ITEMS_URL, match_params={"limit": "1000"}, json=page([], has_next=True)
    )
    async with make_client() as client:
        with pytest.raises(ResponseSchemaError, match="endCursor"):
            [items async for items in client.iter_job_items(JOB_ID)]


async def test_missing_pagination_is_a_schema_error(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(url=ITEMS_URL, match_params={"limit": "1000"}, json={"data": []})
    async with make_client() as client:
        with pytest.raises(ResponseSchemaError, match="'pagination'"):
            [items async for items in client.iter_job_items(JOB_ID)]
