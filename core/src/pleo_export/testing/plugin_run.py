"""The small export the plugin conformance check runs, with and without the plugin.

One run is two jobs of one sandbox company, exported by the real engine through the real
Pleo client into an in-memory ledger: a journal job in which some items fail (a line on an
account the ledger does not know; the ledger raises a plain ``LookupError``, so the
``pleo_export_classify_error`` hook is asked), and a vendor-based job that fails pre-export
validation (the ledger has no accounts payable). The ledger reads its entries back
(``read_booked``) for ``pleo_export_job_reconciled``. Together they call every hook of
:mod:`pleo_export.hookspecs`. Every run builds a fresh sandbox with the same company and
seeds, so two runs can be compared item by item.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr

from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorError,
    ConnectorManifest,
    ConnectorSettings,
    ItemRejected,
)
from pleo_export.engine.factory import EngineFactory, connector_context
from pleo_export.engine.options import EngineOptions, Hooks
from pleo_export.engine.worker import Worker
from pleo_export.host import PluginHost
from pleo_export.ledger import (
    ExternalRecord,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export.masterdata import BookedEntry, BookedPosting
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportJob
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.service import Service
from pleo_export.state import open_store
from pleo_export.testing.items import stable_id
from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE, Sandbox, SandboxConfig

COMPANY_ID = stable_id("company", "plugin-check")
JOURNAL_ITEMS = 8
"""Items of the first job; about a third carry a line on the unknown account."""
VENDOR_ITEMS = 3


class LedgerSettings(ConnectorSettings):
    """The in-memory ledger takes no settings."""


@dataclass
class Ledger:
    """What the in-memory ledger holds: entries by reference."""

    entries: dict[str, tuple[ResolvedEntry, ...]] = field(default_factory=dict)


class MemoryLedger(Connector[LedgerSettings]):
    """A journal-only ledger that does not know :data:`UNKNOWN_ACCOUNT_CODE`."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="plugin-check",
        display_name="Plugin check ledger (in memory)",
        capabilities=frozenset(
            {Capability.JOURNAL, Capability.LOOKUP_BY_REFERENCE, Capability.READ_BOOKED}
        ),
        settings_model=LedgerSettings,
    )
    ledger: Ledger

    async def check(self, job: ExportJob) -> None:
        return None

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        resolved: list[ResolvedEntry] = []
        for entry in plan.entries:
            postings: list[ResolvedPosting] = []
            for posting in entry.postings:
                ref = posting.account
                if ref.role is Role.EXPENSE and ref.code == UNKNOWN_ACCOUNT_CODE:
                    raise LookupError(f"account {ref.code} is not in the ledger")
                name = f"expense:{ref.code}" if ref.role is Role.EXPENSE else ref.role.value
                postings.append(ResolvedPosting.from_posting(posting, name))
            resolved.append(
                ResolvedEntry(
                    kind=entry.kind,
                    date=entry.date,
                    narration=entry.narration,
                    postings=tuple(postings),
                )
            )
        return PreparedEntry(plan=plan, entries=tuple(resolved))

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        return _record(reference) if reference in self.ledger.entries else None

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        self.ledger.entries[prepared.plan.reference] = prepared.entries
        return _record(prepared.plan.reference)

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        return [
            BookedEntry(
                reference=reference,
                external_id=_record(reference).external_id,
                postings=tuple(
                    BookedPosting(account=p.account, amount=p.amount, currency=p.currency)
                    for entry in self.ledger.entries[reference]
                    for p in entry.postings
                ),
            )
            for reference in references
            if reference in self.ledger.entries
        ]

    def classify_error(self, error: BaseException) -> ConnectorError | None:
        if isinstance(error, LookupError):
            return ItemRejected(
                ItemReason.ACCOUNT_UNKNOWN,
                f"{error}: create the account in the ledger or change the category in Pleo",
            )
        return None


def _record(reference: str) -> ExternalRecord:
    return ExternalRecord(
        external_id=f"MEM-{reference[:8]}",
        external_url=f"memory://entries/{reference}",
        exported_at=datetime(2025, 3, 1, tzinfo=UTC),
    )


@dataclass(frozen=True)
class ItemResult:
    accounting_entry_id: str
    status: str
    failure_reason_type: str | None
    failure_reason: str | None
    external_id: str | None


@dataclass(frozen=True)
class JobResult:
    vendor_based: bool
    status: str
    failure_reason_type: str | None
    failure_reason: str | None
    items: tuple[ItemResult, ...]


