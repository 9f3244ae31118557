"""Pleo's token endpoint: :class:`TokenEndpoint` sends the code and refresh grants with HTTP
Basic client authentication and parses the answer into a :class:`TokenSet`.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import anyio
import anyio.abc
import httpx
from pydantic import SecretStr

from pleo_export.pleo import depth
from pleo_export.pleo.oauth.common import (
    MAX_DESCRIPTION,
    TokenEndpointError,
    TokenEndpointUnavailable,
    log,
)

__all__ = ["TokenEndpoint", "TokenSet"]


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
                description[:MAX_DESCRIPTION] if isinstance(description, str) else None,
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
