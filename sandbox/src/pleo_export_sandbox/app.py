"""The sandbox's public face: :class:`Sandbox` and the ASGI app serving Pleo's v3 Export API.

Each API request goes through, in order: fault injection, authentication (401), the per
credential rate limit (429), the scope check (403), the handler. Handlers validate their input
(400 ``BAD_REQUEST`` naming the offending field) and apply the rules in
:mod:`pleo_export_sandbox.store`. Every exchange is recorded in ``Sandbox.requests`` and passed
to ``Sandbox.on_exchange``.

Where the spec is silent the sandbox decides (the package docstring lists every choice):
``POST /v3/export-job-events`` and ``GET /v3/export-items`` answer 404 ``EXPORT_NOT_FOUND`` for
an unknown job, ``GET /v3/export-items`` requires ``job_id`` (400 without it), and a
``company_id`` other than the credential's company is 403 ``FORBIDDEN``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJob,
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItem,
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
    to_wire,
)
from pleo_export_sandbox import generator
from pleo_export_sandbox.faults import DROP_HEADER, ArmedFault, FaultInjector, FaultRule
from pleo_export_sandbox.oauth import OAuthServer
from pleo_export_sandbox.store import (
    ALL_SCOPES,
    SCOPE_ITEMS_READ,
    SCOPE_JOBS_READ,
    SCOPE_JOBS_WRITE,
    ApiError,
    Company,
    Credential,
    ItemUpdate,
    JobState,
    Page,
    PageRequest,
    RateLimiter,
    ScheduledExport,
    Store,
    bad_request,
    is_uuid,
    job_not_found,
    paginate,
)
from pleo_export_sandbox.transport import SandboxTransport, call_buffered
from pleo_export_sandbox.webhooks import WebhookEmitter

JSON_MEDIA_TYPE = "application/json;charset=UTF-8"
FILE_PLACEHOLDER = "sandbox-file:"
"""Stored items carry ``files[].url`` as this prefix plus a file id; URLs are signed when the
items are fetched, so they expire ``file_url_ttl`` seconds after that fetch."""
CURSOR_PATTERN = re.compile(r"^[A-Z2-7=~]+$")
PAGINATION_PARAMS = ("before", "after", "offset", "limit", "sorting_keys", "sorting_order")
PAGE_ORDERS = (
    "ASC",
    "ASC_NULLS_FIRST",
    "ASC_NULLS_LAST",
    "DESC",
    "DESC_NULLS_FIRST",
    "DESC_NULLS_LAST",
)


@dataclass(frozen=True)
class SandboxConfig:
    started_is_idempotent: bool = False
    """Whether ``started`` on an ``in_progress`` job is accepted (202) rather than 422.
    Pleo does not document it; 422 is the strict choice."""
    strict_completion: bool = True
    """Refuse ``completed``/``completed_with_errors`` (422) while items are pending or
    in_progress. When off, such items become ``abandoned`` on completion."""
    job_expires_in: int = 3600
    """Seconds without an event or item update after which a job fails with ``job_expired``."""
    page_size_default: int = 50
    """Page size when a list request has no ``limit``."""
    page_size_max: int = 1000
    """Largest page served whatever ``limit`` asks for. Pleo documents neither a default nor a
    maximum ``limit`` for the export endpoints, so the sandbox picks generous values; clients
    must follow ``hasNextPage``/``endCursor`` whatever page size the server chooses."""
    rate_limit_per_minute: int = 600
    """Requests accepted per credential in any ``rate_limit_window`` (Pleo: 600/min)."""
    rate_limit_window: float = 60.0
    file_url_ttl: int = 86_400
    """Seconds a file URL stays valid after the export items carrying it were fetched."""
    large_file_rate: float = 0.1
    """Share of generated items with receipts whose first file is ``large_file_size`` bytes."""
    large_file_size: int = generator.LARGE_FILE_SIZE
    start_time: datetime | None = None
    """Sandbox wall-clock time when its clock is first read (default: now)."""
    base_url: str = "http://sandbox.localhost"


@dataclass(frozen=True)
class RequestRecord:
    """One exchange with the sandbox, as ``Sandbox.requests`` and ``on_exchange`` see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    """The status the sandbox answered; 0 when the connection was dropped before applying."""
    body: Any | None
    """The parsed JSON request body (the raw text if it was not JSON; ``None`` if empty)."""
    response_body: Any | None
    credential_id: str | None
    at: float
    """Clock reading when the request arrived."""
    fault: str | None = None
    """The fault kind that hit this request, if any."""
    response_headers: dict[str, str] = field(default_factory=dict)


