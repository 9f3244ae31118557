"""BATCH_POSTING: the engine hands collected entries to ``post_batch`` with the outbox rules kept.

The batch connector below stores a whole batch in the shared memory target, so a test can make
the delivery fail before, during (half stored) or after the write and check the target itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

from pleo_export.connector import (
    Capability,
    ConnectorManifest,
    ItemRejected,
    Limits,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export.ledger import ExternalRecord, PreparedEntry
from pleo_export.pleo.models import ExportJobItemFailureReasonType, ExportJobItemStatus
from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE
from tests.engine.conftest import Harness
from tests.support.memory import MemoryConnector, MemorySettings

pytestmark = pytest.mark.anyio

BatchHook = Callable[[Sequence[PreparedEntry], int], None]


class BatchConnector(MemoryConnector):
    """The memory target, delivered in batches of ``limit`` entries."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="memory-batch",
        display_name="In-memory batch target",
        capabilities=MemoryConnector.manifest.capabilities | {Capability.BATCH_POSTING},
        limits=Limits(max_batch_size=10),
        settings_model=MemorySettings,
    )
    batches: ClassVar[list[int]] = []
    before_write: ClassVar[BatchHook | None] = None
    """Called with the batch and the number of entries to store before raising (if it raises)."""
    stop_after: ClassVar[int | None] = None
    """Store only this many entries of the next batch, then raise ``OutcomeUncertain``."""
    after_write: ClassVar[Callable[[], None] | None] = None
    lookups: ClassVar[list[str]] = []
    reject: ClassVar[set[str]] = set()
    """References the target refuses inside a batch."""

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        raise AssertionError("a batch connector is never called through post()")

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        type(self).lookups.append(reference)
        return await super().find_existing(reference)

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        cls = type(self)
        cls.batches.append(len(entries))
        if cls.before_write is not None:
            cls.before_write(entries, len(cls.batches))
        results: list[ExternalRecord | ItemRejected] = []
        for index, prepared in enumerate(entries):
            if cls.stop_after is not None and index == cls.stop_after:
                cls.stop_after = None
                raise OutcomeUncertain("connection lost after part of the file was sent")
            if prepared.plan.reference in cls.reject:
                results.append(
                    ItemRejected(
                        ExportJobItemFailureReasonType.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                        "the target refused this line: fix the note in Pleo",
                    )
                )
                continue
            results.append(await MemoryConnector.post(self, prepared))
        if cls.after_write is not None:
            cls.after_write()
        return results


@pytest.fixture(autouse=True)
def _reset_batch_connector() -> None:
    BatchConnector.batches = []
    BatchConnector.lookups = []
    BatchConnector.before_write = None
    BatchConnector.stop_after = None
    BatchConnector.after_write = None
    BatchConnector.reject = set()


def _final(harness: Harness, job_id: str) -> dict[str, Any]:
    items = harness.sandbox.job_items(job_id)
    assert {i.status for i in items} <= {
        ExportJobItemStatus.SUCCESSFUL,
        ExportJobItemStatus.FAILED,
    }
    return {i.accounting_entry_id: i for i in items}


