"""One OAuth installation, wired: the state store, the token endpoint, the token manager, the
bearer auth and the login flow (:class:`OAuthInstallation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from pleo_export.pleo.oauth.bearer import (
    OAuthBearerAuth,
)
from pleo_export.pleo.oauth.common import (
    AUTHORIZE_PATH,
    EXPORT_SCOPES,
    TOKEN_PATH,
    OAuthError,
    utcnow,
)
from pleo_export.pleo.oauth.endpoint import (
    TokenEndpoint,
)
from pleo_export.pleo.oauth.flows import (
    LoginFlow,
)
from pleo_export.pleo.oauth.tokens import (
    TokenManager,
    token_key,
)
from pleo_export.state.base import StateStore

__all__ = ["OAuthInstallation"]


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
        clock: Callable[[], datetime] = utcnow,
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
