"""Acceptance: sandbox -> engine -> SFTP (the real OpenSSH server) for 600 items of every type.

One module-wide run (two jobs: journal and vendor-based, with a few items on an account the
target does not know) whose results several tests check: the files parse with Python's csv
module, hledger imports them through the shipped rules file with zero errors, and the
balance per account equals the totals computed from the sandbox's own items. Then the same
entries are exported again in a new job (nothing is written twice), and a run is killed in the
middle of an upload and resumed (one complete copy of every file, no temporary files).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from connectors.sftp.tests.helpers import (
    CuttingProxy,
    SshServer,
    leftovers,
    lost_connection_noise,
    published,
    unavailable,
)
from pleo_export import (
    ConnectorContext,
    ExportItem,
    ExportItemFile,
    ExportJobItemStatus,
    Posting,
    Role,
    RunReport,
)
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export.testing import plan_item
from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig
from pleo_export_sftp import SftpConnector, SftpSettings, hledger_rules_path, parse_manifest
from pleo_export_sftp.reader import read_postings

pytestmark = pytest.mark.slow

JOURNAL_ITEMS = 400
VENDOR_ITEMS = 200
CURRENCY = "GBP"


@dataclass
class World:
    """A sandbox company, a state store and an SFTP target, run through the real engine."""

    sandbox: Sandbox
    company_id: str
    api_key: str
    state_url: str
    settings: SftpSettings
    remote: Path
    reports: list[RunReport] = field(default_factory=list)

    @asynccontextmanager
    async def engine(self, settings: SftpSettings | None = None) -> AsyncIterator[ExportEngine]:
        client = PleoClient(
            self.sandbox.base_url,
            ApiKeyAuth(SecretStr(self.api_key)),
            transport=self.sandbox.transport(),
            retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
        )

        async def fetch(file: ExportItemFile) -> bytes:
            return await client.download(file.url)

        context = ConnectorContext(
            logger=logging.getLogger("pleo_export.connector.sftp"),
            fetch_attachment=fetch,
            work_dir=self.remote,
        )
        connector = SftpConnector(settings or self.settings, context)
        store = open_store(self.state_url)
        options = EngineOptions(company_id=self.company_id, retry_base_delay=0.01)
        async with client:
            await store.open()
            await connector.open()
            try:
                yield ExportEngine(
                    client=client,
                    connector=connector,
                    store=store,
                    hooks=PluginHost(load_entry_points=False),
                    options=options,
                )
            finally:
                await connector.close()
                await store.close()

    async def run(self, settings: SftpSettings | None = None) -> RunReport:
        async with self.engine(settings) as engine:
            report = await engine.run_pending()
        self.reports.append(report)
        return report


E2E_COMPANY_ID = "5f0c7d2e-8a41-4c33-9b6e-2d1f0a7e4c18"


def make_world(base: Path, sshd: SshServer, *, jobs: list[tuple[int, bool]]) -> World:
    remote = base / "remote"
    remote.mkdir()
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    # A fixed company id: the sandbox seeds items by company and seed, so every run books
    # the same items (a random id once left the smaller job without an unknown account).
    company = sandbox.add_company(
        name="E2E Ltd", wallet_currency=CURRENCY, company_id=E2E_COMPANY_ID
    )
    for index, (count, vendor_based) in enumerate(jobs):
        sandbox.schedule_export(
            company.id,
            count=count,
            seed=700 + index,
            vendor_based_bookkeeping=vendor_based,
            unknown_account_rate=0.02,
        )
    values = SftpConnector.scaffold(base / "scaffold", DEMO_CHART, CURRENCY)
    values.pop("local_dir")
    return World(
        sandbox=sandbox,
        company_id=company.id,
        api_key=company.api_key,
        state_url=f"sqlite:///{base / 'state.db'}",
        settings=sshd.settings(remote, **values),
        remote=remote,
    )


# --- the expected totals, from the sandbox's items --------------------------------------------


def expected_account(posting: Posting, settings: SftpSettings) -> str:
    """The account each role must land on, from the scaffold's settings (written out here
    independently of the connector's resolver)."""
    ref = posting.account
    if ref.role is Role.EXPENSE:
        assert ref.code is not None
        return ref.code
    if ref.role is Role.ACCOUNTS_PAYABLE:
        assert ref.vendor is not None and ref.vendor.code is not None
        return f"2100:{ref.vendor.code}"
    if ref.role in (Role.WALLET, Role.TAX_INPUT, Role.TAX_OUTPUT) and ref.code:
        return ref.code
    return {
        Role.WALLET: settings.wallet_account,
        Role.OUT_OF_POCKET: settings.out_of_pocket_account,
        Role.CONTRA: settings.contra_account,
        Role.TAX_INPUT: settings.vat_input_account,
        Role.TAX_OUTPUT: settings.vat_output_account,
        Role.ROUNDING: settings.rounding_account,
    }[ref.role]


