"""Async client of the Pleo Export API v3.

:class:`PleoClient` wraps an ``httpx.AsyncClient`` and adds what every call to Pleo needs:

* **Budget.** A shared :class:`~pleo_export.pleo.ratelimit.RequestBudget` caps the requests
  that start in any sliding window (500 per minute by default; Pleo's limit is 600). Every
  request sent to the API origin takes a slot, retries, redirect hops and the auth flow's
  second attempt included. Attachment downloads from other hosts (Pleo's file storage) do
  not count; they have their own cap on downloads in flight (``download_concurrency``).
* **Retries.** :class:`~pleo_export.pleo.ratelimit.RetryPolicy` backs off on 429, 5xx,
  timeouts and transport errors, honouring ``Retry-After`` (which also pauses the whole
  budget). Other 4xx answers are never retried.
* **Typed results.** 2xx bodies are validated into :mod:`pleo_export.pleo.models`; a body that
  does not fit raises :class:`~pleo_export.pleo.errors.ResponseSchemaError` naming the field.
  Error bodies (``ExceptionInfo``) go through :func:`~pleo_export.pleo.errors.error_for`.
* **Hygiene.** Credentials are applied only to API requests (never to attachment downloads,
  whose URLs are pre-signed), redirects to another host are refused, and logs carry no
  headers, credentials, bodies or query strings.
* **Attachment URLs.** Only absolute ``https`` URLs on public hosts are downloaded; plain
  ``http`` and private, loopback or link-local addresses only for hosts allowed explicitly
  (``download_hosts``, plus the base URL's own host). Each download has a total deadline on
  top of the per-read timeout, so a server trickling bytes cannot hold it forever.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from pleo_export.pleo.errors import (
    PleoApiError,
    ResponseSchemaError,
)
from pleo_export.pleo.models import (
    CreateExportJob,
    CreateExportJobEvent,
    ExportJob,
    ExportJobEventType,
    ExportJobFailureReasonType,
    ExportJobItem,
    ExportJobItemStatus,
    ExportJobItemUpdateResult,
    ExportJobStatus,
    UpdateExportJobItem,
    to_wire,
)
from pleo_export.pleo.transport import (
    DOWNLOAD_ENDPOINT,
    ENDPOINT_EXTENSION,
    AttachmentTooLarge,
    ClientStats,
    ModelT,
    PleoTransport,
    RedirectRefused,
    clip,
    data_of,
    host_key,
    is_internal_host,
    loggable,
    origin,
)

__all__ = [
    "MAX_ITEMS_PER_UPDATE",
    "PRODUCTION_URL",
    "STAGING_URL",
    "AttachmentTooLarge",
    "ClientStats",
    "DownloadRefused",
    "DownloadTimedOut",
    "PleoClient",
    "PleoTransport",
    "RedirectRefused",
]

PRODUCTION_URL = "https://external.pleo.io"
STAGING_URL = "https://external.staging.pleo.io"

MAX_ITEMS_PER_UPDATE = 100
"""Pleo rejects a PUT of more job items than this with 413 ``EXPORT_JOB_ITEMS_UPDATE_LIMIT``."""


class DownloadRefused(PleoApiError):
    """An attachment URL that is not fetched: not an absolute ``https`` URL, or a plain-``http``
    or private-address host that is not allowed. Nothing was sent."""


class DownloadTimedOut(PleoApiError):
    """A download (all its attempts together) did not finish within its total deadline."""


class PleoClient(PleoTransport):
    """Async client of the Pleo Export API v3.

    Use it as an async context manager; it owns its ``httpx.AsyncClient``::

        async with PleoClient(PRODUCTION_URL, ApiKeyAuth(key)) as client:
            jobs = await client.list_jobs(company_id, [ExportJobStatus.PENDING])

    ``transport`` replaces the network (the sandbox serves Pleo in process); ``clock`` replaces
    the event loop's clock for the budget, the backoff and the timings in the logs.
    """

    # --- export jobs -------------------------------------------------------------------------

    async def list_jobs(
        self, company_id: str | None, statuses: Sequence[ExportJobStatus]
    ) -> list[ExportJob]:
        """All export jobs (every page) of ``company_id`` whose status is one of ``statuses``.

        ``company_id`` may be ``None`` for a company-level credential; an organisation-level
        credential must name the company. An empty ``statuses`` lists jobs of any status.
        """
        params: list[tuple[str, str]] = []
        if company_id is not None:
            params.append(("company_id", company_id))
        params.extend(("statuses", ExportJobStatus(s).value) for s in statuses)
        jobs: list[ExportJob] = []
        async for page in self._pages("/v3/export-jobs", "GET /v3/export-jobs", params):
            jobs.extend(self._validate_list(ExportJob, page, "GET /v3/export-jobs"))
        return jobs

    async def get_job(self, job_id: str) -> ExportJob:
        """One export job; :class:`~pleo_export.pleo.errors.NotFound` if Pleo does not know it."""
        endpoint = "GET /v3/export-jobs/{jobId}"
        body = await self._call("GET", f"/v3/export-jobs/{_segment(job_id)}", endpoint)
        return self._validate(ExportJob, data_of(body, endpoint), endpoint, "data")

    async def create_job(self, request: CreateExportJob) -> ExportJob:
        """Create an export job (normally the Pleo web app does this).

        Raises :class:`~pleo_export.pleo.errors.ExportAlreadyInProgress` (409) when the company
        has an unfinished job and :class:`~pleo_export.pleo.errors.MissingContraAccounts` (400).
        """
        endpoint = "POST /v3/export-jobs"
        body = await self._call("POST", "/v3/export-jobs", endpoint, json_body=to_wire(request))
        return self._validate(ExportJob, data_of(body, endpoint), endpoint, "data")

    async def send_event(
        self,
        job_id: str,
        event: ExportJobEventType,
        *,
        failure_reason: str | None = None,
        failure_reason_type: ExportJobFailureReasonType | None = None,
    ) -> None:
        """Post a job event (``started``, ``completed``, ``completed_with_errors``, ``failed``).

        Pleo documents ``failure_reason``/``failure_reason_type`` for ``failed`` only.

        Like every call, this one is retried after a timeout or a transport error, although
        the first attempt may have reached Pleo. A retried ``started`` can therefore answer
        422 :class:`~pleo_export.pleo.errors.InvalidJobStatusChange` although the job did
        start; the caller reconciles that by reading the job (the engine does).
        """
        endpoint = "POST /v3/export-job-events"
        payload = CreateExportJobEvent(
            job_id=job_id,
            event=event,
            failure_reason=failure_reason,
            failure_reason_type=failure_reason_type,
        )
        # 202 with no body, or a plain-text confirmation: nothing to parse.
        await self._call(
            "POST", "/v3/export-job-events", endpoint, json_body=to_wire(payload), parse=False
        )

    # --- export job items (control layer) ----------------------------------------------------

    async def iter_job_items(
        self, job_id: str, *, status: ExportJobItemStatus | None = None
    ) -> AsyncIterator[list[ExportJobItem]]:
        """The job's items, one list per page, following cursors to the last page."""
        endpoint = "GET /v3/export-jobs/{jobId}/items"
        params: list[tuple[str, str]] = []
        if status is not None:
            params.append(("status", ExportJobItemStatus(status).value))
        path = f"/v3/export-jobs/{_segment(job_id)}/items"
        async for page in self._pages(path, endpoint, params):
            yield self._validate_list(ExportJobItem, page, endpoint)

    async def update_items(
        self, job_id: str, updates: Sequence[UpdateExportJobItem]
    ) -> ExportJobItemUpdateResult:
        """Report the outcome of up to 100 items in one PUT.

        Raises ``ValueError`` without sending anything for more than 100 updates. An empty
        ``updates`` sends nothing and returns an empty result. Per-item problems come back in
        the result's ``errors`` with a 200.

        Like every call, this one is retried after a timeout or a transport error; setting
        the same outcome twice is harmless, and a job that finished in between answers 422
        :class:`~pleo_export.pleo.errors.JobStatusUnprocessable`.
        """
        if len(updates) > MAX_ITEMS_PER_UPDATE:
            raise ValueError(
                f"Pleo accepts at most {MAX_ITEMS_PER_UPDATE} item updates per call, "
                f"got {len(updates)}"
            )
        if not updates:
            return ExportJobItemUpdateResult(data=[], errors=[])
        endpoint = "PUT /v3/export-jobs/{jobId}/items"
        body = await self._call(
            "PUT",
            f"/v3/export-jobs/{_segment(job_id)}/items",
            endpoint,
            json_body=[to_wire(update) for update in updates],
        )
        return self._validate(ExportJobItemUpdateResult, body, endpoint, "")

    async def get_job_item(self, company_id: str, accounting_entry_id: str) -> ExportJobItem:
        """The latest job item of one accounting entry (``GET /v3/export-job-items``).

        Raises :class:`~pleo_export.pleo.errors.NotFound` (``EXPORT_ENTRY_NOT_FOUND``).
        """
        endpoint = "GET /v3/export-job-items"
        params = [("company_id", company_id), ("accounting_entry_id", accounting_entry_id)]
        body = await self._call("GET", "/v3/export-job-items", endpoint, params=params)
        return self._validate(ExportJobItem, data_of(body, endpoint), endpoint, "data")

    # --- export items (data layer) -----------------------------------------------------------

    async def iter_export_items(self, job_id: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The job's export items as raw wire dicts, one list per page.

        Only the envelope is validated here (``data`` is a list of objects). The caller
        validates each item into :class:`~pleo_export.pleo.models.ExportItem` on its own, so
        one malformed item does not sink the page it came in.
        """
        endpoint = "GET /v3/export-items"
        async for page in self._pages("/v3/export-items", endpoint, [("job_id", job_id)]):
            for index, item in enumerate(page):
                if not isinstance(item, dict):
                    raise ResponseSchemaError(
                        f"{endpoint}: response field 'data.{index}' is not an object"
                    )
            yield page

    # --- attachments -------------------------------------------------------------------------

    async def download(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """Download an attachment (an export item's ``files[].url``) with the usual retries.

        The URL must be absolute ``https`` on a public host; plain ``http`` and private,
        loopback or link-local addresses are fetched only from an allowed host
        (``download_hosts`` or the base URL's host). Anything else, relative and ``file:``
        URLs included, raises :class:`DownloadRefused` without sending a request. Pleo
        credentials are never sent (file URLs are pre-signed). The body is streamed and the
        transfer stops with :class:`AttachmentTooLarge` once it passes ``max_bytes``, and with
        :class:`DownloadTimedOut` once the whole download (every attempt) has taken
        ``download_timeout`` seconds. At most ``download_concurrency`` downloads run at once
        (the others wait their turn); they do not count against the API's request budget
        unless the file is on the API's own origin.
        """
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        target = self._check_download_url(url)
        request = self._http.build_request(
            "GET",
            target,
            headers={"Accept": "*/*"},
            extensions={ENDPOINT_EXTENSION: DOWNLOAD_ENDPOINT},
        )
        deadline = self._download_timeout if self._download_timeout is not None else math.inf
        # The deadline starts once a download slot is free: waiting in line is not the
        # server's slowness.
        async with self.download_slots:
            with anyio.move_on_after(deadline) as scope:
                _, body = await self._send(
                    request, DOWNLOAD_ENDPOINT, auth=None, max_bytes=max_bytes
                )
                return body
        assert scope.cancelled_caught
        raise DownloadTimedOut(
            f"download {loggable(target)} did not finish within {deadline:g} s "
            "(pleo.download_timeout)"
        )

    def _check_download_url(self, url: str) -> httpx.URL:
        """``url`` parsed, if it may be downloaded; else :class:`DownloadRefused`."""
        shown = clip(url.split("?", 1)[0])
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise DownloadRefused(f"receipt URL {shown!r} is not a valid URL") from None
        if not target.is_absolute_url or target.scheme not in ("https", "http") or not target.host:
            raise DownloadRefused(
                f"receipt URL {shown!r} is not an absolute https URL; it was not fetched"
            )
        port = origin(target)[2]
        if len(target.host) > 253 or (port is not None and not 0 < port < 65536):
            raise DownloadRefused(f"receipt URL {shown!r} has an invalid host or port")
        host = host_key(target.host, port)
        allowed = host in self._download_hosts or target.host in self._download_hosts
        if target.scheme == "http" and not allowed:
            raise DownloadRefused(
                f"receipt URL {clip(loggable(target))!r} is plain http to a host that is not "
                "allowed (pleo.receipt_hosts); it was not fetched"
            )
        if is_internal_host(target.host) and not allowed:
            raise DownloadRefused(
                f"receipt URL {clip(loggable(target))!r} points at a private, loopback or "
                "link-local address that is not allowed (pleo.receipt_hosts); it was not fetched"
            )
        return target

    @staticmethod
    def _validate_list(model: type[ModelT], values: Iterable[Any], endpoint: str) -> list[ModelT]:
        result: list[ModelT] = []
        for index, value in enumerate(values):
            result.append(PleoClient._validate(model, value, endpoint, f"data.{index}"))
        return result


# --- helpers -------------------------------------------------------------------------------


def _segment(value: str) -> str:
    """Quote a path parameter so it stays one path segment."""
    if not value:
        raise ValueError("a path parameter must not be empty")
    return quote(value, safe="")
