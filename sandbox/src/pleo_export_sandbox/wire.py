"""The wire side of the sandbox's handlers: query and body parsing with 400s naming the
field, page bodies, admin parameter models, and raw ASGI helpers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Send

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
)
from pleo_export_sandbox.config import (
    CURSOR_PATTERN,
    JSON_MEDIA_TYPE,
    PAGE_ORDERS,
    SandboxConfig,
)
from pleo_export_sandbox.faults import DROP_HEADER
from pleo_export_sandbox.paging import Page, PageRequest
from pleo_export_sandbox.records import (
    ApiError,
    Credential,
    ItemUpdate,
    bad_request,
)
from pleo_export_sandbox.store import is_uuid


class JsonResponse(JSONResponse):
    media_type = JSON_MEDIA_TYPE


def error_response(error: ApiError) -> Response:
    return JsonResponse(error.body(), status_code=error.status, headers=error.headers)


def parse_json(raw: bytes) -> Any | None:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


# --- input validation -------------------------------------------------------------------------


class Query:
    """Query parameters with the sandbox's validation rules (400 naming the parameter)."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def all(self, name: str) -> list[str]:
        return self.request.query_params.getlist(name)

    def one(self, name: str) -> str | None:
        values = self.all(name)
        if len(values) > 1:
            raise bad_request(f"query parameter {name} must be given once, got {len(values)}")
        return values[0] if values else None

    def uuid(self, name: str, *, required: bool = False) -> str | None:
        value = self.one(name)
        if value is None:
            if required:
                raise bad_request(f"query parameter {name} is required")
            return None
        if not is_uuid(value):
            raise bad_request(f"query parameter {name} must be a UUID, got {value!r}")
        return value

    def integer(self, name: str) -> int | None:
        value = self.one(name)
        if value is None:
            return None
        if not value.isdigit():
            raise bad_request(f"query parameter {name} must be an integer >= 0, got {value!r}")
        return int(value)

    def cursor(self, name: str) -> str | None:
        value = self.one(name)
        if value is not None and not CURSOR_PATTERN.match(value):
            raise bad_request(f"query parameter {name} must match ^[A-Z2-7=~]+$, got {value!r}")
        return value


def parse_page_request(query: Query, config: SandboxConfig) -> tuple[PageRequest, dict[str, Any]]:
    """The page asked for, and the spec's ``currentRequestPagination`` minus ``parameters``."""
    limit = query.integer("limit")
    offset = query.integer("offset")
    after = query.cursor("after")
    before = query.cursor("before")
    if sum(x is not None for x in (offset, after, before)) > 1:
        raise bad_request("use only one of the query parameters before, after and offset")
    orders = query.all("sorting_order")
    for order in orders:
        if order not in PAGE_ORDERS:
            raise bad_request(f"sorting_order {order!r} is not one of {', '.join(PAGE_ORDERS)}")
    keys = query.all("sorting_keys")
    effective = config.page_size_default if limit is None else min(limit, config.page_size_max)
    info: dict[str, Any] = {"limit": effective}
    for name, value in (("offset", offset), ("after", after), ("before", before)):
        if value is not None:
            info[name] = value
    if keys:
        info["sortingKeys"] = keys
    if orders:
        info["sortingOrder"] = orders
    return PageRequest(limit=effective, offset=offset, after=after, before=before), info


def page_body(
    page: Page[Any], data: list[Any], info: dict[str, Any], parameters: dict[str, list[str]]
) -> dict[str, Any]:
    pagination: dict[str, Any] = {
        "currentRequestPagination": {"parameters": parameters, **info},
        "hasNextPage": page.has_next_page,
        "hasPreviousPage": page.has_previous_page,
        "total": page.total,
    }
    if page.start_cursor is not None:
        pagination["startCursor"] = page.start_cursor
    if page.end_cursor is not None:
        pagination["endCursor"] = page.end_cursor
    return {"data": data, "pagination": pagination}


def enum_value(value: Any, allowed: Iterable[str], where: str) -> str:
    options = list(allowed)
    if not isinstance(value, str) or value not in options:
        raise bad_request(f"{where} is {value!r}; expected one of {', '.join(options)}")
    return value


def optional_string(element: dict[str, Any], name: str, where: str) -> str | None:
    value = element.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{where}.{name} must be a string, got {value!r}")
    return value


def timestamp_param(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a date-time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{where} is not an RFC 3339 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        raise bad_request(f"{where} needs a time zone (e.g. Z): {value!r}")
    return parsed


def item_update(element: Any, index: int) -> ItemUpdate:
    where = f"element [{index}]"
    if not isinstance(element, dict):
        raise bad_request(f"{where} must be an object, got {type(element).__name__}")
    entry_id = element.get("accountingEntryId")
    if not isinstance(entry_id, str) or not is_uuid(entry_id):
        raise bad_request(f"{where}.accountingEntryId must be a UUID, got {entry_id!r}")
    status = enum_value(
        element.get("status"), (s.value for s in ExportJobItemStatus), f"{where}.status"
    )
    reason_type = element.get("failureReasonType")
    if reason_type is not None:
        reason_type = enum_value(
            reason_type,
            (r.value for r in ExportJobItemFailureReasonType),
            f"{where}.failureReasonType",
        )
    return ItemUpdate(
        accounting_entry_id=entry_id,
        status=ExportJobItemStatus(status),
        exported_at=timestamp_param(element.get("exportedAt"), f"{where}.exportedAt"),
        external_id=optional_string(element, "externalId", where),
        external_url=optional_string(element, "externalUrl", where),
        failure_reason=optional_string(element, "failureReason", where),
        failure_reason_type=reason_type,
    )


class QueueExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 120
    seed: int = 1
    types: list[str] | None = None
    vendor_based_bookkeeping: bool = False
    unknown_account_rate: float = 0.0
    multi_currency_rate: float = 0.2
    attachments: bool = True
    from_master_data: bool = False


class CompanyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "Demo Ltd"
    wallet_currency: str = "GBP"
    company_id: str | None = None
    api_key: str | None = None


class FaultParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    method: str | None = None
    path: str | None = None
    count: int | None = 1
    every: int = 1
    status: int = 503
    retry_after: int = 1
    delay: float = 0.0


Handler = Callable[[Request, Credential], Awaitable[Response]]


# --- helpers ----------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        codes.RATE_LIMITED,
        f"Rate limit exceeded; retry after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
    )


async def json_body(request: Request, empty: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        if empty is not None:
            return empty
        raise bad_request("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the request body is not valid JSON") from None


def admin_params(model: type[_M], body: Any) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise bad_request(str(error)) from None


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def render_response(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.raw_headers), bytes(response.body)


async def drop_connection(send: Send, when: str) -> None:
    """Start a response and stop: over HTTP the server closes the connection mid-response; the
    in-process transport reads the header and raises the matching httpx error."""
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-length", b"64"), (DROP_HEADER.encode(), when.encode())],
        }
    )
