"""OAuth 2.0 for partner apps: Pleo's install flow and rotating refresh tokens.

A partner app that many companies install authenticates with OAuth instead of an API key
(reference §1.3). Pleo's rules, and what this module does about each:

* **Install: Authorization Code with PKCE (S256 only).** :class:`LoginFlow` makes the PKCE
  pair and a ``state``, builds the authorize URL and, once the browser comes back to the
  redirect URI, checks ``state`` and exchanges the code at the token endpoint.
  ``pleo-export auth login`` drives it, either from a pasted redirect URL or by listening once
  on a loopback redirect URI (:func:`wait_for_redirect`).
* **Client authentication** at the token endpoint is HTTP Basic ``client_id:client_secret``
  (:class:`TokenEndpoint`).
* **Rotation.** Every refresh returns a new access token *and a new refresh token*; the old
  ones are worthless at once, and presenting a spent refresh token again revokes every token
  of the installation. So refreshes must be centralised and one at a time.
  :class:`TokenManager` keeps the tokens in the state store (``get_token``/``replace_token``,
  a compare-and-swap on ``generation``) and takes the store's lease ``oauth-refresh:<key>``
  around every refresh, so across processes sharing one store exactly one refreshes and the
  others pick up its result. A refresh token is sent at most once by the process that holds
  the lease; when it is refused the installation is marked dead in the store (an empty
  refresh token), so no process ever sends it again, and :class:`ReauthorizationRequired`
  tells the user to run ``pleo-export auth login``.
* **Opaque tokens.** Nothing here parses a token; the lifetime comes from ``expires_in``.

:class:`OAuthBearerAuth` plugs the manager into
:class:`~pleo_export.pleo.auth.BearerTokenAuth`: the token is checked before every request and
refreshed shortly before it expires (``refresh_margin``), and once more after a 401.

Tokens, codes, the PKCE verifier and the client secret are never logged and never part of an
exception message; values held in memory are :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
import anyio.abc
import httpx
from pydantic import SecretStr

from pleo_export.pleo import depth
from pleo_export.pleo.auth import BearerTokenAuth
from pleo_export.pleo.errors import PleoApiError
from pleo_export.state.base import StateStore, StoredToken

__all__ = [
    "AUTHORIZE_PATH",
    "EXPORT_SCOPES",
    "PRODUCTION_AUTH_URL",
    "STAGING_AUTH_URL",
    "TOKEN_PATH",
    "AuthorizationDenied",
    "AuthorizationRequest",
    "LoginFlow",
    "OAuthBearerAuth",
    "OAuthError",
    "OAuthInstallation",
    "PkcePair",
    "ReauthorizationRequired",
    "RedirectListener",
    "RefreshLockTimeout",
    "StateMismatch",
    "TokenEndpoint",
    "TokenEndpointError",
    "TokenEndpointUnavailable",
    "TokenManager",
    "TokenSet",
    "code_challenge",
    "code_from_redirect",
    "wait_for_redirect",
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
_MAX_DESCRIPTION = 300

log = logging.getLogger("pleo_export.oauth")


def _utcnow() -> datetime:
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


# --- PKCE and the authorize URL ---------------------------------------------------------------


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url (no padding) of the SHA-256 of the verifier."""
    if not VERIFIER_CHARS.match(verifier):
        raise ValueError("a PKCE verifier is 43 to 128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PkcePair:
    verifier: SecretStr
    challenge: str

    @classmethod
    def generate(cls) -> PkcePair:
        """64 random bytes as base64url: an 86-character verifier (Pleo allows 43 to 128)."""
        verifier = secrets.token_urlsafe(64)
        return cls(SecretStr(verifier), code_challenge(verifier))


@dataclass(frozen=True)
class AuthorizationRequest:
    """A started login: the URL to open and what the redirect must be checked against."""

    url: str
    state: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: datetime


def authorize_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    challenge: str,
) -> str:
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "response_type": "code",
            "state": state,
            "code_challenge_method": "S256",
            "code_challenge": challenge,
        },
        quote_via=quote,
    )
    return f"{endpoint}?{query}"


