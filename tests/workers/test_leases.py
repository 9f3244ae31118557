"""Per-company leases and the multi-company worker, in process (engine/worker.py, engine/leases.py).

The real engine and client against the in-process sandbox, with an organisation-level key
covering several companies, the memory target and a SQLite state store. Every exchange is
checked against Pleo's OpenAPI spec. The two-process acceptance test is test_two_workers.py.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from pydantic import SecretStr

from pleo_export.app import company_connector_settings
from pleo_export.config import ConfigError, Settings
from pleo_export.connector import ConnectorContext
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.engine.leases import (
    LeaseLost,
    hold_company,
    lease_name,
    worker_identity,
)
from pleo_export.engine.worker import Worker, WorkerOptions
from pleo_export.host import PluginHost
from pleo_export.ledger import ExternalRecord, PreparedEntry
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportItemFile
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import Lease, StateStoreError, open_store
from pleo_export.state.sqlite import SQLiteStateStore
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.app import RequestRecord
from tests.support.memory import MemoryConnector, MemorySettings, MemoryTarget, fresh_target

pytestmark = pytest.mark.anyio


@dataclass
class Setup:
    sandbox: Sandbox
    companies: list[str]
    key: str
    state_url: str
    tmp_path: Path
    target: MemoryTarget
    exchanges: list[RequestRecord] = field(default_factory=list)


@pytest.fixture
def make_setup(tmp_path: Path, openapi_contract: Any) -> Iterator[Callable[..., Setup]]:
    violations: list[str] = []

    def make(companies: int = 3, jobs: int = 2, items: int = 4) -> Setup:
        sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
        ids = []
        for n in range(companies):
            company = sandbox.add_company(name=f"Co {n}", wallet_currency="GBP")
            ids.append(company.id)
            for k in range(jobs):
                sandbox.schedule_export(company.id, count=items, seed=n * 10 + k, attachments=False)
        key = sandbox.add_organisation_key(ids).secret
        setup = Setup(
            sandbox=sandbox,
            companies=ids,
            key=key,
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            tmp_path=tmp_path,
            target=fresh_target(),
        )

        def check(record: RequestRecord) -> None:
            setup.exchanges.append(record)
            try:
                openapi_contract.check_exchange(record)
            except Exception as error:
                violations.append(str(error))
                raise

        sandbox.on_exchange = check
        return setup

    yield make
    assert not violations, "\n".join(violations)


class SlowMemoryConnector(MemoryConnector):
    """The memory target, taking ``delay`` seconds per post (yielding to the event loop)."""

    delay: ClassVar[float] = 0.1

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        await anyio.sleep(self.delay)
        return await super().post(prepared)


@asynccontextmanager
async def running_worker(
    setup: Setup,
    *,
    holder: str,
    ttl: float = 30.0,
    companies: list[str] | None = None,
    dry_run: bool = False,
    connector_cls: type[MemoryConnector] = MemoryConnector,
    key: str | None = None,
) -> AsyncIterator[Worker]:
    serving = setup.companies if companies is None else companies
    client = PleoClient(
        setup.sandbox.base_url,
        ApiKeyAuth(SecretStr(key or setup.key)),
        transport=setup.sandbox.transport(),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    )
    store = open_store(setup.state_url)

    async def fetch(file: ExportItemFile) -> bytes:
        return await client.download(file.url)

    context = ConnectorContext(
        logger=logging.getLogger("test.connector"), fetch_attachment=fetch, work_dir=setup.tmp_path
    )
    connector = connector_cls(MemorySettings(), context)
    engine = ExportEngine(
        client=client,
        connector=connector,
        store=store,
        hooks=PluginHost(load_entry_points=False),
        options=EngineOptions(
            company_id=serving[0] if serving else None, dry_run=dry_run, retry_base_delay=0.01
        ),
    )
    async with client:
        await store.open()
        await connector.open()
        try:
            yield Worker(
                engine,
                serving,
                options=WorkerOptions(holder=holder, lease_ttl=ttl, take_leases=not dry_run),
            )
        finally:
            await connector.close()
            await store.close()


def _items_of(sandbox: Sandbox, job_id: str) -> list[str]:
    return [item.accounting_entry_id for item in sandbox.job_items(job_id)]


# ----------------------------------------------------------------------------- the worker


async def test_worker_serves_companies_in_turn_oldest_job_first(
    make_setup: Callable[..., Setup],
) -> None:
    setup = make_setup(companies=3, jobs=2, items=4)
    async with running_worker(setup, holder="worker-1") as worker:
        report = await worker.run_pending()
        assert worker.leased_elsewhere == []
        # every lease was given back
        for company in setup.companies:
            taken = await worker.store.acquire_lease(lease_name(company), "someone-else", 30)
            assert taken is not None

    assert [job.company_id for job in report.jobs] == setup.companies * 2
    assert all(job.final_event == "completed" for job in report.jobs)
    jobs = sorted(setup.sandbox.store.jobs.values(), key=lambda j: j.seq)
    for company in setup.companies:
        # the company's first job (created first) was processed first
        ours = [job.job_id for job in report.jobs if job.company_id == company]
        assert ours == [job.id for job in jobs if job.company_id == company]
    all_items = {entry for job in jobs for entry in _items_of(setup.sandbox, job.id)}
    assert set(setup.target.entries) == all_items
    assert len(all_items) == 3 * 2 * 4
    assert setup.target.posted_twice == []
    # an organisation key names the company when it lists jobs
    lists = [r for r in setup.exchanges if r.method == "GET" and r.path == "/v3/export-jobs"]
    assert lists
    assert all(r.query.get("company_id", [""])[0] in setup.companies for r in lists)


async def test_companies_are_found_from_the_jobs_when_none_is_configured(
    make_setup: Callable[..., Setup],
) -> None:
    setup = make_setup(companies=1, jobs=2, items=2)
    company = setup.companies[0]
    own_key = setup.sandbox.store.companies[company].api_key  # a company-level key
    async with running_worker(setup, holder="worker-1", companies=[], key=own_key) as worker:
        report = await worker.run_pending()
        assert worker.engines() == {}
    assert [job.company_id for job in report.jobs] == [company, company]
    assert all(job.final_event == "completed" for job in report.jobs)


async def test_max_jobs_counts_across_companies(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(companies=3, jobs=2, items=2)
    async with running_worker(setup, holder="worker-1") as worker:
        report = await worker.run_pending(max_jobs=4)
    assert [job.company_id for job in report.jobs] == [*setup.companies, setup.companies[0]]


async def test_company_leased_elsewhere_is_skipped_and_said(
    make_setup: Callable[..., Setup], caplog: pytest.LogCaptureFixture
) -> None:
    setup = make_setup(companies=3, jobs=1, items=2)
    busy = setup.companies[1]
    async with running_worker(setup, holder="worker-1") as worker:
        held = await worker.store.acquire_lease(lease_name(busy), "worker-2", 60)
        assert held is not None
        with caplog.at_level(logging.INFO, logger="pleo_export.engine.leases"):
            report = await worker.run_pending()
        assert worker.leased_elsewhere == [busy]
        busy_job = next(j for j in setup.sandbox.store.jobs.values() if j.company_id == busy)
        assert await worker.run_job(busy_job.id) is None
        assert worker.leased_elsewhere == [busy]

    assert sorted(job.company_id for job in report.jobs) == sorted(
        [setup.companies[0], setup.companies[2]]
    )
    assert busy_job.status.value == "pending"  # untouched: the other worker's
    assert not any(r.method != "GET" and busy_job.id in str(r.body) for r in setup.exchanges)
    said = [r for r in caplog.records if getattr(r, "event", None) == "company.leased_elsewhere"]
    assert said
    assert all(getattr(r, "company_id", None) == busy for r in said)


async def test_dry_run_takes_no_lease(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(companies=2, jobs=1, items=2)
    async with running_worker(setup, holder="viewer", dry_run=True) as worker:
        other = await worker.store.acquire_lease(lease_name(setup.companies[0]), "worker-2", 60)
        assert other is not None
        report = await worker.run_pending()
        renewed = await worker.store.renew_lease(other, 60)
    assert renewed is not None  # still worker-2's
    assert {job.company_id for job in report.jobs} == set(setup.companies)
    assert all(job.dry_run for job in report.jobs)
    assert setup.target.entries == {}


async def test_lost_lease_stops_the_job_and_another_worker_resumes_it(
    make_setup: Callable[..., Setup], caplog: pytest.LogCaptureFixture
) -> None:
    setup = make_setup(companies=1, jobs=1, items=12)
    company = setup.companies[0]
    job = next(iter(setup.sandbox.store.jobs.values()))
    db = setup.tmp_path / "state.db"
    after_loss: list[RequestRecord] = []
    steal_after = 3

    def steal(prepared: PreparedEntry) -> None:
        # another worker takes the lease over (as if this one had been stalled past its TTL)
        if setup.target.post_calls == steal_after:
            with sqlite3.connect(db) as raw:
                raw.execute(
                    "UPDATE leases SET holder = 'worker-2', fencing_token = fencing_token + 1, "
                    "expires_at = expires_at + 600 WHERE name = ?",
                    (lease_name(company),),
                )
            raw.close()

    setup.target.after_store_hook = steal
    async with running_worker(
        setup, holder="worker-1", ttl=0.6, connector_cls=SlowMemoryConnector
    ) as worker:
        previous = setup.sandbox.on_exchange
        assert previous is not None

        def watch(record: RequestRecord) -> None:
            previous(record)
            lease = worker.current_lease
            if lease is not None and lease.lost is not None:
                after_loss.append(record)

        setup.sandbox.on_exchange = watch
        with caplog.at_level(logging.INFO, logger="pleo_export.engine.leases"):
            report = await worker.run_pending()
        setup.sandbox.on_exchange = previous

    assert report.jobs == []
    assert report.skipped_jobs == [job.id]
    posted = setup.target.post_calls
    assert steal_after <= posted < 12  # it stopped at an item boundary, long before the end
    assert after_loss == []  # nothing was sent to Pleo once the loss was known
    assert job.status.value == "in_progress"
    events = {getattr(r, "event", None) for r in caplog.records}
    assert {"lease.lost", "job.lease_lost"} <= events

    # the worker that holds the lease now resumes the job from the shared outbox
    async with running_worker(setup, holder="worker-2") as successor:
        resumed = await successor.run_pending()
    [finished] = resumed.jobs
    assert (finished.job_id, finished.resumed, finished.final_event) == (job.id, True, "completed")
    assert setup.target.posted_twice == []
    assert len(setup.target.entries) == 12
    assert {item.status.value for item in job.items.values()} == {"successful"}


# ----------------------------------------------------------------------------- the lease holder


async def test_held_lease_is_renewed_beyond_its_ttl_and_released(
    tmp_path: Path, anyio_backend: str
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store, other = open_store(url), open_store(url)
    await store.open()
    await other.open()
    try:
        async with hold_company(store, "c-1", "worker-1", ttl=0.6) as lease:
            assert lease is not None
            for _ in range(6):  # 1.8 s: three TTLs
                await anyio.sleep(0.3)
                assert await other.acquire_lease(lease_name("c-1"), "worker-2", 30) is None
                lease.check()
            async with hold_company(other, "c-1", "worker-2", ttl=30) as refused:
                assert refused is None
        taken = await other.acquire_lease(lease_name("c-1"), "worker-2", 30)
        assert taken is not None
    finally:
        await store.close()
        await other.close()


class _FailingRenewals(SQLiteStateStore):
    """A store whose lease renewals fail (as if the database had become unreachable)."""

    async def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        raise StateStoreError("cannot renew a lease in the state database: connection refused")


async def test_unconfirmed_renewals_count_as_a_lost_lease(
    tmp_path: Path, anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _FailingRenewals(tmp_path / "state.db")
    await store.open()
    try:
        with caplog.at_level(logging.WARNING, logger="pleo_export.engine.leases"):
            async with hold_company(store, "c-1", "worker-1", ttl=1.0) as lease:
                assert lease is not None
                lease.check()  # fine at first
                with anyio.fail_after(5):
                    while lease.lost is None:  # noqa: ASYNC110 - the lease exposes a flag
                        await anyio.sleep(0.05)
                with pytest.raises(LeaseLost, match="c-1") as excinfo:
                    lease.check()
        assert "could not renew" in str(excinfo.value)
        assert excinfo.value.company_id == "c-1"
        events = [getattr(r, "event", None) for r in caplog.records]
        assert "lease.renew_failed" in events
        assert "lease.lost" in events
    finally:
        await store.close()


async def test_errors_in_the_block_propagate_unwrapped(tmp_path: Path, anyio_backend: str) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    await store.open()
    try:
        with pytest.raises(KeyError, match="boom"):
            async with hold_company(store, "c-1", "worker-1", ttl=30):
                raise KeyError("boom")
        # released despite the error
        assert await store.acquire_lease(lease_name("c-1"), "worker-2", 30) is not None
    finally:
        await store.close()


def test_worker_identity_is_unique_per_call() -> None:
    first, second = worker_identity(), worker_identity()
    assert first != second
    assert first.rsplit("-", 2)[1].isdigit()


# ----------------------------------------------------------------------------- configuration


def test_companies_setting_orders_and_deduplicates() -> None:
    settings = Settings(pleo={"company_id": "c-1", "company_ids": ["c-2", "c-1", "c-3"]})
    assert settings.pleo.companies() == ["c-1", "c-2", "c-3"]
    assert Settings().pleo.companies() == []


def test_company_ids_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLEO_EXPORT_PLEO__COMPANY_IDS", '["c-1", "c-2"]')
    monkeypatch.setenv("PLEO_EXPORT_ENGINE__LEASE_TTL", "12.5")
    monkeypatch.setenv("PLEO_EXPORT_ENGINE__WORKER_ID", "box-7")
    settings = Settings()
    assert settings.pleo.companies() == ["c-1", "c-2"]
    assert (settings.engine.lease_ttl, settings.engine.worker_id) == (12.5, "box-7")


def test_bad_lease_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="lease_ttl"):
        Settings(engine={"lease_ttl": 0.1})
    with pytest.raises(ValueError, match="company_ids"):
        Settings(pleo={"company_ids": ["c-1", ""]})


def test_per_company_connector_settings_are_laid_over_the_shared_ones() -> None:
    manifest = MemoryConnector.manifest
    settings = Settings(
        pleo={"company_ids": ["c-1", "c-2", "c-3"]},
        connector={
            "name": "memory",
            "settings": {"known_accounts": ["1"]},
            "companies": {"c-2": {"known_accounts": ["2"]}},
        },
    )
    found = company_connector_settings(settings, manifest, ["c-1", "c-2", "c-3"])
    assert set(found) == {None, "c-2"}
    shared, own = found[None], found["c-2"]
    assert isinstance(shared, MemorySettings) and isinstance(own, MemorySettings)
    assert (shared.known_accounts, own.known_accounts) == (["1"], ["2"])

    # every company has its own: the shared settings are not needed on their own
    only_own = Settings(connector={"companies": {"c-1": {}, "c-2": {}}})
    assert set(company_connector_settings(only_own, manifest, ["c-1", "c-2"])) == {"c-1", "c-2"}

    stray = Settings(connector={"companies": {"c-9": {}}})
    with pytest.raises(ConfigError, match=r"'c-9'.*pleo\.company_ids"):
        company_connector_settings(stray, manifest, ["c-1"])
