"""The PostgreSQL state store's schema, its migrations and its queries.

The schema's version is the single row of ``schema_version``; :func:`migrate` brings it up to
date in one transaction holding a transaction-level advisory lock. The queries are the literal
statements :class:`~pleo_export.state.postgres.PostgresStateStore` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pleo_export.state.base import StateStoreError

if TYPE_CHECKING:
    import psycopg

__all__ = ["SCHEMA_VERSION", "migrate"]

_MIGRATION_LOCK: Final = 0x706C656F_6578706F  # "pleoexpo": the advisory lock key for migrations


_SCHEMA_V1: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
        job_id         text NOT NULL UNIQUE,
        company_id     text NOT NULL,
        started_by_us  boolean NOT NULL DEFAULT false,
        final_event    text,
        final_reason   text,
        created_at     timestamptz NOT NULL,
        updated_at     timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE items (
        seq                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
        job_id               text NOT NULL,
        accounting_entry_id  text NOT NULL,
        phase                text NOT NULL,
        pleo_status          text NOT NULL,
        attempts             integer NOT NULL DEFAULT 0,
        outcome_seq          bigint,  -- order outcomes were recorded; NULL = no outcome
        succeeded            boolean,
        external_id          text,
        external_url         text,
        exported_at          timestamptz,
        failure_reason_type  text,
        failure_reason       text,
        recovered            boolean,
        reported             boolean NOT NULL DEFAULT false,
        updated_at           timestamptz NOT NULL,
        UNIQUE (job_id, accounting_entry_id)
    )
    """,
    "CREATE INDEX items_job ON items (job_id, seq)",
    # The outbox proper: outcomes Pleo has not been told about, oldest first.
    """
    CREATE INDEX items_unreported ON items (job_id, outcome_seq)
        WHERE outcome_seq IS NOT NULL AND NOT reported
    """,
    "CREATE SEQUENCE outcome_seq",
    # Named expiring locks: one worker per company, one OAuth refresh at a time.
    """
    CREATE TABLE leases (
        name           text PRIMARY KEY,
        holder         text NOT NULL,
        expires_at     timestamptz NOT NULL,  -- database clock
        fencing_token  bigint NOT NULL
    )
    """,
    """
    CREATE TABLE tokens (
        key            text PRIMARY KEY,
        access_token   text NOT NULL,
        refresh_token  text NOT NULL,
        expires_at     timestamptz NOT NULL,
        generation     bigint NOT NULL,
        scope          text,
        updated_at     timestamptz NOT NULL
    )
    """,
)
"""Version 1 of the PostgreSQL schema holds everything SQLite's versions 1 and 2 hold."""

_SCHEMA_V2: tuple[str, ...] = (
    # The process that took each lease (pleo_export.state.process), so that a lease held by a
    # dead process on the same host is taken over at once. NULL in rows written before.
    "ALTER TABLE leases ADD COLUMN process text",
)

_SCHEMA_V3: tuple[str, ...] = (
    # Small named values kept with the state: webhook subscription secrets (SettingStore).
    """
    CREATE TABLE settings (
        key            text PRIMARY KEY,
        value          text NOT NULL,
        updated_at     timestamptz NOT NULL
    )
    """,
)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
"""``_MIGRATIONS[n]`` takes a schema from version n to n + 1. Append, never edit."""

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The ``schema_version.version`` this code writes and expects."""


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str | None = None) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` in one transaction; return the version found.

    Creates ``schema`` first when given (the connection's ``search_path`` must already point
    at it). Two processes migrating at once serialise on a transaction-level advisory lock.
    ``conn`` must be in autocommit mode.

    Raises:
        StateStoreError: the database was written by a newer schema version.
    """
    from psycopg import sql

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        if schema is not None:
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
            " version integer NOT NULL)"
        )
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        found = 0 if row is None else int(row["version"] if isinstance(row, dict) else row[0])
        if found > SCHEMA_VERSION:
            raise StateStoreError(
                f"schema version {found} is newer than this pleo-export understands "
                f"({SCHEMA_VERSION}); upgrade pleo-export or point the state URL at another "
                "database or schema"
            )
        for version in range(found, SCHEMA_VERSION):
            for statement in _MIGRATIONS[version]:
                await conn.execute(statement)
        if found != SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO schema_version (one, version) VALUES (true, %s) "
                "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
    return found


