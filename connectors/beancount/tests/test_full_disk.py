"""A full disk under the ledger stops the job at once, and leaves no temporary files.

The ledger, its output file and its receipts live on a real size-limited file system: a
tmpfs of a few megabytes, mounted by the test (which needs root; elsewhere it is skipped with
the reason, except under CI, where it fails). A job of many items with receipts runs through
the real engine and client against the sandbox until the disk fills up. Then:

- the item that hit the full disk fails, and so does every later item, without the connector
  being called for them: no retries (four attempts with backoff per item used to take over an
  hour for 600 items);
- the job ends ``completed_with_errors``, every item final in Pleo;
- no temporary receipt file and no receipt of an item that was not booked is left on the disk;
- the ledger still loads in beancount without errors, every successful item in it once.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pleo_export import ConnectorContext, ExportItemFile, ExportJobItemStatus, ExportJobStatus
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export_beancount import BeancountConnector, BeancountSettings
from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig

pytestmark = pytest.mark.anyio

ITEMS = 300
DISK = "6m"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``DISK`` mounted for this test only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        _unavailable("mounting a size-limited tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        _unavailable(f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_a_full_disk_stops_the_job_and_leaves_no_temporary_files(
    small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pleo_export")
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    company = sandbox.add_company("Full Disk Ltd", wallet_currency="GBP")
    job = sandbox.queue_export(company.id, count=ITEMS, seed=11, unknown_account_rate=0.0)
    values = BeancountConnector.scaffold(small_disk, DEMO_CHART, "GBP")
    settings = BeancountSettings(ledger=small_disk / values["ledger"])
    client = PleoClient(
        sandbox.base_url,
        ApiKeyAuth(SecretStr(company.api_key)),
        transport=sandbox.transport(),
        page_size=100,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    )
    posts: Counter[str] = Counter()

    class CountingConnector(BeancountConnector):
        async def post(self, prepared: Any) -> Any:
            posts[prepared.plan.reference] += 1
            return await super().post(prepared)

    async def fetch(file: ExportItemFile) -> bytes:
        return await client.download(file.url)

    context = ConnectorContext(
        logger=logging.getLogger("pleo_export.connector.beancount"),
        fetch_attachment=fetch,
        work_dir=tmp_path,
    )
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")  # the state store has room
    connector = CountingConnector(settings, context)
    async with client:
        await store.open()
        await connector.open()
        try:
            engine = ExportEngine(
                client=client,
                connector=connector,
                store=store,
                hooks=PluginHost(load_entry_points=False),
                options=EngineOptions(company_id=company.id),
            )
            report = await engine.run_pending()
        finally:
            await connector.close()
            await store.close()

    [job_report] = report.jobs
    items = {i.accounting_entry_id: i for i in sandbox.job_items(job.id)}
    statuses = Counter(i.status for i in items.values())
    succeeded = statuses[ExportJobItemStatus.SUCCESSFUL]
    failed = [i for i in items.values() if i.status is ExportJobItemStatus.FAILED]
    # The disk filled up part-way: some items are in the ledger, the rest failed.
    assert succeeded >= 5, statuses
    assert len(failed) >= ITEMS // 2, statuses
    assert succeeded + len(failed) == ITEMS
    assert sandbox.get_job(job.id).status is ExportJobStatus.COMPLETED_WITH_ERRORS
    assert job_report.final_event == "completed_with_errors"

    # Exactly one item met the full disk; every later one was failed without a post.
    stopped = [i for i in failed if "stopped accepting entries" in (i.failure_reason or "")]
    full = [i for i in failed if i not in stopped]
    assert "no space left" in (full[0].failure_reason or ""), full[0]
    assert len(full) == 1, [i.failure_reason for i in failed[:3]]
    assert len(stopped) == len(failed) - 1
    assert all("no space left" in (i.failure_reason or "") for i in stopped)
    assert sum(posts.values()) == succeeded + 1  # one post per item: no retries
    assert set(posts.values()) == {1}
    assert not [r for r in caplog.records if getattr(r, "event", None) == "target.retry"]

    # Nothing half-written is left: no temporary files, no receipt without its entry.
    on_disk = _files(small_disk)
    assert not [p for p in on_disk if p.name.endswith(".tmp")]
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(settings.ledger))
    assert [e.message for e in errors] == []
    booked = Counter(
        e.meta["pleo-entry-id"]
        for e in entries
        if isinstance(e, data.Transaction) and "pleo-entry-id" in e.meta
    )
    ok = {ref for ref, item in items.items() if item.status is ExportJobItemStatus.SUCCESSFUL}
    assert set(booked) == ok
    documents = {Path(e.filename) for e in entries if isinstance(e, data.Document)}
    receipts = {p for p in on_disk if settings.documents_path in p.parents}
    assert documents and receipts == documents
