"""After a job: the engine reads back what the connector booked and calls
``pleo_export_job_reconciled``; nothing there changes an export outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from pleo_export import BookedEntry, BookedPosting, Capability, ConnectorManifest, hookimpl
from pleo_export.engine import EngineOptions
from pleo_export.host import Origin, PluginHost
from tests.engine.conftest import Harness
from tests.support.memory import MemoryConnector

pytestmark = pytest.mark.anyio


class ReadingConnector(MemoryConnector):
    """The in-memory target, able to read back what it holds (``READ_BOOKED``)."""

    manifest: ClassVar[ConnectorManifest] = MemoryConnector.manifest.model_copy(
        update={"capabilities": MemoryConnector.manifest.capabilities | {Capability.READ_BOOKED}}
    )
    fail_with: ClassVar[Exception | None] = None
    reads: ClassVar[list[int]] = []

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        self.reads.append(len(references))
        if self.fail_with is not None:
            raise self.fail_with
        return [
            BookedEntry(
                reference=reference,
                postings=tuple(
                    BookedPosting(
                        account=p.account, amount=p.amount, currency=p.currency, tax_code=p.tax_code
                    )
                    for entry in self.target.entries[reference]
                    for p in entry.postings
                ),
            )
            for reference in references
            if reference in self.target.entries
        ]


class Recorder:
    def __init__(self, *, explode: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.prepared: list[str] = []
        self.explode = explode

    @hookimpl
    def pleo_export_item_prepared(self, prepared: Any) -> None:
        self.prepared.append(prepared.plan.reference)

    @hookimpl
    def pleo_export_job_reconciled(
        self, job: Any, report: Any, references: Any, booked: Any, problem: Any
    ) -> None:
        self.calls.append(
            {"job": job.id, "references": list(references), "booked": booked, "problem": problem}
        )
        if self.explode:
            raise RuntimeError("plugin bug")


def _host(plugin: object) -> PluginHost:
    host = PluginHost(load_entry_points=False)
    assert host.register(plugin, Origin("recorder", "tests", "tests", "0"))
    return host


async def test_booked_entries_of_every_succeeded_item_reach_the_hook(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=12, seed=2)
    recorder = Recorder()
    async with harness.engine(host=_host(recorder), connector_cls=ReadingConnector) as engine:
        report = await engine.run_job(job.id)
    assert report is not None and report.succeeded == 12
    (call,) = recorder.calls
    assert call["job"] == job.id and call["problem"] is None
    assert sorted(call["references"]) == sorted(harness.target.entries)
    booked = {entry.reference: entry for entry in call["booked"]}
    assert set(booked) == set(call["references"])
    for reference, entries in harness.target.entries.items():
        amounts = [p.amount for e in entries for p in e.postings]
        assert [p.amount for p in booked[reference].postings] == amounts
    assert sorted(recorder.prepared) == sorted(harness.target.entries)


async def test_a_connector_that_cannot_read_back_is_named_in_the_problem(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=3, seed=2)
    recorder = Recorder()
    async with harness.engine(host=_host(recorder)) as engine:
        report = await engine.run_job(job.id)
    assert report is not None and report.final_event == "completed"
    (call,) = recorder.calls
    assert call["booked"] is None
    assert "connector 'memory' cannot read back" in call["problem"]


async def test_failures_in_reading_or_in_the_plugin_change_no_outcome(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=4, seed=5)
    recorder = Recorder(explode=True)
    ReadingConnector.fail_with = ConnectionError("ledger server went away")
    try:
        async with harness.engine(host=_host(recorder), connector_cls=ReadingConnector) as engine:
            report = await engine.run_job(job.id)
            second = harness.sandbox.queue_export(harness.company_id, count=2, seed=6)
            again = await engine.run_job(second.id)
    finally:
        ReadingConnector.fail_with = None
    assert report is not None and report.final_event == "completed" and report.posted == 4
    assert again is not None and again.final_event == "completed"
    assert harness.sandbox.get_job(job.id).status.value == "completed"
    first = recorder.calls[0]
    assert first["booked"] is None
    assert "ConnectionError: ledger server went away" in first["problem"]


async def test_no_read_back_in_a_dry_run_or_without_a_plugin(harness: Harness) -> None:
    job = harness.sandbox.queue_export(harness.company_id, count=3, seed=2)
    recorder = Recorder()
    ReadingConnector.reads.clear()
    try:
        async with harness.engine(
            host=_host(recorder),
            connector_cls=ReadingConnector,
            options=EngineOptions(dry_run=True),
        ) as engine:
            await engine.run_job(job.id)
        assert recorder.calls == [] and len(recorder.prepared) == 3
        async with harness.engine(connector_cls=ReadingConnector) as engine:
            report = await engine.run_job(job.id)
        reads = list(ReadingConnector.reads)
    finally:
        ReadingConnector.reads.clear()
    assert report is not None and report.final_event == "completed"
    assert reads == []
