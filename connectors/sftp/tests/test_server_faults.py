"""Against an asyncssh SFTP server on loopback that misbehaves on purpose: password logins,
a server that drops the connection mid-upload, permission denied, a full disk, a server
without posix-rename, and a connection lost while the file is being renamed into place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncssh
import pytest

from connectors.sftp.tests.helpers import (
    Faults,
    Harness,
    asyncssh_server,
    job,
    leftovers,
    lost_connection_noise,
    plans,
    published,
    sandbox_items,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import (
    ExternalRecord,
    JobRejected,
    OutcomeUncertain,
    PostingPlan,
    TargetTemporarilyUnavailable,
)
from pleo_export_sftp import SftpSettings, parse_manifest
from pleo_export_sftp.reader import read_postings
from pleo_export_sftp.storage import SftpStorage

pytestmark = pytest.mark.anyio


async def deliver(harness: Harness, the_plans: list[PostingPlan]) -> None:
    async with harness.opened() as connector:
        todo = [p for p in the_plans if await connector.find_existing(p.reference) is None]
        if todo:
            results = await connector.post_batch([await connector.prepare(p) for p in todo])
            assert all(isinstance(r, ExternalRecord) for r in results), results


def assert_one_copy(root: Path, settings: SftpSettings, references: list[str]) -> None:
    files = published(root)
    manifest = parse_manifest(files[settings.manifest_name], settings.manifest_name)
    assert manifest.pending == {} and leftovers(root) == []
    entries: list[str] = []
    for name, record in manifest.files.items():
        assert hashlib.sha256(files[name]).hexdigest() == record.sha256
        entries += sorted({p.entry_id for p in read_postings(files[name], settings)})
    assert sorted(entries) == sorted(references)
    assert {n for n in files if n.endswith(".csv")} == set(manifest.files)


async def test_password_login(tmp_path: Path) -> None:
    async with asyncssh_server(tmp_path) as server:
        settings = server.settings(private_key=None, password=server.password)
        the_plans = plans(sandbox_items(8, seed=31))
        await deliver(Harness(settings, tmp_path), the_plans)
        assert_one_copy(server.root, settings, [p.reference for p in the_plans])


async def test_wrong_password_is_an_authentication_failure(tmp_path: Path) -> None:
    async with asyncssh_server(tmp_path) as server:
        settings = server.settings(private_key=None, password="not-it")
        with pytest.raises(JobRejected) as caught:
            async with Harness(settings, tmp_path).opened():
                pass
    assert caught.value.reason_type is JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "refused the login of user pleo with password" in caught.value.message
    assert "not-it" not in caught.value.message


async def test_server_drops_mid_upload_and_the_connector_reconnects(tmp_path: Path) -> None:
    faults = Faults()
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings()
        harness = Harness(settings, tmp_path)
        the_plans = plans(sandbox_items(30, seed=32))
        with lost_connection_noise():
            async with harness.opened() as connector:
                faults.written = 0
                faults.drop_after_bytes = 150_000
                results = await connector.post_batch(
                    [await connector.prepare(p) for p in the_plans]
                )
                assert isinstance(connector.storage, SftpStorage)
                assert connector.storage.connections == 2  # the first one was dropped
        assert faults.drops == 1
        assert all(isinstance(r, ExternalRecord) for r in results)
        assert_one_copy(server.root, settings, [p.reference for p in the_plans])


async def test_server_drops_twice_then_a_rerun_delivers_once(tmp_path: Path) -> None:
    faults = Faults()
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings(attachments=False)
        harness = Harness(settings, tmp_path)
        the_plans = plans(sandbox_items(300, seed=33))
        with lost_connection_noise():
            async with harness.opened() as connector:
                prepared = [await connector.prepare(p) for p in the_plans]
                dropped_twice = {"left": 2}

                def drop(name: str) -> Exception | None:
                    if name.endswith(".csv.part") and dropped_twice["left"]:
                        dropped_twice["left"] -= 1
                        faults.drop_after_bytes = faults.written  # abort on this write
                    return None

                faults.write_error = drop
                with pytest.raises(TargetTemporarilyUnavailable) as caught:
                    await connector.post_batch(prepared)
                assert "broke while trying to write" in caught.value.message
        assert faults.drops == 2
        assert not [n for n in published(server.root) if n.endswith(".csv")]
        faults.write_error = None
        await deliver(harness, the_plans)
        assert_one_copy(server.root, settings, [p.reference for p in the_plans])


async def test_permission_denied_stops_the_job_with_what_to_change(tmp_path: Path) -> None:
    faults = Faults(
        write_error=lambda name: (
            asyncssh.SFTPPermissionDenied("Permission denied")
            if name.endswith(".csv.part")
            else None
        )
    )
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings(attachments=False)
        harness = Harness(settings, tmp_path)
        connector = harness.connector()
        await connector.open()
        await connector.check(job())  # the probe file is not a .csv: it passes
        with pytest.raises(JobRejected) as caught:
            await connector.post_batch(
                [await connector.prepare(p) for p in plans(sandbox_items(5, seed=34))]
            )
        await connector.close()
    assert caught.value.reason_type is JobReason.AUTHORIZATION_FAILURE
    assert "permission denied: user pleo may not write" in caught.value.message
    assert "grant write permission" in caught.value.message
    assert not [n for n in published(server.root) if n.endswith(".csv")]


async def test_permission_denied_is_found_before_the_job_starts(tmp_path: Path) -> None:
    faults = Faults(write_error=lambda name: asyncssh.SFTPPermissionDenied("Permission denied"))
    async with asyncssh_server(tmp_path, faults) as server:
        with pytest.raises(JobRejected) as caught:
            async with Harness(server.settings(), tmp_path).opened():
                pass
    assert caught.value.reason_type is JobReason.AUTHORIZATION_FAILURE


async def test_a_full_disk_stops_the_job_with_what_to_change(tmp_path: Path) -> None:
    full = {"on": False}
    faults = Faults(
        write_error=lambda name: asyncssh.SFTPFailure("Failure") if full["on"] else None
    )
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings()
        async with Harness(settings, tmp_path).opened() as connector:
            prepared = [await connector.prepare(p) for p in plans(sandbox_items(10, seed=35))]
            full["on"] = True
            with pytest.raises(JobRejected) as caught:
                await connector.post_batch(prepared)
        assert caught.value.reason_type is JobReason.INTEGRATION_UNUSABLE
        assert "full disk" in caught.value.message and "free space" in caught.value.message
        assert [n for n in published(server.root) if n != settings.manifest_name] == []


async def test_a_server_without_posix_rename(tmp_path: Path) -> None:
    faults = Faults(no_posix_rename=True)
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings()
        the_plans = plans(sandbox_items(12, seed=36))
        await deliver(Harness(settings, tmp_path), the_plans[:6])
        await deliver(Harness(settings, tmp_path), the_plans)  # replaces the manifest again
        assert_one_copy(server.root, settings, [p.reference for p in the_plans])


async def test_connection_lost_during_the_rename_is_uncertain_and_found_later(
    tmp_path: Path,
) -> None:
    faults = Faults()
    async with asyncssh_server(tmp_path, faults) as server:
        settings = server.settings(attachments=False)
        harness = Harness(settings, tmp_path)
        the_plans = plans(sandbox_items(20, seed=37))
        with lost_connection_noise():
            async with harness.opened() as connector:
                faults.lose_rename_reply = lambda name: name.endswith(".csv")
                with pytest.raises(OutcomeUncertain) as caught:
                    await connector.post_batch([await connector.prepare(p) for p in the_plans])
                assert "may or may not have been published" in caught.value.message
        faults.lose_rename_reply = None
        # As the engine does after an uncertain outcome: look every entry up first.
        async with harness.opened() as connector:
            found = [await connector.find_existing(p.reference) for p in the_plans]
        assert all(found)
        assert_one_copy(server.root, settings, [p.reference for p in the_plans])
