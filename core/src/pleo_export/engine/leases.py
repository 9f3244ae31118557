"""Per-company leases: one worker at a time per company.

Several pleo-export processes may share one state store (PostgreSQL). They must never work on
the same company at once: before touching a company's jobs a worker takes the lease
``company:<company_id>`` in the store (:meth:`StateStore.acquire_lease`), for a TTL
(``engine.lease_ttl``, default 60 s). While it works, a background task renews the lease every
TTL/3. A worker that dies stops renewing; once the TTL has passed, another worker takes the
lease over and resumes the company's ``in_progress`` job from the shared outbox. A lease whose
process is provably dead (on the same host, see :mod:`pleo_export.state.process`) is taken over
at once, and a restarted worker with the same worker id takes its own lease back at once.

If a renewal fails (another worker has taken the lease, or the store cannot confirm it in time)
the lease counts as lost: the engine stops at the next item boundary (checked in memory, no
store call per item) and sends nothing more to Pleo for that job; the new holder resumes it.
A worker that cannot get a lease skips that company for this round and logs it.

:class:`~pleo_export.engine.worker.Worker` runs the rounds under these leases.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from pleo_export.state import StateStoreError

if TYPE_CHECKING:
    from pleo_export.state.base import Lease, StateStore

__all__ = [
    "DEFAULT_LEASE_TTL",
    "LEASE_PREFIX",
    "CompanyLease",
    "LeaseLost",
    "hold_company",
    "lease_name",
    "worker_identity",
]

log = logging.getLogger("pleo_export.engine.leases")

LEASE_PREFIX = "company:"
DEFAULT_LEASE_TTL = 60.0

_RENEWALS_PER_TTL = 3
_SAFE_FRACTION = 0.8
"""Without a confirmed renewal for this share of the TTL, the lease is treated as lost."""


def worker_identity() -> str:
    """``<hostname>-<pid>-<random>``: unique per process, readable in logs and the store."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def lease_name(company_id: str) -> str:
    return f"{LEASE_PREFIX}{company_id}"


class LeaseLost(Exception):
    """This worker no longer holds the company's lease; another worker resumes its job."""

    def __init__(self, company_id: str, holder: str, why: str) -> None:
        super().__init__(
            f"lost the lease on company {company_id} ({why}); worker {holder} stopped working "
            "on its job, and the worker that holds the lease now resumes it"
        )
        self.company_id = company_id
        self.holder = holder


class CompanyLease:
    """A held ``company:<id>`` lease, kept alive by :meth:`keep_renewed` in the background."""

    def __init__(
        self, store: StateStore, company_id: str, lease: Lease, ttl: float, taken_at: float
    ) -> None:
        self.store = store
        self.company_id = company_id
        self.lease = lease
        self.ttl = ttl
        self.lost: str | None = None
        """Why the lease was lost, or ``None`` while it is held."""
        self._confirmed_at = taken_at
        """Local clock reading taken *before* the last successful acquire/renew call."""

    @property
    def holder(self) -> str:
        return self.lease.holder

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is still safely held (no store call)."""
        if self.lost is None and anyio.current_time() - self._confirmed_at > self._deadline:
            self._lose("it was not renewed in time; the worker may have been stalled")
        if self.lost is not None:
            raise LeaseLost(self.company_id, self.holder, self.lost)

    @property
    def _deadline(self) -> float:
        return self.ttl * _SAFE_FRACTION

    def _lose(self, why: str) -> None:
        if self.lost is not None:
            return
        self.lost = why
        log.error(
            "lease lost: this worker stops working on the company at the next item boundary "
            "and sends nothing more to Pleo for its job; another worker resumes it",
            extra={
                "event": "lease.lost",
                "company_id": self.company_id,
                "worker": self.holder,
                "fencing_token": self.lease.fencing_token,
                "reason": why,
            },
        )

    async def keep_renewed(self) -> None:
        """Renew every TTL/3 until cancelled or lost; never raises (except cancellation)."""
        interval = self.ttl / _RENEWALS_PER_TTL
        retry = min(interval, 1.0)
        delay = interval
        while self.lost is None:
            await anyio.sleep(delay)
            started = anyio.current_time()
            try:
                renewed = await self.store.renew_lease(self.lease, self.ttl)
            except (StateStoreError, OSError) as error:
                if anyio.current_time() - self._confirmed_at > self._deadline:
                    self._lose(f"the state store could not renew it: {error}")
                    return
                log.warning(
                    "could not renew the company lease; retrying",
                    extra={
                        "event": "lease.renew_failed",
                        "company_id": self.company_id,
                        "worker": self.holder,
                        "error": str(error),
                    },
                )
                delay = retry
                continue
            if renewed is None:
                self._lose("another worker holds it now, or it expired before it was renewed")
                return
            self.lease = renewed
            self._confirmed_at = started
            delay = interval
            log.debug(
                "lease renewed",
                extra={"event": "lease.renewed", "company_id": self.company_id},
            )


@asynccontextmanager
async def hold_company(
    store: StateStore, company_id: str, holder: str, ttl: float
) -> AsyncIterator[CompanyLease | None]:
    """Hold ``company:<company_id>`` while the block runs; yields ``None`` if another worker
    has it. The lease is renewed in the background and released at the end (unless lost)."""
    taken_at = anyio.current_time()
    lease = await store.acquire_lease(lease_name(company_id), holder, ttl)
    if lease is None:
        yield None
        return
    keeper = CompanyLease(store, company_id, lease, ttl, taken_at)
    log.debug(
        "lease taken",
        extra={
            "event": "lease.taken",
            "company_id": company_id,
            "worker": holder,
            "fencing_token": lease.fencing_token,
        },
    )
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(keeper.keep_renewed)
            try:
                yield keeper
            except Exception as error:  # re-raised below, outside the task group's wrapping
                failure = error
            finally:
                tasks.cancel_scope.cancel()
    finally:
        if keeper.lost is None:
            with anyio.CancelScope(shield=True):
                try:
                    await store.release_lease(keeper.lease)
                except StateStoreError as error:
                    log.warning(
                        "could not release the company lease; it expires by itself",
                        extra={
                            "event": "lease.release_failed",
                            "company_id": company_id,
                            "error": str(error),
                        },
                    )
    if failure is not None:
        raise failure
