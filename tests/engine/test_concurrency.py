"""Concurrent delivery (issue 13): posts overlap up to the connector's limit, receipts are
downloaded ahead, and none of it changes what Pleo sees or the exactly-once guarantee.

The sandbox answers after a small latency (``SandboxConfig.api_latency``/``file_latency``) so
that round trips really overlap; the assertions are about outcomes (how many posts were in
flight at once, the order of Pleo's events, entries posted once), never about timings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import ClassVar

import anyio
import pytest

from pleo_export.connector import ConnectorManifest, JobRejected, Limits
from pleo_export.engine import EngineOptions
from pleo_export.engine.prefetch import ReceiptPrefetch
from pleo_export.ledger import ExternalRecord, PreparedEntry
from pleo_export.pleo.models import (
    ExportItemFile,
    ExportJobFailureReasonType,
    ExportJobItemStatus,
)
from pleo_export.state.base import ItemPhase
from pleo_export_sandbox import SandboxConfig
from tests.engine.conftest import Harness
from tests.support.memory import MemoryConnector

pytestmark = pytest.mark.anyio

LATENCY = 0.005
LIMIT = 4


class ConcurrentConnector(MemoryConnector):
    """The memory target behind a network: a post downloads the item's receipts, then waits a
    little; it allows :data:`LIMIT` posts at once and counts how many overlap."""

    manifest: ClassVar[ConnectorManifest] = MemoryConnector.manifest.model_copy(
        update={"id": "memory-concurrent", "limits": Limits(max_concurrent_posts=LIMIT)}
    )
    in_flight: ClassVar[int] = 0
    max_in_flight: ClassVar[int] = 0
    receipts: ClassVar[int] = 0

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        cls = ConcurrentConnector
        cls.in_flight += 1
        cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        try:
            for index, file in enumerate(prepared.plan.attachments):
                await self.context.fetch_attachment(file, label=f"files[{index}]")
                cls.receipts += 1
            await anyio.sleep(LATENCY)
            return await super().post(prepared)
        finally:
            cls.in_flight -= 1


@pytest.fixture
def slow(make_harness: Callable[..., Harness]) -> Harness:
    ConcurrentConnector.in_flight = ConcurrentConnector.max_in_flight = 0
    ConcurrentConnector.receipts = 0
    return make_harness(SandboxConfig(api_latency=LATENCY, file_latency=LATENCY))


def _log(harness: Harness, job_id: str) -> list[str]:
    """What Pleo saw of the job, in order: its events and its item updates."""
    seen: list[str] = []
    for r in harness.sandbox.requests:
        if r.method == "POST" and r.path.endswith("/export-job-events") and r.status == 202:
            if r.body.get("jobId") == job_id:
                seen.append(r.body["event"])
        elif r.method == "PUT" and r.path == f"/v3/export-jobs/{job_id}/items" and r.status == 200:
            seen.append("put")
    return seen


def _final(harness: Harness, job_id: str) -> Counter[ExportJobItemStatus]:
    return Counter(item.status for item in harness.sandbox.job_items(job_id))


def _downloads(harness: Harness) -> int:
    return sum(1 for r in harness.sandbox.requests if not r.path.startswith("/v3/"))


async def test_posts_overlap_up_to_the_connectors_limit_and_pleo_sees_the_same_order(
    slow: Harness,
) -> None:
    job = slow.sandbox.queue_export(slow.company_id, count=230, seed=3, attachments=True)
    async with slow.engine(connector_cls=ConcurrentConnector) as engine:
        report = (await engine.run_pending()).jobs[0]
    assert ConcurrentConnector.max_in_flight == LIMIT
    assert _final(slow, job.id) == Counter({ExportJobItemStatus.SUCCESSFUL: 230})
    assert report.posted == 230 and slow.target.posted_twice == []
    assert len(slow.target.entries) == 230
    # started, then every outcome (full PUTs of 100, the rest at the end), then completed.
    assert _log(slow, job.id) == ["started", "put", "put", "put", "completed"]
    # Each receipt was downloaded once, prefetched or not.
    assert ConcurrentConnector.receipts > 0
    assert _downloads(slow) == ConcurrentConnector.receipts


async def test_the_engine_option_caps_the_connectors_concurrency(slow: Harness) -> None:
    job = slow.sandbox.queue_export(slow.company_id, count=30, seed=5, attachments=True)
    options = EngineOptions(max_concurrent_posts=1)
    async with slow.engine(connector_cls=ConcurrentConnector, options=options) as engine:
        await engine.run_pending()
    assert ConcurrentConnector.max_in_flight == 1
    assert _final(slow, job.id) == Counter({ExportJobItemStatus.SUCCESSFUL: 30})
    assert _log(slow, job.id) == ["started", "put", "completed"]


async def test_one_post_at_a_time_still_downloads_receipts_ahead(slow: Harness) -> None:
    """MemoryConnector allows one post at a time: posts never overlap, but while one item is
    posted the receipts of the next ones are already being downloaded."""
    job = slow.sandbox.queue_export(slow.company_id, count=40, seed=8, attachments=True)
    in_flight = peak = 0
    posting = False
    downloads_during_a_post = 0

    async with slow.engine() as engine:
        context = engine.connector.context
        plain = context.download

        async def counting(file: ExportItemFile) -> bytes:
            nonlocal in_flight, peak, downloads_during_a_post
            in_flight += 1
            peak = max(peak, in_flight)
            downloads_during_a_post += posting
            try:
                return await plain(file)
            finally:
                in_flight -= 1

        context._fetch_attachment = counting
        posts_at_once = 0
        real_post = engine.connector.post

        async def post(prepared: PreparedEntry) -> ExternalRecord:
            nonlocal posting, posts_at_once
            posts_at_once += 1
            assert posts_at_once == 1, "two posts at once"
            posting = True
            try:
                for file in prepared.plan.attachments:
                    await context.fetch_attachment(file)
                await anyio.sleep(LATENCY)
                return await real_post(prepared)
            finally:
                posting = False
                posts_at_once -= 1

        engine.connector.post = post  # type: ignore[method-assign]
        await engine.run_pending()
    assert peak > 1  # several receipts in flight at once
    assert downloads_during_a_post > 0
    assert _final(slow, job.id) == Counter({ExportJobItemStatus.SUCCESSFUL: 40})


async def test_a_crash_while_several_posts_are_in_flight_posts_nothing_twice(
    slow: Harness,
) -> None:
    job = slow.sandbox.queue_export(slow.company_id, count=60, seed=6, attachments=True)
    crashed: list[str] = []

    def die_after_write(prepared: PreparedEntry) -> None:
        # Die once 25 entries are written and another post is under way (its intent recorded).
        if len(slow.target.entries) >= 25 and ConcurrentConnector.in_flight > 1 and not crashed:
            crashed.append(prepared.plan.reference)
            raise SystemExit("killed right after the target accepted the entry")

    slow.target.after_store_hook = die_after_write
    with pytest.raises(SystemExit):
        async with slow.engine(connector_cls=ConcurrentConnector) as engine:
            await engine.run_pending()
    async with slow.engine(connector_cls=ConcurrentConnector) as engine:
        counts = await engine.store.counts(job.id)
        # The crash left more than the crashing item with an intent and no outcome.
        assert counts.posting > 1
        posting = await engine.store.items(job.id, [ItemPhase.POSTING])
        assert crashed[0] in {r.accounting_entry_id for r in posting}
        report = (await engine.run_pending()).jobs[0]
    assert report.resumed
    assert slow.target.posted_twice == []
    assert len(slow.target.entries) == 60
    assert report.recovered >= 1  # the crashing item's entry was found, not posted again
    assert _final(slow, job.id) == Counter({ExportJobItemStatus.SUCCESSFUL: 60})
    assert _log(slow, job.id)[0] == "started" and _log(slow, job.id)[-1] == "completed"


async def test_a_job_refusal_mid_way_fails_the_rest_with_the_jobs_reason(slow: Harness) -> None:
    job = slow.sandbox.queue_export(slow.company_id, count=40, seed=9)
    refused = ExportJobFailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE

    def refuse_after_ten(prepared: PreparedEntry) -> None:
        if slow.target.post_calls > 10:
            raise JobRejected(refused, "the login was revoked")

    slow.target.post_hook = refuse_after_ten
    async with slow.engine(connector_cls=ConcurrentConnector) as engine:
        report = (await engine.run_pending()).jobs[0]
    statuses = _final(slow, job.id)
    assert statuses[ExportJobItemStatus.SUCCESSFUL] == 10
    assert statuses[ExportJobItemStatus.FAILED] == 30
    assert report.failure_types == {refused.value: 30}
    # Posts already in a slot when the refusal came were the only ones after it.
    assert slow.target.post_calls <= 10 + LIMIT


async def test_receipt_prefetch_stays_within_its_memory_bound() -> None:
    files = [
        ExportItemFile(url=f"https://files.example/{n}", type="application/pdf", size=100)
        for n in range(10)
    ]
    gates = {f.url: anyio.Event() for f in files}
    in_flight = peak = 0

    async def download(file: ExportItemFile) -> bytes:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await gates[file.url].wait()
            return b"x" * 100
        finally:
            in_flight -= 1

    direct: list[str] = []

    async def own_download(file: ExportItemFile) -> bytes:
        direct.append(file.url)
        return b"y"

    prefetch = ReceiptPrefetch(download, concurrency=8, max_bytes=250)
    async with prefetch.running():
        for file in files:
            prefetch.start([file])
        await anyio.wait_all_tasks_blocked()
        assert peak == 2  # 2 x 100 bytes fit in 250; the third waits
        # A receipt whose prefetch has not started is downloaded at once, not waited for.
        assert await prefetch.fetch(files[9], own_download) == b"y"
        assert direct == [files[9].url]
        gates[files[0].url].set()
        assert await prefetch.fetch(files[0], own_download) == b"x" * 100
        prefetch.discard([files[0]])
        await anyio.wait_all_tasks_blocked()
        assert in_flight == 2  # files[1] and, now that 100 bytes were let go, files[2]
        for gate in gates.values():
            gate.set()
        for file in files[1:9]:
            await prefetch.fetch(file, own_download)
            prefetch.discard([file])
    assert prefetch.peak_bytes <= 250
    assert direct == [files[9].url]


async def test_a_failed_prefetch_reaches_the_connector_as_its_own_download_error() -> None:
    file = ExportItemFile(url="https://files.example/broken", type="image/png", size=10)

    async def download(file: ExportItemFile) -> bytes:
        raise OSError("connection reset")

    async def never(file: ExportItemFile) -> bytes:
        raise AssertionError("downloaded twice")

    prefetch = ReceiptPrefetch(download, concurrency=2, max_bytes=1000)
    async with prefetch.running():
        prefetch.start([file])
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(OSError, match="connection reset"):
            await prefetch.fetch(file, never)
