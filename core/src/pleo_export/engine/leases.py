"""Per-company leases, and a worker that serves several companies in turn.

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

:class:`Worker` runs the rounds: every company in turn (the configured order), one job per
company per turn, oldest first, until a whole round finds nothing to do. Dry runs take no
lease, since they change nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import anyio

from pleo_export.engine.report import JobReport, RunReport
from pleo_export.state import StateStoreError

if TYPE_CHECKING:
    from pleo_export.engine.runner import ExportEngine
    from pleo_export.pleo.models import ExportJob
    from pleo_export.state.base import Lease, StateStore

__all__ = [
    "DEFAULT_LEASE_TTL",
    "LEASE_PREFIX",
    "CompanyLease",
    "LeaseLost",
    "Worker",
    "WorkerOptions",
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


@dataclass
class WorkerOptions:
    holder: str = field(default_factory=worker_identity)
    """This worker's name in the store's leases (``engine.worker_id``)."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    """Seconds a lease lasts without renewal (``engine.lease_ttl``)."""
    take_leases: bool = True
    """``False`` for dry runs: they change nothing, so they need no lease."""


class Worker:
    """Serves one or several companies: leases each in turn and runs its oldest job.

    Args:
        engine: the engine for the configured company (or, with no companies configured, for
            whatever companies the credential sees: they are discovered from the job list).
        companies: the companies to serve, in the order they take turns.
        engines: engines for particular companies (e.g. with their own connector settings);
            a company without one gets a copy of ``engine`` bound to it.
        options: the lease settings.
    """

    def __init__(
        self,
        engine: ExportEngine,
        companies: Sequence[str] = (),
        *,
        engines: Mapping[str, ExportEngine] | None = None,
        options: WorkerOptions | None = None,
    ) -> None:
        self.engine = engine
        self.companies = list(dict.fromkeys(companies))
        self.options = options or WorkerOptions()
        self._engines: dict[str, ExportEngine] = dict(engines or {})
        self.leased_elsewhere: list[str] = []
        """Companies skipped in the last run because another worker held their lease."""
        self._waiting: dict[str, int] = {}
        """Company -> its jobs pending or in progress in Pleo, counted when it was skipped."""
        self.current_lease: CompanyLease | None = None
        """The lease covering the job being processed right now, if any."""

    @property
    def store(self) -> StateStore:
        return self.engine.store

    @property
    def holder(self) -> str:
        return self.options.holder

    def engine_for(self, company_id: str) -> ExportEngine:
        """The engine bound to ``company_id`` (built from the base engine on first use)."""
        known = self._engines.get(company_id)
        if known is not None:
            return known
        if not self.companies or self.engine.options.company_id == company_id:
            engine = self.engine
        else:
            from pleo_export.engine.runner import ExportEngine

            engine = ExportEngine(
                client=self.engine.client,
                connector=self.engine.connector,
                store=self.engine.store,
                hooks=self.engine.hooks,
                options=replace(self.engine.options, company_id=company_id),
                progress=self.engine.progress,
            )
            engine.unavailable = self.engine.unavailable
        self._engines[company_id] = engine
        return engine

    def engines(self) -> dict[str, ExportEngine]:
        """The engine of every configured company (empty when companies are discovered)."""
        return {company: self.engine_for(company) for company in self.companies}

    async def _turn_order(self) -> list[str]:
        if self.companies:
            return list(self.companies)
        jobs = await self.engine.pending_jobs()
        return list(dict.fromkeys(job.company_id for job in jobs))

    # --- running ---------------------------------------------------------------------------

    async def run_pending(self, *, max_jobs: int | None = None) -> RunReport:
        """Process pending jobs of every company, one job per company per turn, until a whole
        round finds nothing to do (or ``max_jobs`` jobs were taken)."""
        self.leased_elsewhere = []
        self._waiting = {}
        if not self.options.take_leases:
            return await self._dry_run(max_jobs)
        report = RunReport()
        seen: set[str] = set()
        taken = 0
        while True:
            progressed = False
            skipped: list[str] = []
            for company in await self._turn_order():
                if max_jobs is not None and taken >= max_jobs:
                    self.leased_elsewhere = skipped
                    report.waiting_elsewhere = {c: self._waiting.get(c, 0) for c in skipped}
                    return report
                outcome = await self._turn(company, seen, report)
                if outcome is None:
                    skipped.append(company)
                elif outcome:
                    taken += 1
                    progressed = True
            self.leased_elsewhere = skipped
            if not progressed:
                report.waiting_elsewhere = {c: self._waiting.get(c, 0) for c in skipped}
                return report

    async def _dry_run(self, max_jobs: int | None) -> RunReport:
        if not self.companies:
            return await self.engine.run_pending(max_jobs=max_jobs)
        report = RunReport()
        for company in self.companies:
            left = None if max_jobs is None else max_jobs - len(report.jobs)
            if left is not None and left <= 0:
                break
            part = await self.engine_for(company).run_pending(max_jobs=left)
            report.jobs.extend(part.jobs)
            report.skipped_jobs.extend(part.skipped_jobs)
        return report

    async def _turn(self, company: str, seen: set[str], report: RunReport) -> bool | None:
        """One company's turn: ``None`` if leased elsewhere, else whether a job was taken."""
        engine = self.engine_for(company)
        async with hold_company(self.store, company, self.holder, self.options.lease_ttl) as lease:
            if lease is None:
                waiting = [job for job in await engine.pending_jobs() if job.company_id == company]
                self._waiting[company] = len(waiting)
                log.info(
                    "another worker is serving this company; skipped it this round",
                    extra={
                        "event": "company.leased_elsewhere",
                        "company_id": company,
                        "worker": self.holder,
                        "jobs_waiting": len(waiting),
                    },
                )
                return None
            jobs = [
                job
                for job in await engine.pending_jobs()
                if job.company_id == company and job.id not in seen
            ]
            if not jobs:
                return False
            job = jobs[0]
            seen.add(job.id)
            job_report = await self._process(engine, job, lease)
        if job_report is None:
            report.skipped_jobs.append(job.id)
        else:
            report.jobs.append(job_report)
        return True

    async def _process(
        self, engine: ExportEngine, job: ExportJob, lease: CompanyLease
    ) -> JobReport | None:
        engine.lease_check = lease.check
        self.current_lease = lease
        try:
            return await engine.process(job)
        except LeaseLost as lost:
            log.error(
                "stopped working on the job: the company's lease was lost",
                extra={
                    "event": "job.lease_lost",
                    "job_id": job.id,
                    "company_id": job.company_id,
                    "worker": self.holder,
                    "reason": str(lost),
                },
            )
            return None
        finally:
            engine.lease_check = None
            self.current_lease = None

    async def run_job(self, job_id: str) -> JobReport | None:
        """Process one job by id (the manual trigger), under its company's lease."""
        job = await self.engine.client.get_job(job_id)
        engine = (
            self.engine_for(job.company_id)
            if not self.companies or job.company_id in self.companies
            else self.engine  # bound to another company: pre-export validation fails the job
        )
        if not self.options.take_leases:
            return await engine.process(job)
        async with hold_company(
            self.store, job.company_id, self.holder, self.options.lease_ttl
        ) as lease:
            if lease is None:
                self.leased_elsewhere = [job.company_id]
                log.warning(
                    "another worker is serving this job's company; left the job alone",
                    extra={
                        "event": "company.leased_elsewhere",
                        "company_id": job.company_id,
                        "job_id": job.id,
                        "worker": self.holder,
                    },
                )
                return None
            return await self._process(engine, await engine.client.get_job(job_id), lease)
