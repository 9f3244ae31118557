"""PostgreSQL implementation of the state store, for several workers sharing one database.

One :class:`psycopg.AsyncConnection` per store, in autocommit mode with explicit
transactions; an :class:`anyio.Lock` serialises the store's coroutines so that one task's
transaction never interleaves with another's statements on the shared connection. The driver
is imported when the store is opened, so core works without it; install it with
``pip install 'pleo-export[postgresql]'``. psycopg's async connections run on asyncio only.

The semantics are those of :mod:`pleo_export.state.sqlite` (the contract suite in
``tests/state`` runs against both). What differs:

- Timestamps come from the database clock (``now()``/``clock_timestamp()``), so workers on
  several hosts agree on lease expiry whatever their local clocks say.
- Outcome order is a database sequence (``outcome_seq``), increasing across processes.
- A released lease keeps its row (its expiry moves to ``-infinity``), so the fencing token
  keeps increasing every time the lease changes hands, also after a release.
- Every commit is durable in PostgreSQL's sense: ``synchronous_commit`` as the server has it
  (normally ``on``: a commit survives a crash of the server and power loss, at the cost of a
  WAL flush per commit). ``?durability=process`` turns ``synchronous_commit`` off for the
  store's connection, like SQLite's default: commits survive the worker being killed and
  cost no flush, but the last fraction of a second of them may be lost if the *server*
  crashes. (The engine looks every entry up by reference before posting it, so such a loss
  costs a lookup, not a duplicate, with connectors that can look entries up.)

The schema lives in the database's default schema (normally ``public``) or in the one named
by the URL's ``schema=`` parameter, which is created if missing. Its version is the single row
of ``schema_version``; :func:`migrate` brings it up to date in one transaction holding a
transaction-level advisory lock, so several processes opening a fresh database at once do not
collide, and a failed migration leaves the previous version intact.

If the connection breaks (server restart, network), the next call opens a new one; the call
that saw the break raises :class:`~pleo_export.state.StateStoreError`. Passwords in the URL
never appear in messages or ``repr``: use :func:`redact_url` to show a URL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import anyio
import anyio.lowlevel

from pleo_export.state import FINAL_PLEO_STATUSES, StateStoreError
from pleo_export.state.base import (
    ItemOutcome,
    ItemPhase,
    ItemRecord,
    JobCounts,
    JobRecord,
    Lease,
    StateStore,
    StoredToken,
    item_record,
    job_record,
)
from pleo_export.state.process import lease_decision, this_process

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

__all__ = [
    "INSTALL_HINT",
    "SCHEMA_VERSION",
    "Durability",
    "ParsedURL",
    "PostgresStateStore",
    "migrate",
    "parse_url",
    "redact_url",
]

INSTALL_HINT: Final = (
    "the PostgreSQL state backend needs the psycopg driver: pip install 'pleo-export[postgresql]'"
)

SCHEMES: Final = ("postgresql", "postgres")

_CHUNK = 2_000
"""Rows per statement in bulk calls; between chunks the event loop gets a turn."""

_CONNECT_TIMEOUT_S = 10

_MIGRATION_LOCK: Final = 0x706C656F_6578706F  # "pleoexpo": the advisory lock key for migrations

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# --------------------------------------------------------------------------- URLs


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` parameter) as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc, query = parts.netloc, parts.query
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = "&".join(
            f"{key}=***" if key == "password" else f"{key}={quote(value, safe='')}"
            for key, value in pairs
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


Durability = Literal["server", "process"]
"""``server``: commits as durable as the server's ``synchronous_commit`` makes them (default);
``process``: ``synchronous_commit = off`` (survives the worker dying, not the server)."""


class ParsedURL(NamedTuple):
    conninfo: str
    """The libpq connection URI, without pleo-export's own parameters."""
    schema: str | None
    durability: Durability = "server"