class _JSON(JSONResponse):
    media_type = JSON_MEDIA_TYPE


def _error_response(error: ApiError) -> Response:
    return _JSON(error.body(), status_code=error.status, headers=error.headers)


def _parse_json(raw: bytes) -> Any | None:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


# --- input validation -------------------------------------------------------------------------


class _Query:
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


def _page_request(query: _Query, config: SandboxConfig) -> tuple[PageRequest, dict[str, Any]]:
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


def _page_body(
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


def _enum(value: Any, allowed: Iterable[str], where: str) -> str:
    options = list(allowed)
    if not isinstance(value, str) or value not in options:
        raise bad_request(f"{where} is {value!r}; expected one of {', '.join(options)}")
    return value


def _optional_string(element: dict[str, Any], name: str, where: str) -> str | None:
    value = element.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{where}.{name} must be a string, got {value!r}")
    return value


def _timestamp(value: Any, where: str) -> datetime | None:
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


def _item_update(element: Any, index: int) -> ItemUpdate:
    where = f"element [{index}]"
    if not isinstance(element, dict):
        raise bad_request(f"{where} must be an object, got {type(element).__name__}")
    entry_id = element.get("accountingEntryId")
    if not isinstance(entry_id, str) or not is_uuid(entry_id):
        raise bad_request(f"{where}.accountingEntryId must be a UUID, got {entry_id!r}")
    status = _enum(element.get("status"), (s.value for s in ExportJobItemStatus), f"{where}.status")
    reason_type = element.get("failureReasonType")
    if reason_type is not None:
        reason_type = _enum(
            reason_type,
            (r.value for r in ExportJobItemFailureReasonType),
            f"{where}.failureReasonType",
        )
    return ItemUpdate(
        accounting_entry_id=entry_id,
        status=ExportJobItemStatus(status),
        exported_at=_timestamp(element.get("exportedAt"), f"{where}.exportedAt"),
        external_id=_optional_string(element, "externalId", where),
        external_url=_optional_string(element, "externalUrl", where),
        failure_reason=_optional_string(element, "failureReason", where),
        failure_reason_type=reason_type,
    )


class _QueueExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 120
    seed: int = 1
    types: list[str] | None = None
    vendor_based_bookkeeping: bool = False
    unknown_account_rate: float = 0.0
    multi_currency_rate: float = 0.2
    attachments: bool = True


class _CompanyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "Demo Ltd"
    wallet_currency: str = "GBP"
    company_id: str | None = None
    api_key: str | None = None


class _FaultParams(BaseModel):
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


class _SandboxApp:
    """The ASGI 3 callable (a class with ``async __call__``, so servers detect ASGI 3)."""

    def __init__(self, handle: ASGIApp) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send)


