"""What the OAuth modules share: Pleo's endpoints and scopes, limits, the clock, the logger and
the errors. Messages never contain a token, code or secret.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Final

from pleo_export.pleo.errors import PleoApiError

__all__ = [
    "AUTHORIZE_PATH",
    "DEAD_REFRESH_TOKEN_ERRORS",
    "EXPORT_SCOPES",
    "LOGIN_COMMAND",
    "PENDING_LOGIN_TTL",
    "PRODUCTION_AUTH_URL",
    "STAGING_AUTH_URL",
    "TOKEN_PATH",
    "AuthorizationDenied",
    "OAuthError",
    "ReauthorizationRequired",
    "RefreshLockTimeout",
    "StateMismatch",
    "TokenEndpointError",
    "TokenEndpointUnavailable",
]


PRODUCTION_AUTH_URL = "https://auth.pleo.io"
STAGING_AUTH_URL = "https://auth.staging.pleo.io"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
EXPORT_SCOPES: Final = ("export-jobs:read", "export-jobs:write", "export-items:read")
"""The scopes the export lifecycle needs (Pleo's Export API scope table)."""

DEAD_REFRESH_TOKEN_ERRORS: Final = frozenset({"invalid_grant", "invalid_refresh_token"})
"""Token-endpoint ``error`` codes meaning "this refresh token will never work again".
``invalid_grant`` is RFC 6749's; ``invalid_refresh_token`` is what third-party Pleo code checks
for. Pleo documents neither (open question 15)."""

VERIFIER_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
PENDING_LOGIN_TTL = 600.0
"""Seconds a started login (its state and verifier) can be completed."""
LOGIN_COMMAND = "pleo-export auth login"
MAX_DESCRIPTION = 300

log = logging.getLogger("pleo_export.oauth")


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- errors -----------------------------------------------------------------------------------


class OAuthError(PleoApiError):
    """Base class of the OAuth errors. Messages never contain a token, code or secret."""


class TokenEndpointError(OAuthError):
    """The token endpoint refused a request (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, status: int, error: str | None, description: str | None, grant: str):
        self.status = status
        self.error = error
        self.description = description
        self.grant = grant
        detail = f": {description}" if description else ""
        hint = ""
        if error == "invalid_client":
            hint = "; check oauth.client_id and oauth.client_secret"
        super().__init__(
            f"Pleo's token endpoint refused the {grant} grant with {status} "
            f"{error or 'no error code'}{detail}{hint}"
        )


class TokenEndpointUnavailable(OAuthError):
    """The token endpoint could not be reached, failed (5xx) or answered nonsense."""


class AuthorizationDenied(OAuthError):
    """The redirect carried ``error=...`` (for example ``access_denied``) instead of a code."""


class StateMismatch(OAuthError):
    """The redirect's ``state`` is not the one this login sent, or no login is waiting."""


class RefreshLockTimeout(OAuthError):
    """Another process held the refresh lease for longer than ``lease_wait`` seconds."""


class ReauthorizationRequired(OAuthError):
    """The installation's tokens are gone or revoked; a person must install it again.

    The equivalent of Pleo's job failure reason ``authorization_failure``: nothing can be sent
    to Pleo until ``pleo-export auth login`` has been run again.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(
            f"authorization_failure: the OAuth installation {key!r} is no longer authorised "
            f"({reason}). Run `{LOGIN_COMMAND}` to install it again."
        )