def sandbox_totals(world: World, job_ids: list[str]) -> tuple[dict[str, int], Counter[str], int]:
    """Per account: the sum of every successful item's postings (minor units); the item
    types; and the number of successful items."""
    totals: Counter[str] = Counter()
    types: Counter[str] = Counter()
    successful = 0
    for job_id in job_ids:
        job = world.sandbox.get_job(job_id)
        for item in world.sandbox.job_items(job_id):
            types[str(world.sandbox.export_item(item.accounting_entry_id)["type"])] += 1
            if item.status is not ExportJobItemStatus.SUCCESSFUL:
                continue
            successful += 1
            raw = world.sandbox.export_item(item.accounting_entry_id)
            plan = plan_item(ExportItem.model_validate(raw), job)
            for posting in plan.postings:
                totals[expected_account(posting, world.settings)] += posting.amount
    return {a: v for a, v in totals.items() if v}, types, successful


# --- the module-wide run ---------------------------------------------------------------------


@dataclass
class Delivery:
    world: World
    job_ids: list[str]
    report: RunReport
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def delivery(sshd: SshServer, tmp_path_factory: pytest.TempPathFactory) -> Delivery:
    base = tmp_path_factory.mktemp("e2e")
    world = make_world(base, sshd, jobs=[(JOURNAL_ITEMS, False), (VENDOR_ITEMS, True)])
    report = anyio.run(world.run)
    return Delivery(
        world=world,
        job_ids=[job.job_id for job in report.jobs],
        report=report,
        files=published(world.remote),
    )


def test_every_item_is_exported_or_fails_with_its_reason(delivery: Delivery) -> None:
    report = delivery.report
    assert len(report.jobs) == 2
    _, types, successful = sandbox_totals(delivery.world, delivery.job_ids)
    assert sum(types.values()) == JOURNAL_ITEMS + VENDOR_ITEMS
    assert len(types) == 17, types
    assert sum(job.posted for job in report.jobs) == successful > 550
    failures = [f for job in report.jobs for f in job.failures]
    assert failures, "the sandbox puts a few items on an unknown account"
    assert {f.reason_type for f in failures} == {"account_unknown"}
    assert all("setting accounts" in f.message for f in failures)
    assert [job.final_event for job in report.jobs] == ["completed_with_errors"] * 2


def test_one_csv_file_per_job_and_a_consistent_manifest(delivery: Delivery) -> None:
    settings = delivery.world.settings
    files = delivery.files
    manifest = parse_manifest(files[settings.manifest_name], settings.manifest_name)
    csv_files = sorted(n for n in files if n.endswith(".csv"))
    assert len(csv_files) == 2  # batch_size 1000: one file per job
    assert sorted(manifest.files) == csv_files
    assert {manifest.files[n].job_id for n in csv_files} == set(delivery.job_ids)
    for name in csv_files:
        assert hashlib.sha256(files[name]).hexdigest() == manifest.files[name].sha256
    for name, record in manifest.attachments.items():
        assert hashlib.sha256(files[name]).hexdigest() == record.sha256
    assert manifest.pending == {} and leftovers(delivery.world.remote) == []
    receipts = [n for n in files if n not in csv_files and n != settings.manifest_name]
    assert sorted(receipts) == sorted(manifest.attachments) and len(receipts) > 300


def test_pleo_is_told_the_file_and_rows_of_every_entry(delivery: Delivery) -> None:
    settings = delivery.world.settings
    rows_by_file = {
        name: list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        for name, data in delivery.files.items()
        if name.endswith(".csv")
    }
    column = settings.column_list.index("entry_id")
    checked = 0
    for job_id in delivery.job_ids:
        for item in delivery.world.sandbox.job_items(job_id):
            if item.status is not ExportJobItemStatus.SUCCESSFUL:
                assert item.status is ExportJobItemStatus.FAILED
                continue
            assert item.external_id is not None
            name, span = item.external_id.rsplit(":", 1)
            first, last = (int(n) for n in span.split("-"))
            rows = rows_by_file[name][first - 1 : last]
            assert {r[column] for r in rows} == {item.accounting_entry_id}
            assert item.external_url is not None and item.external_url.endswith(name)
            checked += 1
    assert checked > 550


def test_files_parse_with_csv_and_match_the_sandbox_totals(delivery: Delivery) -> None:
    settings = delivery.world.settings
    totals, _, _ = sandbox_totals(delivery.world, delivery.job_ids)
    parsed: Counter[str] = Counter()
    per_transaction: Counter[str] = Counter()
    for name, data in delivery.files.items():
        if not name.endswith(".csv"):
            continue
        header = next(csv.reader(io.StringIO(data.decode("utf-8"))))
        assert header == settings.column_list
        for posting in read_postings(data, settings):
            assert posting.currency == CURRENCY
            parsed[posting.account] += posting.amount_minor
            per_transaction[posting.transaction or ""] += posting.amount_minor
    assert set(per_transaction.values()) == {0}, "every transaction balances"
    assert {a: v for a, v in parsed.items() if v} == totals