class Sandbox:
    """An in-process simulator of Pleo's Export API v3 (see the package docstring)."""

    def __init__(
        self, config: SandboxConfig | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        import time

        self.config = config or SandboxConfig()
        self.clock: Callable[[], float] = clock or time.monotonic
        self.store = Store(
            clock=self.clock,
            start_time=self.config.start_time,
            job_expires_in=self.config.job_expires_in,
            started_is_idempotent=self.config.started_is_idempotent,
            strict_completion=self.config.strict_completion,
        )
        self.rate_limiter = RateLimiter(
            self.config.rate_limit_per_minute, self.config.rate_limit_window, self.clock
        )
        self.faults = FaultInjector()
        self.webhooks = WebhookEmitter()
        """``v1.export-job.created`` deliveries: subscribe a URL, then ``await deliver()``."""
        self.store.on_job_created.append(self.webhooks.job_created)
        self.requests: list[RequestRecord] = []
        self.on_exchange: Callable[[RequestRecord], None] | None = None
        self.base_url = self.config.base_url
        self._file_secret = secrets.token_bytes(16)
        self.oauth = OAuthServer(self)
        """Pleo's OAuth install flow and token endpoint (:mod:`pleo_export_sandbox.oauth`)."""
        self._api = self._build_api()
        self.app: ASGIApp = _SandboxApp(self._asgi)

    # --- Python API ---------------------------------------------------------------------------

    def add_company(
        self,
        name: str = "Demo Ltd",
        wallet_currency: str = "GBP",
        company_id: str | None = None,
        api_key: str | None = None,
    ) -> Company:
        """A company with an API key holding every export scope."""
        return self.store.add_company(name, wallet_currency, company_id, api_key)

    def add_token(
        self, company_id: str, token: str, scopes: Iterable[str] = ALL_SCOPES
    ) -> Credential:
        """Accept ``Authorization: Bearer <token>`` for ``company_id`` with ``scopes``."""
        return self.store.add_credential(company_id, "token", token, scopes)

    def add_api_key(
        self, company_id: str, api_key: str, scopes: Iterable[str] = ALL_SCOPES
    ) -> Credential:
        """Accept another API key (HTTP Basic) for ``company_id``, e.g. with fewer scopes."""
        return self.store.add_credential(company_id, "api_key", api_key, scopes)

    def add_organisation_key(
        self, company_ids: Sequence[str], api_key: str | None = None
    ) -> Credential:
        """Accept one API key for several companies (an organisation-level key); requests
        must then name the company (see :mod:`pleo_export_sandbox.organisations`)."""
        from pleo_export_sandbox.organisations import add_organisation_key

        return add_organisation_key(self, company_ids, api_key)

    def add_entries(self, company_id: str, items: Iterable[dict[str, Any]]) -> list[str]:
        """Store hand-made wire-form export items as accounting entries; returns their ids."""
        return self.store.add_entries(company_id, items)

    def queue_export(
        self,
        company_id: str,
        count: int = 120,
        seed: int = 1,
        types: Iterable[str] | None = None,
        vendor_based_bookkeeping: bool = False,
        unknown_account_rate: float = 0.0,
        multi_currency_rate: float = 0.2,
        attachments: bool = True,
    ) -> ExportJob:
        """Generate ``count`` accounting entries and queue them in a new pending job, as a user
        clicking Export in Pleo would. Raises :class:`ApiError` (409) if a job is unfinished."""
        running = self.store.unfinished_job(company_id)
        if running is not None:
            raise ApiError(
                409,
                codes.EXPORT_ALREADY_IN_PROGRESS,
                f"Export Job already in progress for this company (job {running.id}).",
            )
        ids = self._generate(
            company_id,
            count,
            seed,
            types=types,
            vendor_based_bookkeeping=vendor_based_bookkeeping,
            unknown_account_rate=unknown_account_rate,
            multi_currency_rate=multi_currency_rate,
            attachments=attachments,
        )
        return self.create_job(
            company_id, ids, vendor_based_bookkeeping, employee_id=generator.DEMO_CHART.people[0].id
        )

    def schedule_export(
        self,
        company_id: str,
        count: int = 120,
        seed: int = 1,
        types: Iterable[str] | None = None,
        vendor_based_bookkeeping: bool = False,
        unknown_account_rate: float = 0.0,
        multi_currency_rate: float = 0.2,
        attachments: bool = True,
    ) -> ExportJob | None:
        """Like :meth:`queue_export`, but when the company has an unfinished job the export
        waits (Pleo's export queue) and becomes a pending job once that job finishes. Returns
        the job if it was created at once, else ``None``."""
        ids = self._generate(
            company_id,
            count,
            seed,
            types=types,
            vendor_based_bookkeeping=vendor_based_bookkeeping,
            unknown_account_rate=unknown_account_rate,
            multi_currency_rate=multi_currency_rate,
            attachments=attachments,
        )
        export = ScheduledExport(
            ids, vendor_based_bookkeeping, created_by=generator.DEMO_CHART.people[0].id
        )
        job = self.store.schedule(company_id, export)
        return job.to_model() if job is not None else None

    def _generate(self, company_id: str, count: int, seed: int, **options: Any) -> list[str]:
        company = self.store.company(company_id)
        items = generator.generate_items(
            company_id,
            count,
            seed,
            wallet_currency=company.wallet_currency,
            file_url=lambda file_id: FILE_PLACEHOLDER + file_id,
            large_file_rate=self.config.large_file_rate,
            large_file_size=self.config.large_file_size,
            **options,
        )
        return self.store.add_entries(company_id, items)

    def create_job(
        self,
        company_id: str,
        accounting_entry_ids: Sequence[str],
        vendor_based_bookkeeping: bool = False,
        *,
        is_interactive: bool = True,
        employee_id: str | None = None,
    ) -> ExportJob:
        """Same rules as ``POST /v3/export-jobs``; raises :class:`ApiError` (400, 409)."""
        job = self.store.create_job(
            company_id,
            accounting_entry_ids,
            vendor_based_bookkeeping=vendor_based_bookkeeping,
            is_interactive=is_interactive,
            created_by=employee_id,
        )
        return job.to_model()

    def get_job(self, job_id: str) -> ExportJob:
        return self.store.job(job_id).to_model()

    def job_items(self, job_id: str) -> list[ExportJobItem]:
        job = self.store.job(job_id)
        return [job.item_model(item) for item in self.store.job_items(job)]

    def export_item(self, accounting_entry_id: str) -> dict[str, Any]:
        """The entry's wire form as ``GET /v3/export-items`` would serve it now."""
        try:
            entry = self.store.entries[accounting_entry_id]
        except KeyError:
            raise KeyError(f"unknown accounting entry {accounting_entry_id}") from None
        return self._render_item(entry)

    def add_fault(self, rule: FaultRule) -> ArmedFault:
        return self.faults.add(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    def transport(self) -> httpx.AsyncBaseTransport:
        return SandboxTransport(self.app)

    # --- files --------------------------------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return hmac.new(self._file_secret, payload.encode(), hashlib.sha256).hexdigest()[:24]

    def file_url(self, file_id: str) -> str:
        """A URL for a generated file, valid ``file_url_ttl`` seconds from now."""
        expires = math.floor(self.store.now().timestamp()) + self.config.file_url_ttl
        payload = f"{file_id}.{expires}"
        return f"{self.base_url}/_sandbox/files/{payload}.{self._sign(payload)}"

    def _render_item(self, entry: dict[str, Any]) -> dict[str, Any]:
        item = copy.deepcopy(entry)
        for file in item.get("files") or []:
            url = file.get("url")
            if isinstance(url, str) and url.startswith(FILE_PLACEHOLDER):
                file["url"] = self.file_url(url[len(FILE_PLACEHOLDER) :])
        return item

    async def _serve_file(self, request: Request) -> Response:
        token = request.path_params["token"]
        payload, _, signature = token.rpartition(".")
        file_id, _, expires = payload.rpartition(".")
        if not payload or not hmac.compare_digest(self._sign(payload), signature):
            raise ApiError(403, codes.FORBIDDEN, "The file URL is not valid.")
        if not expires.isdigit() or int(expires) <= self.store.now().timestamp():
            raise ApiError(403, codes.FORBIDDEN, "The file URL has expired; fetch the item again.")
        try:
            content, mime = generator.render_file(file_id)
        except ValueError:
            raise ApiError(404, "FILE_NOT_FOUND", "No such file.") from None
        extension = "png" if mime == "image/png" else "pdf"
        return Response(
            content,
            media_type=mime,
            headers={
                "content-disposition": f'inline; filename="receipt-{file_id[-16:]}.{extension}"'
            },
        )

    # --- ASGI ---------------------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._api(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox/") and not path.startswith("/_sandbox/files/"):
            await self._api(scope, receive, send)  # admin: never faulted or recorded
            return
        await self._exchange(scope, receive, send)

    async def _exchange(self, scope: Scope, receive: Receive, send: Send) -> None:
        at = self.clock()
        method: str = scope["method"]
        path: str = scope["path"]
        raw_body = await _read_body(receive)
        context: dict[str, Any] = {"credential_id": None}
        scope = {**scope, "sandbox": context}
        fault = self.faults.pick(method, path)
        if fault is not None and fault.kind == "slow":
            await anyio.sleep(fault.delay)

        status, headers, body = await self._answer(fault, scope, raw_body)
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        content_type = dict(headers).get(b"content-type", b"").decode()
        record = RequestRecord(
            method=method,
            path=path,
            query=query,
            status=status,
            body=_parse_json(raw_body),
            response_body=_parse_json(body) if "json" in content_type else None,
            credential_id=context["credential_id"],
            at=at,
            fault=fault.kind if fault is not None else None,
            response_headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
        )
        self.requests.append(record)
        if self.on_exchange is not None:
            self.on_exchange(record)
        if fault is not None and fault.kind in ("drop_before", "drop_after"):
            await _drop(send, "before" if fault.kind == "drop_before" else "after")
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, fault: FaultRule | None, scope: Scope, raw_body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The response the sandbox gives (status 0 and no body when dropped unapplied)."""
        kind = fault.kind if fault is not None else None
        if kind == "drop_before":
            return 0, [], b""
        if fault is not None and kind == "rate_limit":
            return _render(_error_response(_rate_limited(fault.retry_after)))
        if fault is not None and kind == "server_error":
            error = ApiError(fault.status, "SERVER_ERROR", "Injected server error (sandbox fault).")
            return _render(_error_response(error))
        return await call_buffered(self._api, scope, raw_body)

    def _build_api(self) -> Starlette:
        def api(scope_name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    credential = self._authorise(request, scope_name)
                    return await handler(request, credential)
                except ApiError as error:
                    return _error_response(error)

            return endpoint

        def plain(
            handler: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except ApiError as error:
                    return _error_response(error)

            return endpoint

        routes = [
            Route("/v3/export-jobs", api(SCOPE_JOBS_READ, self._list_jobs), methods=["GET"]),
            Route("/v3/export-jobs", api(SCOPE_JOBS_WRITE, self._create_job), methods=["POST"]),
            Route("/v3/export-jobs/{jobId}", api(SCOPE_JOBS_READ, self._get_job), methods=["GET"]),
            Route(
                "/v3/export-jobs/{jobId}/items",
                api(SCOPE_JOBS_READ, self._list_job_items),
                methods=["GET"],
            ),
            Route(
                "/v3/export-jobs/{jobId}/items",
                api(SCOPE_JOBS_WRITE, self._update_job_items),
                methods=["PUT"],
            ),
            Route(
                "/v3/export-job-events", api(SCOPE_JOBS_WRITE, self._create_event), methods=["POST"]
            ),
            Route("/v3/export-items", api(SCOPE_ITEMS_READ, self._export_items), methods=["GET"]),
            Route(
                "/v3/export-job-items",
                api(SCOPE_JOBS_READ, self._find_job_item),
                methods=["GET"],
            ),
            Route("/_sandbox/files/{token}", plain(self._serve_file), methods=["GET"]),
            Route("/_sandbox/companies", plain(self._admin_company), methods=["POST"]),
            Route(
                "/_sandbox/companies/{companyId}/exports",
                plain(self._admin_export),
                methods=["POST"],
            ),
            Route("/_sandbox/faults", plain(self._admin_add_fault), methods=["POST"]),
            Route("/_sandbox/faults", plain(self._admin_clear_faults), methods=["DELETE"]),
            Route("/_sandbox/state", plain(self._admin_state), methods=["GET"]),
            *self.oauth.routes(),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            code = "METHOD_NOT_ALLOWED" if status == 405 else "NOT_FOUND"
            message = f"{request.method} {request.url.path} is not an endpoint of this sandbox"
            return _JSON({"type": code, "message": message}, status_code=status)

        return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})

    def _authorise(self, request: Request, scope_name: str) -> Credential:
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": 'Basic realm="Pleo", Bearer realm="Pleo"'}
        if not header:
            raise ApiError(
                401,
                codes.UNAUTHORIZED,
                "Missing Authorization header: send the API key as HTTP Basic user name "
                "(empty password) or an OAuth access token as Bearer.",
                challenge,
            )
        scheme, _, value = header.partition(" ")
        credential = None
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(
                    401, codes.UNAUTHORIZED, "Malformed HTTP Basic credentials.", challenge
                ) from None
            if password:
                raise ApiError(
                    401,
                    codes.UNAUTHORIZED,
                    "HTTP Basic: the API key is the user name and the password must be empty.",
                    challenge,
                )
            credential = self.store.find_credential("api_key", user)
        elif scheme.lower() == "bearer":
            token = value.strip()
            credential = self.oauth.credential_for(token) or self.store.find_credential(
                "token", token
            )
        if credential is None:
            raise ApiError(
                401, codes.UNAUTHORIZED, "Unknown or revoked API key or token.", challenge
            )
        request.scope["sandbox"]["credential_id"] = credential.id
        wait = self.rate_limiter.check(credential.id)
        if wait is not None:
            raise _rate_limited(wait)
        if scope_name not in credential.scopes:
            raise ApiError(
                403,
                codes.FORBIDDEN,
                f"The credential lacks the scope {scope_name} needed for "
                f"{request.method} {request.url.path}.",
            )
        return credential

    @staticmethod
    def _company_param(query: _Query, credential: Credential) -> str:
        company_id = query.uuid("company_id")
        if company_id is None and credential.companies:
            raise bad_request("company_id is required with an organisation-level credential")
        if company_id is not None and not credential.covers(company_id):
            raise ApiError(
                403,
                codes.FORBIDDEN,
                f"The credential is not authorised for company {company_id}.",
            )
        return company_id or credential.company_id

    def _job_for(self, job_id: str, credential: Credential) -> JobState:
        if not is_uuid(job_id):
            raise bad_request(f"path parameter jobId must be a UUID, got {job_id!r}")
        job = self.store.job(job_id)
        if not credential.covers(job.company_id):
            raise job_not_found(job_id)  # another company's job: as if it did not exist
        return job

    # --- handlers -----------------------------------------------------------------------------

    async def _list_jobs(self, request: Request, credential: Credential) -> Response:
        query = _Query(request)
        company_id = self._company_param(query, credential)
        statuses: list[ExportJobStatus] = []
        for value in query.all("statuses"):
            for part in value.split(","):
                statuses.append(
                    ExportJobStatus(
                        _enum(part.strip(), (s.value for s in ExportJobStatus), "statuses")
                    )
                )
        page_request, info = _page_request(query, self.config)
        jobs = self.store.list_jobs(company_id, statuses)
        page = paginate(jobs, lambda j: j.seq, page_request)
        parameters: dict[str, list[str]] = {"company_id": [company_id]}
        if statuses:
            parameters["statuses"] = [s.value for s in statuses]
        data = [to_wire(j.to_model()) for j in page.elements]
        return _JSON(_page_body(page, data, info, parameters))

    async def _create_job(self, request: Request, credential: Credential) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("the body must be a CreateExportJob object")
        ids = body.get("accountingEntryIds")
        if not isinstance(ids, list) or not all(is_uuid(i) for i in ids):
            raise bad_request("accountingEntryIds is required: an array of UUIDs")
        company_id = body.get("companyId")
        if not is_uuid(company_id):
            raise bad_request(f"companyId is required and must be a UUID, got {company_id!r}")
        if not isinstance(company_id, str) or not credential.covers(company_id):
            raise ApiError(
                403, codes.FORBIDDEN, f"The credential is not authorised for company {company_id}."
            )
        employee_id = body.get("employeeId")
        if employee_id is not None and not is_uuid(employee_id):
            raise bad_request(f"employeeId must be a UUID, got {employee_id!r}")
        interactive = body.get("isInteractive")
        if interactive is not None and not isinstance(interactive, bool):
            raise bad_request(f"isInteractive must be a boolean, got {interactive!r}")
        options = body.get("options") or {}
        vendor_based = options.get("vendorBasedBookkeeping") if isinstance(options, dict) else None
        if not isinstance(options, dict) or (
            vendor_based is not None and not isinstance(vendor_based, bool)
        ):
            raise bad_request("options.vendorBasedBookkeeping must be a boolean")
        job = self.store.create_job(
            company_id,
            ids,
            vendor_based_bookkeeping=bool(vendor_based),
            is_interactive=True if interactive is None else interactive,
            created_by=employee_id,
        )
        return _JSON({"data": to_wire(job.to_model())}, status_code=201)

    async def _get_job(self, request: Request, credential: Credential) -> Response:
        job = self._job_for(request.path_params["jobId"], credential)
        return _JSON({"data": to_wire(job.to_model())})

    async def _create_event(self, request: Request, credential: Credential) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("the body must be a CreateExportJobEvent object")
        job_id = body.get("jobId")
        if job_id is None:
            hint = (
                " (exportJobId is not a field of CreateExportJobEvent)"
                if "exportJobId" in body
                else ""
            )
            raise bad_request(f"jobId is required{hint}")
        if not is_uuid(job_id):
            raise bad_request(f"jobId must be a UUID, got {job_id!r}")
        event = ExportJobEventType(
            _enum(body.get("event"), (e.value for e in ExportJobEventType), "event")
        )
        reason = body.get("failureReason")
        if reason is not None and not isinstance(reason, str):
            raise bad_request(f"failureReason must be a string, got {reason!r}")
        reason_type = body.get("failureReasonType")
        if reason_type is not None:
            reason_type = _enum(
                reason_type, (r.value for r in ExportJobFailureReasonType), "failureReasonType"
            )
        job = self._job_for(job_id, credential)
        self.store.apply_event(job, event, reason, reason_type)
        return Response(status_code=202)

    async def _list_job_items(self, request: Request, credential: Credential) -> Response:
        query = _Query(request)
        status_value = query.one("status")
        status = None
        if status_value is not None:
            status = ExportJobItemStatus(
                _enum(status_value, (s.value for s in ExportJobItemStatus), "status")
            )
        page_request, info = _page_request(query, self.config)
        job = self._job_for(request.path_params["jobId"], credential)
        items = self.store.job_items(job, status)
        page = paginate(items, lambda i: i.seq, page_request)
        parameters = {"status": [status.value]} if status else {}
        data = [to_wire(job.item_model(i)) for i in page.elements]
        return _JSON(_page_body(page, data, info, parameters))

    async def _update_job_items(self, request: Request, credential: Credential) -> Response:
        body = await _json_body(request)
        if not isinstance(body, list):
            raise bad_request("the body must be a JSON array of UpdateExportJobItemV3 objects")
        if len(body) > 100:
            raise ApiError(
                413,
                codes.EXPORT_JOB_ITEMS_UPDATE_LIMIT,
                f"Number of items to update is more than 100 ({len(body)}).",
            )
        updates = [_item_update(element, n) for n, element in enumerate(body)]
        job = self._job_for(request.path_params["jobId"], credential)
        updated, errors = self.store.update_items(job, updates)
        return _JSON(
            {
                "data": [to_wire(job.item_model(i)) for i in updated],
                "errors": [
                    {
                        "accountingEntryId": e.accounting_entry_id,
                        "message": e.message,
                        "type": e.type,
                    }
                    for e in errors
                ],
            }
        )

    async def _export_items(self, request: Request, credential: Credential) -> Response:
        query = _Query(request)
        job_id = query.uuid("job_id", required=True)
        assert job_id is not None
        page_request, info = _page_request(query, self.config)
        job = self._job_for(job_id, credential)
        entries = self.store.export_entries(job)
        page = paginate(entries, lambda e: e[0], page_request)
        data = [self._render_item(entry) for _, entry in page.elements]
        return _JSON(_page_body(page, data, info, {"job_id": [job_id]}))

    async def _find_job_item(self, request: Request, credential: Credential) -> Response:
        query = _Query(request)
        company_id = self._company_param(query, credential)
        entry_id = query.uuid("accounting_entry_id", required=True)
        assert entry_id is not None
        job, item = self.store.find_job_item(company_id, entry_id)
        return _JSON({"data": to_wire(job.item_model(item))})

    # --- admin (server mode) ------------------------------------------------------------------

    async def _admin_company(self, request: Request) -> Response:
        params = _admin_params(_CompanyParams, await _json_body(request, empty={}))
        try:
            company = self.add_company(**params.model_dump())
        except ValueError as error:
            raise bad_request(str(error)) from None
        return _JSON(
            {
                "id": company.id,
                "name": company.name,
                "walletCurrency": company.wallet_currency,
                "apiKey": company.api_key,
            },
            status_code=201,
        )

    async def _admin_export(self, request: Request) -> Response:
        params = _admin_params(_QueueExportParams, await _json_body(request, empty={}))
        company_id = request.path_params["companyId"]
        if company_id not in self.store.companies:
            raise ApiError(404, "COMPANY_NOT_FOUND", f"No company {company_id} in this sandbox.")
        try:
            job = self.queue_export(company_id, **params.model_dump())
        except ValueError as error:
            raise bad_request(str(error)) from None
        return _JSON({"data": to_wire(job)}, status_code=201)

    async def _admin_add_fault(self, request: Request) -> Response:
        params = _admin_params(_FaultParams, await _json_body(request))
        try:
            armed = self.add_fault(FaultRule(**params.model_dump()))
        except (ValueError, re.error) as error:
            raise bad_request(str(error)) from None
        return _JSON(asdict(armed.rule), status_code=201)

    async def _admin_clear_faults(self, request: Request) -> Response:
        self.clear_faults()
        return Response(status_code=204)

    async def _admin_state(self, request: Request) -> Response:
        self.store.refresh()
        companies = [
            {
                "id": c.id,
                "name": c.name,
                "walletCurrency": c.wallet_currency,
                "contraAccountsMapped": c.contra_accounts_mapped,
            }
            for c in self.store.companies.values()
        ]
        jobs = [
            {**to_wire(j.to_model()), "itemCounts": j.status_counts()}
            for j in sorted(self.store.jobs.values(), key=lambda j: j.seq)
        ]
        faults = [{**asdict(f.rule), "seen": f.seen, "hits": f.hits} for f in self.faults.faults]
        return _JSON(
            {
                "companies": companies,
                "jobs": jobs,
                "faults": faults,
                "requests": len(self.requests),
            }
        )


# --- helpers ----------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def _rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        codes.RATE_LIMITED,
        f"Rate limit exceeded; retry after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
    )


async def _json_body(request: Request, empty: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        if empty is not None:
            return empty
        raise bad_request("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the request body is not valid JSON") from None


def _admin_params(model: type[_M], body: Any) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise bad_request(str(error)) from None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _render(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.raw_headers), bytes(response.body)


async def _drop(send: Send, when: str) -> None:
    """Start a response and stop: over HTTP the server closes the connection mid-response; the
    in-process transport reads the header and raises the matching httpx error."""
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-length", b"64"), (DROP_HEADER.encode(), when.encode())],
        }
    )
