"""Hostile export items through the real engine: never a crash, never an unbalanced entry.

Each Hypothesis example is an export job of 40 to 60 items drawn by
:mod:`tests.properties.strategies`, stored in a fresh sandbox as Pleo would serve them and
exported by the real engine and client to :class:`BalancedRecorder`, a target that checks that
every entry it is asked to post balances. For every example:

- the engine finishes the job (no exception escapes) and sends the final event that fits;
- every item ends ``successful`` (posted exactly once, with the target's id) or ``failed`` with
  a reason type from the spec's ``ExportJobItemFailureReasonType`` and a message;
- every item ends as its drawn :class:`~tests.properties.strategies.Expect` says;
- every drawn item is checked against ``ExportItemV3`` before it is stored (valid, or for the
  invalid suite deliberately not), and every request and response of the run against Pleo's
  OpenAPI spec (export-items pages: the request only, as they carry the drawn items verbatim).

The suite prints how many items it exported; the valid suite alone must reach 2,000 per run
(50 examples of at least 40 items under the default profile).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from hypothesis import given, settings
from pydantic import SecretStr

from pleo_export import (
    Capability,
    Connector,
    ConnectorManifest,
    ConnectorSettings,
    ExternalRecord,
    ItemRejected,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export.bookkeeping import PlanOptions
from pleo_export.connector import ConnectorContext, Limits
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.engine.report import JobReport
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import (
    ExportJob,
    ExportJobItem,
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
)
from pleo_export.state import open_store
from pleo_export_sandbox import Sandbox, SandboxConfig
from tests.properties.conftest import PROFILE
from tests.properties.strategies import (
    COMPANY_ID,
    HOSTILE,
    KNOWN_CODES,
    KNOWN_VENDORS,
    MAX_FILE_BYTES,
    Job,
    invalid_jobs,
    jobs,
)
from tests.support.openapi import OpenApiContract

R = ExportJobItemFailureReasonType
ITEM_REASONS = frozenset(r.value for r in R)
MIN_ITEMS = 2_000
VENDOR_KEYS = frozenset(
    key for v in KNOWN_VENDORS for key in (v.code, v.external_id, v.tax_registration_number)
)


# --- the target ------------------------------------------------------------------------------


class RecorderSettings(ConnectorSettings):
    pass


@dataclass
class Ledger:
    posts: Counter[str] = field(default_factory=Counter)
    entries: dict[str, tuple[ResolvedEntry, ...]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Every entry that did not balance, or was posted twice; must stay empty."""


