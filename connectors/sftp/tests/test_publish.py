"""Publishing into a local directory: manifest and checksums, idempotency, and a crash at
every single step of a publication followed by a re-run."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from connectors.sftp.tests.helpers import (
    Harness,
    job,
    leftovers,
    local_settings,
    plans,
    published,
    sandbox_items,
)
from pleo_export import ExportItemFile, ExternalRecord, ItemRejected, JobRejected, PostingPlan
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_sftp import SftpConnector, SftpSettings, parse_manifest
from pleo_export_sftp.reader import read_postings
from pleo_export_sftp.storage import LocalStorage

pytestmark = pytest.mark.anyio


async def deliver(harness: Harness, the_plans: list[PostingPlan]) -> list[ExternalRecord]:
    """Like the engine: look every entry up, post the missing ones as one batch."""
    async with harness.opened() as connector:
        records: list[ExternalRecord | None] = [
            await connector.find_existing(p.reference) for p in the_plans
        ]
        missing = [i for i, r in enumerate(records) if r is None]
        prepared = [await connector.prepare(the_plans[i]) for i in missing]
        if prepared:
            for i, result in zip(missing, await connector.post_batch(prepared), strict=True):
                assert isinstance(result, ExternalRecord), result
                records[i] = result
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def check_directory(directory: Path, settings: SftpSettings, references: list[str]) -> None:
    """What a reader sees: every entry exactly once, checksums right, nothing temporary."""
    files = published(directory)
    manifest = parse_manifest(files[settings.manifest_name], settings.manifest_name)
    assert manifest.pending == {}
    assert leftovers(directory) == []
    csv_files = {n: d for n, d in files.items() if n.endswith(".csv")}
    assert set(csv_files) == set(manifest.files)
    seen: Counter[str] = Counter()
    for name, data in csv_files.items():
        record = manifest.files[name]
        assert record.sha256 == hashlib.sha256(data).hexdigest()
        assert record.bytes == len(data)
        entries = {p.entry_id for p in read_postings(data, settings)}
        seen.update(entries)
        assert record.entries == len(entries)
    assert sorted(seen) == sorted(references)
    assert set(seen.values()) == {1}, "an entry is in more than one file"
    assert sorted(manifest.entries) == sorted(references)
    for name, attachment in manifest.attachments.items():
        assert hashlib.sha256(files[name]).hexdigest() == attachment.sha256
    receipts = {n for n in files if n not in csv_files and n != settings.manifest_name}
    assert receipts == set(manifest.attachments)


async def test_publish_writes_csv_receipts_and_manifest(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    harness = Harness(local_settings(outbox), tmp_path)
    the_plans = plans(sandbox_items(40, seed=2))
    records = await deliver(harness, the_plans)
    references = [p.reference for p in the_plans]
    check_directory(outbox, harness.settings, references)
    files = published(outbox)
    (csv_name,) = [n for n in files if n.endswith(".csv")]
    assert {r.external_id.split(":")[0] for r in records} == {csv_name}
    assert records[0].external_id == f"{csv_name}:2-{records[0].external_id.split('-')[-1]}"
    assert records[0].external_url == (outbox / csv_name).absolute().as_uri()
    manifest = json.loads(files["pleo-export-manifest.json"])
    assert manifest["format"] == "pleo-export-sftp-manifest"
    assert manifest["files"][csv_name]["rows"] == len(
        read_postings(files[csv_name], harness.settings)
    )
    expected_receipts = sum(len(p.attachments) for p in the_plans)
    assert expected_receipts > 5
    assert len(manifest["attachments"]) == expected_receipts == len(harness.fetched)


async def test_rerunning_a_delivered_batch_writes_nothing(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    harness = Harness(local_settings(outbox), tmp_path)
    the_plans = plans(sandbox_items(25, seed=4))
    first = await deliver(harness, the_plans)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in outbox.iterdir()}
    # The engine would find them; post them anyway, as after an uncertain outcome.
    async with harness.opened() as connector:
        again = await connector.post_batch([await connector.prepare(p) for p in the_plans])
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in outbox.iterdir()}
    assert [r.external_id for r in again if isinstance(r, ExternalRecord)] == [
        r.external_id for r in first
    ]
    assert after == before
    check_directory(outbox, harness.settings, [p.reference for p in the_plans])


async def test_a_partly_delivered_batch_writes_only_the_rest(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    harness = Harness(local_settings(outbox, attachments=False), tmp_path)
    the_plans = plans(sandbox_items(30, seed=6))
    await deliver(harness, the_plans[:10])
    async with harness.opened() as connector:
        results = await connector.post_batch([await connector.prepare(p) for p in the_plans])
    assert all(isinstance(r, ExternalRecord) for r in results)
    assert len([n for n in published(outbox) if n.endswith(".csv")]) == 2
    check_directory(outbox, harness.settings, [p.reference for p in the_plans])


async def test_a_failed_receipt_download_fails_only_its_item(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    the_plans = [p for p in plans(sandbox_items(40, seed=7)) if p.attachments][:5]
    broken = the_plans[2].attachments[0].url

    async def fetch(file: ExportItemFile) -> bytes:
        if file.url == broken:
            raise ConnectionError("link expired")
        return b"%PDF-1.4 receipt"

    harness = Harness(local_settings(outbox), tmp_path, fetch=fetch)
    async with harness.opened() as connector:
        results = await connector.post_batch([await connector.prepare(p) for p in the_plans])
    rejected = results[2]
    assert isinstance(rejected, ItemRejected)
    assert rejected.reason_type is Reason.RECEIPT_DOWNLOAD_FAILURE
    assert "files[0]" in rejected.message and "link expired" in rejected.message
    delivered = [p.reference for i, p in enumerate(the_plans) if i != 2]
    assert all(isinstance(r, ExternalRecord) for i, r in enumerate(results) if i != 2)
    manifest = parse_manifest(published(outbox)["pleo-export-manifest.json"], "m")
    assert sorted(manifest.entries) == sorted(delivered)


async def test_files_without_manifest_are_not_overwritten(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    harness = Harness(local_settings(outbox), tmp_path)
    await deliver(harness, plans(sandbox_items(3, seed=8)))
    (outbox / "pleo-export-manifest.json").unlink()
    with pytest.raises(JobRejected) as caught:
        async with harness.opened():
            pass
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "no manifest" in caught.value.message and "Restore the manifest" in caught.value.message


async def test_a_damaged_manifest_stops_the_job(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    (outbox / "pleo-export-manifest.json").write_text("{not json")
    with pytest.raises(JobRejected) as caught:
        async with Harness(local_settings(outbox), tmp_path).opened():
            pass
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "not valid JSON" in caught.value.message


async def test_missing_directory_and_dry_run(tmp_path: Path) -> None:
    settings = SftpSettings(local_dir=tmp_path / "nowhere")
    with pytest.raises(JobRejected) as caught:
        async with Harness(settings, tmp_path).opened():
            pass
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert "nowhere" in caught.value.message and "local_dir" in caught.value.message
    outbox = tmp_path / "out"
    harness = Harness(local_settings(outbox), tmp_path, dry_run=True)
    async with harness.opened() as connector:
        for plan in plans(sandbox_items(5, seed=9)):
            assert await connector.find_existing(plan.reference) is None
            await connector.prepare(plan)
    assert list(outbox.iterdir()) == []


# --- a crash at every step ----------------------------------------------------------------


class Crash(BaseException):
    """The process dies: nothing after this runs, no handler sees it."""


class CrashingStorage(LocalStorage):
    """Dies right before or right after the n-th write, rename or remove."""

    def __init__(self, directory: Path, crash_at: int | None, after: bool) -> None:
        super().__init__(directory)
        self.crash_at = crash_at
        self.after = after
        self.operations = 0

    async def _step(self, run: Callable[[], Awaitable[None]]) -> None:
        self.operations += 1
        hit = self.operations == self.crash_at
        if hit and not self.after:
            raise Crash
        await run()
        if hit:
            raise Crash

    async def write(self, name: str, data: bytes) -> None:
        await self._step(lambda: super(CrashingStorage, self).write(name, data))

    async def replace(self, source: str, target: str) -> None:
        await self._step(lambda: super(CrashingStorage, self).replace(source, target))

    async def remove(self, name: str) -> None:
        await self._step(lambda: super(CrashingStorage, self).remove(name))


def _with_storage(connector: SftpConnector, storage: LocalStorage) -> SftpConnector:
    connector.storage = storage
    connector.publisher.storage = storage
    return connector


async def _run_batch(harness: Harness, the_plans: list[PostingPlan], storage: LocalStorage) -> None:
    connector = _with_storage(harness.connector(), storage)
    await connector.open()
    await connector.check(job())
    found = [await connector.find_existing(p.reference) for p in the_plans]
    todo = [p for p, f in zip(the_plans, found, strict=True) if f is None]
    if todo:
        await connector.post_batch([await connector.prepare(p) for p in todo])
    await connector.close()


async def test_a_crash_at_any_step_then_a_rerun_leaves_one_copy(tmp_path: Path) -> None:
    the_plans = plans(sandbox_items(12, seed=10))
    references = [p.reference for p in the_plans]
    # A clean run of the first half, then count the steps of publishing the whole batch.
    probe_dir = tmp_path / "probe"
    probe = Harness(local_settings(probe_dir), tmp_path)
    await _run_batch(probe, the_plans[:6], CrashingStorage(probe_dir, None, False))
    counting = CrashingStorage(probe_dir, None, False)
    await _run_batch(probe, the_plans, counting)
    steps = counting.operations
    assert steps > 10
    for after in (False, True):
        for crash_at in range(1, steps + 1):
            outbox = tmp_path / f"run-{crash_at}-{after}"
            harness = Harness(local_settings(outbox), tmp_path)
            await _run_batch(harness, the_plans[:6], CrashingStorage(outbox, None, False))
            with pytest.raises(Crash):
                await _run_batch(harness, the_plans, CrashingStorage(outbox, crash_at, after))
            # What a reader sees right after the crash: complete files only.
            files = published(outbox)
            manifest = parse_manifest(files["pleo-export-manifest.json"], "m")
            for name, data in files.items():
                if name in manifest.files:
                    assert hashlib.sha256(data).hexdigest() == manifest.files[name].sha256
            # The next run settles it.
            await _run_batch(harness, the_plans, CrashingStorage(outbox, None, False))
            check_directory(outbox, harness.settings, references)
