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

Where the parts live: :mod:`~pleo_export_sandbox.config` (settings, request record),
:mod:`~pleo_export_sandbox.routes` (the v3 handlers and file URLs),
:mod:`~pleo_export_sandbox.wire` (input parsing, page bodies, ASGI helpers),
:mod:`~pleo_export_sandbox.store` with :mod:`~pleo_export_sandbox.records` and
:mod:`~pleo_export_sandbox.paging` (the rules and state), :mod:`~pleo_export_sandbox.generator`
with :mod:`~pleo_export_sandbox.chart`, :mod:`~pleo_export_sandbox.amounts` and
:mod:`~pleo_export_sandbox.files` (generated items), :mod:`~pleo_export_sandbox.oauth` and
:mod:`~pleo_export_sandbox.organisations` (credentials beyond a company key).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJob,
    ExportJobItem,
    to_wire,
)
from pleo_export_sandbox import generator
from pleo_export_sandbox.chart import DEMO_CHART
from pleo_export_sandbox.config import (
    FILE_PLACEHOLDER,
    RequestRecord,
    SandboxConfig,
)
from pleo_export_sandbox.faults import ArmedFault, FaultInjector, FaultRule
from pleo_export_sandbox.masterdata_jobs import MasterDataOperations, restyle_items
from pleo_export_sandbox.masterdata_routes import MasterDataApi
from pleo_export_sandbox.masterdata_store import MasterDataStore
from pleo_export_sandbox.oauth import OAuthServer
from pleo_export_sandbox.organisations import add_organisation_key
from pleo_export_sandbox.paging import RateLimiter
from pleo_export_sandbox.records import (
    ALL_SCOPES,
    SCOPE_ITEMS_READ,
    SCOPE_JOBS_READ,
    SCOPE_JOBS_WRITE,
    ApiError,
    Company,
    Credential,
    ScheduledExport,
    bad_request,
)
from pleo_export_sandbox.routes import ExportApi
from pleo_export_sandbox.store import Store
from pleo_export_sandbox.transport import SandboxTransport, call_buffered
from pleo_export_sandbox.webhooks import Subscription, WebhookEmitter
from pleo_export_sandbox.wire import (
    CompanyParams,
    FaultParams,
    Handler,
    JsonResponse,
    QueueExportParams,
    admin_params,
    drop_connection,
    error_response,
    json_body,
    parse_json,
    rate_limited,
    read_body,
    render_response,
)

__all__ = ["FILE_PLACEHOLDER", "RequestRecord", "Sandbox", "SandboxConfig"]


class _SandboxApp:
    """The ASGI 3 callable (a class with ``async __call__``, so servers detect ASGI 3)."""

    def __init__(self, handle: ASGIApp) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send)