def parse_url(url: str) -> ParsedURL:
    """Split a ``postgresql://`` URL into the libpq connection URI and pleo-export's own
    parameters, ``schema=`` and ``durability=`` (``server`` or ``process``).

    Every other query parameter (``sslmode``, ``application_name``, ...) is passed to libpq.

    Raises:
        ValueError: another scheme, no database name, a ``schema`` that is not a plain
            lower-case identifier, or an unknown ``durability``; the message shows the URL
            with its password hidden.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"malformed PostgreSQL URL {shown!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"{shown!r} is not a PostgreSQL URL; use postgresql://user@host:5432/dbname"
        )
    if not parts.path.strip("/"):
        raise ValueError(
            f"PostgreSQL URL {shown!r} names no database; add it after the host, e.g. "
            "postgresql://user@host:5432/pleo_export"
        )
    schema: str | None = None
    durability: Durability = "server"
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "durability":
            if value == "server":
                durability = "server"
            elif value == "process":
                durability = "process"
            else:
                raise ValueError(
                    f"durability must be 'server' or 'process', not {value!r} (in {shown!r})"
                )
        elif key == "schema":
            if not _SCHEMA_NAME.match(value) or value.startswith("pg_"):
                raise ValueError(
                    f"schema={value!r} in PostgreSQL URL {shown!r} is not a plain identifier; "
                    "use lower-case letters, digits and underscores, starting with a letter "
                    "(not pg_, which PostgreSQL reserves), e.g. schema=pleo_export"
                )
            schema = value
        else:
            rest.append((key, value))
    conninfo = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(rest, quote_via=quote), "")
    )
    return ParsedURL(conninfo, schema, durability)


# --------------------------------------------------------------------------- schema

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

_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2)
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
_SELECT_JOB = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs WHERE job_id = %s
"""
_RECENT_JOBS = """
    SELECT job_id, company_id, started_by_us, final_event, final_reason, created_at, updated_at
    FROM jobs ORDER BY seq DESC LIMIT %s
"""
_SELECT_ITEM = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = %s AND accounting_entry_id = %s
"""
_SELECT_ITEMS = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items WHERE job_id = %s AND accounting_entry_id = ANY(%s::text[])
"""
# %(phases)s is NULL for all phases, else an array of phase values.
_ITEMS_OF_JOB = """
    SELECT job_id, accounting_entry_id, phase, pleo_status, attempts, outcome_seq, succeeded,
           external_id, external_url, exported_at, failure_reason_type, failure_reason,
           recovered, reported, updated_at
    FROM items
    WHERE job_id = %(job)s AND (%(phases)s::text[] IS NULL OR phase = ANY(%(phases)s::text[]))
    ORDER BY seq
"""
_UNREPORTED = """
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
_UPSERT_ITEMS = """
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

_SELECT_LEASE = """
    SELECT holder, process, expires_at <= clock_timestamp() AS expired
    FROM leases WHERE name = %(name)s FOR UPDATE
"""
_INSERT_LEASE = """
    INSERT INTO leases (name, holder, expires_at, fencing_token, process)
    VALUES (%(name)s, %(holder)s, clock_timestamp() + %(ttl)s * interval '1 second', 1,
            %(process)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING expires_at, fencing_token
"""
_TAKE_LEASE = """
    UPDATE leases SET
        holder = %(holder)s,
        process = %(process)s,
        expires_at = clock_timestamp() + %(ttl)s * interval '1 second',
        fencing_token = fencing_token + %(bump)s
    WHERE name = %(name)s
    RETURNING expires_at, fencing_token
"""
_RENEW_LEASE = """
    UPDATE leases SET expires_at = clock_timestamp() + %(ttl)s * interval '1 second'
    WHERE name = %(name)s AND holder = %(holder)s AND fencing_token = %(token)s
      AND expires_at > clock_timestamp()
    RETURNING expires_at
"""
# The row stays (expired) so that the next holder's fencing token is higher still.
_RELEASE_LEASE = """
    UPDATE leases SET expires_at = '-infinity'
    WHERE name = %(name)s AND holder = %(holder)s AND fencing_token = %(token)s
"""


