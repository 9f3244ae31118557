"""The SFTP connector against the conformance kit (``pleo_export.testing``), twice: delivering
into a local directory, and to the real OpenSSH server on loopback.

``read_entries`` reads what a reader of the delivery directory sees: every published ``*.csv``
file, parsed with Python's csv module, one ``TargetEntry`` per entry and file (so an entry
delivered twice shows up twice).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from connectors.sftp.tests.helpers import SshServer, free_port
from pleo_export.testing import ConformanceSuite, ConnectorTarget, TargetEntry, TargetPosting
from pleo_export_sandbox import Chart
from pleo_export_sftp import SftpConnector, SftpSettings
from pleo_export_sftp.reader import read_postings

pytest_plugins = ["pleo_export.testing.plugin"]


def read_directory(directory: Path) -> list[TargetEntry]:
    """Every published CSV file of ``directory`` (default layout), entry by entry."""
    settings = SftpSettings(local_dir=directory)
    first_row = 2  # after the header
    entries: list[TargetEntry] = []
    for path in sorted(directory.glob("pleo-*.csv")):  # not the master-data files
        rows: dict[str, list[int]] = {}
        postings: dict[str, list[TargetPosting]] = {}
        for number, posting in enumerate(read_postings(path.read_bytes(), settings), first_row):
            rows.setdefault(posting.entry_id, []).append(number)
            postings.setdefault(posting.entry_id, []).append(
                TargetPosting(posting.account, posting.amount_minor, posting.currency)
            )
        for reference, numbers in rows.items():
            entries.append(
                TargetEntry(
                    reference=reference,
                    external_id=f"{path.name}:{min(numbers)}-{max(numbers)}",
                    postings=tuple(postings[reference]),
                    details={"file": path.name, "rows": f"{min(numbers)}-{max(numbers)}"},
                )
            )
    return entries


def _target(directory: Path, settings: dict[str, Any], **extra: Any) -> ConnectorTarget:
    async def read() -> list[TargetEntry]:
        return await anyio.to_thread.run_sync(read_directory, directory)

    async def close_period(first_open_day: date) -> None:
        settings["closed_before"] = first_open_day

    return ConnectorTarget(settings=settings, read_entries=read, close_period=close_period, **extra)


NO_VENDOR_CREATION = (
    "the receiving system creates its vendors itself: create_vendor answers only a vendor "
    "already in vendors_file and otherwise writes a request to vendor_requests_file and "
    "refuses (vendor_unknown); test_masterdata.py checks both"
)


class TestConformance(ConformanceSuite):
    """Delivery into a local directory (the ``scaffold`` setup)."""

    connector_id = "sftp"
    exempt = {
        "create_vendor_idempotent": NO_VENDOR_CREATION,
        "target_unreachable_precheck": (
            "with local_dir the target is a directory on this machine, not a service: a "
            "missing directory is a configuration error (missing_configuration); the SFTP "
            "variant below runs this scenario against a closed port"
        ),
    }

    @pytest.fixture
    def connector_target(
        self, tmp_path: Path, conformance_chart: Chart, conformance_currency: str
    ) -> ConnectorTarget:
        settings = SftpConnector.scaffold(tmp_path, conformance_chart, conformance_currency)
        return _target(tmp_path / settings["local_dir"], settings)


class TestConformanceOverSftp(ConformanceSuite):
    """Delivery to the real OpenSSH server (``sshd -D`` on loopback)."""

    connector_id = "sftp"
    exempt = {"create_vendor_idempotent": NO_VENDOR_CREATION}

    @pytest.fixture
    def connector_target(
        self,
        tmp_path: Path,
        conformance_chart: Chart,
        conformance_currency: str,
        sshd: SshServer,
    ) -> ConnectorTarget:
        values = SftpConnector.scaffold(tmp_path, conformance_chart, conformance_currency)
        remote = tmp_path / values.pop("local_dir")
        settings = {
            **values,
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "private_key": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts()),
            "remote_dir": str(remote),
            "connect_timeout": 5,
        }
        closed = free_port()
        unreachable = {
            **settings,
            "port": closed,
            "known_hosts": str(sshd.known_hosts(closed)),
        }
        return _target(remote, settings, unreachable_settings=unreachable)
