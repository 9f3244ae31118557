"""The sandbox's OAuth 2.0 authorization server: Pleo's partner-app install flow, simulated.

Pleo documents (reference §1.3) an Authorization Code grant with PKCE (``S256`` only), client
authentication at the token endpoint by HTTP Basic ``client_id:client_secret``, and a refresh
grant that returns a new access token *and a new refresh token*, after which the old ones are
worthless; reusing a spent refresh token invalidates every active refresh token of that
authorisation (replay protection). Tokens are opaque.

:class:`OAuthServer` serves, on the sandbox's origin:

``GET /oauth/authorize``
    Validates the request, then "the user approves" at once (``auto_approve``) and the answer
    is a ``302`` to ``redirect_uri`` with ``code`` and ``state``. With ``auto_approve`` off the
    user "declines": ``error=access_denied``.
``POST /oauth/token``
    ``grant_type=authorization_code`` (single-use codes, exact ``redirect_uri``, PKCE S256) and
    ``grant_type=refresh_token`` (rotation, reuse detection revoking the whole authorisation).

Access tokens it issues are accepted by the sandbox's Export API as ``Authorization: Bearer``
until they expire (``access_token_ttl`` seconds on the sandbox clock), are rotated away or
their authorisation is revoked. Admin endpoints ``POST /_sandbox/oauth/clients`` and
``POST /_sandbox/oauth/expire`` register a client and expire every access token.

Where Pleo is silent the sandbox chooses; :data:`SANDBOX_OAUTH_DEVIATIONS` lists the choices.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pleo_export_sandbox.records import ALL_SCOPES, Credential

if TYPE_CHECKING:
    from pleo_export_sandbox.config import SandboxHost

__all__ = [
    "AUTHORIZE_PATH",
    "SANDBOX_OAUTH_DEVIATIONS",
    "TOKEN_PATH",
    "Authorisation",
    "OAuthClient",
    "OAuthConfig",
    "OAuthServer",
    "TokenCall",
]

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
"""RFC 7636 and Pleo's docs: 43 to 128 characters of ``[A-Za-z0-9-._~]``."""
CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9\-_]{43}$")
"""An S256 challenge: base64url of a SHA-256 digest, without padding."""

SANDBOX_OAUTH_DEVIATIONS: Mapping[str, str] = {
    "error body": "Errors use RFC 6749's {error, error_description}; Pleo documents no body.",
    "dead refresh token": "A spent, revoked, expired or unknown refresh token answers 400 with "
    "error 'invalid_grant' (RFC 6749). Third-party code checks for 'invalid_refresh_token'; "
    "set OAuthConfig.refresh_error to answer that instead.",
    "old access tokens": "A refresh revokes the access tokens issued before it at once (Pleo "
    "says clients must throw them away; whether Pleo still accepts them is not documented).",
    "client authentication": "HTTP Basic (Pleo's docs) or client_id and client_secret in the "
    "form body (Pleo's sample) are both accepted; both at once is 400 invalid_request.",
    "code reuse": "Exchanging a code twice is 400 invalid_grant and revokes the authorisation "
    "the first exchange created (RFC 6749 §4.1.2 recommends it).",
    "lifetimes": "Access tokens live access_token_ttl seconds (default 3600; Pleo: short-lived, "
    "value undocumented), refresh tokens refresh_token_ttl (default 60 days; Pleo: at least 60 "
    "days), codes code_ttl (default 600).",
    "required parameters": "redirect_uri, scope, code_challenge and code_challenge_method=S256 "
    "are required on /oauth/authorize; state is optional and echoed.",
    "consent": "The user approves at once for the client's company (auto_approve), or declines "
    "(access_denied) when auto_approve is off.",
    "refresh scope": "A refresh grant may narrow the scope with `scope`; widening it is 400 "
    "invalid_scope.",
}
"""Choices the sandbox makes where Pleo's OAuth documentation is silent (open question 15)."""


@dataclass
class OAuthConfig:
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 60 * 86_400
    code_ttl: int = 600
    auto_approve: bool = True
    refresh_error: str = "invalid_grant"
    """The ``error`` answered for a dead refresh token (see :data:`SANDBOX_OAUTH_DEVIATIONS`)."""


