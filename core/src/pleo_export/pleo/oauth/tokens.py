"""Rotating tokens kept in the state store: :class:`TokenManager` refreshes one installation's
access token under a lease, one process at a time, and never sends a spent refresh token.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.abc
from pydantic import SecretStr

from pleo_export.pleo.oauth.common import (
    DEAD_REFRESH_TOKEN_ERRORS,
    OAuthError,
    ReauthorizationRequired,
    RefreshLockTimeout,
    TokenEndpointError,
    log,
    utcnow,
)
from pleo_export.pleo.oauth.endpoint import (
    TokenEndpoint,
    TokenSet,
)
from pleo_export.state.base import LeaseStore, StoredToken, TokenStore

__all__ = ["RefreshStore", "TokenManager", "is_dead", "token_key"]


class RefreshStore(TokenStore, LeaseStore, Protocol):
    """The parts of the state store :class:`TokenManager` uses: the tokens and the refresh
    lease (any :class:`~pleo_export.state.base.StateStore` is one)."""


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
        store: RefreshStore,
        endpoint: TokenEndpoint,
        key: str,
        *,
        refresh_margin: float = 60.0,
        lease_ttl: float | None = None,
        lease_wait: float | None = None,
        poll_interval: float = 0.1,
        clock: Callable[[], datetime] = utcnow,
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


def token_key(client_id: str, installation: str) -> str:
    """The state-store key of an installation's tokens."""
    return f"pleo-oauth:{client_id}:{installation}"
