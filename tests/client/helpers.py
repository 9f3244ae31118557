"""Wire payloads and constants shared by the client tests."""

from __future__ import annotations

import bisect
from typing import Any

import pytest

BASE_URL = "https://pleo.test"
API_KEY = "pk_live_s3cr3t-key"
COMPANY_ID = "6d1b7f2e-0c7a-4a4e-9a57-3b1f0f4c8a11"
JOB_ID = "0b8f8a8e-6f3c-4d5e-8a4b-2f1c9d7e6a55"

VIRTUAL_TIME = pytest.mark.parametrize("anyio_backend", ["trio_mock"], indirect=True)
"""Run an async test on trio with an auto-jumping MockClock (sleeps take no real time)."""


def job(job_id: str = JOB_ID, status: str = "pending") -> dict[str, Any]:
    """An ``ExportJobV3`` as Pleo sends it."""
    return {
        "id": job_id,
        "companyId": COMPANY_ID,
        "status": status,
        "createdAt": "2026-04-22T10:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 2,
        "vendorBasedBookkeeping": False,
        "createdBy": None,
        "lastUpdatedAt": "2026-04-22T10:00:00Z",
    }


def job_item(entry_id: str, status: str = "pending") -> dict[str, Any]:
    """An ``ExportJobItemV3``."""
    return {
        "accountingEntryId": entry_id,
        "exportJobId": JOB_ID,
        "status": status,
        "externalId": None,
        "externalUrl": None,
        "failureReasonType": None,
        "failureReason": None,
        "exportedAt": None,
    }


def page(data: list[Any], *, end_cursor: str | None = None, has_next: bool = False) -> Any:
    """A ``CursorPaginatedResponse`` envelope."""
    pagination: dict[str, Any] = {
        "hasNextPage": has_next,
        "hasPreviousPage": False,
        "currentRequestPagination": {"parameters": {}},
    }
    if end_cursor is not None:
        pagination["endCursor"] = end_cursor
    return {"data": data, "pagination": pagination}


def max_starts_in_any_window(starts: list[float], window: float) -> int:
    """The largest number of ``starts`` inside any half-open window ``[t, t + window)``.

    Checking windows that open at a recorded start is enough: any window can slide right
    to its first start without losing one.
    """
    ordered = sorted(starts)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)),
        default=0,
    )