# --------------------------------------------------------------------------- queries

# Queries are literal constants (no string building); rows are read by column name.
SELECT_JOB = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs WHERE job_id = %s
"""
RECENT_JOBS = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs ORDER BY seq DESC LIMIT %s
"""
SELECT_ITEM = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = %s AND accounting_entry_id = %s
"""
SELECT_ITEMS = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = %s AND accounting_entry_id = ANY(%s::text[])
"""
# %(phases)s is NULL for all phases, else an array of phase values.
ITEMS_OF_JOB = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items
    WHERE job_id = %(job)s AND (%(phases)s::text[] IS NULL OR phase = ANY(%(phases)s::text[]))
    ORDER BY seq
"""
UNREPORTED = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = %s AND outcome_seq IS NOT NULL AND NOT reported
    ORDER BY outcome_seq LIMIT %s
"""

# One statement per chunk: the pairs arrive as two arrays, in order. Re-adding an item
# refreshes pleo_status and, for an item without outcome whose Pleo status turned final, moves
# it to SKIPPED; phases, attempts and outcomes are otherwise kept. The WHERE clause skips
# no-op updates so that resuming a job rewrites nothing.
UPSERT_ITEMS = """
    INSERT INTO items (job_id, accounting_entry_id, phase, pleo_status, updated_at)
    SELECT %(job)s, t.entry_id,
           CASE WHEN t.status = ANY(%(final)s::text[]) THEN 'skipped' ELSE 'queued' END,
           t.status, now()
    FROM unnest(%(ids)s::text[], %(statuses)s::text[]) WITH ORDINALITY AS t(entry_id, status, n)
    ORDER BY t.n
    ON CONFLICT (job_id, accounting_entry_id) DO UPDATE SET
        pleo_status = excluded.pleo_status,
        phase = CASE
            WHEN items.outcome_seq IS NULL AND excluded.phase = 'skipped' THEN 'skipped'
            ELSE items.phase
        END,
        updated_at = excluded.updated_at
    WHERE items.pleo_status IS DISTINCT FROM excluded.pleo_status
       OR (items.outcome_seq IS NULL AND excluded.phase = 'skipped'
           AND items.phase IS DISTINCT FROM 'skipped')
"""

SELECT_LEASE = """
    SELECT holder, process, expires_at <= clock_timestamp() AS expired
    FROM leases WHERE name = %(name)s FOR UPDATE
"""
INSERT_LEASE = """
    INSERT INTO leases (name, holder, expires_at, fencing_token, process)
    VALUES (%(name)s, %(holder)s, clock_timestamp() + %(ttl)s * interval '1 second', 1,
            %(process)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING expires_at, fencing_token
"""
TAKE_LEASE = """
    UPDATE leases SET
        holder = %(holder)s,
        process = %(process)s,
        expires_at = clock_timestamp() + %(ttl)s * interval '1 second',
        fencing_token = fencing_token + %(bump)s
    WHERE name = %(name)s
    RETURNING expires_at, fencing_token
"""
RENEW_LEASE = """
    UPDATE leases SET expires_at = clock_timestamp() + %(ttl)s * interval '1 second'
    WHERE name = %(name)s AND holder = %(holder)s AND fencing_token = %(token)s
      AND expires_at > clock_timestamp()
    RETURNING expires_at
"""
# The row stays (expired) so that the next holder's fencing token is higher still.
RELEASE_LEASE = """
    UPDATE leases SET expires_at = '-infinity'
    WHERE name = %(name)s AND holder = %(holder)s AND fencing_token = %(token)s
"""
