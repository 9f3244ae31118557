"""SQLite implementation of the state store.

One file, one connection, stdlib :mod:`sqlite3`.

Threading trade-off: every call runs synchronous SQLite on the event loop thread instead of in
a worker thread. Each statement the engine issues is a primary-key lookup or update that takes
well under a millisecond, which is cheaper than a thread hop (and keeps one connection without
cross-thread hand-offs). The only bulk call, :meth:`SQLiteStateStore.add_items`, yields to the
event loop between chunks so that a 100,000-item page does not stall other tasks. An
:class:`anyio.Lock` serialises the coroutines of this store so that one task's transaction
never interleaves with another's statements on the shared connection.

Durability: the database runs in WAL mode. With ``synchronous=NORMAL`` (``durability="process"``,
the default) a commit is in the WAL file, i.e. in the OS page cache, before the call returns; it
survives the process being killed (``kill -9``, OOM killer, a crash), which is the failure the
outbox protocol must survive. It does *not* survive power loss or a kernel crash: the last
commits may be rolled back (never corrupted). For that, use ``durability="power"``, which sets
``synchronous=FULL`` and fsyncs the WAL on every commit, at a cost in write latency.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

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
from pleo_export.state.rows import (
    CHUNK,
    chunks,
    item_record,
    job_record,
    unknown_item,
)
from pleo_export.state.sqlite_leases import SQLiteLeasesAndTokens
from pleo_export.state.sqlite_schema import (
    ITEMS_OF_JOB,
    RECENT_JOBS,
    SCHEMA_VERSION,
    SELECT_ITEM,
    SELECT_ITEMS,
    SELECT_JOB,
    UNREPORTED,
    UPSERT_ITEM,
    from_text,
    migrate,
    now_text,
    to_text,
)

__all__ = ["SCHEMA_VERSION", "Durability", "SQLiteStateStore"]

Durability = Literal["process", "power"]
"""``process``: survive process crashes (``synchronous=NORMAL``); ``power``: also power loss."""

MEMORY: Final = ":memory:"

_BUSY_TIMEOUT_MS = 5_000


def _item(row: sqlite3.Row) -> ItemRecord:
    return item_record(row, from_text)


def _job(row: sqlite3.Row) -> JobRecord:
    return job_record(row, from_text)


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            "the file is not a pleo-export state database or is damaged; move it aside (the "
            "next run starts with empty state) or point the state URL at another file"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (
            "make the file and its directory writable by this user, or point the state URL "
            "at a writable location"
        )
    if "locked" in text or "busy" in text:
        return (
            "another process holds the database lock; make sure only one pleo-export worker "
            "uses this file, or give each worker its own state URL"
        )
    if "disk" in text or "full" in text:
        return "free disk space on the volume holding the state database"
    return "check the state URL and the file it names"


# --------------------------------------------------------------------------- the store


class SQLiteStateStore(SQLiteLeasesAndTokens, StateStore):
    """A :class:`~pleo_export.state.base.StateStore` in one SQLite file.

    Args:
        path: the database file, created with its parent directories if missing;
            ``":memory:"`` for a private in-memory database (tests).
        durability: ``"process"`` (default, ``synchronous=NORMAL``) makes every commit survive
            a crash or ``kill -9`` of this process; ``"power"`` (``synchronous=FULL``) also
            survives power loss and OS crashes, at the cost of an fsync per write.

    Every public write is a single transaction committed before the coroutine returns.
    """

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "process"):
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        raw = os.fspath(path)
        self._path: Path | None = None if raw == MEMORY else Path(raw)
        self._durability: Durability = durability
        self._conn: sqlite3.Connection | None = None
        # fast_acquire: an uncontended acquire does not yield to the event loop. Each call
        # is short and synchronous, and the engine calls the store a few times per item, so
        # the yield was a measurable share of the engine's CPU; contended acquires still wait.
        self._lock = anyio.Lock(fast_acquire=True)

    @property
    def path(self) -> str:
        """The database file as given (``":memory:"`` for an in-memory store)."""
        return MEMORY if self._path is None else str(self._path)

    @property
    def durability(self) -> Durability:
        """The durability level chosen at construction."""
        return self._durability

    def __repr__(self) -> str:
        return f"SQLiteStateStore({self.path!r}, durability={self._durability!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the file (and parent directories) if needed, then create or migrate the schema.

        Idempotent: opening an open store, or a file that already holds the current schema,
        changes nothing.

        Raises:
            StateStoreError: the directory cannot be created, the file cannot be opened or
                written, it is not a SQLite database, or its schema is newer than this code.
        """
        async with self._lock:
            if self._conn is not None:
                return
            if self._path is not None:
                try:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StateStoreError(
                        f"cannot create the directory {str(self._path.parent)!r} for the state "
                        f"database {self.path!r}: {exc}; create it or point the state URL at a "
                        "writable location"
                    ) from exc
            conn: sqlite3.Connection | None = None
            try:
                conn = sqlite3.connect(
                    self.path,
                    isolation_level=None,  # autocommit: transactions are explicit
                    check_same_thread=False,
                    timeout=_BUSY_TIMEOUT_MS / 1000,
                )
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS:d}")
                conn.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode: commits survive process death; FULL: also power loss.
                synchronous = "FULL" if self._durability == "power" else "NORMAL"
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                migrate(conn)
            except StateStoreError as exc:
                if conn is not None:
                    conn.close()
                raise StateStoreError(f"state database {self.path!r}: {exc}") from exc
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                raise StateStoreError(
                    f"cannot open the state database {self.path!r}: {exc}; {_hint(exc)}"
                ) from exc
            self._conn = conn

    async def close(self) -> None:
        """Close the connection. Idempotent; committed state stays on disk."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateStoreError(
                f"the state store {self.path!r} is not open; call `await store.open()` first"
            )
        return self._conn

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateStoreError(
                f"cannot {action} in the state database {self.path!r}: {exc}; {_hint(exc)}"
            ) from exc

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One committed write transaction; the caller holds ``self._lock``."""
        conn = self._connection()
        with self._errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ jobs

    async def upsert_job(self, job_id: str, company_id: str) -> JobRecord:
        """Record that this worker processes ``job_id``; an existing job is returned unchanged."""
        now = now_text()
        async with self._lock:
            with self._write("record the job") as conn:
                conn.execute(
                    "INSERT INTO jobs (job_id, company_id, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
                    (job_id, company_id, now, now),
                )
                row = conn.execute(SELECT_JOB, (job_id,)).fetchone()
        return _job(row)

    async def mark_started(self, job_id: str) -> None:
        """Record that this installation sent ``started``. Raises KeyError for an unknown job."""
        async with self._lock:
            with self._write("mark the job started") as conn:
                cursor = conn.execute(
                    "UPDATE jobs SET started_by_us = 1, updated_at = ? WHERE job_id = ?",
                    (now_text(), job_id),
                )
                if cursor.rowcount == 0:
                    raise KeyError(f"unknown job {job_id!r}; call upsert_job first")

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None`` if this store has never seen it."""
        async with self._lock:
            conn = self._connection()
            with self._errors("read the job"):
                row = conn.execute(SELECT_JOB, (job_id,)).fetchone()
        return None if row is None else _job(row)

    async def finish_job(self, job_id: str, final_event: str, reason: str | None = None) -> None:
        """Record the final event sent to Pleo. Raises KeyError for an unknown job."""
        async with self._lock:
            with self._write("record the job's final event") as conn:
                cursor = conn.execute(
                    "UPDATE jobs SET final_event = ?, final_reason = ?, updated_at = ? "
                    "WHERE job_id = ?",
                    (final_event, reason, now_text(), job_id),
                )
                if cursor.rowcount == 0:
                    raise KeyError(f"unknown job {job_id!r}; call upsert_job first")

    async def recent_jobs(self, limit: int = 20) -> list[JobRecord]:
        """Up to ``limit`` jobs, most recently created first."""
        async with self._lock:
            conn = self._connection()
            with self._errors("list jobs"):
                rows = conn.execute(RECENT_JOBS, (limit,)).fetchall()
        return [_job(row) for row in rows]

    # ------------------------------------------------------------------ items

    async def add_items(self, job_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Snapshot ``(accounting_entry_id, pleo_status)`` pairs in one transaction.

        New items start ``QUEUED``, or ``SKIPPED`` when their Pleo status is final
        (``successful``/``failed``/``abandoned``). Known items keep their phase, attempts and
        outcome; their ``pleo_status`` is refreshed, and one without an outcome whose Pleo status
        became final moves to ``SKIPPED``. ``items`` is consumed lazily in chunks; the event loop
        gets a turn between chunks while the transaction (and the store's lock) stays held.
        If the call fails or is cancelled, none of its items are stored.
        """
        now = now_text()
        skipped, queued = ItemPhase.SKIPPED.value, ItemPhase.QUEUED.value
        async with self._lock:
            with self._write("add items") as conn:
                for chunk in chunks(items):
                    conn.executemany(
                        UPSERT_ITEM,
                        [
                            (
                                job_id,
                                entry_id,
                                skipped if status in FINAL_PLEO_STATUSES else queued,
                                status,
                                now,
                            )
                            for entry_id, status in chunk
                        ],
                    )
                    await anyio.lowlevel.checkpoint()

    async def get_item(self, job_id: str, accounting_entry_id: str) -> ItemRecord | None:
        """The item, or ``None`` if it was never added to this job."""
        async with self._lock:
            conn = self._connection()
            with self._errors("read an item"):
                row = conn.execute(SELECT_ITEM, (job_id, accounting_entry_id)).fetchone()
        return None if row is None else _item(row)

    async def get_items(
        self, job_id: str, accounting_entry_ids: Sequence[str]
    ) -> dict[str, ItemRecord]:
        """The known items among ``accounting_entry_ids``, in one query per chunk."""
        found: dict[str, ItemRecord] = {}
        async with self._lock:
            conn = self._connection()
            with self._errors("read items"):
                for start in range(0, len(accounting_entry_ids), CHUNK):
                    chunk = json.dumps(list(accounting_entry_ids[start : start + CHUNK]))
                    for row in conn.execute(SELECT_ITEMS, (job_id, chunk)):
                        record = _item(row)
                        found[record.accounting_entry_id] = record
        return found

    async def items(
        self, job_id: str, phases: Sequence[ItemPhase] | None = None
    ) -> list[ItemRecord]:
        """All items of a job (optionally only those in ``phases``), in insertion order.

        This loads the whole selection into memory; prefer :meth:`unreported`/:meth:`counts`
        where they suffice.
        """
        wanted = None if phases is None else json.dumps([ItemPhase(p).value for p in phases])
        async with self._lock:
            conn = self._connection()
            with self._errors("list items"):
                rows = conn.execute(ITEMS_OF_JOB, (job_id, wanted)).fetchall()
        return [_item(row) for row in rows]

    async def record_intent(self, job_id: str, accounting_entry_id: str) -> None:
        """Phase ``POSTING``, attempts + 1, committed before returning.

        Any earlier outcome of the item is cleared, so that ``POSTING`` always means "about to
        write, fate unknown". Raises KeyError for an item that was never added.
        """
        async with self._lock:
            with self._write("record the intent to post") as conn:
                cursor = conn.execute(
                    "UPDATE items SET phase = ?, attempts = attempts + 1, outcome_seq = NULL, "
                    "succeeded = NULL, external_id = NULL, external_url = NULL, "
                    "exported_at = NULL, failure_reason_type = NULL, failure_reason = NULL, "
                    "recovered = NULL, reported = 0, updated_at = ? "
                    "WHERE job_id = ? AND accounting_entry_id = ?",
                    (ItemPhase.POSTING.value, now_text(), job_id, accounting_entry_id),
                )
                if cursor.rowcount == 0:
                    raise KeyError(unknown_item(job_id, accounting_entry_id))

    async def record_outcome(
        self, job_id: str, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        """Phase ``SUCCEEDED``/``FAILED`` with ``outcome``, unreported, committed before returning.

        Recording a new outcome for an item replaces the previous one and queues it for
        reporting again. Raises KeyError for an item that was never added.
        """
        phase = ItemPhase.SUCCEEDED if outcome.succeeded else ItemPhase.FAILED
        exported_at = None if outcome.exported_at is None else to_text(outcome.exported_at)
        async with self._lock:
            with self._write("record the outcome") as conn:
                (seq,) = conn.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'outcome_seq' "
                    "RETURNING value"
                ).fetchone()
                cursor = conn.execute(
                    "UPDATE items SET phase = ?, outcome_seq = ?, succeeded = ?, "
                    "external_id = ?, external_url = ?, exported_at = ?, "
                    "failure_reason_type = ?, failure_reason = ?, recovered = ?, "
                    "reported = 0, updated_at = ? "
                    "WHERE job_id = ? AND accounting_entry_id = ?",
                    (
                        phase.value,
                        seq,
                        int(outcome.succeeded),
                        outcome.external_id,
                        outcome.external_url,
                        exported_at,
                        outcome.failure_reason_type,
                        outcome.failure_reason,
                        int(outcome.recovered),
                        now_text(),
                        job_id,
                        accounting_entry_id,
                    ),
                )
                if cursor.rowcount == 0:
                    raise KeyError(unknown_item(job_id, accounting_entry_id))

    async def unreported(self, job_id: str, limit: int = 100) -> list[ItemRecord]:
        """Up to ``limit`` items with an outcome Pleo has not been told, oldest outcome first."""
        async with self._lock:
            conn = self._connection()
            with self._errors("list unreported items"):
                rows = conn.execute(UNREPORTED, (job_id, limit)).fetchall()
        return [_item(row) for row in rows]

    async def mark_reported(self, job_id: str, accounting_entry_ids: Sequence[str]) -> None:
        """Record that Pleo acknowledged these items' outcomes.

        Ids that are unknown, have no outcome or are already reported are ignored.
        """
        now = now_text()
        async with self._lock:
            with self._write("mark items reported") as conn:
                for chunk in chunks((entry_id, now) for entry_id in accounting_entry_ids):
                    conn.executemany(
                        "UPDATE items SET reported = 1, updated_at = ? "
                        "WHERE job_id = ? AND accounting_entry_id = ? "
                        "AND outcome_seq IS NOT NULL AND reported = 0",
                        [(ts, job_id, entry_id) for entry_id, ts in chunk],
                    )

    async def counts(self, job_id: str) -> JobCounts:
        """Items of a job per phase, plus those whose outcome is not yet reported."""
        async with self._lock:
            conn = self._connection()
            with self._errors("count items"):
                row = conn.execute(
                    "SELECT count(*), "
                    "coalesce(sum(phase = 'queued'), 0), "
                    "coalesce(sum(phase = 'posting'), 0), "
                    "coalesce(sum(phase = 'succeeded'), 0), "
                    "coalesce(sum(phase = 'failed'), 0), "
                    "coalesce(sum(phase = 'skipped'), 0), "
                    "coalesce(sum(outcome_seq IS NOT NULL AND reported = 0), 0) "
                    "FROM items WHERE job_id = ?",
                    (job_id,),
                ).fetchone()
        total, queued, posting, succeeded, failed, skipped, unreported = (int(v) for v in row)
        return JobCounts(
            total=total,
            queued=queued,
            posting=posting,
            succeeded=succeeded,
            failed=failed,
            skipped=skipped,
            unreported=unreported,
        )