# --------------------------------------------------------------------------- helpers


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _chunks(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _item(row: DictRow) -> ItemRecord:
    return item_record(row, _utc)


def _job(row: DictRow) -> JobRecord:
    return job_record(row, _utc)


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return (
            "check the user and password (PGPASSWORD or ~/.pgpass are better places for the "
            "password than the URL)"
        )
    if "does not exist" in text and "database" in text:
        return "create the database (createdb) or point the state URL at an existing one"
    if "permission denied" in text:
        return (
            "grant the user CREATE and USAGE on the database/schema, or name a schema it owns "
            "with ?schema=..."
        )
    if "connection refused" in text or "could not connect" in text or "timeout" in text:
        return "make sure PostgreSQL is running and reachable at the host and port of the URL"
    if "connection" in text or "terminat" in text or "closed" in text:
        return (
            "the connection to PostgreSQL was lost; the next call reconnects (check the "
            "server if this repeats)"
        )
    return "check the state URL and the PostgreSQL server's log"


def _unknown_item(job_id: str, accounting_entry_id: str) -> str:
    return f"unknown item {accounting_entry_id!r} of job {job_id!r}; add it with add_items first"


# --------------------------------------------------------------------------- the store


class PostgresStateStore(StateStore):
    """A :class:`~pleo_export.state.base.StateStore` in a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname[?schema=name&...]``, with
            ``durability=process`` optionally (see the module docstring); other
            query parameters go to libpq (``sslmode``, ``application_name``, ...). Prefer
            ``PGPASSWORD`` or ``~/.pgpass`` to a password in the URL.

    Every public write is a single transaction committed before the coroutine returns.

    Raises:
        ValueError: the URL is not a usable PostgreSQL URL (see :func:`parse_url`).
    """

    def __init__(self, url: str) -> None:
        self._conninfo, self._schema, self._durability = parse_url(url)
        self._shown = redact_url(url)
        self._secret = _password(url)
        self._conn: psycopg.AsyncConnection[DictRow] | None = None
        self._opened = False
        self._lock = anyio.Lock()

    @property
    def url(self) -> str:
        """The URL with its password hidden (safe to show)."""
        return self._shown

    @property
    def durability(self) -> Durability:
        """``server`` (default) or ``process`` (``synchronous_commit`` off), from the URL."""
        return self._durability

    @property
    def schema(self) -> str | None:
        """The ``schema=`` of the URL, or ``None`` for the database's default schema."""
        return self._schema

    def __repr__(self) -> str:
        return f"PostgresStateStore({self._shown!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, then create or migrate the schema. Idempotent.

        Raises:
            StateStoreError: psycopg is missing, the server cannot be reached or refuses the
                login, the database does not exist, or its schema is newer than this code.
        """
        async with self._lock:
            if self._opened:
                return
            conn = await self._connect()
            try:
                await migrate(conn, self._schema)
            except StateStoreError as exc:
                await self._discard(conn)
                raise StateStoreError(f"state database {self._shown!r}: {exc}") from exc
            except Exception as exc:
                await self._discard(conn)
                raise self._wrap("create the schema", exc) from exc
            self._conn = conn
            self._opened = True

    async def close(self) -> None:
        """Close the connection. Idempotent; committed state stays in the database."""
        async with self._lock:
            conn, self._conn = self._conn, None
            self._opened = False
            if conn is not None:
                await self._discard(conn)

    async def _connect(self) -> psycopg.AsyncConnection[DictRow]:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise StateStoreError(f"cannot open {self._shown!r}: {INSTALL_HINT}") from exc
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=_CONNECT_TIMEOUT_S,
            )
        except psycopg.Error as exc:
            raise self._wrap("connect", exc, where="to") from None
        try:
            await conn.execute("SET TIME ZONE 'UTC'")
            if self._durability == "process":
                await conn.execute("SET synchronous_commit TO off")
            if self._schema is not None:
                await conn.execute(
                    "SELECT set_config('search_path', %s, false)", (f'"{self._schema}"',)
                )
        except psycopg.Error as exc:
            await self._discard(conn)
            raise self._wrap("set up the session", exc, where="on") from None
        return conn

    @staticmethod
    async def _discard(conn: psycopg.AsyncConnection[Any]) -> None:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await conn.close()

    def _wrap(self, action: str, exc: BaseException, *, where: str = "in") -> StateStoreError:
        detail = str(exc).strip() or type(exc).__name__
        if self._secret:
            detail = detail.replace(self._secret, "***")
        return StateStoreError(
            f"cannot {action} {where} the state database {self._shown!r}: {detail}; {_hint(exc)}"
        )

    async def _ready(self) -> psycopg.AsyncConnection[DictRow]:
        """The connection; reconnects once if the previous one was lost. Caller holds the lock."""
        if not self._opened:
            raise StateStoreError(
                f"the state store {self._shown!r} is not open; call `await store.open()` first"
            )
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        return self._conn

    @contextlib.asynccontextmanager
    async def _session(
        self, action: str, *, write: bool
    ) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
        """The connection inside one transaction (for reads too, when ``write`` is false the
        single statement runs on its own). On any failure a connection left inside a
        transaction or a query is dropped, so the next call starts on a fresh one."""
        import psycopg

        async with self._lock:
            conn = await self._ready()
            try:
                if write:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
            except BaseException as exc:
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self._conn = None
                    await self._discard(conn)
                if isinstance(exc, psycopg.Error):
                    raise self._wrap(action, exc) from exc
                raise

    async def _fetchone(self, action: str, query: str, params: Any) -> DictRow | None:
        async with self._session(action, write=False) as conn:
            cursor = await conn.execute(query, params)
            row: DictRow | None = await cursor.fetchone()
        return row

    async def _fetchall(self, action: str, query: str, params: Any) -> list[DictRow]:
        async with self._session(action, write=False) as conn:
            cursor = await conn.execute(query, params)
            rows: list[DictRow] = await cursor.fetchall()
        return rows

    # ------------------------------------------------------------------ jobs

    async def upsert_job(self, job_id: str, company_id: str) -> JobRecord:
        """Record that this worker processes ``job_id``; an existing job is returned unchanged."""
        async with self._session("record the job", write=True) as conn:
            await conn.execute(
                "INSERT INTO jobs (job_id, company_id, created_at, updated_at) "
                "VALUES (%s, %s, now(), now()) ON CONFLICT (job_id) DO NOTHING",
                (job_id, company_id),
            )
            row = await (await conn.execute(_SELECT_JOB, (job_id,))).fetchone()
        assert row is not None
        return _job(row)

    async def _update_job(self, action: str, query: str, params: Sequence[Any]) -> None:
        async with self._session(action, write=True) as conn:
            cursor = await conn.execute(query, params)
            if cursor.rowcount == 0:
                raise KeyError(f"unknown job {params[-1]!r}; call upsert_job first")

    async def mark_started(self, job_id: str) -> None:
        """Record that this installation sent ``started``. Raises KeyError for an unknown job."""
        await self._update_job(
            "mark the job started",
            "UPDATE jobs SET started_by_us = true, updated_at = now() WHERE job_id = %s",
            (job_id,),
        )

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None`` if this store has never seen it."""
        row = await self._fetchone("read the job", _SELECT_JOB, (job_id,))
        return None if row is None else _job(row)

    async def finish_job(self, job_id: str, final_event: str, reason: str | None = None) -> None:
        """Record the final event sent to Pleo. Raises KeyError for an unknown job."""
        await self._update_job(
            "record the job's final event",
            "UPDATE jobs SET final_event = %s, final_reason = %s, updated_at = now() "
            "WHERE job_id = %s",
            (final_event, reason, job_id),
        )

    async def recent_jobs(self, limit: int = 20) -> list[JobRecord]:
        """Up to ``limit`` jobs, most recently created first."""
        rows = await self._fetchall("list jobs", _RECENT_JOBS, (limit,))
        return [_job(row) for row in rows]

    # ------------------------------------------------------------------ items

    async def add_items(self, job_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Snapshot ``(accounting_entry_id, pleo_status)`` pairs in one transaction.

        Same rules as :meth:`SQLiteStateStore.add_items
        <pleo_export.state.sqlite.SQLiteStateStore.add_items>`: new items start ``QUEUED``
        (``SKIPPED`` when their Pleo status is final), known items keep phase, attempts and
        outcome. ``items`` is consumed lazily in chunks of one statement each; if the call
        fails or is cancelled, none of its items are stored.
        """
        final = sorted(FINAL_PLEO_STATUSES)
        async with self._session("add items", write=True) as conn:
            for chunk in _chunks(items, _CHUNK):
                # Within one statement a row may be touched once: keep each id's first
                # position and last status, as consecutive upserts would.
                latest: dict[str, str] = {}
                for entry_id, status in chunk:
                    latest[entry_id] = status
                await conn.execute(
                    _UPSERT_ITEMS,
                    {
                        "job": job_id,
                        "final": final,
                        "ids": list(latest),
                        "statuses": list(latest.values()),
                    },
                )
                await anyio.lowlevel.checkpoint()

    async def get_item(self, job_id: str, accounting_entry_id: str) -> ItemRecord | None:
        """The item, or ``None`` if it was never added to this job."""
        row = await self._fetchone("read an item", _SELECT_ITEM, (job_id, accounting_entry_id))
        return None if row is None else _item(row)

    async def get_items(
        self, job_id: str, accounting_entry_ids: Sequence[str]
    ) -> dict[str, ItemRecord]:
        """The known items among ``accounting_entry_ids``, by id, in one query per chunk."""
        found: dict[str, ItemRecord] = {}
        ids = list(accounting_entry_ids)
        async with self._session("read items", write=False) as conn:
            for start in range(0, len(ids), _CHUNK):
                cursor = await conn.execute(_SELECT_ITEMS, (job_id, ids[start : start + _CHUNK]))
                for row in await cursor.fetchall():
                    record = _item(row)
                    found[record.accounting_entry_id] = record
        return found

    async def items(
        self, job_id: str, phases: Sequence[ItemPhase] | None = None
    ) -> list[ItemRecord]:
        """All items of a job (optionally only those in ``phases``), in insertion order."""
        wanted = None if phases is None else [ItemPhase(p).value for p in phases]
        rows = await self._fetchall("list items", _ITEMS_OF_JOB, {"job": job_id, "phases": wanted})
        return [_item(row) for row in rows]

    async def record_intent(self, job_id: str, accounting_entry_id: str) -> None:
        """Phase ``POSTING``, attempts + 1, earlier outcome cleared; committed before returning.

        Raises KeyError for an item that was never added.
        """
        async with self._session("record the intent to post", write=True) as conn:
            cursor = await conn.execute(
                "UPDATE items SET phase = %s, attempts = attempts + 1, outcome_seq = NULL, "
                "succeeded = NULL, external_id = NULL, external_url = NULL, "
                "exported_at = NULL, failure_reason_type = NULL, failure_reason = NULL, "
                "recovered = NULL, reported = false, updated_at = now() "
                "WHERE job_id = %s AND accounting_entry_id = %s",
                (ItemPhase.POSTING.value, job_id, accounting_entry_id),
            )
            if cursor.rowcount == 0:
                raise KeyError(_unknown_item(job_id, accounting_entry_id))

    async def record_outcome(
        self, job_id: str, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        """Phase ``SUCCEEDED``/``FAILED`` with ``outcome``, unreported, committed before returning.

        Raises KeyError for an item that was never added.
        """
        phase = ItemPhase.SUCCEEDED if outcome.succeeded else ItemPhase.FAILED
        exported_at = None if outcome.exported_at is None else _utc(outcome.exported_at)
        async with self._session("record the outcome", write=True) as conn:
            cursor = await conn.execute(
                "UPDATE items SET phase = %s, outcome_seq = nextval('outcome_seq'), "
                "succeeded = %s, external_id = %s, external_url = %s, exported_at = %s, "
                "failure_reason_type = %s, failure_reason = %s, recovered = %s, "
                "reported = false, updated_at = now() "
                "WHERE job_id = %s AND accounting_entry_id = %s",
                (
                    phase.value,
                    outcome.succeeded,
                    outcome.external_id,
                    outcome.external_url,
                    exported_at,
                    outcome.failure_reason_type,
                    outcome.failure_reason,
                    outcome.recovered,
                    job_id,
                    accounting_entry_id,
                ),
            )
            if cursor.rowcount == 0:
                raise KeyError(_unknown_item(job_id, accounting_entry_id))

    async def unreported(self, job_id: str, limit: int = 100) -> list[ItemRecord]:
        """Up to ``limit`` items with an outcome Pleo has not been told, oldest outcome first."""
        rows = await self._fetchall("list unreported items", _UNREPORTED, (job_id, limit))
        return [_item(row) for row in rows]

    async def mark_reported(self, job_id: str, accounting_entry_ids: Sequence[str]) -> None:
        """Record that Pleo acknowledged these items' outcomes.

        Ids that are unknown, have no outcome or are already reported are ignored.
        """
        ids = list(dict.fromkeys(accounting_entry_ids))
        if not ids:
            return
        async with self._session("mark items reported", write=True) as conn:
            for start in range(0, len(ids), _CHUNK):
                await conn.execute(
                    "UPDATE items SET reported = true, updated_at = now() "
                    "WHERE job_id = %s AND accounting_entry_id = ANY(%s::text[]) "
                    "AND outcome_seq IS NOT NULL AND NOT reported",
                    (job_id, ids[start : start + _CHUNK]),
                )

    async def counts(self, job_id: str) -> JobCounts:
        """Items of a job per phase, plus those whose outcome is not yet reported."""
        row = await self._fetchone(
            "count items",
            "SELECT count(*) AS total, "
            "count(*) FILTER (WHERE phase = 'queued') AS queued, "
            "count(*) FILTER (WHERE phase = 'posting') AS posting, "
            "count(*) FILTER (WHERE phase = 'succeeded') AS succeeded, "
            "count(*) FILTER (WHERE phase = 'failed') AS failed, "
            "count(*) FILTER (WHERE phase = 'skipped') AS skipped, "
            "count(*) FILTER (WHERE outcome_seq IS NOT NULL AND NOT reported) AS unreported "
            "FROM items WHERE job_id = %s",
            (job_id,),
        )
        assert row is not None
        return JobCounts(
            total=int(row["total"]),
            queued=int(row["queued"]),
            posting=int(row["posting"]),
            succeeded=int(row["succeeded"]),
            failed=int(row["failed"]),
            skipped=int(row["skipped"]),
            unreported=int(row["unreported"]),
        )

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
            current = await (await conn.execute(_SELECT_LEASE, params)).fetchone()
            if current is None:
                # A worker inserting the same name at once wins; this one gets nothing.
                row = await (await conn.execute(_INSERT_LEASE, params)).fetchone()
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
                row = await (await conn.execute(_TAKE_LEASE, params)).fetchone()
        if row is None:
            return None
        return Lease(name, holder, _utc(row["expires_at"]), int(row["fencing_token"]))

    async def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        """Extend ``lease`` if its holder still has it and it has not expired; else ``None``."""
        async with self._session("renew a lease", write=True) as conn:
            row = await (
                await conn.execute(
                    _RENEW_LEASE,
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
        return Lease(lease.name, lease.holder, _utc(row["expires_at"]), lease.fencing_token)

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up; a no-op when another holder has taken it since."""
        async with self._session("release a lease", write=True) as conn:
            await conn.execute(
                _RELEASE_LEASE,
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
        if row is None:
            return None
        return StoredToken(
            key=row["key"],
            access_token=row["access_token"],
            refresh_token=row["refresh_token"],
            expires_at=_utc(row["expires_at"]),
            generation=int(row["generation"]),
            scope=row["scope"],
        )

    async def replace_token(
        self, key: str, expected_generation: int | None, token: StoredToken
    ) -> bool:
        """Compare-and-swap on ``generation`` (see the base class)."""
        values = {
            "key": key,
            "access": token.access_token,
            "refresh": token.refresh_token,
            "expires": _utc(token.expires_at),
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