class Sandbox(ExportApi, MasterDataApi, MasterDataOperations):
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
        self.masterdata = MasterDataStore(self.store.now, seed=self.config.seed_master_data)
        """Vendors, tax codes, tags and API webhook subscriptions per company."""
        self._targets: dict[str, Subscription] = {}
        self.webhooks.api_subscribers = self.api_subscribers
        self.masterdata.on_vendor_created.append(self._vendor_created)
        self.requests: list[RequestRecord] = []
        self.on_exchange: Callable[[RequestRecord], None] | None = None
        self.base_url = self.config.base_url
        self.files_base_url = self.config.files_base_url
        """Where file URLs point (see :attr:`SandboxConfig.files_base_url`); the app serves
        ``/_sandbox/files/`` whatever the host, so either URL reaches it."""
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
        from_master_data: bool = False,
    ) -> ExportJob:
        """Generate ``count`` accounting entries and queue them in a new pending job, as a user
        clicking Export in Pleo would. Raises :class:`ApiError` (409) if a job is unfinished.

        ``from_master_data`` points the items' vendors, tax codes and tags at the company's
        current Vendors, Tax Code and Tags data (:func:`~pleo_export_sandbox.masterdata_jobs.
        restyle_items`) instead of the demo chart's."""
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
            from_master_data=from_master_data,
        )
        return self.create_job(
            company_id, ids, vendor_based_bookkeeping, employee_id=DEMO_CHART.people[0].id
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
        from_master_data: bool = False,
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
            from_master_data=from_master_data,
        )
        export = ScheduledExport(ids, vendor_based_bookkeeping, created_by=DEMO_CHART.people[0].id)
        job = self.store.schedule(company_id, export)
        return job.to_model() if job is not None else None

    def _generate(
        self,
        company_id: str,
        count: int,
        seed: int,
        *,
        from_master_data: bool = False,
        **options: Any,
    ) -> list[str]:
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
        if from_master_data:
            items = restyle_items(items, self.master_data(company_id), f"{company_id}:{seed}")
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
        raw_body = await read_body(receive)
        context: dict[str, Any] = {"credential_id": None}
        scope = {**scope, "sandbox": context}
        fault = self.faults.pick(method, path)
        latency = (
            self.config.file_latency
            if path.startswith("/_sandbox/files/")
            else self.config.api_latency
        )
        if latency > 0:
            await anyio.sleep(latency)  # the network's round trip (see SandboxConfig)
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
            body=parse_json(raw_body),
            response_body=parse_json(body) if "json" in content_type else None,
            credential_id=context["credential_id"],
            at=at,
            fault=fault.kind if fault is not None else None,
            response_headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
        )
        self.requests.append(record)
        if self.on_exchange is not None:
            self.on_exchange(record)
        if fault is not None and fault.kind in ("drop_before", "drop_after"):
            await drop_connection(send, "before" if fault.kind == "drop_before" else "after")
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
            return render_response(error_response(rate_limited(fault.retry_after)))
        if fault is not None and kind == "server_error":
            error = ApiError(fault.status, "SERVER_ERROR", "Injected server error (sandbox fault).")
            return render_response(error_response(error))
        return await call_buffered(self._api, scope, raw_body)

    def _build_api(self) -> Starlette:
        def api(scope_name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    credential = self._authorise(request, scope_name)
                    return await handler(request, credential)
                except ApiError as error:
                    return error_response(error)

            return endpoint

        def plain(
            handler: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except ApiError as error:
                    return error_response(error)

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
            Route(
                "/_sandbox/companies/{companyId}/vendors",
                plain(self._admin_draft_vendor),
                methods=["POST"],
            ),
            Route("/_sandbox/faults", plain(self._admin_add_fault), methods=["POST"]),
            Route("/_sandbox/faults", plain(self._admin_clear_faults), methods=["DELETE"]),
            Route("/_sandbox/state", plain(self._admin_state), methods=["GET"]),
            *self.master_data_routes(api),
            *self.oauth.routes(),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            code = "METHOD_NOT_ALLOWED" if status == 405 else "NOT_FOUND"
            message = f"{request.method} {request.url.path} is not an endpoint of this sandbox"
            return JsonResponse({"type": code, "message": message}, status_code=status)

        return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})

    # --- admin (server mode) ------------------------------------------------------------------

    async def _admin_company(self, request: Request) -> Response:
        params = admin_params(CompanyParams, await json_body(request, empty={}))
        try:
            company = self.add_company(**params.model_dump())
        except ValueError as error:
            raise bad_request(str(error)) from None
        return JsonResponse(
            {
                "id": company.id,
                "name": company.name,
                "walletCurrency": company.wallet_currency,
                "apiKey": company.api_key,
            },
            status_code=201,
        )

    async def _admin_export(self, request: Request) -> Response:
        params = admin_params(QueueExportParams, await json_body(request, empty={}))
        company_id = request.path_params["companyId"]
        if company_id not in self.store.companies:
            raise ApiError(404, "COMPANY_NOT_FOUND", f"No company {company_id} in this sandbox.")
        try:
            job = self.queue_export(company_id, **params.model_dump())
        except ValueError as error:
            raise bad_request(str(error)) from None
        return JsonResponse({"data": to_wire(job)}, status_code=201)

    async def _admin_add_fault(self, request: Request) -> Response:
        params = admin_params(FaultParams, await json_body(request))
        try:
            armed = self.add_fault(FaultRule(**params.model_dump()))
        except (ValueError, re.error) as error:
            raise bad_request(str(error)) from None
        return JsonResponse(asdict(armed.rule), status_code=201)

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
        return JsonResponse(
            {
                "companies": companies,
                "jobs": jobs,
                "faults": faults,
                "requests": len(self.requests),
            }
        )
