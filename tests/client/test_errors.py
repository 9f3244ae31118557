"""Error answers map to typed errors; 2xx bodies are validated; request-side guards."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from pleo_export.pleo import errors
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import (
    CreateExportJob,
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
    UpdateExportJobItem,
)
from tests.client.helpers import BASE_URL, COMPANY_ID, JOB_ID, job, job_item

pytestmark = pytest.mark.anyio

Call = Callable[[PleoClient], Awaitable[Any]]


async def _get_job(client: PleoClient) -> Any:
    return await client.get_job(JOB_ID)


async def _create_job(client: PleoClient) -> Any:
    return await client.create_job(
        CreateExportJob(accounting_entry_ids=["e1"], company_id=COMPANY_ID)
    )


async def _update_items(client: PleoClient) -> Any:
    update = UpdateExportJobItem(accounting_entry_id="e1", status=ExportJobItemStatus.SUCCESSFUL)
    return await client.update_items(JOB_ID, [update])


async def _send_started(client: PleoClient) -> Any:
    return await client.send_event(JOB_ID, ExportJobEventType.STARTED)


async def _export_items(client: PleoClient) -> Any:
    return [page async for page in client.iter_export_items(JOB_ID)]


async def _get_job_item(client: PleoClient) -> Any:
    return await client.get_job_item(COMPANY_ID, "e1")


def re_url(path: str) -> re.Pattern[str]:
    """Match ``path`` on the test base URL with any query string."""
    return re.compile(re.escape(BASE_URL + path) + r"(\?.*)?$")


ERROR_CASES = [
    ("GET", "/v3/export-jobs/" + JOB_ID, _get_job, 404, "EXPORT_NOT_FOUND", errors.NotFound),
    (
        "POST",
        "/v3/export-jobs",
        _create_job,
        409,
        "EXPORT_ALREADY_IN_PROGRESS",
        errors.ExportAlreadyInProgress,
    ),
    (
        "PUT",
        f"/v3/export-jobs/{JOB_ID}/items",
        _update_items,
        413,
        "EXPORT_JOB_ITEMS_UPDATE_LIMIT",
        errors.ItemsUpdateLimitExceeded,
    ),
    (
        "PUT",
        f"/v3/export-jobs/{JOB_ID}/items",
        _update_items,
        422,
        "EXPORT_JOB_STATUS_UNPROCESSABLE",
        errors.JobStatusUnprocessable,
    ),
    (
        "POST",
        "/v3/export-job-events",
        _send_started,
        422,
        "INVALID_EXPORT_JOB_STATUS_CHANGE",
        errors.InvalidJobStatusChange,
    ),
    (
        "GET",
        "/v3/export-items",
        _export_items,
        400,
        "MISSING_CONTRA_ACCOUNTS",
        errors.MissingContraAccounts,
    ),
    (
        "GET",
        "/v3/export-items",
        _export_items,
        422,
        "EXPORT_JOB_STATUS_UNPROCESSABLE",
        errors.JobStatusUnprocessable,
    ),
    (
        "POST",
        "/v3/export-jobs",
        _create_job,
        400,
        "MISSING_CONTRA_ACCOUNTS",
        errors.MissingContraAccounts,
    ),
    ("GET", "/v3/export-job-items", _get_job_item, 404, "EXPORT_ENTRY_NOT_FOUND", errors.NotFound),
    ("GET", "/v3/export-jobs/" + JOB_ID, _get_job, 403, "FORBIDDEN", errors.PermissionDenied),
]


@pytest.mark.parametrize(
    ("method", "path", "call", "status", "code", "error_class"),
    ERROR_CASES,
    ids=[f"{case[3]}-{case[4]}-{case[2].__name__.strip('_')}" for case in ERROR_CASES],
)
async def test_error_codes_map_to_typed_errors(
    httpx_mock: HTTPXMock,
    make_client: Callable[..., PleoClient],
    method: str,
    path: str,
    call: Call,
    status: int,
    code: str,
    error_class: type[errors.PleoHttpError],
) -> None:
    httpx_mock.add_response(
        method=method,
        url=re_url(path),
        status_code=status,
        json={"type": code, "message": "told by Pleo"},
    )
    async with make_client() as client:
        with pytest.raises(error_class) as raised:
            await call(client)

    error = raised.value
    assert type(error) is error_class
    assert (error.status_code, error.code, error.message) == (status, code, "told by Pleo")
    assert error.method == method
    assert len(httpx_mock.get_requests()) == 1, "a 4xx answer must not be retried"


async def test_non_json_error_body_is_tolerated(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(status_code=400, text="<html>Bad Request</html>")
    async with make_client() as client:
        with pytest.raises(errors.BadRequest) as raised:
            await client.get_job(JOB_ID)
    assert raised.value.code is None
    assert raised.value.status_code == 400


async def test_malformed_2xx_body_names_the_field(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(json={"data": job(status="exploded")})
    async with make_client() as client:
        with pytest.raises(errors.ResponseSchemaError, match=r"'data\.status'"):
            await client.get_job(JOB_ID)


async def test_malformed_item_in_a_page_names_its_index(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    broken = job_item("e2")
    del broken["accountingEntryId"]
    httpx_mock.add_response(
        json={
            "data": [job_item("e1"), broken],
            "pagination": {
                "hasNextPage": False,
                "hasPreviousPage": False,
                "currentRequestPagination": {"parameters": {}},
            },
        }
    )
    async with make_client() as client:
        with pytest.raises(errors.ResponseSchemaError, match=r"'data\.1\.accountingEntryId'"):
            [page async for page in client.iter_job_items(JOB_ID)]


@pytest.mark.parametrize("body", [b"not json", b'{"nodata": 1}', b"[]"])
async def test_2xx_body_that_is_not_the_envelope(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient], body: bytes
) -> None:
    httpx_mock.add_response(content=body)
    async with make_client() as client:
        with pytest.raises(errors.ResponseSchemaError):
            await client.get_job(JOB_ID)


async def test_update_items_refuses_101_items_without_sending(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    updates = [
        UpdateExportJobItem(accounting_entry_id=f"e{i}", status=ExportJobItemStatus.SUCCESSFUL)
        for i in range(101)
    ]
    async with make_client() as client:
        with pytest.raises(ValueError, match="100"):
            await client.update_items(JOB_ID, updates)
    assert httpx_mock.get_requests() == []


async def test_update_items_sends_100_items_as_a_json_array(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    updates = [
        UpdateExportJobItem(
            accounting_entry_id=f"e{i}",
            status=ExportJobItemStatus.FAILED,
            failure_reason="vendor missing",
            failure_reason_type=ExportJobItemFailureReasonType.VENDOR_UNKNOWN,
        )
        for i in range(100)
    ]
    httpx_mock.add_response(
        method="PUT",
        url=f"{BASE_URL}/v3/export-jobs/{JOB_ID}/items",
        json={
            "data": [job_item("e0", "failed")],
            "errors": [
                {
                    "accountingEntryId": "e1",
                    "message": "gone",
                    "type": "ACCOUNTING_ENTRY_DOES_NOT_EXIST",
                }
            ],
        },
    )
    async with make_client() as client:
        result = await client.update_items(JOB_ID, updates)

    assert [e.type for e in result.errors] == ["ACCOUNTING_ENTRY_DOES_NOT_EXIST"]
    request = httpx_mock.get_request()
    assert request is not None
    sent = json.loads(request.content)
    assert len(sent) == 100
    assert sent[0] == {
        "accountingEntryId": "e0",
        "status": "failed",
        "failureReason": "vendor missing",
        "failureReasonType": "vendor_unknown",
    }


async def test_update_items_with_nothing_to_send(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    async with make_client() as client:
        result = await client.update_items(JOB_ID, [])
    assert (result.data, result.errors) == ([], [])
    assert httpx_mock.get_requests() == []


async def test_send_event_body_and_plain_text_202(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE_URL}/v3/export-job-events",
        status_code=202,
        text="Export Job Event created successfully.",
    )
    async with make_client() as client:
        await client.send_event(
            JOB_ID,
            ExportJobEventType.FAILED,
            failure_reason="ERP login refused",
            failure_reason_type=ExportJobFailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )

    request = httpx_mock.get_request()
    assert request is not None
    assert json.loads(request.content) == {
        "jobId": JOB_ID,
        "event": "failed",
        "failureReason": "ERP login refused",
        "failureReasonType": "accounting_system_authentication_failure",
    }


async def test_create_job_and_get_job_item(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{BASE_URL}/v3/export-jobs", status_code=201, json={"data": job()}
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE_URL}/v3/export-job-items?company_id={COMPANY_ID}&accounting_entry_id=e1",
        json={"data": job_item("e1", "successful")},
    )
    async with make_client() as client:
        created = await _create_job(client)
        item = await _get_job_item(client)

    assert created.id == JOB_ID
    assert item.status is ExportJobItemStatus.SUCCESSFUL
    create_request = httpx_mock.get_requests()[0]
    assert json.loads(create_request.content) == {
        "accountingEntryIds": ["e1"],
        "companyId": COMPANY_ID,
        "isInteractive": True,
    }


async def test_path_parameters_stay_one_segment(
    httpx_mock: HTTPXMock, make_client: Callable[..., PleoClient]
) -> None:
    httpx_mock.add_response(json={"data": job()})
    async with make_client() as client:
        await client.get_job("../export-items")
    request = httpx_mock.get_request()
    assert request is not None
    assert request.url.raw_path == b"/v3/export-jobs/..%2Fexport-items"
