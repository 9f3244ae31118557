"""Against the real OpenSSH server: upload, atomic rename, host keys, logins, reachability, and
connections cut in the middle of an upload (through a proxy) followed by a re-run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from connectors.sftp.tests.helpers import (
    CuttingProxy,
    Harness,
    SshServer,
    free_port,
    job,
    keygen,
    known_hosts_line,
    leftovers,
    listing,
    lost_connection_noise,
    plans,
    published,
    sandbox_items,
    snapshot,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import (
    ExternalRecord,
    JobRejected,
    OutcomeUncertain,
    PostingPlan,
    TargetTemporarilyUnavailable,
)
from pleo_export_sftp import SftpSettings, parse_manifest
from pleo_export_sftp.publish import TEMP_PREFIX
from pleo_export_sftp.reader import read_postings
from pleo_export_sftp.storage import SftpStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    directory = tmp_path / "remote"
    directory.mkdir()
    return directory


async def deliver(harness: Harness, the_plans: list[PostingPlan]) -> list[ExternalRecord]:
    """Like the engine: look every entry up, post the missing ones as one batch."""
    async with harness.opened() as connector:
        found = [await connector.find_existing(p.reference) for p in the_plans]
        todo = [i for i, f in enumerate(found) if f is None]
        if todo:
            results = await connector.post_batch(
                [await connector.prepare(the_plans[i]) for i in todo]
            )
            for i, result in zip(todo, results, strict=True):
                assert isinstance(result, ExternalRecord), result
                found[i] = result
    return [f for f in found if f is not None]


def assert_one_copy(remote: Path, settings: SftpSettings, references: list[str]) -> None:
    files = published(remote)
    manifest = parse_manifest(files[settings.manifest_name], settings.manifest_name)
    assert manifest.pending == {}
    assert leftovers(remote) == []
    entries: list[str] = []
    for name, record in manifest.files.items():
        data = files[name]
        assert hashlib.sha256(data).hexdigest() == record.sha256
        entries += sorted({p.entry_id for p in read_postings(data, settings)})
    assert sorted(entries) == sorted(references)
    assert {n for n in files if n.endswith(".csv")} == set(manifest.files)
    for name, record in manifest.attachments.items():
        assert hashlib.sha256(files[name]).hexdigest() == record.sha256


async def test_upload_publishes_by_atomic_rename(
    sshd: SshServer, remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sshd.settings(remote)
    harness = Harness(settings, tmp_path)
    the_plans = plans(sandbox_items(30, seed=21))
    seen_before_rename: list[tuple[str, list[str], int]] = []
    original = SftpStorage.replace

    async def watching_replace(self: SftpStorage, source: str, target: str) -> None:
        # The server's directory, as a reader sees it, just before each rename.
        size = (remote / source).stat().st_size
        seen_before_rename.append((target, listing(remote), size))
        await original(self, source, target)

    monkeypatch.setattr(SftpStorage, "replace", watching_replace)
    records = await deliver(harness, the_plans)

    files = published(remote)
    (csv_name,) = [n for n in files if n.endswith(".csv")]
    csv_renames = [s for s in seen_before_rename if s[0] == csv_name]
    assert len(csv_renames) == 1
    _, names, size = csv_renames[0]
    assert csv_name not in names  # never visible before it is complete
    temporary = [n for n in names if n.startswith(TEMP_PREFIX) and csv_name in n]
    assert len(temporary) == 1 and temporary[0].endswith(".part")
    assert size == len(files[csv_name])
    assert_one_copy(remote, settings, [p.reference for p in the_plans])
    assert all(
        r.external_url == f"sftp://{sshd.username}@127.0.0.1:{sshd.port}{remote}/{csv_name}"
        for r in records
    )
    receipts = [n for n in files if n.endswith((".pdf", ".png"))]
    assert len(receipts) == len(harness.fetched) > 5


async def test_rerunning_a_delivered_job_changes_nothing(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    harness = Harness(sshd.settings(remote), tmp_path)
    the_plans = plans(sandbox_items(20, seed=22))
    first = await deliver(harness, the_plans)
    state = snapshot(remote)
    fetched = len(harness.fetched)
    second = await deliver(harness, the_plans)  # a new connector, as a new run would have
    assert [r.external_id for r in second] == [r.external_id for r in first]
    assert snapshot(remote) == state
    assert len(harness.fetched) == fetched  # no receipt downloaded again
    # Even when posted again blindly, the manifest keeps it from being written twice.
    async with harness.opened() as connector:
        again = await connector.post_batch([await connector.prepare(p) for p in the_plans])
    assert [r.external_id for r in again if isinstance(r, ExternalRecord)] == [
        r.external_id for r in first
    ]
    assert {n: d for n, (_, d) in snapshot(remote).items()} == {n: d for n, (_, d) in state.items()}


async def test_a_wrong_host_key_is_refused(sshd: SshServer, remote: Path, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line(sshd.port, Path(f"{impostor}.pub")))
    harness = Harness(sshd.settings(remote, known_hosts=known_hosts), tmp_path)
    with pytest.raises(JobRejected) as caught:
        async with harness.opened():
            pass
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "does not match" in caught.value.message
    assert "ssh-keyscan" in caught.value.message
    assert listing(remote) == []


async def test_an_unknown_host_is_refused_before_connecting(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    other_port = sshd.known_hosts(port=sshd.port + 1)  # an entry for another port only
    harness = Harness(sshd.settings(remote, known_hosts=other_port), tmp_path)
    with pytest.raises(JobRejected) as caught:
        await harness.connector().open()
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert f"[127.0.0.1]:{sshd.port}" in caught.value.message
    assert "never trusts an unknown server" in caught.value.message


async def test_a_refused_login_is_an_authentication_failure(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    stranger = keygen(tmp_path / "stranger")
    harness = Harness(sshd.settings(remote, private_key=stranger), tmp_path)
    with pytest.raises(JobRejected) as caught:
        async with harness.opened():
            pass
    assert caught.value.reason_type is JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert f"user {sshd.username}" in caught.value.message
    assert "authorized_keys" in caught.value.message


async def test_an_unreadable_private_key_is_a_configuration_error(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_key"
    broken.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    harness = Harness(sshd.settings(remote, private_key=broken), tmp_path)
    with pytest.raises(JobRejected) as caught:
        await harness.connector().open()
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "private_key" in caught.value.message


async def test_an_unreachable_server_is_temporary(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    settings = sshd.settings(remote, port=port)
    harness = Harness(settings, tmp_path)
    connector = harness.connector()
    await connector.open()
    with pytest.raises(TargetTemporarilyUnavailable) as caught:
        await connector.check(job())
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_UNREACHABLE
    assert f"127.0.0.1:{port} refused the connection" in caught.value.message


async def test_a_missing_remote_directory_is_missing_configuration(
    sshd: SshServer, tmp_path: Path
) -> None:
    harness = Harness(sshd.settings(tmp_path / "not-there"), tmp_path)
    with pytest.raises(JobRejected) as caught:
        async with harness.opened():
            pass
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert "not-there" in caught.value.message and "remote_dir" in caught.value.message


async def test_a_dry_run_writes_nothing(sshd: SshServer, remote: Path, tmp_path: Path) -> None:
    harness = Harness(sshd.settings(remote), tmp_path, dry_run=True)
    async with harness.opened() as connector:
        for plan in plans(sandbox_items(10, seed=23)):
            assert await connector.find_existing(plan.reference) is None
            assert (await connector.prepare(plan)).rendered
    assert listing(remote) == []


@pytest.mark.parametrize(
    ("items", "attachments"), [(30, True), (200, False)], ids=["with-receipts", "csv-only"]
)
async def test_cut_connections_mid_upload_then_rerun(
    sshd: SshServer, tmp_path: Path, items: int, attachments: bool
) -> None:
    the_plans = plans(sandbox_items(items, seed=24))
    with lost_connection_noise():
        await _cut_and_rerun(sshd, tmp_path, the_plans, attachments)


async def _cut_and_rerun(
    sshd: SshServer, tmp_path: Path, the_plans: list[PostingPlan], attachments: bool
) -> None:
    references = [p.reference for p in the_plans]
    async with CuttingProxy(sshd.port) as proxy:
        # How much a clean delivery sends, measured on a scratch directory.
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        start = proxy.upstream_bytes
        scratch_settings = sshd.settings(scratch, port=proxy.port, attachments=attachments)
        await deliver(Harness(scratch_settings, tmp_path), the_plans)
        total = proxy.upstream_bytes - start
        assert total > 100_000
        outcomes: list[str] = []
        for fraction in (0.05, 0.5, 0.9, 0.995):
            directory = tmp_path / f"cut-{fraction}"
            directory.mkdir()
            settings = sshd.settings(directory, port=proxy.port, attachments=attachments)
            harness = Harness(settings, tmp_path)
            connector = harness.connector()
            await connector.open()
            # Kill the connection at this point, and keep the server unreachable.
            proxy.cut_after(int(total * fraction))
            try:
                await connector.check(job())
                found = [await connector.find_existing(r) for r in references]
                assert found == [None] * len(found)
                prepared = [await connector.prepare(p) for p in the_plans]
                results = await connector.post_batch(prepared)
                outcomes.append("published")
                assert all(isinstance(r, ExternalRecord) for r in results)
            except (TargetTemporarilyUnavailable, OutcomeUncertain) as error:
                outcomes.append(type(error).__name__)
            finally:
                await connector.close()
            proxy.cut_after(None)
            # What a reader sees now is complete; the re-run settles the rest.
            partial = published(directory)
            if settings.manifest_name in partial:
                manifest = parse_manifest(partial[settings.manifest_name], "m")
                for name, record in manifest.files.items():
                    assert hashlib.sha256(partial[name]).hexdigest() == record.sha256
            await deliver(harness, the_plans)
            assert_one_copy(directory, harness.settings, references)
        assert proxy.cuts == 4
        # Cut before the rename: nothing published, retry later. Cut after it: published.
        assert outcomes[:2] == ["TargetTemporarilyUnavailable"] * 2, outcomes
        assert set(outcomes) <= {"TargetTemporarilyUnavailable", "OutcomeUncertain", "published"}
