"""The leases and OAuth tokens of the SQLite state store.

:class:`SQLiteLeasesAndTokens` implements :class:`~pleo_export.state.base.LeaseStore` and
:class:`~pleo_export.state.base.TokenStore` on the connection, lock and write transaction of
:class:`~pleo_export.state.sqlite.SQLiteStateStore`, which mixes it in. Lease expiry is Unix
time from the wall clock, comparable across processes on one host.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
import time
from datetime import UTC, datetime

import anyio

from pleo_export.state.base import Lease, LeaseStore, SettingStore, StoredToken, TokenStore
from pleo_export.state.process import lease_decision, this_process
from pleo_export.state.rows import token_record
from pleo_export.state.sqlite_schema import from_text, now_text, to_text

__all__ = ["SQLiteLeasesAndTokens"]


class SQLiteLeasesAndTokens(LeaseStore, TokenStore, SettingStore, abc.ABC):
    """Leases and tokens on an SQLite connection; the store provides the connection."""

    _lock: anyio.Lock
    """Serialises the store's coroutines on the shared connection."""

    @abc.abstractmethod
    def _connection(self) -> sqlite3.Connection:
        """The open connection (raises when the store is not open)."""

    @abc.abstractmethod
    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Turns :class:`sqlite3.Error` into a StateStoreError naming ``action``."""

    @abc.abstractmethod
    def _write(self, action: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One committed write transaction; the caller holds ``self._lock``."""

    # ------------------------------------------------------------------ leases

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        now = time.time()
        process = this_process()
        async with self._lock:
            with self._write("take a lease") as conn:
                row = conn.execute(
                    "SELECT holder, process, expires_at, fencing_token FROM leases WHERE name = ?",
                    (name,),
                ).fetchone()
                if row is None:
                    token = 1
                    conn.execute(
                        "INSERT INTO leases (name, holder, expires_at, fencing_token, process) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (name, holder, now + ttl_seconds, token, process),
                    )
                else:
                    decision = lease_decision(
                        holder=holder,
                        process=process,
                        row_holder=row["holder"],
                        row_process=row["process"],
                        expired=row["expires_at"] <= now,
                    )
                    if not decision.take:
                        return None
                    token = row["fencing_token"] + (1 if decision.new_holder else 0)
                    conn.execute(
                        "UPDATE leases SET holder = ?, expires_at = ?, fencing_token = ?, "
                        "process = ? WHERE name = ?",
                        (holder, now + ttl_seconds, token, process, name),
                    )
        return Lease(name, holder, _from_unix(now + ttl_seconds), token)

    async def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        now = time.time()
        async with self._lock:
            with self._write("renew a lease") as conn:
                changed = conn.execute(
                    "UPDATE leases SET expires_at = ? "
                    "WHERE name = ? AND holder = ? AND fencing_token = ? AND expires_at > ?",
                    (now + ttl_seconds, lease.name, lease.holder, lease.fencing_token, now),
                ).rowcount
        if not changed:
            return None
        return Lease(lease.name, lease.holder, _from_unix(now + ttl_seconds), lease.fencing_token)

    async def release_lease(self, lease: Lease) -> None:
        async with self._lock:
            with self._write("release a lease") as conn:
                # Expire rather than delete: the fencing token must keep rising across holders.
                conn.execute(
                    "UPDATE leases SET expires_at = 0 "
                    "WHERE name = ? AND holder = ? AND fencing_token = ?",
                    (lease.name, lease.holder, lease.fencing_token),
                )

    # ------------------------------------------------------------------ tokens

    async def get_token(self, key: str) -> StoredToken | None:
        async with self._lock:
            with self._errors("read OAuth tokens"):
                row = (
                    self._connection()
                    .execute(
                        "SELECT key, access_token, refresh_token, expires_at, generation, scope "
                        "FROM tokens WHERE key = ?",
                        (key,),
                    )
                    .fetchone()
                )
        return None if row is None else token_record(row, from_text)

    async def replace_token(
        self, key: str, expected_generation: int | None, token: StoredToken
    ) -> bool:
        now = now_text()
        generation = (expected_generation or 0) + 1
        values = (
            token.access_token,
            token.refresh_token,
            to_text(token.expires_at),
            generation,
            token.scope,
            now,
        )
        async with self._lock:
            with self._write("store OAuth tokens") as conn:
                if expected_generation is None:
                    changed = conn.execute(
                        "INSERT OR IGNORE INTO tokens (access_token, refresh_token, expires_at, "
                        "generation, scope, updated_at, key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*values, key),
                    ).rowcount
                else:
                    changed = conn.execute(
                        "UPDATE tokens SET access_token = ?, refresh_token = ?, expires_at = ?, "
                        "generation = ?, scope = ?, updated_at = ? "
                        "WHERE key = ? AND generation = ?",
                        (*values, key, expected_generation),
                    ).rowcount
        return bool(changed)

    # ------------------------------------------------------------------ settings

    async def get_setting(self, key: str) -> str | None:
        async with self._lock:
            with self._errors("read a setting"):
                row = (
                    self._connection()
                    .execute("SELECT value FROM settings WHERE key = ?", (key,))
                    .fetchone()
                )
        return None if row is None else str(row["value"])

    async def put_setting(self, key: str, value: str) -> None:
        async with self._lock:
            with self._write("store a setting") as conn:
                conn.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    (key, value, now_text()),
                )

    async def delete_setting(self, key: str) -> bool:
        async with self._lock:
            with self._write("delete a setting") as conn:
                return bool(conn.execute("DELETE FROM settings WHERE key = ?", (key,)).rowcount)

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        async with self._lock:
            with self._errors("read settings"):
                rows = (
                    self._connection()
                    .execute(
                        "SELECT key, value FROM settings "
                        "WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
                        (prefix,),
                    )
                    .fetchall()
                )
        return {str(row["key"]): str(row["value"]) for row in rows}


def _from_unix(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)