def code_from_redirect(pasted: str, *, expected_state: str) -> SecretStr:
    """The authorization code from what the user pasted.

    ``pasted`` is the URL the browser was redirected to, or its query string, or the bare code.
    With a URL or query string, ``state`` must be the one this login sent
    (:class:`StateMismatch` otherwise) and an ``error`` parameter raises
    :class:`AuthorizationDenied`. A bare code carries no state and is taken as it is.
    """
    text = pasted.strip()
    if not text:
        raise StateMismatch("nothing was pasted: paste the whole redirect URL")
    if "://" not in text and "code=" not in text and "error=" not in text:
        return SecretStr(text)
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    values = parse_qs(query, keep_blank_values=True)
    error = values.get("error", [None])[0]
    if error is not None:
        description = values.get("error_description", [""])[0][:_MAX_DESCRIPTION]
        detail = f": {description}" if description else ""
        raise AuthorizationDenied(
            f"Pleo did not install the app ({error}{detail}); start again with `{LOGIN_COMMAND}`"
        )
    state = values.get("state", [None])[0]
    if state is None or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise StateMismatch(
            "the redirect's state does not match this login: paste the URL from the browser "
            f"window opened for the latest `{LOGIN_COMMAND}`"
        )
    codes = values.get("code", [])
    if len(codes) != 1 or not codes[0]:
        raise StateMismatch("the redirect URL has no code parameter: paste the whole URL")
    return SecretStr(codes[0])


# --- the token endpoint -----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """A token-endpoint answer. Secrets are :class:`SecretStr`; ``repr`` shows none."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_in: int
    scope: str | None
    token_type: str


