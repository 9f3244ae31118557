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
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel

from pleo_export.state.base import (
    FINAL_PLEO_STATUSES,
    ItemOutcome,
    ItemPhase,
    ItemRecord,
    JobCounts,
    JobRecord,
    StateStore,
    StateStoreError,
)
from pleo_export.state.postgres_leases import PostgresLeasesAndTokens
from pleo_export.state.postgres_schema import (
    ITEMS_OF_JOB,
    RECENT_JOBS,
    SCHEMA_VERSION,
    SELECT_ITEM,
    SELECT_ITEMS,
    SELECT_JOB,
    UNREPORTED,
    UPSERT_ITEMS,
    migrate,
)
from pleo_export.state.postgres_url import (
    Durability,
    ParsedURL,
    parse_url,
    password_of,
    redact_url,
)
from pleo_export.state.rows import (
    CHUNK,
    chunks,
    item_record,
    job_record,
    unknown_item,
    utc,
)

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

_CONNECT_TIMEOUT_S = 10


# --------------------------------------------------------------------------- helpers


def _item(row: DictRow) -> ItemRecord:
    return item_record(row, utc)


def _job(row: DictRow) -> JobRecord:
    return job_record(row, utc)


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


# --------------------------------------------------------------------------- the store


class PostgresStateStore(PostgresLeasesAndTokens, StateStore):
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
        self._secret = password_of(url)
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
            row = await (await conn.execute(SELECT_JOB, (job_id,))).fetchone()
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
        row = await self._fetchone("read the job", SELECT_JOB, (job_id,))
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
        rows = await self._fetchall("list jobs", RECENT_JOBS, (limit,))
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
            for chunk in chunks(items):
                # Within one statement a row may be touched once: keep each id's first
                # position and last status, as consecutive upserts would.
                latest: dict[str, str] = {}
                for entry_id, status in chunk:
                    latest[entry_id] = status
                await conn.execute(
                    UPSERT_ITEMS,
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
        row = await self._fetchone("read an item", SELECT_ITEM, (job_id, accounting_entry_id))
        return None if row is None else _item(row)

    async def get_items(
        self, job_id: str, accounting_entry_ids: Sequence[str]
    ) -> dict[str, ItemRecord]:
        """The known items among ``accounting_entry_ids``, by id, in one query per chunk."""
        found: dict[str, ItemRecord] = {}
        ids = list(accounting_entry_ids)
        async with self._session("read items", write=False) as conn:
            for start in range(0, len(ids), CHUNK):
                cursor = await conn.execute(SELECT_ITEMS, (job_id, ids[start : start + CHUNK]))
                for row in await cursor.fetchall():
                    record = _item(row)
                    found[record.accounting_entry_id] = record
        return found

    async def items(
        self, job_id: str, phases: Sequence[ItemPhase] | None = None
    ) -> list[ItemRecord]:
        """All items of a job (optionally only those in ``phases``), in insertion order."""
        wanted = None if phases is None else [ItemPhase(p).value for p in phases]
        rows = await self._fetchall("list items", ITEMS_OF_JOB, {"job": job_id, "phases": wanted})
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
                raise KeyError(unknown_item(job_id, accounting_entry_id))

    async def record_outcome(
        self, job_id: str, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        """Phase ``SUCCEEDED``/``FAILED`` with ``outcome``, unreported, committed before returning.

        Raises KeyError for an item that was never added.
        """
        phase = ItemPhase.SUCCEEDED if outcome.succeeded else ItemPhase.FAILED
        exported_at = None if outcome.exported_at is None else utc(outcome.exported_at)
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
                raise KeyError(unknown_item(job_id, accounting_entry_id))

    async def unreported(self, job_id: str, limit: int = 100) -> list[ItemRecord]:
        """Up to ``limit`` items with an outcome Pleo has not been told, oldest outcome first."""
        rows = await self._fetchall("list unreported items", UNREPORTED, (job_id, limit))
        return [_item(row) for row in rows]

    async def mark_reported(self, job_id: str, accounting_entry_ids: Sequence[str]) -> None:
        """Record that Pleo acknowledged these items' outcomes.

        Ids that are unknown, have no outcome or are already reported are ignored.
        """
        ids = list(dict.fromkeys(accounting_entry_ids))
        if not ids:
            return
        async with self._session("mark items reported", write=True) as conn:
            for start in range(0, len(ids), CHUNK):
                await conn.execute(
                    "UPDATE items SET reported = true, updated_at = now() "
                    "WHERE job_id = %s AND accounting_entry_id = ANY(%s::text[]) "
                    "AND outcome_seq IS NOT NULL AND NOT reported",
                    (job_id, ids[start : start + CHUNK]),
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