class BalancedRecorder(Connector[RecorderSettings]):
    """Knows the demo chart's expense accounts and vendors; checks every entry it posts."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="recorder",
        display_name="Balance-checking recorder",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.ATTACHMENTS,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_FILE_BYTES),
        settings_model=RecorderSettings,
    )
    ledger: ClassVar[Ledger] = Ledger()

    async def check(self, job: ExportJob) -> None:
        return None

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        entries = tuple(
            ResolvedEntry(
                kind=entry.kind,
                date=entry.date,
                narration=entry.narration,
                postings=tuple(
                    ResolvedPosting.from_posting(
                        p, self._account(p.account.role, p.account, p.field)
                    )
                    for p in entry.postings
                ),
            )
            for entry in plan.entries
        )
        return PreparedEntry(plan=plan, entries=entries)

    def _account(self, role: Role, ref: Any, where: str | None) -> str:
        if role is Role.EXPENSE:
            if ref.code not in KNOWN_CODES:
                raise ItemRejected(
                    R.ACCOUNT_UNKNOWN,
                    f"{where}.account.code {ref.code!r} is not in the chart: add the account "
                    "or change the category in Pleo",
                )
            return f"expense:{ref.code}"
        if role is Role.ACCOUNTS_PAYABLE and ref.vendor is not None:
            for _name, value in ref.vendor.match_keys():
                if value in VENDOR_KEYS:
                    return f"payable:{value}"
            raise ItemRejected(
                R.VENDOR_UNKNOWN,
                f"vendor {ref.vendor.name!r} is not in the ledger: create it or pick another",
            )
        return role.value

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        return self._record(reference) if reference in self.ledger.entries else None

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        reference = prepared.plan.reference
        self.ledger.posts[reference] += 1
        if self.ledger.posts[reference] > 1:
            self.ledger.problems.append(f"{reference} posted twice")
        for planned in prepared.plan.entries:
            if planned.balance != 0:
                self.ledger.problems.append(f"{reference}: planned entry off by {planned.balance}")
        for entry in prepared.entries:
            amounts = [p.amount for p in entry.postings]
            if not all(type(a) is int for a in amounts) or sum(amounts) != 0:
                self.ledger.problems.append(f"{reference}: entry does not balance: {amounts}")
            if len({p.currency for p in entry.postings}) != 1:
                self.ledger.problems.append(f"{reference}: entry mixes wallet currencies")
            if len(entry.postings) < 2:
                self.ledger.problems.append(f"{reference}: entry with one posting")
        self.ledger.entries[reference] = prepared.entries
        return self._record(reference)

    @staticmethod
    def _record(reference: str) -> ExternalRecord:
        return ExternalRecord(external_id=f"REC-{reference[:8]}", exported_at=datetime.now(UTC))


# --- one job through the engine --------------------------------------------------------------


@dataclass
class Outcome:
    report: JobReport
    status: ExportJobStatus
    items: dict[str, ExportJobItem]
    ledger: Ledger
    violations: list[str]


async def export(job: Job, contract: OpenApiContract) -> Outcome:
    sandbox = Sandbox(SandboxConfig())
    violations: list[str] = []

    def check(record: Any) -> None:
        # Export-items pages carry the drawn items verbatim. Valid ones were each checked
        # against ExportItemV3 before they were stored; invalid ones are wrong on purpose. So
        # only the request is checked there; every other exchange is checked in full.
        try:
            if record.path == "/v3/export-items":
                problems = contract.request_errors(
                    record.method, record.path, record.query, record.body
                )
                assert not problems, problems
                return
            contract.check_exchange(record)
        except AssertionError as error:
            violations.append(str(error))

    sandbox.on_exchange = check
    company = sandbox.add_company("Hostile Items Ltd", job.wallet, company_id=COMPANY_ID)
    ids = sandbox.add_entries(COMPANY_ID, [item for item, _ in job.items])
    pleo_job = sandbox.create_job(COMPANY_ID, ids, job.vendor_based)
    ledger = BalancedRecorder.ledger = Ledger()
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(company.api_key)),
        transport=sandbox.transport(),
        page_size=25,
    )
    store = open_store("sqlite:///:memory:")

    async def no_download(file: Any) -> bytes:
        raise AssertionError("the recorder never downloads receipts")

    context = ConnectorContext(
        logger=logging.getLogger("pleo_export.connector.recorder"),
        fetch_attachment=no_download,
        work_dir=Path("."),
    )
    options = EngineOptions(company_id=COMPANY_ID, plan=PlanOptions(booking_timezone=job.timezone))
    async with client:
        await store.open()
        try:
            engine = ExportEngine(
                client=client,
                connector=BalancedRecorder(RecorderSettings(), context),
                store=store,
                hooks=PluginHost(load_entry_points=False),
                options=options,
            )
            report = await engine.run_pending()
        finally:
            await store.close()
    [job_report] = report.jobs
    return Outcome(
        report=job_report,
        status=sandbox.get_job(pleo_job.id).status,
        items={i.accounting_entry_id: i for i in sandbox.job_items(pleo_job.id)},
        ledger=ledger,
        violations=violations,
    )


def assert_every_item_accounted_for(job: Job, outcome: Outcome, counts: Counter[str]) -> None:
    assert outcome.violations == []
    assert outcome.ledger.problems == []
    assert outcome.report.final_event == outcome.status.value
    assert outcome.status in (
        ExportJobStatus.COMPLETED,
        ExportJobStatus.COMPLETED_WITH_ERRORS,
        ExportJobStatus.FAILED,
    )
    assert len(outcome.items) == len(job.items)
    for raw, expect in job.items:
        ref = raw["accountingEntryId"]
        item = outcome.items[ref]
        where = f"{ref} ({raw.get('type')!r}; expected {expect.describe()})"
        if item.status is ExportJobItemStatus.SUCCESSFUL:
            assert item.external_id == f"REC-{ref[:8]}", where
            assert outcome.ledger.posts[ref] == 1, where
            counts["successful"] += 1
        else:
            assert item.status is ExportJobItemStatus.FAILED, (where, item.status)
            assert item.failure_reason_type in ITEM_REASONS, (where, item)
            assert item.failure_reason and item.failure_reason.strip(), where
            assert outcome.ledger.posts[ref] == 0, where
            counts[f"failed:{item.failure_reason_type}"] += 1
        if not expect.anything:
            got = (
                None if item.status is ExportJobItemStatus.SUCCESSFUL else item.failure_reason_type
            )
            assert got == expect.reason, (where, item.failure_reason)
        for change in expect.changes:
            counts[f"change:{change}"] += 1
        counts["items"] += 1


# --- the suites ------------------------------------------------------------------------------


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print ``line`` past pytest's output capture, so every run shows the item counts."""
    with capsys.disabled():
        print(f"\n{line}")


def test_hostile_schema_valid_items_end_final_and_balanced(
    capsys: pytest.CaptureFixture[str], openapi_contract: OpenApiContract
) -> None:
    counts: Counter[str] = Counter()

    @settings(PROFILE)
    @given(job=jobs())
    def one_job(job: Job) -> None:
        for raw, expect in job.items:
            problems = openapi_contract.validate("ExportItemV3", raw)
            assert problems == [], (expect.describe(), problems)
        outcome = anyio.run(lambda: export(job, openapi_contract))
        assert_every_item_accounted_for(job, outcome, counts)
        counts["jobs"] += 1

    one_job()
    _report(
        capsys,
        f"hostile schema-valid items: {counts['items']} items in {counts['jobs']} jobs, "
        f"{counts['successful']} successful, "
        f"{counts['items'] - counts['successful']} failed with a typed reason",
    )
    assert counts["items"] >= MIN_ITEMS
    # Every hostile change was exercised, and so were the main failure reason types.
    changes = {key.removeprefix("change:") for key in counts if key.startswith("change:")}
    assert changes == set(HOSTILE)
    for reason in ("validation_failure", "missing_configuration", "account_unknown"):
        assert counts[f"failed:{reason}"], reason


def test_schema_invalid_items_end_final_with_a_typed_reason(
    capsys: pytest.CaptureFixture[str], openapi_contract: OpenApiContract
) -> None:
    counts: Counter[str] = Counter()

    @settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 4))
    @given(job=invalid_jobs())
    def one_job(job: Job) -> None:
        for raw, expect in job.items:
            assert openapi_contract.validate("ExportItemV3", raw), expect.describe()
        outcome = anyio.run(lambda: export(job, openapi_contract))
        assert_every_item_accounted_for(job, outcome, counts)
        counts["jobs"] += 1

    one_job()
    _report(
        capsys,
        f"schema-invalid items: {counts['items']} items in {counts['jobs']} jobs, "
        f"{counts['successful']} successful, "
        f"{counts['items'] - counts['successful']} failed with a typed reason",
    )
    assert counts["failed:validation_failure"] > counts["items"] // 2