@dataclass(frozen=True)
class ExportOutcome:
    """What one small export left behind, in Pleo and in the ledger."""

    jobs: tuple[JobResult, ...]
    booked: tuple[str, ...]
    """References of the entries in the ledger, sorted."""
    records: tuple[logging.LogRecord, ...] = field(default=(), compare=False, repr=False)

    def differences(self, other: ExportOutcome, *, label: str) -> list[str]:
        """How ``other`` differs from this outcome, one line per difference."""
        found: list[str] = []
        for job, theirs in zip(self.jobs, other.jobs, strict=True):
            kind = "vendor-based job" if job.vendor_based else "journal job"
            mine_job = (job.status, job.failure_reason_type, job.failure_reason)
            their_job = (theirs.status, theirs.failure_reason_type, theirs.failure_reason)
            if mine_job != their_job:
                found.append(f"the {kind} ended {_show(mine_job)}, {label} {_show(their_job)}")
            theirs_by_id = {i.accounting_entry_id: i for i in theirs.items}
            for item in job.items:
                other_item = theirs_by_id.get(item.accounting_entry_id)
                if other_item != item:
                    found.append(
                        f"item {item.accounting_entry_id} of the {kind} ended {_item(item)}, "
                        f"{label} {_item(other_item)}"
                    )
        if self.booked != other.booked:
            found.append(
                f"the ledger holds {len(self.booked)} entries without the plugin, "
                f"{len(other.booked)} {label}"
            )
        return found


def _show(values: tuple[str | None, ...]) -> str:
    return " ".join(v for v in values if v)


def _item(item: ItemResult | None) -> str:
    if item is None:
        return "missing"
    return _show((item.status, item.failure_reason_type, item.failure_reason, item.external_id))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def run_export(hooks: Hooks, work_dir: Path) -> ExportOutcome:
    """Run the two-job export through ``hooks`` with a fresh sandbox, state store and ledger;
    every log record emitted meanwhile is kept in :attr:`ExportOutcome.records`."""
    work_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    company = sandbox.add_company(
        name="Plugin Check Ltd", wallet_currency="GBP", company_id=COMPANY_ID
    )
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(company.api_key)),
        transport=sandbox.transport(),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    )
    store = open_store(f"sqlite:///{(work_dir / 'state.db').resolve()}")
    context = connector_context(client=client, manifest=MemoryLedger.manifest, work_dir=work_dir)
    connector = MemoryLedger(LedgerSettings(), context)
    connector.ledger = Ledger()
    options = EngineOptions(post_attempts=2, retry_base_delay=0.001, retry_max_delay=0.01)
    collect = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    jobs: list[tuple[bool, ExportJob]] = []
    try:
        async with client:
            await store.open()
            try:
                await connector.open()
                factory = EngineFactory(client=client, store=store, hooks=hooks, options=options)
                engine = factory.build(connector, company_id=company.id)
                # The service hooks, as `run --watch` calls them: one round per job.
                service = Service(Worker(engine, [company.id]), client.stats, poll_interval=1.0)
                async with AsyncExitStack() as services:
                    if isinstance(hooks, PluginHost):
                        for running in hooks.service_started(service=service):
                            await services.enter_async_context(running)
                    for vendor_based, count, seed in (
                        (False, JOURNAL_ITEMS, 1),
                        (True, VENDOR_ITEMS, 2),
                    ):
                        job = sandbox.queue_export(
                            company.id,
                            count=count,
                            seed=seed,
                            vendor_based_bookkeeping=vendor_based,
                            unknown_account_rate=0.0 if vendor_based else 0.35,
                            attachments=False,
                        )
                        jobs.append((vendor_based, job))
                        service.round_started()
                        report = await engine.run_pending()
                        result = service.round_finished(jobs=len(report.jobs))
                        if isinstance(hooks, PluginHost):
                            hooks.round_finished(result=result)
            finally:
                await connector.close()
                await store.close()
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    return ExportOutcome(
        jobs=tuple(_job_result(sandbox, vendor_based, job) for vendor_based, job in jobs),
        booked=tuple(sorted(connector.ledger.entries)),
        records=tuple(collect.records),
    )


def _job_result(sandbox: Sandbox, vendor_based: bool, job: ExportJob) -> JobResult:
    current = sandbox.get_job(job.id)
    items = tuple(
        ItemResult(
            accounting_entry_id=item.accounting_entry_id,
            status=str(item.status.value),
            failure_reason_type=_value(item.failure_reason_type),
            failure_reason=item.failure_reason,
            external_id=item.external_id,
        )
        for item in sorted(sandbox.job_items(job.id), key=lambda i: i.accounting_entry_id)
    )
    return JobResult(
        vendor_based=vendor_based,
        status=str(current.status.value),
        failure_reason_type=_value(current.failure_reason_type),
        failure_reason=current.failure_reason,
        items=items,
    )


def _value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


__all__ = ["COMPANY_ID", "ExportOutcome", "ItemResult", "JobResult", "MemoryLedger", "run_export"]