@dataclass(frozen=True)
class OAuthClient:
    """A registered partner app; consent on the sandbox is given by ``company_id``."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    company_id: str

    def __repr__(self) -> str:
        return (
            f"OAuthClient(client_id={self.client_id!r}, client_secret='**********', "
            f"redirect_uris={self.redirect_uris!r}, company_id={self.company_id!r})"
        )


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: frozenset[str]
    company_id: str
    expires_at: float
    used: bool = False
    authorisation_id: str | None = None


@dataclass
class Authorisation:
    """One installation of a client by a company: the family of tokens refreshes chain."""

    id: str
    client_id: str
    company_id: str
    scopes: frozenset[str]
    refresh_token: str | None
    """The one refresh token of this family that may be used now."""
    refresh_expires_at: float
    access_tokens: dict[str, float] = field(default_factory=dict)
    """Live access tokens and the clock reading at which each expires."""
    spent: set[str] = field(default_factory=set)
    """Refresh tokens already exchanged; presenting one again revokes the family."""
    revoked: str | None = None
    """Why the family was revoked (``None`` while it is active)."""
    refreshes: int = 0

    def credential(self) -> Credential:
        return Credential(
            id=f"oauth-{self.id}",
            company_id=self.company_id,
            kind="token",
            secret="",
            scopes=self.scopes,
        )


@dataclass(frozen=True)
class TokenCall:
    """One request to the token endpoint, as tests see it (no secrets)."""

    grant_type: str
    status: int
    error: str | None
    authorisation_id: str | None
    at: float


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> Response:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.error == "invalid_client":
            headers["WWW-Authenticate"] = 'Basic realm="Pleo"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


class _ClientParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redirect_uris: list[str]
    company_id: str | None = None
    scopes: list[str] | None = None
    client_id: str | None = None
    client_secret: str | None = None


def s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _single(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    if not found:
        return None
    if len(found) > 1:
        raise OAuthError(400, "invalid_request", f"parameter {name} must be given once")
    return found[0]


def _required(values: dict[str, list[str]], name: str) -> str:
    value = _single(values, name)
    if not value:
        raise OAuthError(400, "invalid_request", f"parameter {name} is required")
    return value


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class OAuthServer:
    """Pleo's OAuth endpoints on the sandbox (see the module docstring)."""

    def __init__(self, sandbox: SandboxHost, config: OAuthConfig | None = None) -> None:
        self.sandbox = sandbox
        self.config = config or OAuthConfig()
        self.clients: dict[str, OAuthClient] = {}
        self.authorisations: dict[str, Authorisation] = {}
        self.token_calls: list[TokenCall] = []
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, str] = {}
        """Access token -> authorisation id."""
        self._refresh: dict[str, str] = {}
        """Refresh token (active or spent) -> authorisation id."""
        self._numbers = 0

    # --- Python API ---------------------------------------------------------------------------

    def register_client(
        self,
        redirect_uris: Iterable[str],
        *,
        company_id: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> OAuthClient:
        """Register a partner app whose installs are approved by ``company_id`` (default: the
        sandbox's first company)."""
        companies = self.sandbox.store.companies
        if company_id is None:
            if not companies:
                raise ValueError("the sandbox has no company yet: add one before a client")
            company_id = next(iter(companies))
        self.sandbox.store.company(company_id)
        uris = tuple(redirect_uris)
        if not uris:
            raise ValueError("a client needs at least one redirect URI")
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URL")
        scope_set = frozenset(scopes)
        unknown = scope_set - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}")
        client = OAuthClient(
            client_id=client_id or f"sandbox-client-{secrets.token_hex(6)}",
            client_secret=client_secret or f"sandbox-secret-{secrets.token_urlsafe(24)}",
            redirect_uris=uris,
            scopes=scope_set,
            company_id=company_id,
        )
        if client.client_id in self.clients:
            raise ValueError(f"client {client.client_id} is already registered")
        self.clients[client.client_id] = client
        return client

    def credential_for(self, access_token: str) -> Credential | None:
        """The Export API credential of a live access token, ``None`` for any other token."""
        family_id = self._access.get(access_token)
        if family_id is None:
            return None
        family = self.authorisations[family_id]
        expires_at = family.access_tokens.get(access_token)
        if family.revoked is not None or expires_at is None or self.sandbox.clock() >= expires_at:
            return None
        return family.credential()

    def expire_access_tokens(self) -> int:
        """Make every live access token expire now (the next API call answers 401)."""
        now = self.sandbox.clock()
        count = 0
        for family in self.authorisations.values():
            for token, expires_at in family.access_tokens.items():
                if expires_at > now:
                    family.access_tokens[token] = now
                    count += 1
        return count

    def revoke(self, authorisation_id: str, reason: str = "revoked by the sandbox") -> None:
        """Revoke an authorisation: its access and refresh tokens stop working at once."""
        family = self.authorisations[authorisation_id]
        if family.revoked is None:
            family.revoked = reason
        family.access_tokens.clear()
        if family.refresh_token is not None:
            family.spent.add(family.refresh_token)
            family.refresh_token = None

    def refresh_calls(self) -> list[TokenCall]:
        return [c for c in self.token_calls if c.grant_type == "refresh_token"]

    # --- routes -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route(AUTHORIZE_PATH, self._authorize, methods=["GET"]),
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route("/_sandbox/oauth/clients", self._admin_client, methods=["POST"]),
            Route("/_sandbox/oauth/expire", self._admin_expire, methods=["POST"]),
        ]

    # --- /oauth/authorize ---------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        values = parse_qs(request.url.query, keep_blank_values=True)
        try:
            client, redirect_uri = self._authorize_client(values)
        except OAuthError as error:
            return error.response()  # never redirect to an unverified URI
        state = values.get("state", [None])[0]
        try:
            code = self._authorize_request(values, client, redirect_uri)
        except OAuthError as error:
            params = {"error": error.error, "error_description": error.description}
            if state is not None:
                params["state"] = state
            return RedirectResponse(_with_query(redirect_uri, params), status_code=302)
        params = {"code": code}
        if state is not None:
            params["state"] = state
        return RedirectResponse(_with_query(redirect_uri, params), status_code=302)

    def _authorize_client(self, values: dict[str, list[str]]) -> tuple[OAuthClient, str]:
        client_id = _required(values, "client_id")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(400, "invalid_client", "unknown client_id")
        redirect_uri = _required(values, "redirect_uri")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError(
                400,
                "invalid_request",
                "redirect_uri does not match a registered redirect URI exactly",
            )
        return client, redirect_uri

    def _authorize_request(
        self, values: dict[str, list[str]], client: OAuthClient, redirect_uri: str
    ) -> str:
        _single(values, "state")
        response_type = _required(values, "response_type")
        if response_type != "code":
            raise OAuthError(400, "unsupported_response_type", "response_type must be code")
        method = _single(values, "code_challenge_method")
        if method != "S256":
            raise OAuthError(400, "invalid_request", "PKCE is required: code_challenge_method=S256")
        challenge = _required(values, "code_challenge")
        if not CHALLENGE_PATTERN.match(challenge):
            raise OAuthError(
                400, "invalid_request", "code_challenge must be 43 characters of base64url"
            )
        scope = _single(values, "scope")
        if not scope:
            raise OAuthError(400, "invalid_scope", "scope is required (space separated)")
        scopes = frozenset(scope.split())
        unknown = sorted(scopes - client.scopes)
        if unknown:
            raise OAuthError(
                400, "invalid_scope", f"scopes not registered for this client: {unknown}"
            )
        if not self.config.auto_approve:
            raise OAuthError(400, "access_denied", "the user declined the installation")
        code = f"sbx-code-{secrets.token_urlsafe(24)}"
        self._codes[code] = _Code(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            challenge=challenge,
            scopes=scopes,
            company_id=client.company_id,
            expires_at=self.sandbox.clock() + self.config.code_ttl,
        )
        return code

    # --- /oauth/token -------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        grant_type = "?"
        family_ref: list[str | None] = [None]
        try:
            values = await self._form(request)
            grant_type = _required(values, "grant_type")
            client = self._authenticate(request, values)
            if grant_type == "authorization_code":
                family = self._exchange_code(values, client, family_ref)
            elif grant_type == "refresh_token":
                family = self._rotate(values, client, family_ref)
            else:
                raise OAuthError(
                    400,
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token",
                )
            body = self._issue(family)
        except OAuthError as error:
            self._record(grant_type, error.status, error.error, family_ref[0])
            return error.response()
        self._record(grant_type, 200, None, family.id)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _record(self, grant_type: str, status: int, error: str | None, family: str | None) -> None:
        self.token_calls.append(TokenCall(grant_type, status, error, family, self.sandbox.clock()))

    @staticmethod
    async def _form(request: Request) -> dict[str, list[str]]:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FORM_MEDIA_TYPE:
            raise OAuthError(400, "invalid_request", f"the body must be {FORM_MEDIA_TYPE}")
        raw = await request.body()
        try:
            return parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise OAuthError(400, "invalid_request", "the form body is not ASCII") from None

    def _authenticate(self, request: Request, values: dict[str, list[str]]) -> OAuthClient:
        header = request.headers.get("authorization")
        body_id = _single(values, "client_id")
        body_secret = _single(values, "client_secret")
        if header is not None:
            if body_secret is not None:
                raise OAuthError(
                    400,
                    "invalid_request",
                    "use one client authentication method: HTTP Basic or the form body",
                )
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                raise OAuthError(401, "invalid_client", "client authentication must be Basic")
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError(
                    401, "invalid_client", "malformed HTTP Basic credentials"
                ) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise OAuthError(401, "invalid_client", "malformed HTTP Basic credentials")
            client_id, secret = unquote(raw_id), unquote(raw_secret)
            if body_id is not None and body_id != client_id:
                raise OAuthError(
                    400, "invalid_request", "client_id in the body differs from HTTP Basic"
                )
        elif body_id is not None and body_secret is not None:
            client_id, secret = body_id, body_secret
        else:
            raise OAuthError(
                401,
                "invalid_client",
                "client authentication is required (HTTP Basic client_id:client_secret)",
            )
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client.client_secret.encode(), secret.encode()
        ):
            raise OAuthError(401, "invalid_client", "unknown client or wrong client secret")
        return client

    def _exchange_code(
        self, values: dict[str, list[str]], client: OAuthClient, family_ref: list[str | None]
    ) -> Authorisation:
        code = _required(values, "code")
        redirect_uri = _required(values, "redirect_uri")
        verifier = _required(values, "code_verifier")
        if not VERIFIER_PATTERN.match(verifier):
            raise OAuthError(
                400,
                "invalid_request",
                "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
            )
        grant = self._codes.get(code)
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "unknown authorization code")
        family_ref[0] = grant.authorisation_id
        if grant.used:
            if grant.authorisation_id is not None:
                self.revoke(grant.authorisation_id, "authorization code used twice")
            raise OAuthError(400, "invalid_grant", "the authorization code was already used")
        if self.sandbox.clock() >= grant.expires_at:
            raise OAuthError(400, "invalid_grant", "the authorization code has expired")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(
                400, "invalid_grant", "redirect_uri differs from the authorization request"
            )
        if not secrets.compare_digest(s256(verifier), grant.challenge):
            raise OAuthError(400, "invalid_grant", "code_verifier does not match code_challenge")
        grant.used = True
        self._numbers += 1
        family = Authorisation(
            id=str(self._numbers),
            client_id=client.client_id,
            company_id=grant.company_id,
            scopes=grant.scopes,
            refresh_token=None,
            refresh_expires_at=0.0,
        )
        self.authorisations[family.id] = family
        grant.authorisation_id = family.id
        family_ref[0] = family.id
        return family

    def _rotate(
        self, values: dict[str, list[str]], client: OAuthClient, family_ref: list[str | None]
    ) -> Authorisation:
        token = _required(values, "refresh_token")
        dead = self.config.refresh_error
        family_id = self._refresh.get(token)
        family = self.authorisations.get(family_id) if family_id is not None else None
        if family is None or family.client_id != client.client_id:
            raise OAuthError(400, dead, "unknown refresh token")
        family_ref[0] = family.id
        if family.revoked is not None:
            raise OAuthError(400, dead, f"the authorisation was revoked: {family.revoked}")
        if token in family.spent:
            self.revoke(family.id, "a spent refresh token was used again")
            raise OAuthError(
                400,
                dead,
                "the refresh token was already used; every token of this authorisation is "
                "now revoked",
            )
        if token != family.refresh_token:  # pragma: no cover - indexes are kept in step
            raise OAuthError(400, dead, "unknown refresh token")
        if self.sandbox.clock() >= family.refresh_expires_at:
            raise OAuthError(400, dead, "the refresh token has expired")
        scope = _single(values, "scope")
        if scope is not None:
            narrowed = frozenset(scope.split())
            if not narrowed <= family.scopes:
                raise OAuthError(400, "invalid_scope", "a refresh cannot widen the scope")
            family.scopes = narrowed
        family.spent.add(token)
        family.refresh_token = None
        family.access_tokens.clear()
        family.refreshes += 1
        return family

    def _issue(self, family: Authorisation) -> dict[str, Any]:
        now = self.sandbox.clock()
        access = f"sbx-at-{secrets.token_urlsafe(32)}"
        refresh = f"sbx-rt-{secrets.token_urlsafe(32)}"
        family.access_tokens[access] = now + self.config.access_token_ttl
        family.refresh_token = refresh
        family.refresh_expires_at = now + self.config.refresh_token_ttl
        self._access[access] = family.id
        self._refresh[refresh] = family.id
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl,
            "refresh_token": refresh,
            "scope": " ".join(sorted(family.scopes)),
        }

    # --- admin --------------------------------------------------------------------------------

    async def _admin_client(self, request: Request) -> Response:
        try:
            params = _ClientParams.model_validate_json((await request.body()) or b"{}")
            client = self.register_client(
                params.redirect_uris,
                company_id=params.company_id,
                scopes=params.scopes if params.scopes is not None else ALL_SCOPES,
                client_id=params.client_id,
                client_secret=params.client_secret,
            )
        except (ValidationError, ValueError, KeyError) as error:
            return JSONResponse({"type": "BAD_REQUEST", "message": str(error)}, status_code=400)
        return JSONResponse(
            {
                "clientId": client.client_id,
                "clientSecret": client.client_secret,
                "redirectUris": list(client.redirect_uris),
                "scopes": sorted(client.scopes),
                "companyId": client.company_id,
            },
            status_code=201,
        )

    async def _admin_expire(self, request: Request) -> Response:
        return JSONResponse({"expired": self.expire_access_tokens()})
