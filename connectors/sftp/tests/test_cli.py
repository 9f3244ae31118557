"""The connector as a user runs it: ``pleo-export`` with a configuration file built from
``scaffold``, the built-in sandbox and a local delivery directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import leftovers, listing
from pleo_export_sandbox import DEMO_CHART
from pleo_export_sftp import SftpConnector, SftpSettings, parse_manifest
from pleo_export_sftp.reader import read_postings


def pleo_export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli")
    values = SftpConnector.scaffold(directory, DEMO_CHART, "GBP")
    vendors = values.pop("vendor_accounts")
    lines = [
        "[pleo]",
        'base_url = "sandbox"',
        "[state]",
        'url = "sqlite:///state.db"',
        "[connector]",
        'name = "sftp"',
        "[connector.settings]",
        *(f"{key} = {_toml(value)}" for key, value in values.items()),
        "batch_size = 20",
        "[connector.settings.vendor_accounts]",
        *(f"{json.dumps(code)} = {json.dumps(account)}" for code, account in vendors.items()),
        "[sandbox]",
        "jobs = 2",
        "items_per_job = 50",
        "vendor_based_jobs = 1",
        "unknown_account_rate = 0.03",
        "",
    ]
    path = directory / "pleo-export.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_connectors_list_shows_sftp_with_its_capabilities(config: Path) -> None:
    result = pleo_export("connectors", "list", "--json", cwd=config.parent)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    entries = listed if isinstance(listed, list) else listed.get("connectors", [])
    (sftp,) = [c for c in entries if c.get("name") == "sftp" or c.get("id") == "sftp"]
    text = json.dumps(sftp)
    for capability in ("batch_posting", "lookup_by_reference", "attachments", "accounts_payable"):
        assert capability in text


def test_run_delivers_then_a_second_run_finds_everything(config: Path) -> None:
    outbox = config.parent / "outbox"
    # Only the master-data files scaffold writes (as the receiving system would export them).
    assert listing(outbox) == ["dimensions.csv", "tax-codes.csv", "vendors.csv"]
    first = pleo_export("--config", str(config), "run", "--json", cwd=config.parent)
    assert first.returncode == 1, first.stderr  # a few items on an unknown account fail
    report = json.loads(first.stdout)
    posted = report["totals"]["posted"]
    assert posted > 85
    assert {f["reason_type"] for job in report["jobs"] for f in job["failures"]} == {
        "account_unknown"
    }
    settings = SftpSettings(local_dir=outbox)
    manifest = parse_manifest((outbox / settings.manifest_name).read_bytes(), "manifest")
    # batch_size = 20: several files per job, each entry in exactly one of them.
    assert len(manifest.files) >= 4
    references = [
        p.entry_id
        for name in manifest.files
        for p in read_postings((outbox / name).read_bytes(), settings)
        if p.transaction and p.transaction.endswith("/1")
    ]
    assert len(set(references)) == posted == len(manifest.entries)
    assert leftovers(outbox) == []

    # The in-process sandbox offers the same jobs again: every entry is found by reference.
    second = pleo_export("--config", str(config), "run", "--json", cwd=config.parent)
    report = json.loads(second.stdout)
    assert report["totals"]["posted"] == 0
    assert report["totals"]["recovered"] == posted
    assert len(parse_manifest((outbox / settings.manifest_name).read_bytes(), "m").files) == len(
        manifest.files
    )