class TokenEndpoint:
    """Client of Pleo's token endpoint, with HTTP Basic ``client_id:client_secret``.

    Only failures that certainly sent nothing (a refused connection, a connect timeout) are
    retried: a refresh that reached Pleo has spent its refresh token even if the answer was
    lost, and sending it again would revoke the installation.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        timeout: float = 15.0,
        connect_attempts: int = 3,
        connect_backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("the OAuth client_id is empty")
        if not client_secret.get_secret_value():
            raise ValueError("the OAuth client secret is empty")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.connect_attempts = max(1, connect_attempts)
        self.connect_backoff = connect_backoff
        """First wait (seconds) before reconnecting; it doubles, up to 5 seconds."""
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False
        )

    def __repr__(self) -> str:
        return f"TokenEndpoint(token_url={self.token_url!r}, client_id={self.client_id!r})"

    @property
    def longest_call(self) -> float:
        """An upper bound of one call's duration, retries included (sizes the refresh lease)."""
        return self.connect_attempts * (self.timeout + 1.0) + 5.0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def exchange_code(
        self, code: SecretStr, verifier: SecretStr, redirect_uri: str
    ) -> TokenSet:
        return await self._post(
            "authorization_code",
            {
                "grant_type": "authorization_code",
                "code": code.get_secret_value(),
                "redirect_uri": redirect_uri,
                "code_verifier": verifier.get_secret_value(),
                "client_id": self.client_id,
            },
        )

    async def refresh(self, refresh_token: SecretStr) -> TokenSet:
        return await self._post(
            "refresh_token",
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token.get_secret_value(),
                "client_id": self.client_id,
            },
        )

    def _basic(self) -> str:
        # RFC 6749 §2.3.1: form-encode id and secret before joining them.
        pair = f"{quote(self.client_id, safe='')}:{quote(self._secret.get_secret_value(), safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    async def _post(self, grant: str, form: dict[str, str]) -> TokenSet:
        headers = {
            "Authorization": self._basic(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        body = urlencode(form)
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = await self._http.post(self.token_url, content=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                log.debug(
                    "oauth token request not sent",
                    extra={
                        "event": "oauth.token.connect_failed",
                        "grant": grant,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                    },
                )
                if attempt >= self.connect_attempts:
                    raise TokenEndpointUnavailable(
                        f"cannot connect to the OAuth token endpoint {self.token_url} "
                        f"({type(exc).__name__}, {attempt} attempts)"
                    ) from None
                await anyio.sleep(min(self.connect_backoff * 2 ** (attempt - 1), 5.0))
                continue
            except httpx.HTTPError as exc:
                raise TokenEndpointUnavailable(
                    f"the {grant} request to {self.token_url} failed after it was sent "
                    f"({type(exc).__name__}); its outcome is unknown"
                ) from None
            break
        log.debug(
            "oauth token request",
            extra={
                "event": "oauth.token",
                "grant": grant,
                "status": response.status_code,
                "attempt": attempt,
                "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        data = _json_object(response)
        if response.status_code >= 500:
            raise TokenEndpointUnavailable(
                f"the OAuth token endpoint answered {response.status_code} to the {grant} grant"
            )
        if response.status_code != 200:
            error = data.get("error") if isinstance(data.get("error"), str) else None
            description = data.get("error_description")
            raise TokenEndpointError(
                response.status_code,
                error,
                description[:_MAX_DESCRIPTION] if isinstance(description, str) else None,
                grant,
            )
        return _token_set(data, grant)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = depth.loads(response.content)  # any depth: never a RecursionError
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _token_set(data: dict[str, Any], grant: str) -> TokenSet:
    problems = []
    access, refresh = data.get("access_token"), data.get("refresh_token")
    expires_in, token_type = data.get("expires_in"), data.get("token_type")
    scope = data.get("scope")
    if not isinstance(access, str) or not access:
        problems.append("access_token")
    if not isinstance(refresh, str) or not refresh:
        problems.append("refresh_token")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        problems.append("expires_in")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        problems.append("token_type")
    if scope is not None and not isinstance(scope, str):
        problems.append("scope")
    if problems:
        raise TokenEndpointUnavailable(
            f"the token endpoint's answer to the {grant} grant lacks a valid {', '.join(problems)}"
        )
    assert isinstance(access, str) and isinstance(refresh, str) and isinstance(expires_in, int)
    return TokenSet(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_in=expires_in,
        scope=scope,
        token_type="Bearer",  # noqa: S106 - the token type, not a token
    )


# --- the token manager ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    token: StoredToken
    refresh_at: datetime


class TokenManager:
    """The access token of one installation, kept fresh through the state store.

    ``key`` names the installation's row in the store. :meth:`access_token` is cheap while the
    token in memory is fresh; otherwise the store is read (another process may have refreshed)
    and, if needed, the token refreshed under the lease ``oauth-refresh:<key>``:

    1. take the lease, polling every ``poll_interval`` seconds for at most ``lease_wait``
       (a crashed holder's lease expires after ``lease_ttl``); while waiting, a newer token in
       the store ends the wait;
    2. re-read the token: if another process replaced it, use that one;
    3. send the refresh token once; write the new pair with a compare-and-swap on
       ``generation``; release the lease.

    A refused refresh token (or a lost compare-and-swap with nothing usable in the store)
    leaves the installation marked dead in the store and raises
    :class:`ReauthorizationRequired`.
    """

    def __init__(
        self,
        store: StateStore,
        endpoint: TokenEndpoint,
        key: str,
        *,
        refresh_margin: float = 60.0,
        lease_ttl: float | None = None,
        lease_wait: float | None = None,
        poll_interval: float = 0.1,
        clock: Callable[[], datetime] = _utcnow,
        holder: str | None = None,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must not be negative")
        self.store = store
        self.endpoint = endpoint
        self.key = key
        self.lease_name = f"oauth-refresh:{key}"
        self.refresh_margin = refresh_margin
        self._margin = refresh_margin
        self.lease_ttl = lease_ttl if lease_ttl is not None else endpoint.longest_call + 10.0
        self.lease_wait = lease_wait if lease_wait is not None else 2 * self.lease_ttl + 5.0
        self.poll_interval = poll_interval
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.refreshes = 0
        """Refresh grants this manager sent (for tests and the run log)."""
        self._cached: _Cached | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"TokenManager(key={self.key!r})"

    # --- what the auth flow calls -------------------------------------------------------------

    async def access_token(self) -> SecretStr:
        """A token to send now: refreshed first when it expires within the margin."""
        cached = self._cached
        if cached is not None and self.clock() < cached.refresh_at:
            return SecretStr(cached.token.access_token)
        async with self._lock:
            cached = self._cached
            if cached is not None and self.clock() < cached.refresh_at:
                return SecretStr(cached.token.access_token)
            stored = await self._read()
            refresh_at = self._refresh_at(stored)
            if self.clock() < refresh_at:
                self._cached = _Cached(stored, refresh_at)
                return SecretStr(stored.access_token)
            token = await self._refresh(stored, rejected=None)
            return SecretStr(token.access_token)

    async def after_rejection(self, rejected: SecretStr) -> SecretStr:
        """Pleo answered 401 to ``rejected``: a newer stored token, or a refresh."""
        async with self._lock:
            stale = rejected.get_secret_value()
            cached = self._cached
            if cached is not None and cached.token.access_token != stale:
                return SecretStr(cached.token.access_token)
            stored = await self._read()
            if stored.access_token != stale and self.clock() < stored.expires_at:
                self._cached = _Cached(stored, self._refresh_at(stored))
                return SecretStr(stored.access_token)
            log.info(
                "oauth access token refused by Pleo; refreshing",
                extra={
                    "event": "oauth.rejected",
                    "installation": self.key,
                    "generation": stored.generation,
                },
            )
            token = await self._refresh(stored, rejected=stale)
            return SecretStr(token.access_token)

    async def refresh_now(self) -> StoredToken:
        """Refresh whatever the token's age (``pleo-export auth refresh``)."""
        async with self._lock:
            stored = await self._read()
            return await self._refresh(stored, rejected=stored.access_token)

    # --- install ------------------------------------------------------------------------------

    async def install(self, tokens: TokenSet, *, sent_at: datetime) -> StoredToken:
        """Store the tokens of a fresh installation, replacing whatever was stored."""
        async with self._lock:
            for _ in range(5):
                current = await self.store.get_token(self.key)
                token = self._stored(tokens, sent_at, current.generation + 1 if current else 1)
                expected = current.generation if current is not None else None
                if await self.store.replace_token(self.key, expected, token):
                    self._learn_lifetime(tokens.expires_in)
                    self._cached = _Cached(token, self._refresh_at(token))
                    log.info(
                        "oauth installation stored",
                        extra={
                            "event": "oauth.installed",
                            "installation": self.key,
                            "generation": token.generation,
                            "expires_in": tokens.expires_in,
                            "scope": token.scope,
                        },
                    )
                    return token
            raise OAuthError(  # pragma: no cover - five writers in a row beat us
                f"could not store the tokens of installation {self.key!r}: the state store row "
                "kept changing; run the login again"
            )

    async def current(self) -> StoredToken | None:
        """The stored tokens (``None`` if never installed)."""
        return await self.store.get_token(self.key)

    # --- the refresh protocol -----------------------------------------------------------------

    async def _read(self) -> StoredToken:
        stored = await self.store.get_token(self.key)
        if stored is None:
            raise ReauthorizationRequired(self.key, "no OAuth tokens are stored for it")
        if is_dead(stored):
            raise _refused(self.key)
        return stored

    def _refresh_at(self, token: StoredToken) -> datetime:
        """When to stop using ``token``: ``refresh_margin`` seconds before it expires."""
        return token.expires_at - timedelta(seconds=self._margin)

    def _learn_lifetime(self, expires_in: int) -> None:
        """Shrink the margin to half of Pleo's token lifetime if it is longer, so a margin
        larger than the lifetime cannot make every request refresh."""
        if expires_in / 2 < self._margin:
            self._margin = expires_in / 2
            log.warning(
                "oauth.refresh_margin is longer than half of the access token lifetime; using "
                "half of the lifetime instead",
                extra={
                    "event": "oauth.margin_reduced",
                    "installation": self.key,
                    "expires_in": expires_in,
                    "refresh_margin": self.refresh_margin,
                },
            )

    def _newer(
        self, candidate: StoredToken | None, seen: StoredToken, rejected: str | None
    ) -> bool:
        """Whether ``candidate`` replaced ``seen`` and can be used now."""
        return (
            candidate is not None
            and candidate.generation != seen.generation
            and not is_dead(candidate)
            and candidate.access_token != rejected
            and self.clock() < candidate.expires_at
        )

    async def _refresh(self, seen: StoredToken, *, rejected: str | None) -> StoredToken:
        lease = await self.store.acquire_lease(self.lease_name, self.holder, self.lease_ttl)
        if lease is None:
            log.debug(
                "oauth refresh: another process is refreshing; waiting",
                extra={"event": "oauth.refresh.wait", "installation": self.key},
            )
            deadline = time.monotonic() + self.lease_wait
            while lease is None:
                await anyio.sleep(self.poll_interval * (0.5 + secrets.randbelow(1000) / 1000))
                newer = await self.store.get_token(self.key)
                if newer is not None and is_dead(newer):
                    raise _refused(self.key)
                if self._newer(newer, seen, rejected):
                    assert newer is not None
                    return self._use(newer, "another process refreshed")
                if time.monotonic() >= deadline:
                    raise RefreshLockTimeout(
                        f"waited {self.lease_wait:.0f}s for another process to finish refreshing "
                        f"the OAuth tokens of installation {self.key!r}; if no other pleo-export "
                        f"process is running, try again after {self.lease_ttl:.0f}s"
                    )
                lease = await self.store.acquire_lease(self.lease_name, self.holder, self.lease_ttl)
        try:
            current = await self._read()
            if self._newer(current, seen, rejected):
                return self._use(current, "another process refreshed")
            return await self._refresh_locked(current)
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.release_lease(lease)

    async def _refresh_locked(self, current: StoredToken) -> StoredToken:
        sent_at = self.clock()
        self.refreshes += 1
        try:
            tokens = await self.endpoint.refresh(SecretStr(current.refresh_token))
        except TokenEndpointError as error:
            if error.error not in DEAD_REFRESH_TOKEN_ERRORS:
                raise
            after = await self.store.get_token(self.key)
            if self._newer(after, current, None):  # a new login (or a writer without the lease)
                assert after is not None
                return self._use(after, "the store changed while the refresh was refused")
            log.error(
                "oauth refresh token refused; the installation must be authorised again",
                extra={
                    "event": "oauth.refresh.refused",
                    "installation": self.key,
                    "generation": current.generation,
                    "error": error.error,
                },
            )
            await self._bury(current)
            raise ReauthorizationRequired(
                self.key, f"Pleo refused its refresh token ({error.error})"
            ) from None
        token = self._stored(tokens, sent_at, current.generation + 1)
        if not await self.store.replace_token(self.key, current.generation, token):
            after = await self.store.get_token(self.key)
            log.warning(
                "oauth tokens changed in the store during a refresh",
                extra={
                    "event": "oauth.refresh.conflict",
                    "installation": self.key,
                    "generation": current.generation,
                },
            )
            if self._newer(after, current, None):
                assert after is not None
                return self._use(after, "another writer won")
            raise ReauthorizationRequired(
                self.key, "its tokens were replaced during a refresh by tokens that do not work"
            )
        self._learn_lifetime(tokens.expires_in)
        self._cached = _Cached(token, self._refresh_at(token))
        log.info(
            "oauth tokens refreshed",
            extra={
                "event": "oauth.refreshed",
                "installation": self.key,
                "generation": token.generation,
                "expires_in": tokens.expires_in,
            },
        )
        return token

    async def _bury(self, current: StoredToken) -> None:
        """Mark the installation dead, so no process sends its refresh token again."""
        tombstone = StoredToken(
            key=self.key,
            access_token="",
            refresh_token="",
            expires_at=datetime.fromtimestamp(0, UTC),
            generation=current.generation + 1,
            scope=current.scope,
        )
        await self.store.replace_token(self.key, current.generation, tombstone)
        self._cached = None

    def _use(self, token: StoredToken, why: str) -> StoredToken:
        self._cached = _Cached(token, self._refresh_at(token))
        log.debug(
            "oauth tokens taken from the store",
            extra={
                "event": "oauth.refresh.shared",
                "installation": self.key,
                "generation": token.generation,
                "reason": why,
            },
        )
        return token

    def _stored(self, tokens: TokenSet, sent_at: datetime, generation: int) -> StoredToken:
        # Counted from when the request was sent, so the token is never thought fresher than
        # it is.
        return StoredToken(
            key=self.key,
            access_token=tokens.access_token.get_secret_value(),
            refresh_token=tokens.refresh_token.get_secret_value(),
            expires_at=sent_at + timedelta(seconds=tokens.expires_in),
            generation=generation,
            scope=tokens.scope,
        )


def _refused(key: str) -> ReauthorizationRequired:
    return ReauthorizationRequired(key, "Pleo refused its refresh token, which revokes it")


def is_dead(token: StoredToken) -> bool:
    """Whether the stored row marks a revoked installation (its refresh token was refused)."""
    return not token.refresh_token


class OAuthBearerAuth(BearerTokenAuth):
    """``Authorization: Bearer`` from a :class:`TokenManager`.

    Unlike a plain provider, which :class:`BearerTokenAuth` asks once and then only after a
    401, the manager is consulted before every request (cheap while the token is fresh), so
    the token is refreshed *before* it expires; a 401 still triggers one refresh and one retry.
    """

    def __init__(self, manager: TokenManager) -> None:
        super().__init__(token_provider=manager.access_token)
        self.manager = manager

    def __repr__(self) -> str:
        return f"OAuthBearerAuth(installation={self.manager.key!r})"

    __str__ = __repr__

    async def _current_token(self) -> SecretStr:
        return await self.manager.access_token()

    async def _refresh(self, *, stale: SecretStr) -> SecretStr:
        return await self.manager.after_rejection(stale)


# --- the install flow -------------------------------------------------------------------------


class LoginFlow:
    """``pleo-export auth login``: start (authorize URL), then complete (code exchange).

    The state and the PKCE verifier of a started login are kept in the state store, next to
    the tokens (row ``<key>#login``, for :data:`PENDING_LOGIN_TTL` seconds), so a login
    started on a server can be completed by a second command with the pasted redirect URL.
    """

    def __init__(
        self,
        manager: TokenManager,
        *,
        authorize_endpoint: str,
        client_id: str,
        redirect_uri: str,
        scopes: Sequence[str],
    ) -> None:
        self.manager = manager
        self.authorize_endpoint = authorize_endpoint
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self.pending_key = f"{manager.key}#login"

    async def start(self) -> AuthorizationRequest:
        pkce = PkcePair.generate()
        state = secrets.token_urlsafe(24)
        now = self.manager.clock()
        expires_at = now + timedelta(seconds=PENDING_LOGIN_TTL)
        store = self.manager.store
        for _ in range(5):
            current = await store.get_token(self.pending_key)
            pending = StoredToken(
                key=self.pending_key,
                access_token=state,
                refresh_token=pkce.verifier.get_secret_value(),
                expires_at=expires_at,
                generation=current.generation + 1 if current else 1,
                scope=" ".join(self.scopes),
            )
            if await store.replace_token(
                self.pending_key, current.generation if current else None, pending
            ):
                break
        else:  # pragma: no cover - five concurrent logins in a row
            raise OAuthError("another login is being started at the same time; try again")
        url = authorize_url(
            self.authorize_endpoint,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scopes=self.scopes,
            state=state,
            challenge=pkce.challenge,
        )
        log.info(
            "oauth login started",
            extra={
                "event": "oauth.login.started",
                "installation": self.manager.key,
                "redirect_uri": self.redirect_uri,
            },
        )
        return AuthorizationRequest(url, state, self.redirect_uri, self.scopes, expires_at)

    async def complete(self, pasted: str) -> StoredToken:
        """Check the redirect against the started login, exchange the code, store the tokens.

        A started login can be completed once: its verifier is discarded first, so a second
        paste of the same redirect fails with :class:`StateMismatch` instead of reaching Pleo.
        """
        store = self.manager.store
        pending = await store.get_token(self.pending_key)
        if pending is None or not pending.refresh_token:
            raise StateMismatch(f"no login is waiting to be completed: run `{LOGIN_COMMAND}` first")
        if self.manager.clock() >= pending.expires_at:
            raise StateMismatch(
                f"the login started more than {PENDING_LOGIN_TTL / 60:.0f} minutes ago has "
                f"expired: run `{LOGIN_COMMAND}` again"
            )
        code = code_from_redirect(pasted, expected_state=pending.access_token)
        spent = StoredToken(
            key=self.pending_key,
            access_token="",
            refresh_token="",
            expires_at=datetime.fromtimestamp(0, UTC),
            generation=pending.generation + 1,
            scope=pending.scope,
        )
        if not await store.replace_token(self.pending_key, pending.generation, spent):
            raise StateMismatch("this login was completed or restarted by another command")
        sent_at = self.manager.clock()
        tokens = await self.manager.endpoint.exchange_code(
            code, SecretStr(pending.refresh_token), self.redirect_uri
        )
        return await self.manager.install(tokens, sent_at=sent_at)


class RedirectListener:
    """A one-shot HTTP listener on a loopback redirect URI (``auth login --listen``).

    Entering binds the URI's host and port, so a port that is taken fails before the user
    approves anything; :meth:`wait` then serves until a request for the URI's path arrives
    (other paths, such as ``/favicon.ico``, get 404), answers it with a short page and returns
    the URL the browser came to. ``wait`` has no time limit: bound it with ``anyio.fail_after``.
    Raises ``ValueError`` for a URI that is not ``http://`` on a loopback address.
    """

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        host = parts.hostname or ""
        if parts.scheme != "http" or host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                f"--listen needs oauth.redirect_uri on the loopback interface, like "
                f"http://127.0.0.1:8976/callback; {redirect_uri!r} is not (paste the redirect "
                "URL instead)"
            )
        self.redirect_uri = redirect_uri
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path or "/"
        self._host = "127.0.0.1" if host == "localhost" else host
        self._port = parts.port or 80
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    async def __aenter__(self) -> Self:
        try:
            self._listener = await anyio.create_tcp_listener(
                local_host=self._host, local_port=self._port
            )
        except OSError as error:
            raise OAuthError(
                f"cannot listen on {self._host}:{self._port} for the OAuth redirect "
                f"({error.strerror or error}); is another login running?"
            ) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            await self._listener.aclose()

    async def wait(self) -> str:
        listener = self._listener
        if listener is None:
            raise RuntimeError("use RedirectListener as an async context manager")
        result: list[str] = []
        async with anyio.create_task_group() as tasks:

            async def handle(stream: anyio.abc.SocketStream) -> None:
                try:
                    async with stream:
                        target = await _read_request_target(stream)
                        if target is None or urlsplit(target).path != self._path or result:
                            await stream.send(_http_answer(404, "Not the OAuth redirect."))
                            return
                        result.append(self._origin + target)
                        await stream.send(
                            _http_answer(
                                200,
                                "pleo-export received Pleo's answer. You can close this window.",
                            )
                        )
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass  # the browser went away; the redirect (if it came) is in `result`
                if result:
                    tasks.cancel_scope.cancel()

            tasks.start_soon(listener.serve, handle)
        return result[0]


async def wait_for_redirect(redirect_uri: str) -> str:
    """Listen once on a loopback ``redirect_uri`` (see :class:`RedirectListener`)."""
    async with RedirectListener(redirect_uri) as listener:
        return await listener.wait()


async def _read_request_target(stream: anyio.abc.SocketStream) -> str | None:
    data = b""
    with anyio.move_on_after(10):
        while b"\r\n" not in data and len(data) < 16_384:
            data += await stream.receive(4096)
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    method, _, rest = line.partition(" ")
    target = rest.rpartition(" ")[0]
    if method != "GET" or not target.startswith("/"):
        return None
    return target


def _http_answer(status: int, text: str) -> bytes:
    reason = "OK" if status == 200 else "Not Found"
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# --- one installation, wired ------------------------------------------------------------------


class OAuthInstallation:
    """Everything an OAuth installation needs: its own state-store handle, the token endpoint
    client, the :class:`TokenManager` and the :class:`LoginFlow`. Use it as an async context
    manager: it opens the store and closes both on exit.
    """

    def __init__(
        self,
        *,
        store: StateStore,
        auth_url: str,
        client_id: str,
        client_secret: SecretStr,
        redirect_uri: str | None,
        scopes: Sequence[str] = EXPORT_SCOPES,
        installation: str = "default",
        refresh_margin: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
        **manager_options: Any,
    ) -> None:
        base = auth_url.rstrip("/")
        self.store = store
        self.auth_url = base
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self.key = token_key(client_id, installation)
        self.endpoint = TokenEndpoint(
            base + TOKEN_PATH, client_id, client_secret, transport=transport
        )
        self.manager = TokenManager(
            store,
            self.endpoint,
            self.key,
            refresh_margin=refresh_margin,
            clock=clock,
            **manager_options,
        )

    def __repr__(self) -> str:
        return f"OAuthInstallation(key={self.key!r}, auth_url={self.auth_url!r})"

    def auth(self) -> OAuthBearerAuth:
        return OAuthBearerAuth(self.manager)

    def login(self) -> LoginFlow:
        if not self.redirect_uri:
            raise OAuthError(
                "oauth.redirect_uri is not set: set it to the redirect URI registered for the "
                "OAuth client (PLEO_EXPORT_OAUTH__REDIRECT_URI)"
            )
        return LoginFlow(
            self.manager,
            authorize_endpoint=self.auth_url + AUTHORIZE_PATH,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scopes=self.scopes,
        )

    async def __aenter__(self) -> Self:
        await self.store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.endpoint.aclose()
        finally:
            await self.store.close()


def token_key(client_id: str, installation: str) -> str:
    """The state-store key of an installation's tokens."""
    return f"pleo-oauth:{client_id}:{installation}"
