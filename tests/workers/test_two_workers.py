"""Acceptance: two ``pleo-export run`` processes on one PostgreSQL and ten companies.

Scenario "shared": both workers run to the end on their own; every job finishes, no company
ever has two jobs in progress, and no job is worked on by both workers at once.

Scenario "killed": both workers run with ``--watch`` and a 3 s lease TTL; the sandbox SIGKILLs
worker A right after applying one of its item updates (it is inside a job, holding that
company's lease). Worker B takes the company over once the lease has expired, resumes the
interrupted job from the shared outbox and finishes everything.

Both scenarios check the sandbox's own record of job transitions and of which worker touched
which job (:class:`~pleo_export_sandbox.audit.JobAudit`), and every company's beancount ledger:
each entry exactly once, in the ledger of its company. No timing is asserted.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import fresh_database
from tests.workers.harness import (
    COMPANIES,
    ITEMS_PER_JOB,
    JOBS_PER_COMPANY,
    KillOnPut,
    WorkerProcess,
    World,
    build_world,
    ledger_of,
    read_ledger,
    served,
    start_worker,
    stop_worker,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

JOBS = COMPANIES * JOBS_PER_COMPANY


@dataclass
class Outcome:
    world: World
    directory: Path
    workers: dict[str, WorkerProcess]
    exit_codes: dict[str, int | None]
    seconds: float
    killed_during: str | None = None
    """Scenario "killed": the job worker A was inside when it was killed."""


def _report(name: str, outcome: Outcome) -> None:
    audit = outcome.world.audit
    by_worker: dict[str, int] = {}
    for job_id in {t.job_id for t in audit.touches}:
        for credential in audit.workers_of(job_id):
            by_worker[credential] = by_worker.get(credential, 0) + 1
    print(
        f"\n[{name}] {JOBS} jobs x {ITEMS_PER_JOB} items over {COMPANIES} companies in "
        f"{outcome.seconds:.1f}s; jobs touched per worker {by_worker}; exit codes "
        f"{outcome.exit_codes}; killed during job {outcome.killed_during}"
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    directory = tmp_path_factory.mktemp("shared")
    world = build_world(seed=1)
    with fresh_database("workers") as url, served(world):
        config = write_config(world, directory, url, lease_ttl=10)
        started = time.monotonic()
        workers = {n: start_worker(world, config, n, directory, watch=False) for n in ("a", "b")}
        codes: dict[str, int | None] = {}
        try:
            for name, worker in workers.items():
                codes[name] = worker.process.wait(300)
        finally:
            for worker in workers.values():
                stop_worker(worker)
        outcome = Outcome(world, directory, workers, codes, time.monotonic() - started)
        _report("shared", outcome)
        yield outcome


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    directory = tmp_path_factory.mktemp("killed")
    world = build_world(seed=2)
    kill = KillOnPut(world.credentials["a"], nth=10)
    world.audit.observers.append(kill)
    with fresh_database("workers") as url, served(world):
        config = write_config(world, directory, url, lease_ttl=3)
        started = time.monotonic()
        workers: dict[str, WorkerProcess] = {}
        try:
            workers["a"] = start_worker(world, config, "a", directory, watch=True)
            kill.pid = workers["a"].process.pid
            workers["b"] = start_worker(world, config, "b", directory, watch=True)
            wait_until(lambda: kill.killed_during is not None, 120, "worker A to be killed")
            wait_until(world.all_finished, 240, "every job to finish")
        except TimeoutError as error:
            logs = "\n".join(f"--- {n}\n{w.log_tail()}" for n, w in workers.items())
            pytest.fail(f"{error}\n{logs}")
        finally:
            codes: dict[str, int | None] = {}
            for name, worker in workers.items():
                codes[name] = worker.process.poll()
                stop_worker(worker)
        outcome = Outcome(
            world, directory, workers, codes, time.monotonic() - started, kill.killed_during
        )
        _report("killed", outcome)
        yield outcome


SCENARIOS = ["shared", "killed"]


@pytest.fixture(params=SCENARIOS)
def outcome(request: pytest.FixtureRequest) -> Outcome:
    result: Outcome = request.getfixturevalue(request.param)
    return result


# ----------------------------------------------------------------------------- both scenarios


def test_every_job_finishes_with_every_item_final(outcome: Outcome) -> None:
    jobs = list(outcome.world.sandbox.store.jobs.values())
    assert len(jobs) == JOBS
    assert {job.status.value for job in jobs} == {"completed"}
    statuses = {item.status.value for job in jobs for item in job.items.values()}
    assert statuses == {"successful"}
    assert sum(len(job.items) for job in jobs) == JOBS * ITEMS_PER_JOB


def test_no_company_ever_has_two_jobs_in_progress(outcome: Outcome) -> None:
    audit = outcome.world.audit
    assert audit.companies_with_parallel_jobs() == {}
    started = [t for t in audit.transitions if t.after == "in_progress"]
    assert len(started) == JOBS  # every job was started exactly once
    assert {t.credential_id for t in started} <= set(outcome.world.credentials.values())


def test_no_job_is_worked_on_by_both_workers_at_once(outcome: Outcome) -> None:
    audit = outcome.world.audit
    assert audit.jobs_touched_concurrently() == {}
    touched = {t.job_id for t in audit.touches}
    assert len(touched) == JOBS


def test_every_entry_is_in_its_companys_ledger_exactly_once(outcome: Outcome) -> None:
    world = outcome.world
    for n, company in enumerate(world.companies):
        ledger = read_ledger(ledger_of(outcome.directory, n))
        assert ledger.errors == []
        assert ledger.duplicates == {}
        expected = {
            item.accounting_entry_id: item.external_id
            for job in world.sandbox.store.jobs.values()
            if job.company_id == company
            for item in job.items.values()
        }
        assert ledger.references == set(expected)
        assert len(expected) == JOBS_PER_COMPANY * ITEMS_PER_JOB
        assert all(external for external in expected.values())


# ----------------------------------------------------------------------------- per scenario


def test_shared_workers_exit_cleanly(shared: Outcome) -> None:
    assert shared.exit_codes == {"a": 0, "b": 0}
    for worker in shared.workers.values():
        assert "lease.lost" not in {e.get("event") for e in worker.events()}


def test_killed_worker_s_job_is_resumed_by_the_survivor(killed: Outcome) -> None:
    audit = killed.world.audit
    a, b = killed.world.credentials["a"], killed.world.credentials["b"]
    assert killed.exit_codes["a"] == -signal.SIGKILL
    job_id = killed.killed_during
    assert job_id is not None
    # A started the job and reported part of it; B finished it, strictly after A
    assert audit.workers_of(job_id) == [a, b]
    completed = [t for t in audit.transitions if t.job_id == job_id and t.after == "completed"]
    assert [t.credential_id for t in completed] == [b]
    resumed: list[dict[str, Any]] = [
        e
        for e in killed.workers["b"].events()
        if e.get("event") == "job.resume" and e.get("job_id") == job_id
    ]
    assert resumed, killed.workers["b"].log_tail()
    # after the kill, only B worked
    kill_seq = max(t.seq for t in audit.touches if t.credential_id == a)
    assert all(t.credential_id == b for t in audit.touches if t.seq > kill_seq)
