"""Typed errors of the Pleo Export API client.

Every error raised by :class:`~pleo_export.pleo.client.PleoClient` derives from
:class:`PleoApiError`. Errors answered by Pleo carry the HTTP status and the spec's error
``type`` code (``ExceptionInfo.type``); the code constants below are the ones the spec names.
"""

from __future__ import annotations

EXPORT_NOT_FOUND = "EXPORT_NOT_FOUND"
EXPORT_ALREADY_IN_PROGRESS = "EXPORT_ALREADY_IN_PROGRESS"
EXPORT_JOB_ITEMS_UPDATE_LIMIT = "EXPORT_JOB_ITEMS_UPDATE_LIMIT"
EXPORT_JOB_STATUS_UNPROCESSABLE = "EXPORT_JOB_STATUS_UNPROCESSABLE"
INVALID_EXPORT_JOB_STATUS_CHANGE = "INVALID_EXPORT_JOB_STATUS_CHANGE"
MISSING_CONTRA_ACCOUNTS = "MISSING_CONTRA_ACCOUNTS"
EXPORT_ENTRY_NOT_FOUND = "EXPORT_ENTRY_NOT_FOUND"
# Per-item codes in the ``errors`` list of a PUT response.
ACCOUNTING_ENTRY_DOES_NOT_EXIST = "ACCOUNTING_ENTRY_DOES_NOT_EXIST"
EXPORT_ENTRY_STATUS_UPDATE_FAILED = "EXPORT_ENTRY_STATUS_UPDATE_FAILED"
ACCOUNTING_ENTRY_UPDATE_FAILED = "ACCOUNTING_ENTRY_UPDATE_FAILED"
# Codes the spec leaves undocumented; the sandbox uses them and the client recognises them.
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
RATE_LIMITED = "RATE_LIMITED"
BAD_REQUEST = "BAD_REQUEST"


class PleoApiError(Exception):
    """Base class of every error from the Pleo API client."""


class PleoHttpError(PleoApiError):
    """Pleo answered with an error status."""

    def __init__(self, status_code: int, code: str | None, message: str, *, method: str, url: str):
        self.status_code = status_code
        self.code = code
        self.message = message
        self.method = method
        self.url = url
        label = f"{code} " if code else ""
        super().__init__(f"{method} {url} -> {status_code} {label}{message}".rstrip())


class NotFound(PleoHttpError):
    """404: the job (``EXPORT_NOT_FOUND``) or entry (``EXPORT_ENTRY_NOT_FOUND``) is unknown."""


class ExportAlreadyInProgress(PleoHttpError):
    """409 ``EXPORT_ALREADY_IN_PROGRESS``: the company already has an unfinished job."""


class ItemsUpdateLimitExceeded(PleoHttpError):
    """413 ``EXPORT_JOB_ITEMS_UPDATE_LIMIT``: more than 100 items in one update."""


class InvalidJobStatusChange(PleoHttpError):
    """422 ``INVALID_EXPORT_JOB_STATUS_CHANGE``: the event does not fit the job's status."""


class JobStatusUnprocessable(PleoHttpError):
    """422 ``EXPORT_JOB_STATUS_UNPROCESSABLE``: the job is finished (completed, failed, expired)."""


class MissingContraAccounts(PleoHttpError):
    """400 ``MISSING_CONTRA_ACCOUNTS``: contra accounts are not mapped in Pleo's settings."""


class AuthenticationFailed(PleoHttpError):
    """401: the API key or access token was refused."""


class PermissionDenied(PleoHttpError):
    """403: the credential lacks a scope (``export-jobs:read``, ``export-jobs:write``, ...)."""


class BadRequest(PleoHttpError):
    """400 (other than ``MISSING_CONTRA_ACCOUNTS``): the request itself is wrong."""


class RateLimited(PleoHttpError):
    """429 that outlasted the retry budget."""


class ServerError(PleoHttpError):
    """5xx that outlasted the retry budget."""


class PleoUnavailable(PleoApiError):
    """Pleo could not be reached (connection refused or reset, timeout) after every retry."""


class ResponseSchemaError(PleoApiError):
    """Pleo answered 2xx with a body that does not match the Export API schema."""


_BY_CODE: dict[str, type[PleoHttpError]] = {
    EXPORT_NOT_FOUND: NotFound,
    EXPORT_ENTRY_NOT_FOUND: NotFound,
    EXPORT_ALREADY_IN_PROGRESS: ExportAlreadyInProgress,
    EXPORT_JOB_ITEMS_UPDATE_LIMIT: ItemsUpdateLimitExceeded,
    INVALID_EXPORT_JOB_STATUS_CHANGE: InvalidJobStatusChange,
    EXPORT_JOB_STATUS_UNPROCESSABLE: JobStatusUnprocessable,
    MISSING_CONTRA_ACCOUNTS: MissingContraAccounts,
}

_BY_STATUS: dict[int, type[PleoHttpError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: ExportAlreadyInProgress,
    413: ItemsUpdateLimitExceeded,
    429: RateLimited,
}


def error_for(
    status_code: int, code: str | None, message: str, *, method: str, url: str
) -> PleoHttpError:
    """Build the most specific error class for a Pleo error response."""
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = ServerError if status_code >= 500 else _BY_STATUS.get(status_code, PleoHttpError)
    return cls(status_code, code, message, method=method, url=url)
