"""The SQLite state store's schema, its migrations and its queries.

:func:`migrate` brings a database file to :data:`SCHEMA_VERSION` (``PRAGMA user_version``);
the queries are the literal statements :class:`~pleo_export.state.sqlite.SQLiteStateStore`
runs (no string building; rows are read by column name).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from pleo_export.state.base import StateStoreError
from pleo_export.state.rows import utc

__all__ = ["SCHEMA_VERSION", "migrate"]


# --------------------------------------------------------------------------- schema

_SCHEMA_V1: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq            INTEGER PRIMARY KEY,  -- creation order (stable across VACUUM)
        job_id         TEXT NOT NULL UNIQUE,
        company_id     TEXT NOT NULL,
        started_by_us  INTEGER NOT NULL DEFAULT 0,
        final_event    TEXT,
        final_reason   TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE items (
        seq                  INTEGER PRIMARY KEY,  -- insertion order
        job_id               TEXT NOT NULL,
        accounting_entry_id  TEXT NOT NULL,
        phase                TEXT NOT NULL,
        pleo_status          TEXT NOT NULL,
        attempts             INTEGER NOT NULL DEFAULT 0,
        outcome_seq          INTEGER,  -- order outcomes were recorded; NULL = no outcome
        succeeded            INTEGER,
        external_id          TEXT,
        external_url         TEXT,
        exported_at          TEXT,
        failure_reason_type  TEXT,
        failure_reason       TEXT,
        recovered            INTEGER,
        reported             INTEGER NOT NULL DEFAULT 0,
        updated_at           TEXT NOT NULL,
        UNIQUE (job_id, accounting_entry_id)
    )
    """,
    # Items of a job in insertion order (the rowid is implicitly the last index column).
    "CREATE INDEX items_job ON items (job_id)",
    # The outbox proper: outcomes Pleo has not been told about, oldest first.
    """
    CREATE INDEX items_unreported ON items (job_id, outcome_seq)
        WHERE outcome_seq IS NOT NULL AND reported = 0
    """,
    # Monotonic counters (today only the outcome sequence).
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO counters (name, value) VALUES ('outcome_seq', 0)",
)


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


_SCHEMA_V2: tuple[str, ...] = (
    # Named expiring locks: one worker per company, one OAuth refresh at a time.
    """
    CREATE TABLE leases (
        name           TEXT PRIMARY KEY,
        holder         TEXT NOT NULL,
        expires_at     REAL NOT NULL,  -- Unix time; wall clock, comparable across processes
        fencing_token  INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE tokens (
        key            TEXT PRIMARY KEY,
        access_token   TEXT NOT NULL,
        refresh_token  TEXT NOT NULL,
        expires_at     TEXT NOT NULL,
        generation     INTEGER NOT NULL,
        scope          TEXT,
        updated_at     TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V2:
        conn.execute(statement)


def _migrate_to_v3(conn: sqlite3.Connection) -> None:
    # The process that took each lease (pleo_export.state.process), so that a lease held by a
    # dead process on this host is taken over at once. NULL in rows written before.
    conn.execute("ALTER TABLE leases ADD COLUMN process TEXT")


def _migrate_to_v4(conn: sqlite3.Connection) -> None:
    # Small named values kept with the state: webhook subscription secrets (SettingStore).
    conn.execute(
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
        "updated_at TEXT NOT NULL) WITHOUT ROWID"
    )


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_to_v1,
    _migrate_to_v2,
    _migrate_to_v3,
    _migrate_to_v4,
)
"""``_MIGRATIONS[n]`` takes a database from ``user_version`` n to n + 1. Append, never edit."""

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The ``PRAGMA user_version`` this code writes and expects."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema on ``conn`` to :data:`SCHEMA_VERSION`; return the version found.

    Runs in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh file at once
    do not both create the schema, and a failed migration leaves the old version intact.
    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        StateStoreError: the database was written by a newer schema version.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise StateStoreError(
                f"schema version {found} is newer than this pleo-export "
                f"understands ({SCHEMA_VERSION}); upgrade pleo-export or point the state URL "
                "at another file"
            )
        for version in range(found, SCHEMA_VERSION):
            _MIGRATIONS[version](conn)
        if found != SCHEMA_VERSION:
            # PRAGMA takes no parameters; SCHEMA_VERSION is an int constant.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


# --------------------------------------------------------------------------- times

# Times are stored as ISO-8601 text in UTC.


def now_text() -> str:
    return to_text(datetime.now(UTC))


def to_text(value: datetime) -> str:
    """Store a datetime as ISO-8601 in UTC; a naive value is taken to be UTC already."""
    return utc(value).isoformat(timespec="microseconds")


def from_text(value: str) -> datetime:
    return utc(datetime.fromisoformat(value))


# --------------------------------------------------------------------------- queries

# Queries are literal constants (no string building); rows are read by column name.
SELECT_JOB = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs WHERE job_id = ?
"""
RECENT_JOBS = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs ORDER BY seq DESC LIMIT ?
"""
SELECT_ITEM = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = ? AND accounting_entry_id = ?
"""
# ?2 is a JSON array of accounting entry ids.
SELECT_ITEMS = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items
    WHERE job_id = ?1 AND accounting_entry_id IN (SELECT value FROM json_each(?2))
"""
# ?2 is NULL for all phases, else a JSON array of phase values.
ITEMS_OF_JOB = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items
    WHERE job_id = ?1 AND (?2 IS NULL OR phase IN (SELECT value FROM json_each(?2)))
    ORDER BY seq
"""
UNREPORTED = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = ? AND outcome_seq IS NOT NULL AND reported = 0
    ORDER BY outcome_seq LIMIT ?
"""

# Re-adding an item refreshes pleo_status and, for an item without outcome whose Pleo status
# turned final, moves it to SKIPPED; phases, attempts and outcomes are otherwise kept. The
# WHERE clause skips no-op updates so that resuming a job rewrites nothing.
UPSERT_ITEM = """
    INSERT INTO items (job_id, accounting_entry_id, phase, pleo_status, updated_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (job_id, accounting_entry_id) DO UPDATE SET
        pleo_status = excluded.pleo_status,
        phase = CASE
            WHEN items.outcome_seq IS NULL AND excluded.phase = 'skipped' THEN 'skipped'
            ELSE items.phase
        END,
        updated_at = excluded.updated_at
    WHERE items.pleo_status IS NOT excluded.pleo_status
       OR (items.outcome_seq IS NULL AND excluded.phase = 'skipped'
           AND items.phase IS NOT 'skipped')
"""
