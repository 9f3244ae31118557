"""The spec checker itself must catch violations, or every other test proves nothing."""

from __future__ import annotations

import pytest

from pleo_export_sandbox import RequestRecord
from tests.support.openapi import ContractViolation, OpenApiContract

JOB_ID = "4b32bbbf-e915-4323-ba0d-fc9e5b3d99f0"
COMPANY_ID = "091f8576-6006-4f7b-8682-7e6c28d677b7"
JOB = {
    "id": JOB_ID,
    "companyId": COMPANY_ID,
    "status": "pending",
    "createdAt": "2025-06-02T09:00:00Z",
    "expiresIn": 3600,
    "isInteractive": True,
    "numberOfItems": 3,
    "vendorBasedBookkeeping": False,
}


def record(
    method: str,
    path: str,
    status: int,
    response: object = None,
    *,
    query: dict[str, list[str]] | None = None,
    body: object = None,
) -> RequestRecord:
    return RequestRecord(
        method=method,
        path=path,
        query=query or {},
        status=status,
        body=body,
        response_body=response,
        credential_id="api_key-1",
        at=0.0,
        response_headers={"content-type": "application/json;charset=UTF-8"},
    )


def test_valid_job_response_passes(openapi_contract: OpenApiContract) -> None:
    openapi_contract.check_exchange(record("GET", f"/v3/export-jobs/{JOB_ID}", 200, {"data": JOB}))


def test_date_time_patterns_are_not_treated_as_regexes(openapi_contract: OpenApiContract) -> None:
    schema = openapi_contract.schema("ExportJobV3")
    assert "pattern" not in schema["properties"]["createdAt"]
    assert openapi_contract.validate("ExportJobV3", JOB) == []
    bad = {**JOB, "createdAt": "2 June 2025"}
    assert any("createdAt" in e for e in openapi_contract.validate("ExportJobV3", bad))


def test_null_in_a_non_nullable_field_is_caught(openapi_contract: OpenApiContract) -> None:
    with pytest.raises(ContractViolation, match="failureReasonType"):
        openapi_contract.check_exchange(
            record(
                "GET",
                f"/v3/export-jobs/{JOB_ID}",
                200,
                {"data": {**JOB, "failureReasonType": None}},
            )
        )


def test_missing_required_field_is_caught(openapi_contract: OpenApiContract) -> None:
    job = {k: v for k, v in JOB.items() if k != "expiresIn"}
    with pytest.raises(ContractViolation, match="expiresIn"):
        openapi_contract.check_exchange(
            record("GET", f"/v3/export-jobs/{JOB_ID}", 200, {"data": job})
        )


def test_undeclared_status_is_caught(openapi_contract: OpenApiContract) -> None:
    with pytest.raises(ContractViolation, match="not declared"):
        openapi_contract.check_exchange(
            record("GET", f"/v3/export-jobs/{JOB_ID}", 409, {"type": "EXPORT_ALREADY_IN_PROGRESS"})
        )


def test_auth_and_rate_limit_statuses_need_exception_info(
    openapi_contract: OpenApiContract,
) -> None:
    openapi_contract.check_exchange(record("GET", "/v3/export-jobs", 429, {"type": "RATE_LIMITED"}))
    with pytest.raises(ContractViolation):
        openapi_contract.check_exchange(record("GET", "/v3/export-jobs", 401, {"error": "nope"}))


def test_202_must_have_no_body(openapi_contract: OpenApiContract) -> None:
    event = {"jobId": JOB_ID, "event": "started"}
    openapi_contract.check_exchange(record("POST", "/v3/export-job-events", 202, None, body=event))
    with pytest.raises(ContractViolation, match="no body"):
        openapi_contract.check_exchange(
            record("POST", "/v3/export-job-events", 202, {"ok": True}, body=event)
        )


def test_accepted_request_that_breaks_the_spec_is_caught(openapi_contract: OpenApiContract) -> None:
    page = {
        "data": [],
        "pagination": {
            "currentRequestPagination": {"parameters": {}},
            "hasNextPage": False,
            "hasPreviousPage": False,
        },
    }
    with pytest.raises(ContractViolation, match="companyId is not in the spec"):
        openapi_contract.check_exchange(
            record("GET", "/v3/export-jobs", 200, page, query={"companyId": [COMPANY_ID]})
        )
    with pytest.raises(ContractViolation, match="statuses"):
        openapi_contract.check_exchange(
            record("GET", "/v3/export-jobs", 200, page, query={"statuses": ["pending,failed"]})
        )
    # The same invalid request refused with 400 is fine: that is the sandbox doing its job.
    openapi_contract.check_exchange(
        record("GET", "/v3/export-jobs", 400, {"type": "BAD_REQUEST"}, query={"statuses": ["done"]})
    )


def test_request_body_and_path_parameters_are_checked(openapi_contract: OpenApiContract) -> None:
    errors = openapi_contract.request_errors(
        "PUT",
        "/v3/export-jobs/not-a-uuid/items",
        {},
        [{"accountingEntryId": JOB_ID, "status": "done"}],
    )
    assert any("jobId" in e for e in errors)
    assert any("status" in e for e in errors)
    errors = openapi_contract.request_errors(
        "POST", "/v3/export-job-events", {}, {"exportJobId": JOB_ID, "event": "started"}
    )
    assert any("jobId" in e for e in errors)
    assert openapi_contract.request_errors("GET", "/v3/nothing", {}, None) == [
        "GET /v3/nothing is not an operation of the spec"
    ]


def test_sandbox_admin_paths_are_ignored(openapi_contract: OpenApiContract) -> None:
    openapi_contract.check_exchange(record("GET", "/_sandbox/files/abc", 200, None))