async def test_entries_are_posted_in_batches_of_the_declared_size(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=25, seed=41)
    async with harness.engine(connector_cls=BatchConnector) as engine:
        report = await engine.run_pending()

    items = _final(harness, job.id)
    successful = [i for i in items.values() if i.status is ExportJobItemStatus.SUCCESSFUL]
    assert sum(BatchConnector.batches) == report.jobs[0].posted == len(successful)
    assert all(size <= 10 for size in BatchConnector.batches)
    assert BatchConnector.batches[: len(successful) // 10] == [10] * (len(successful) // 10)
    assert set(harness.target.entries) == {i.accounting_entry_id for i in successful}
    assert harness.target.posted_twice == []


async def test_an_entry_rejected_inside_a_batch_fails_alone(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=12, seed=42)
    rejected: list[str] = []

    def reject_third(batch: Sequence[PreparedEntry], number: int) -> None:
        if number == 1 and len(batch) >= 3:
            rejected.append(batch[2].plan.reference)
            BatchConnector.reject.add(batch[2].plan.reference)

    BatchConnector.before_write = reject_third
    async with harness.engine(connector_cls=BatchConnector) as engine:
        await engine.run_pending()

    items = _final(harness, job.id)
    [victim] = rejected
    assert items[victim].status is ExportJobItemStatus.FAILED
    assert items[victim].failure_reason_type == "accounting_system_validation_failure"
    assert victim not in harness.target.entries
    others = [i for k, i in items.items() if k != victim]
    assert Counter(i.status for i in others)[ExportJobItemStatus.SUCCESSFUL] >= 1


async def test_half_delivered_batch_is_looked_up_and_only_the_rest_is_reposted(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=10, seed=43)
    BatchConnector.stop_after = 4
    async with harness.engine(connector_cls=BatchConnector) as engine:
        report = await engine.run_pending()

    items = _final(harness, job.id)
    successful = {k for k, i in items.items() if i.status is ExportJobItemStatus.SUCCESSFUL}
    assert harness.target.posted_twice == []
    assert set(harness.target.entries) == successful
    first = BatchConnector.batches[0]
    # Every entry of the broken batch was looked up before the second delivery.
    assert len(BatchConnector.lookups) >= first
    assert report.jobs[0].recovered == 4
    assert BatchConnector.batches[1] == first - 4


async def test_transient_failure_retries_the_whole_batch(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=8, seed=44)

    def down_twice(batch: Sequence[PreparedEntry], number: int) -> None:
        if number <= 2:
            raise TargetTemporarilyUnavailable("SFTP server refused the connection")

    BatchConnector.before_write = down_twice
    async with harness.engine(connector_cls=BatchConnector) as engine:
        await engine.run_pending()

    items = _final(harness, job.id)
    assert BatchConnector.batches[0] == BatchConnector.batches[1] == BatchConnector.batches[2]
    successful = {k for k, i in items.items() if i.status is ExportJobItemStatus.SUCCESSFUL}
    assert successful and set(harness.target.entries) == successful


async def test_target_down_for_every_attempt_fails_the_batch_with_the_reason(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=6, seed=45)

    def always_down(batch: Sequence[PreparedEntry], number: int) -> None:
        raise TargetTemporarilyUnavailable("SFTP server refused the connection")

    BatchConnector.before_write = always_down
    async with harness.engine(connector_cls=BatchConnector) as engine:
        await engine.run_pending()

    items = _final(harness, job.id)
    assert len(BatchConnector.batches) == 4  # post_attempts
    for item in items.values():
        assert item.status is ExportJobItemStatus.FAILED
        assert item.failure_reason_type == "accounting_system_unreachable"
        assert "nothing was written" in (item.failure_reason or "")
    assert harness.target.entries == {}


async def test_crash_after_a_batch_landed_recovers_without_posting_twice(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=25, seed=46)

    def die() -> None:
        if len(BatchConnector.batches) == 2:
            raise SystemExit("killed after the second file was published")

    BatchConnector.after_write = die
    with pytest.raises(SystemExit):
        async with harness.engine(connector_cls=BatchConnector) as engine:
            await engine.run_pending()
    landed = set(harness.target.entries)
    assert len(landed) == 20

    BatchConnector.after_write = None
    async with harness.engine(connector_cls=BatchConnector) as engine:
        report = await engine.run_pending()

    items = _final(harness, job.id)
    assert harness.target.posted_twice == []
    assert report.jobs[0].recovered == 10  # the second batch: intent recorded, outcome lost
    for reference in landed:
        assert items[reference].status is ExportJobItemStatus.SUCCESSFUL


async def test_uncertain_batch_without_lookup_fails_asking_for_a_manual_check(
    harness: Harness,
) -> None:
    class NoLookupBatch(BatchConnector):
        manifest: ClassVar[ConnectorManifest] = BatchConnector.manifest.model_copy(
            update={
                "id": "memory-batch-nolookup",
                "capabilities": BatchConnector.manifest.capabilities
                - {Capability.LOOKUP_BY_REFERENCE},
            }
        )

    job = harness.sandbox.queue_export(harness.company_id, count=6, seed=47)
    BatchConnector.stop_after = 2
    async with harness.engine(connector_cls=NoLookupBatch) as engine:
        await engine.run_pending()

    items = _final(harness, job.id)
    assert BatchConnector.lookups == []
    assert len(BatchConnector.batches) == 1
    unconfirmed = [i for i in items.values() if "did not confirm" in (i.failure_reason or "")]
    assert unconfirmed
    for item in unconfirmed:
        assert item.failure_reason_type == "unexpected_failure"
        assert item.accounting_entry_id in (item.failure_reason or "")


async def test_unknown_account_fails_in_prepare_and_never_enters_a_batch(
    harness: Harness,
) -> None:
    job = harness.sandbox.queue_export(
        harness.company_id, count=40, seed=48, unknown_account_rate=0.2
    )
    codes = {
        line["account"]["code"]
        for item in harness.sandbox.job_items(job.id)
        for line in harness.sandbox.export_item(item.accounting_entry_id)["accountingEntryLines"]
        if line.get("account")
    }
    known = sorted(codes - {UNKNOWN_ACCOUNT_CODE})
    async with harness.engine(
        connector_cls=BatchConnector, settings=MemorySettings(known_accounts=known)
    ) as engine:
        await engine.run_pending()
    items = _final(harness, job.id)
    unknown = [i for i in items.values() if i.failure_reason_type == "account_unknown"]
    assert unknown
    assert all(i.accounting_entry_id not in harness.target.entries for i in unknown)
    assert sum(BatchConnector.batches) == len(harness.target.entries) == len(items) - len(unknown)


async def test_uncertain_batch_whose_lookup_fails_too_says_the_entry_may_exist(
    harness: Harness,
) -> None:
    class LookupDown(BatchConnector):
        async def find_existing(self, reference: str) -> ExternalRecord | None:
            if not BatchConnector.batches:  # the lookups before the first post work
                return await super().find_existing(reference)
            raise TargetTemporarilyUnavailable("search endpoint down")

    job = harness.sandbox.queue_export(harness.company_id, count=6, seed=49)
    BatchConnector.stop_after = 3
    async with harness.engine(connector_cls=LookupDown) as engine:
        await engine.run_pending()

    items = _final(harness, job.id)
    written = set(harness.target.entries)
    assert len(written) == 3
    for reference in written:
        item = items[reference]
        assert item.status is ExportJobItemStatus.FAILED
        assert item.failure_reason_type == "unexpected_failure"
        assert "looking it up by reference failed too" in (item.failure_reason or "")
        assert "nothing was written" not in (item.failure_reason or "")
    assert harness.target.posted_twice == []
