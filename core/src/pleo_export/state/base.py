"""The state store: a small durable outbox of what the engine did to each item.

For every item of a job the store keeps, in order: that the item is to be processed (the
control-layer snapshot), the *intent* written just before posting it to the target, the
*outcome* written just after (successful with the target's reference, or failed with a
reason), and whether Pleo has been told. After a crash the engine reads the store back:

- an item with an intent but no outcome is *uncertain*: it may be in the target already, so it
  is looked up by reference before anything is posted again;
- an item with an outcome that Pleo has not been told about is reported, never re-posted.

The interface is deliberately narrow (one job row, one row per item) so that every backend
(SQLite, PostgreSQL) implements the same methods. It comes in three parts: :class:`JobOutbox`
(jobs and items), :class:`LeaseStore` (which worker holds a company) and :class:`TokenStore`
(OAuth tokens); :class:`StateStore` is all three in one database. Code that needs only one
part takes that part. All methods are coroutines; implementations must make every write
durable before returning.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pleo_export.pleo.models import ExportJobItemFailureReasonType


class StateStoreError(Exception):
    """The state store cannot be opened, read or written.

    The message names the database and says what to change (path, permissions, a newer
    pleo-export, ...). Programming errors, such as recording an outcome for an item that was
    never added, raise :class:`KeyError` instead.
    """


FINAL_PLEO_STATUSES: frozenset[str] = frozenset({"successful", "failed", "abandoned"})
"""Control-layer statuses that are already final in Pleo: such items are stored ``SKIPPED``."""


class ItemPhase(StrEnum):
    QUEUED = "queued"
    """Known from the control layer; nothing done yet."""
    POSTING = "posting"
    """Intent recorded: the engine is about to write to the target (or crashed while doing so)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Already final in Pleo when the job was read (``successful``/``failed``/``abandoned``)."""


@dataclass(frozen=True)
class ItemOutcome:
    """The final fate of one item, as it is reported to Pleo."""

    succeeded: bool
    external_id: str | None = None
    external_url: str | None = None
    exported_at: datetime | None = None
    failure_reason_type: ExportJobItemFailureReasonType | None = None
    failure_reason: str | None = None
    recovered: bool = False
    """True when the entry was found in the target by reference rather than posted now."""


@dataclass(frozen=True)
class ItemRecord:
    job_id: str
    accounting_entry_id: str
    phase: ItemPhase
    pleo_status: str
    """The item's status in Pleo's control layer when the job was read."""
    attempts: int
    outcome: ItemOutcome | None
    reported: bool
    updated_at: datetime


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    company_id: str
    started_by_us: bool
    final_event: str | None
    """``completed``/``completed_with_errors``/``failed`` once sent to Pleo, else ``None``."""
    created_at: datetime
    updated_at: datetime
    final_reason: str | None = None


@dataclass(frozen=True)
class Lease:
    """A named, expiring lock held by one worker (see :meth:`LeaseStore.acquire_lease`)."""

    name: str
    holder: str
    expires_at: datetime
    fencing_token: int
    """Increases every time the lease changes hands (never on a renewal by the same holder).

    The store compares it in :meth:`~LeaseStore.renew_lease` and
    :meth:`~LeaseStore.release_lease`, so a holder that lost the lease can neither extend nor
    release its successor's. Outbox writes (:meth:`~JobOutbox.record_intent`,
    :meth:`~JobOutbox.record_outcome`, ...) are *not* fenced with it: the engine checks that it
    still holds the lease before each item (see ``docs/delivery-guarantees.md``, "The limit")."""


@dataclass(frozen=True)
class StoredToken:
    """OAuth tokens of one installation, as kept in the state store.

    ``generation`` increases on every replacement; :meth:`TokenStore.replace_token` compares it
    so that a refresh token, once spent, is never written back by a slower process.
    """

    key: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    generation: int
    scope: str | None = None


@dataclass(frozen=True)
class JobCounts:
    total: int
    queued: int
    posting: int
    succeeded: int
    failed: int
    skipped: int
    unreported: int


class JobOutbox(Protocol):
    """Jobs and their items: the durable per-item outbox (see the module docstring)."""

    @abc.abstractmethod
    async def upsert_job(self, job_id: str, company_id: str) -> JobRecord:
        """Record that this worker is processing ``job_id`` (no-op if already known)."""

    @abc.abstractmethod
    async def mark_started(self, job_id: str) -> None:
        """Record that *this* installation sent the ``started`` event for the job."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> JobRecord | None: ...

    @abc.abstractmethod
    async def finish_job(self, job_id: str, final_event: str, reason: str | None = None) -> None:
        """Record the final event sent to Pleo."""

    @abc.abstractmethod
    async def recent_jobs(self, limit: int = 20) -> list[JobRecord]:
        """Newest first."""

    # items
    @abc.abstractmethod
    async def add_items(self, job_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Snapshot the control layer: ``(accounting_entry_id, pleo_status)`` pairs.

        Items already known keep their phase and outcome (a resumed job re-reads the control
        layer); only their ``pleo_status`` is refreshed. Items whose Pleo status is final are
        stored as ``SKIPPED`` unless this store already holds an outcome for them.
        """

    @abc.abstractmethod
    async def get_item(self, job_id: str, accounting_entry_id: str) -> ItemRecord | None: ...

    async def get_items(
        self, job_id: str, accounting_entry_ids: Sequence[str]
    ) -> dict[str, ItemRecord]:
        """The known items among ``accounting_entry_ids``, by id (one page of export items).

        Backends override this with a single query; the default asks item by item.
        """
        found: dict[str, ItemRecord] = {}
        for entry_id in accounting_entry_ids:
            record = await self.get_item(job_id, entry_id)
            if record is not None:
                found[entry_id] = record
        return found

    @abc.abstractmethod
    async def items(
        self, job_id: str, phases: Sequence[ItemPhase] | None = None
    ) -> list[ItemRecord]:
        """Items of a job (optionally only in ``phases``), in the order they were added."""

    @abc.abstractmethod
    async def record_intent(self, job_id: str, accounting_entry_id: str) -> None:
        """Phase ``POSTING``, attempts + 1. Durable before the connector writes anything."""

    @abc.abstractmethod
    async def record_outcome(
        self, job_id: str, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        """Phase ``SUCCEEDED``/``FAILED`` with the outcome, not yet reported."""

    @abc.abstractmethod
    async def unreported(self, job_id: str, limit: int = 100) -> list[ItemRecord]:
        """Items with an outcome that Pleo has not acknowledged yet, oldest outcome first."""

    @abc.abstractmethod
    async def mark_reported(self, job_id: str, accounting_entry_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def counts(self, job_id: str) -> JobCounts: ...


class LeaseStore(Protocol):
    """Named expiring leases: at most one worker per company, one OAuth refresh at a time."""

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        """Take the lease ``name`` for ``holder`` for ``ttl_seconds``, or return ``None``.

        Succeeds when nobody holds it, when its holder let it expire, when the process that
        holds it is provably dead (on this host), or when ``holder`` already holds it and no
        other live process on this host does (then it is extended). The store records the
        calling process with the lease; the rule is
        :func:`pleo_export.state.process.lease_decision`. Atomic across processes.
        """

    @abc.abstractmethod
    async def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        """Extend a lease still held by ``lease.holder``; ``None`` when it was lost."""

    @abc.abstractmethod
    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up (no-op when it was already lost)."""


class TokenStore(Protocol):
    """OAuth tokens of each installation, replaced by compare-and-swap on ``generation``."""

    @abc.abstractmethod
    async def get_token(self, key: str) -> StoredToken | None: ...

    @abc.abstractmethod
    async def replace_token(
        self, key: str, expected_generation: int | None, token: StoredToken
    ) -> bool:
        """Store ``token`` if the stored generation is ``expected_generation`` (``None``: none
        stored yet); return ``False`` and change nothing otherwise. The stored generation
        becomes ``expected_generation + 1`` (or 1)."""


class SettingStore(Protocol):
    """Small named values kept with the state, such as the signing secret of each webhook
    subscription (``pleo-export webhooks subscribe``). Values are stored as given (like the
    OAuth tokens): protect the database as you protect the credentials."""

    @abc.abstractmethod
    async def get_setting(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def put_setting(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    async def delete_setting(self, key: str) -> bool:
        """Remove ``key``; ``False`` when there was nothing to remove."""

    @abc.abstractmethod
    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every setting whose key starts with ``prefix``, by key."""


class StateStore(JobOutbox, LeaseStore, TokenStore, SettingStore, abc.ABC):
    """A backend: the outbox, the leases, the tokens and the settings in one database, opened
    and closed together. :func:`~pleo_export.state.open_store` returns one for a URL."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None: ...
