"""The handlers of Pleo's v3 export endpoints (authorisation, then the rules in
:mod:`pleo_export_sandbox.store`), and the sandbox's signed file URLs."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pleo_export.pleo import errors as codes
from pleo_export.pleo.models import (
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
    to_wire,
)
from pleo_export_sandbox.config import (
    FILE_PLACEHOLDER,
    SandboxConfig,
)
from pleo_export_sandbox.files import render_file
from pleo_export_sandbox.oauth import OAuthServer
from pleo_export_sandbox.paging import RateLimiter, paginate
from pleo_export_sandbox.records import (
    ApiError,
    Credential,
    JobState,
    bad_request,
    job_not_found,
)
from pleo_export_sandbox.store import Store, is_uuid
from pleo_export_sandbox.wire import (
    JsonResponse,
    Query,
    enum_value,
    item_update,
    json_body,
    page_body,
    parse_page_request,
    rate_limited,
)


class ExportApi:
    """Pleo's v3 export endpoints and the signed file URLs, mixed into
    :class:`~pleo_export_sandbox.app.Sandbox` (which sets these attributes)."""

    config: SandboxConfig
    store: Store
    rate_limiter: RateLimiter
    oauth: OAuthServer
    base_url: str
    files_base_url: str
    _file_secret: bytes

    # --- files --------------------------------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return hmac.new(self._file_secret, payload.encode(), hashlib.sha256).hexdigest()[:24]

    def file_url(self, file_id: str) -> str:
        """A URL for a generated file on the files host, valid ``file_url_ttl`` seconds from
        now."""
        expires = math.floor(self.store.now().timestamp()) + self.config.file_url_ttl
        payload = f"{file_id}.{expires}"
        return f"{self.files_base_url}/_sandbox/files/{payload}.{self._sign(payload)}"

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
            content, mime = render_file(file_id)
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

    # --- authorisation ------------------------------------------------------------------------

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
            raise rate_limited(wait)
        if scope_name not in credential.scopes:
            raise ApiError(
                403,
                codes.FORBIDDEN,
                f"The credential lacks the scope {scope_name} needed for "
                f"{request.method} {request.url.path}.",
            )
        return credential

    @staticmethod
    def _company_param(query: Query, credential: Credential) -> str:
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
        query = Query(request)
        company_id = self._company_param(query, credential)
        statuses: list[ExportJobStatus] = []
        for value in query.all("statuses"):
            for part in value.split(","):
                statuses.append(
                    ExportJobStatus(
                        enum_value(part.strip(), (s.value for s in ExportJobStatus), "statuses")
                    )
                )
        page_request, info = parse_page_request(query, self.config)
        jobs = self.store.list_jobs(company_id, statuses)
        page = paginate(jobs, lambda j: j.seq, page_request)
        parameters: dict[str, list[str]] = {"company_id": [company_id]}
        if statuses:
            parameters["statuses"] = [s.value for s in statuses]
        data = [to_wire(j.to_model()) for j in page.elements]
        return JsonResponse(page_body(page, data, info, parameters))

    async def _create_job(self, request: Request, credential: Credential) -> Response:
        body = await json_body(request)
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
        return JsonResponse({"data": to_wire(job.to_model())}, status_code=201)

    async def _get_job(self, request: Request, credential: Credential) -> Response:
        job = self._job_for(request.path_params["jobId"], credential)
        return JsonResponse({"data": to_wire(job.to_model())})

    async def _create_event(self, request: Request, credential: Credential) -> Response:
        body = await json_body(request)
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
            enum_value(body.get("event"), (e.value for e in ExportJobEventType), "event")
        )
        reason = body.get("failureReason")
        if reason is not None and not isinstance(reason, str):
            raise bad_request(f"failureReason must be a string, got {reason!r}")
        reason_type = body.get("failureReasonType")
        if reason_type is not None:
            reason_type = enum_value(
                reason_type, (r.value for r in ExportJobFailureReasonType), "failureReasonType"
            )
        job = self._job_for(job_id, credential)
        self.store.apply_event(job, event, reason, reason_type)
        return Response(status_code=202)

    async def _list_job_items(self, request: Request, credential: Credential) -> Response:
        query = Query(request)
        status_value = query.one("status")
        status = None
        if status_value is not None:
            status = ExportJobItemStatus(
                enum_value(status_value, (s.value for s in ExportJobItemStatus), "status")
            )
        page_request, info = parse_page_request(query, self.config)
        job = self._job_for(request.path_params["jobId"], credential)
        items = self.store.job_items(job, status)
        page = paginate(items, lambda i: i.seq, page_request)
        parameters = {"status": [status.value]} if status else {}
        data = [to_wire(job.item_model(i)) for i in page.elements]
        return JsonResponse(page_body(page, data, info, parameters))

    async def _update_job_items(self, request: Request, credential: Credential) -> Response:
        body = await json_body(request)
        if not isinstance(body, list):
            raise bad_request("the body must be a JSON array of UpdateExportJobItemV3 objects")
        if len(body) > 100:
            raise ApiError(
                413,
                codes.EXPORT_JOB_ITEMS_UPDATE_LIMIT,
                f"Number of items to update is more than 100 ({len(body)}).",
            )
        updates = [item_update(element, n) for n, element in enumerate(body)]
        job = self._job_for(request.path_params["jobId"], credential)
        updated, errors = self.store.update_items(job, updates)
        return JsonResponse(
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
        query = Query(request)
        job_id = query.uuid("job_id", required=True)
        assert job_id is not None
        page_request, info = parse_page_request(query, self.config)
        job = self._job_for(job_id, credential)
        entries = self.store.export_entries(job)
        page = paginate(entries, lambda e: e[0], page_request)
        data = [self._render_item(entry) for _, entry in page.elements]
        return JsonResponse(page_body(page, data, info, {"job_id": [job_id]}))

    async def _find_job_item(self, request: Request, credential: Credential) -> Response:
        query = Query(request)
        company_id = self._company_param(query, credential)
        entry_id = query.uuid("accounting_entry_id", required=True)
        assert entry_id is not None
        job, item = self.store.find_job_item(company_id, entry_id)
        return JsonResponse({"data": to_wire(job.item_model(item))})
