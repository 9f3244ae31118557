"""``Authorization: Bearer`` for the Pleo client, from a
:class:`~pleo_export.pleo.oauth.tokens.TokenManager`."""

from __future__ import annotations

from pydantic import SecretStr

from pleo_export.pleo.auth import BearerTokenAuth
from pleo_export.pleo.oauth.tokens import (
    TokenManager,
)

__all__ = ["OAuthBearerAuth"]


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
