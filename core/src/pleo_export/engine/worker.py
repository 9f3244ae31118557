"""The worker: runs pending jobs, one company at a time, under per-company leases.

:class:`Worker` runs the rounds: every company in turn (the configured order), one job per
company per turn, oldest first, until a whole round finds nothing to do. Dry runs take no
lease, since they change nothing. See :mod:`pleo_export.engine.leases` for the leases.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pleo_export.engine.factory import EngineFactory
from pleo_export.engine.leases import (
    DEFAULT_LEASE_TTL,
    CompanyLease,
    LeaseLost,
    hold_company,
    worker_identity,
)
from pleo_export.engine.report import JobReport, RunReport

if TYPE_CHECKING:
    from pleo_export.connector import JobRejected
    from pleo_export.engine.runner import ExportEngine
    from pleo_export.pleo.models import ExportJob
    from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
    from pleo_export.state.base import StateStore

__all__ = ["JobCheck", "Preflight", "Worker", "WorkerOptions", "run_in_order"]

log = logging.getLogger("pleo_export.engine.leases")


@dataclass
class WorkerOptions:
    holder: str = field(default_factory=worker_identity)
    """This worker's name in the store's leases (``engine.worker_id``)."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    """Seconds a lease lasts without renewal (``engine.lease_ttl``)."""
    take_leases: bool = True
    """``False`` for dry runs: they change nothing, so they need no lease."""


@dataclass(frozen=True)
class JobCheck:
    """One pending job and the problem pre-export validation found (``None``: ready)."""

    job: ExportJob
    problem: tuple[JobReason, str] | None


@dataclass(frozen=True)
class Preflight:
    """What :meth:`Worker.check` found."""

    jobs: list[JobCheck]
    unavailable: JobRejected | None
    """The first connector that could not be opened, with why."""


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
            engine = EngineFactory.like(self.engine).build(
                self.engine.connector, company_id=company_id, unavailable=self.engine.unavailable
            )
        self._engines[company_id] = engine
        return engine

    def engines(self) -> dict[str, ExportEngine]:
        """The engine of every configured company (empty when companies are discovered)."""
        return {company: self.engine_for(company) for company in self.companies}

    async def check(self) -> Preflight:
        """Pre-export validation of every pending job of every company served, with nothing
        started or sent to Pleo (``pleo-export check``)."""
        engines = self.engines()
        jobs: list[JobCheck] = []
        for engine in engines.values() or [self.engine]:
            for job in await engine.pending_jobs():
                jobs.append(JobCheck(job, await engine.pre_export_validation(job)))
        unavailable = next(
            (e.unavailable for e in [self.engine, *engines.values()] if e.unavailable), None
        )
        return Preflight(jobs=jobs, unavailable=unavailable)

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
            return await run_in_order(self.engine, max_jobs=max_jobs)
        report = RunReport()
        for company in self.companies:
            left = None if max_jobs is None else max_jobs - len(report.jobs)
            if left is not None and left <= 0:
                break
            part = await run_in_order(self.engine_for(company), max_jobs=left)
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
        self.current_lease = lease
        try:
            return await engine.process(job, lease_check=lease.check)
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


async def run_in_order(engine: ExportEngine, *, max_jobs: int | None = None) -> RunReport:
    """Process ``engine``'s pending jobs one at a time, oldest first, until none is left.

    No lease is taken: this is the loop of a dry run, and of :meth:`Worker.run_pending` when it
    takes no leases. Pleo allows one unfinished job per company, so the next export of a
    company only appears once the current job is finished: detection repeats after every job.
    """
    report = RunReport()
    seen: set[str] = set()
    while max_jobs is None or len(seen) < max_jobs:
        fresh = [job for job in await engine.pending_jobs() if job.id not in seen]
        if not fresh:
            break
        job = fresh[0]
        seen.add(job.id)
        job_report = await engine.process(job)
        if job_report is None:
            report.skipped_jobs.append(job.id)
        else:
            report.jobs.append(job_report)
        if engine.options.dry_run:
            # Nothing changes in Pleo during a dry run, so no further job can appear.
            for other in fresh[1:]:
                if max_jobs is not None and len(seen) >= max_jobs:
                    break
                seen.add(other.id)
                other_report = await engine.process(other)
                if other_report is not None:
                    report.jobs.append(other_report)
            break
    return report
