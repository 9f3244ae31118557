"""The leases and OAuth tokens of the PostgreSQL state store.

:class:`PostgresLeasesAndTokens` implements :class:`~pleo_export.state.base.LeaseStore` and
:class:`~pleo_export.state.base.TokenStore` on the sessions of
:class:`~pleo_export.state.postgres.PostgresStateStore`, which mixes it in. Lease expiry is on
the database clock, so workers on several hosts agree on it whatever their own clocks say.
"""

from __future__ import annotations

import abc
import contextlib
from typing import TYPE_CHECKING, Any

from pleo_export.state.base import Lease, LeaseStore, SettingStore, StoredToken, TokenStore
from pleo_export.state.postgres_schema import (
    INSERT_LEASE,
    RELEASE_LEASE,
    RENEW_LEASE,
    SELECT_LEASE,
    TAKE_LEASE,
)
from pleo_export.state.process import lease_decision, this_process
from pleo_export.state.rows import token_record, utc

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

__all__ = ["PostgresLeasesAndTokens"]


class PostgresLeasesAndTokens(LeaseStore, TokenStore, SettingStore, abc.ABC):
    """Leases and tokens on a PostgreSQL connection; the store provides the sessions."""

    @abc.abstractmethod
    def _session(
        self, action: str, *, write: bool
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[DictRow]]:
        """The connection, inside one transaction when ``write``."""

    @abc.abstractmethod
    async def _fetchone(self, action: str, query: str, params: Any) -> DictRow | None:
        """One row of a read-only query."""

    # ------------------------------------------------------------------ leases

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        """Take ``name`` for ``holder`` (see the base class); expiry is on the database clock.
        The row is locked while :func:`~pleo_export.state.process.lease_decision` decides."""
        process = this_process()
        params: dict[str, object] = {
            "name": name,
            "holder": holder,
            "ttl": float(ttl_seconds),
            "process": process,
        }
        async with self._session("take a lease", write=True) as conn:
            current = await (await conn.execute(SELECT_LEASE, params)).fetchone()
            if current is None:
                # A worker inserting the same name at once wins; this one gets nothing.
                row = await (await conn.execute(INSERT_LEASE, params)).fetchone()
            else:
                decision = lease_decision(
                    holder=holder,
                    process=process,
                    row_holder=current["holder"],
                    row_process=current["process"],
                    expired=bool(current["expired"]),
                )
                if not decision.take:
                    return None
                params["bump"] = 1 if decision.new_holder else 0
                row = await (await conn.execute(TAKE_LEASE, params)).fetchone()
        if row is None:
            return None
        return Lease(name, holder, utc(row["expires_at"]), int(row["fencing_token"]))

    async def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        """Extend ``lease`` if its holder still has it and it has not expired; else ``None``."""
        async with self._session("renew a lease", write=True) as conn:
            row = await (
                await conn.execute(
                    RENEW_LEASE,
                    {
                        "name": lease.name,
                        "holder": lease.holder,
                        "token": lease.fencing_token,
                        "ttl": float(ttl_seconds),
                    },
                )
            ).fetchone()
        if row is None:
            return None
        return Lease(lease.name, lease.holder, utc(row["expires_at"]), lease.fencing_token)

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up; a no-op when another holder has taken it since."""
        async with self._session("release a lease", write=True) as conn:
            await conn.execute(
                RELEASE_LEASE,
                {"name": lease.name, "holder": lease.holder, "token": lease.fencing_token},
            )

    # ------------------------------------------------------------------ tokens

    async def get_token(self, key: str) -> StoredToken | None:
        row = await self._fetchone(
            "read OAuth tokens",
            "SELECT key, access_token, refresh_token, expires_at, generation, scope "
            "FROM tokens WHERE key = %s",
            (key,),
        )
        return None if row is None else token_record(row, utc)

    async def replace_token(
        self, key: str, expected_generation: int | None, token: StoredToken
    ) -> bool:
        """Compare-and-swap on ``generation`` (see the base class)."""
        values = {
            "key": key,
            "access": token.access_token,
            "refresh": token.refresh_token,
            "expires": utc(token.expires_at),
            "generation": (expected_generation or 0) + 1,
            "scope": token.scope,
            "expected": expected_generation,
        }
        async with self._session("store OAuth tokens", write=True) as conn:
            if expected_generation is None:
                cursor = await conn.execute(
                    "INSERT INTO tokens (key, access_token, refresh_token, expires_at, "
                    "generation, scope, updated_at) VALUES (%(key)s, %(access)s, %(refresh)s, "
                    "%(expires)s, %(generation)s, %(scope)s, now()) "
                    "ON CONFLICT (key) DO NOTHING",
                    values,
                )
            else:
                cursor = await conn.execute(
                    "UPDATE tokens SET access_token = %(access)s, refresh_token = %(refresh)s, "
                    "expires_at = %(expires)s, generation = %(generation)s, scope = %(scope)s, "
                    "updated_at = now() WHERE key = %(key)s AND generation = %(expected)s",
                    values,
                )
            changed = cursor.rowcount
        return changed > 0

    # ------------------------------------------------------------------ settings

    async def get_setting(self, key: str) -> str | None:
        row = await self._fetchone(
            "read a setting", "SELECT value FROM settings WHERE key = %s", (key,)
        )
        return None if row is None else str(row["value"])

    async def put_setting(self, key: str, value: str) -> None:
        async with self._session("store a setting", write=True) as conn:
            await conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
                (key, value),
            )

    async def delete_setting(self, key: str) -> bool:
        async with self._session("delete a setting", write=True) as conn:
            cursor = await conn.execute("DELETE FROM settings WHERE key = %s", (key,))
            return cursor.rowcount > 0

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        async with self._session("read settings", write=False) as conn:
            cursor = await conn.execute(
                "SELECT key, value FROM settings "
                "WHERE left(key, char_length(%(prefix)s)) = %(prefix)s ORDER BY key",
                {"prefix": prefix},
            )
            rows = await cursor.fetchall()
        return {str(row["key"]): str(row["value"]) for row in rows}
