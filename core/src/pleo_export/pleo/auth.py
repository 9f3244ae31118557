"""Credentials for the Pleo API as ``httpx.Auth`` flows.

Pleo accepts an API key in HTTP Basic (the key as user name, an empty password) or an OAuth
access token as ``Authorization: Bearer`` (reference §1.3). Secrets are kept as
:class:`~pydantic.SecretStr` and never appear in ``repr``/``str``.

:class:`~pleo_export.pleo.client.PleoClient` applies these flows only to requests for its own
base URL's origin, so a credential never travels to another host.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import anyio
import httpx
from pydantic import SecretStr

__all__ = ["ApiKeyAuth", "BearerTokenAuth", "TokenProvider"]

TokenProvider = Callable[[], Awaitable[SecretStr]]
"""An async callable returning a current access token (the OAuth seam)."""


class ApiKeyAuth(httpx.Auth):
    """HTTP Basic with the API key as user name and an empty password: ``base64("<key>:")``."""

    def __init__(self, api_key: SecretStr) -> None:
        if not api_key.get_secret_value():
            raise ValueError("the Pleo API key is empty")
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        credentials = f"{self._api_key.get_secret_value()}:".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_key={self._api_key!r})"

    __str__ = __repr__


class BearerTokenAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` from a fixed token or an async token provider.

    With ``token_provider`` the token is fetched lazily on the first request. When Pleo
    answers 401, the provider is asked once for a fresh token and the request is sent once
    more; a second 401 is returned to the caller. Refreshes are serialised: concurrent
    requests that fail with the same stale token trigger a single provider call (Pleo's
    refresh tokens must not be replayed). If both ``token`` and ``token_provider`` are given,
    ``token`` is used until the first 401.

    A provider needs an async client; the synchronous flow supports a fixed token only.
    """

    def __init__(
        self,
        token: SecretStr | None = None,
        *,
        token_provider: TokenProvider | None = None,
    ) -> None:
        if token is None and token_provider is None:
            raise ValueError("BearerTokenAuth needs a token or a token_provider")
        if token is not None and not token.get_secret_value():
            raise ValueError("the bearer token is empty")
        self._token = token
        self._provider = token_provider
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        provider = "<set>" if self._provider is not None else None
        return f"{type(self).__name__}(token={self._token!r}, token_provider={provider})"

    __str__ = __repr__

    @staticmethod
    def _apply(request: httpx.Request, token: SecretStr) -> None:
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._provider is not None or self._token is None:
            raise RuntimeError("a bearer token provider needs an async httpx client")
        self._apply(request, self._token)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._current_token()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401 and self._provider is not None:
            fresh = await self._refresh(stale=token)
            self._apply(request, fresh)
            yield request

    async def _current_token(self) -> SecretStr:
        if self._token is not None:
            return self._token
        async with self._lock:
            if self._token is None:
                self._token = await self._fetch()
            return self._token

    async def _refresh(self, *, stale: SecretStr) -> SecretStr:
        async with self._lock:
            if self._token is stale or self._token is None:
                self._token = await self._fetch()
            return self._token

    async def _fetch(self) -> SecretStr:
        assert self._provider is not None
        token = await self._provider()
        if not token.get_secret_value():
            raise ValueError("the token provider returned an empty token")
        return token
