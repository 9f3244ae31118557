"""A single worker on the default SQLite state, killed with SIGKILL and started again.

The restarted ``pleo-export run`` must take its own company lease back at once (within
``engine.lease_ttl``) and finish the interrupted job, instead of reporting "another worker is
serving it" and "No pending export jobs." while the job waits in Pleo. And when a company really
is served by another live worker, the summary says how many jobs wait behind it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from pleo_export.engine.leases import lease_name
from pleo_export.state.sqlite import SQLiteStateStore
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.audit import JobAudit
from tests.workers.harness import (
    KillOnPut,
    World,
    ledger_of,
    read_ledger,
    served,
    start_worker,
    stop_worker,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

JOBS = 2
ITEMS_PER_JOB = 30


def _one_company_world(seed: int) -> World:
    sandbox = Sandbox(
        SandboxConfig(rate_limit_per_minute=1_000_000, large_file_rate=0.0, job_expires_in=3600)
    )
    company = sandbox.add_company(name="Solo Ltd", wallet_currency="GBP")
    for k in range(JOBS):
        sandbox.schedule_export(
            company.id, count=ITEMS_PER_JOB, seed=seed * 100 + k, attachments=False
        )
    credential = sandbox.add_organisation_key([company.id])
    audit = JobAudit.attach(sandbox)
    return World(sandbox, audit, [company.id], {"a": credential.secret}, {"a": credential.id})


@pytest.fixture
def world() -> Iterator[World]:
    with served(_one_company_world(seed=7)) as served_world:
        yield served_world


def _sqlite_config(world: World, directory: Path) -> Path:
    # The default state store: SQLite in the configuration's folder; the default 60 s TTL.
    return write_config(world, directory, "sqlite:///pleo-export.db", lease_ttl=60)


def test_restarted_worker_takes_its_lease_back_and_finishes_the_job(
    world: World, tmp_path: Path
) -> None:
    config = _sqlite_config(world, tmp_path)
    kill = KillOnPut(world.credentials["a"], nth=2)
    world.audit.observers.append(kill)
    first = start_worker(world, config, "a", tmp_path, watch=False, worker_id=None)
    kill.pid = first.process.pid
    try:
        wait_until(lambda: kill.killed_during is not None, 120, "the first run to be killed")
        first.process.wait(15)
    finally:
        stop_worker(first)
    assert first.process.returncode == -9
    states = {job["id"]: job["status"] for job in world.state()["jobs"]}
    assert states[kill.killed_during] == "in_progress", states

    started = time.monotonic()
    second = start_worker(
        world, config, "a", tmp_path, watch=False, worker_id=None, log_name="second"
    )
    try:
        code = second.process.wait(120)
    finally:
        stop_worker(second)
    output = second.log_path.read_text(encoding="utf-8")
    assert code == 0, second.log_tail()
    assert "another worker" not in output
    assert "No pending export jobs" not in output
    assert time.monotonic() - started < 60, "the restarted run waited for the lease to expire"

    jobs = world.state()["jobs"]
    assert len(jobs) == JOBS
    assert {job["status"] for job in jobs} <= {"completed", "completed_with_errors"}, jobs
    resumed = [r for r in second.events() if r.get("event") == "job.finished"]
    assert kill.killed_during in {r.get("job_id") for r in resumed} or any(
        kill.killed_during in line for line in output.splitlines()
    )
    ledger = read_ledger(ledger_of(tmp_path, 0))
    assert ledger.errors == []
    assert ledger.duplicates == {}


def test_a_company_served_by_a_live_worker_is_waiting_not_empty(
    world: World, tmp_path: Path
) -> None:
    config = _sqlite_config(world, tmp_path)
    [company] = world.companies

    async def hold() -> SQLiteStateStore:
        # This test process is alive and on this host: its lease must be respected.
        store = SQLiteStateStore(tmp_path / "pleo-export.db")
        await store.open()
        assert await store.acquire_lease(lease_name(company), "other-worker", 120) is not None
        return store

    store = anyio.run(hold)
    try:
        for as_json in (False, True):
            run = start_worker(
                world,
                config,
                "a",
                tmp_path,
                watch=False,
                worker_id=None,
                log_name=f"held-{as_json}",
                extra=("--json",) if as_json else (),
            )
            code = run.process.wait(120)
            output = run.log_path.read_text(encoding="utf-8")
            assert code == 0, output
            assert "No pending export jobs" not in output
            if as_json:
                start = output.index("{\n")
                report, _ = json.JSONDecoder().raw_decode(output[start:])
                # Pleo has one unfinished job per company; the second export is queued.
                assert report["waiting_elsewhere"] == {company: 1}, report
                assert report["totals"]["waiting_elsewhere"] == 1
                assert report["companies_leased_elsewhere"] == [company]
            else:
                assert "1 pending job waits behind another worker" in output, output
                assert f"company {company}: another worker is serving it" in output
    finally:
        anyio.run(store.close)
    assert {job["status"] for job in world.state()["jobs"]} == {"pending"}


def test_explicit_worker_ids_are_still_honoured(world: World, tmp_path: Path) -> None:
    """Two live processes with different explicit ids: the second one is kept out."""
    config = _sqlite_config(world, tmp_path)
    [company] = world.companies

    async def hold() -> SQLiteStateStore:
        store = SQLiteStateStore(tmp_path / "pleo-export.db")
        await store.open()
        assert await store.acquire_lease(lease_name(company), "box-1", 120) is not None
        return store

    store = anyio.run(hold)
    try:
        run = start_worker(world, config, "a", tmp_path, watch=False, worker_id="box-2")
        assert run.process.wait(120) == 0
        assert "another worker is serving it" in run.log_path.read_text(encoding="utf-8")
    finally:
        anyio.run(store.close)
    # The same explicit id as the (live) holder in another process is kept out too: one
    # installation never runs a company twice at once.
    store = anyio.run(hold)
    try:
        run = start_worker(
            world, config, "a", tmp_path, watch=False, worker_id="box-1", log_name="same-id"
        )
        assert run.process.wait(120) == 0
        assert "another worker is serving it" in run.log_path.read_text(encoding="utf-8")
    finally:
        anyio.run(store.close)
    assert {job["status"] for job in world.state()["jobs"]} == {"pending"}