def _hledger_balances(files: list[Path], rules: Path) -> tuple[dict[str, int], str]:
    balances: dict[str, int] = {}
    stderr = ""
    for path in files:
        result = subprocess.run(
            [
                *("hledger", "-f", str(path), "--rules-file", str(rules)),
                *("balance", "-O", "csv", "--no-total", "--flat"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        stderr += result.stderr
        for account, amount in list(csv.reader(io.StringIO(result.stdout)))[1:]:
            assert amount.startswith(CURRENCY), amount
            value = Decimal(amount.removeprefix(CURRENCY).replace(",", ""))
            balances[account] = balances.get(account, 0) + int(value * 100)
    return {a: v for a, v in balances.items() if v}, stderr


def test_hledger_imports_the_files_through_the_shipped_rules(
    delivery: Delivery, tmp_path: Path
) -> None:
    if shutil.which("hledger") is None:
        unavailable("hledger not installed: apt-get install hledger")
    totals, _, _ = sandbox_totals(delivery.world, delivery.job_ids)
    files = []
    for name, data in delivery.files.items():
        if name.endswith(".csv"):
            (tmp_path / name).write_bytes(data)
            files.append(tmp_path / name)
    balances, stderr = _hledger_balances(files, hledger_rules_path("journal-lines"))
    assert stderr == ""
    assert "pleo:clearing" not in balances  # every entry balanced in hledger as well
    assert balances == totals
    # hledger's own checks of the journal it built (parseable, balanced transactions).
    for path in files:
        check = subprocess.run(
            ["hledger", "-f", str(path), "--rules-file", str(hledger_rules_path()), "check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (check.returncode, check.stderr) == (0, "")


def test_exporting_the_same_entries_again_writes_nothing(delivery: Delivery) -> None:
    world = delivery.world
    before = {p.name: p.stat().st_mtime_ns for p in world.remote.iterdir()}
    succeeded = [
        item.accounting_entry_id
        for job_id in delivery.job_ids
        for item in world.sandbox.job_items(job_id)
        if item.status is ExportJobItemStatus.SUCCESSFUL
    ]
    world.sandbox.create_job(world.company_id, succeeded[:150])  # e.g. after a job expired
    report = anyio.run(world.run)
    (job,) = report.jobs
    assert (job.posted, job.recovered, job.failed) == (0, 150, 0)
    assert {p.name: p.stat().st_mtime_ns for p in world.remote.iterdir()} == before


# --- killed in the middle of an upload ---------------------------------------------------------


async def _killed_then_resumed(world: World, sshd: SshServer) -> tuple[int, list[RunReport]]:
    async with CuttingProxy(sshd.port) as proxy:
        settings = world.settings.model_copy(
            update={"port": proxy.port, "known_hosts": sshd.known_hosts(proxy.port)}
        )
        killed = anyio.Event()
        original: Callable[..., Any] = proxy._close_all

        def close_and_kill() -> None:
            original()
            killed.set()

        proxy._close_all = close_and_kill  # type: ignore[method-assign]
        proxy.cut_after(1_500_000)  # well into the upload of the batch
        async with anyio.create_task_group() as group:

            async def run() -> None:
                await world.run(settings)

            async def kill() -> None:
                await killed.wait()
                group.cancel_scope.cancel()  # the process dies with the connection

            group.start_soon(run)
            group.start_soon(kill)
        cuts = proxy.cuts
        # The upload was under way: its temporary files are there, the manifest is not done.
        assert leftovers(world.remote)
        proxy._close_all = original  # type: ignore[method-assign]
        proxy.cut_after(None)
        # A new process, the same state store: the interrupted job is resumed.
        await world.run(settings)
        return cuts, world.reports


def test_killed_mid_upload_then_resumed_leaves_one_copy(sshd: SshServer, tmp_path: Path) -> None:
    world = make_world(tmp_path, sshd, jobs=[(200, False)])

    async def main() -> tuple[int, list[RunReport]]:
        with lost_connection_noise():
            return await _killed_then_resumed(world, sshd)

    cuts, reports = anyio.run(main)
    assert cuts == 1
    assert len(reports) == 1  # the killed run never finished its report
    (job,) = reports[0].jobs
    assert job.resumed is True
    job_id = job.job_id
    statuses = Counter(item.status for item in world.sandbox.job_items(job_id))
    assert statuses[ExportJobItemStatus.SUCCESSFUL] > 185
    assert set(statuses) <= {ExportJobItemStatus.SUCCESSFUL, ExportJobItemStatus.FAILED}
    files = published(world.remote)
    settings = world.settings
    manifest = parse_manifest(files[settings.manifest_name], settings.manifest_name)
    assert manifest.pending == {} and leftovers(world.remote) == []
    seen: Counter[str] = Counter()
    for name, record in manifest.files.items():
        assert hashlib.sha256(files[name]).hexdigest() == record.sha256
        seen.update({p.entry_id for p in read_postings(files[name], settings)})
    assert set(seen.values()) == {1}
    assert sum(seen.values()) == statuses[ExportJobItemStatus.SUCCESSFUL]
    assert {n for n in files if n.endswith(".csv")} == set(manifest.files)
    totals, _, _ = sandbox_totals(world, [job_id])
    parsed: Counter[str] = Counter()
    for name in manifest.files:
        for posting in read_postings(files[name], settings):
            parsed[posting.account] += posting.amount_minor
    assert {a: v for a, v in parsed.items() if v} == totals
