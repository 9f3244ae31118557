"""Master data with the SFTP connector and a real OpenSSH server: ``sync`` fills an empty Pleo
from the CSV files the receiving system exported to the server, after which a vendor-based job
drawn from Pleo's master data is delivered to the server with no master-data failure and a
second sync writes nothing; a vendor created in Pleo becomes a request line on the server, stays
a draft until the receiving system lists it, and is then activated with its code.

The SFTP connector checks vendors at ``prepare`` against ``vendors_file`` and ``vendor_accounts``
(``unknown_vendor = "fail"``), so the job is delivered with or without ``vendor_accounts``; tax
codes against the ``tax_codes`` setting, tags not at all. So ``tax_codes`` names exactly what the
CSV file lists (as ``scaffold`` sets it up), and the delivered rows are checked against the files
as well.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from connectors.sftp.tests.helpers import SshServer
from pleo_export.pleo.masterdata_models import VendorState
from pleo_export.sync import Kind, run_sync
from pleo_export.sync.drafts import DraftStatus, DraftVendors
from pleo_export_sftp import SftpSettings, parse_manifest
from pleo_export_sftp.reader import parse_dimensions, read_rows
from tests.sync.support import (
    empty_sandbox,
    master_data_writes,
    session_on,
    settings_for,
    wait_active,
    watch_config,
    watching,
)

pytestmark = pytest.mark.anyio

MASTER_DATA_FAILURES = {"vendor_unknown", "tax_code_unknown", "tag_unknown"}

# What the receiving system exports, in the documented columns (its own codes, none of them the
# sandbox chart's, so every vendor, tax code and tag in the job must have come through sync).
VENDORS = [
    ["code", "name", "currency", "external_id", "tax_number", "registration_number", "country"],
    ["L-101", "Amazon EU S.a.r.l.", "GBP", "ERP-101", "LU20260743", "", "LU"],
    ["L-102", "Google Ireland Ltd", "GBP", "ERP-102", "IE6388047V", "", "IE"],
    ["L-103", "Slack Technologies LLC", "USD", "ERP-103", "EU372008134", "", "US"],
    ["L-201", "Acme Office Cleaning Ltd", "GBP", "ERP-201", "GB123456782", "0871234", "GB"],
    ["L-202", "Cloudhost GmbH", "EUR", "ERP-202", "DE811907980", "HRB 1234", "DE"],
]
TAX_CODES = [
    ["code", "name", "rate", "type", "ingoing_tax_account", "outgoing_tax_account"],
    ["I20", "Input VAT 20%", "20%", "inclusive", "2201", ""],
    ["I5", "Input VAT 5%", "0.05", "inclusive", "2201", ""],
    ["E20", "Input VAT 20% on net", "0.2", "exclusive", "2201", ""],
    ["RC", "Reverse charge 20%", "0.2", "reverse", "2201", "2202"],
]
DIMENSIONS = [
    ["dimension", "code", "name", "archived"],
    ["CC", "", "Cost centre", ""],
    ["CC", "100", "Engineering", ""],
    ["CC", "200", "Sales", ""],
    ["CC", "900", "Closed centre", "true"],
    ["PRJ", "", "Project", ""],
    ["PRJ", "P1", "Project One", ""],
    ["PRJ", "P2", "Project Two", ""],
]
FILES = {
    "vendors_file": "vendors.csv",
    "tax_codes_file": "tax-codes.csv",
    "dimensions_file": "dimensions.csv",
    "vendor_requests_file": "vendor-requests.csv",
}


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def remote_dir(tmp_path: Path) -> Path:
    """The delivery directory on the server, with the receiving system's master-data files."""
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / FILES["vendors_file"]).write_bytes(csv_bytes(VENDORS))
    (remote / FILES["tax_codes_file"]).write_bytes(csv_bytes(TAX_CODES))
    (remote / FILES["dimensions_file"]).write_bytes(csv_bytes(DIMENSIONS))
    return remote


def server_values(sshd: SshServer, remote: Path) -> dict[str, Any]:
    """Connector settings that reach the server by key, with the master-data files."""
    return {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.username,
        "private_key": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts()),
        "remote_dir": str(remote),
        "connect_timeout": 10,
        "operation_timeout": 30,
        **FILES,
    }


def requests_on_server(remote: Path) -> list[dict[str, str]]:
    path = remote / FILES["vendor_requests_file"]
    if not path.exists():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


async def wait_requested(remote: Path) -> list[dict[str, str]]:
    """The request lines on the server, once there is one."""
    with anyio.fail_after(30):
        while not (found := requests_on_server(remote)):  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return found


@pytest.mark.parametrize("vendor_accounts", [True, False], ids=["vendor_accounts", "file_only"])
async def test_after_sync_from_the_server_files_a_vendor_job_is_delivered_without_failures(
    sshd: SshServer, tmp_path: Path, vendor_accounts: bool
) -> None:
    # With vendor_accounts naming every vendor, and without: vendors_file alone makes them known.
    remote = remote_dir(tmp_path)
    vendor_codes = {row[0] for row in VENDORS[1:]}
    tax_codes = {row[0] for row in TAX_CODES[1:]}
    open_tags = {(row[0], row[1]) for row in DIMENSIONS[1:] if row[1] and not row[3]}
    values = {
        **server_values(sshd, remote),
        "vendor_accounts": (
            {code: f"2100:{code}" for code in vendor_codes} if vendor_accounts else {}
        ),
        "unknown_vendor": "fail",
        "tax_codes": sorted(tax_codes),
    }
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "sftp", values)

    async with session_on(settings, sandbox) as (session, pleo):
        assert session.engine.unavailable is None, session.engine.unavailable
        first = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        vendors = await pleo.list_vendors()
        taxes = await pleo.list_tax_codes()
        groups = await pleo.list_tag_groups()
        tags = {g.code: await pleo.list_tags(g.id) for g in groups}

        sandbox.queue_export(
            company_id, count=60, seed=31, vendor_based_bookkeeping=True, from_master_data=True
        )
        report = await session.worker.run_pending()

        before = len(sandbox.requests)
        second = await run_sync(session.connector, pleo, list(Kind), dry_run=False)
        second_writes = master_data_writes(sandbox.requests[before:])

    # The first sync brought the server's files into the empty Pleo.
    assert first.failed == 0
    assert {(v.code, v.external_id, v.state) for v in vendors} == {
        (row[0], row[3], VendorState.ACTIVE) for row in VENDORS[1:]
    }
    assert {(t.code, t.rate, t.type.value) for t in taxes} == {
        ("I20", Decimal("0.2"), "inclusive"),
        ("I5", Decimal("0.05"), "inclusive"),
        ("E20", Decimal("0.2"), "exclusive"),
        ("RC", Decimal("0.2"), "reverse"),
    }
    assert {(g.code, g.name) for g in groups} == {("CC", "Cost centre"), ("PRJ", "Project")}
    # (The archived value CC/900 has nothing to archive in an empty Pleo, so it is not created.)
    assert {(group, t.code, t.archived) for group, found in tags.items() for t in found} == {
        ("CC", "100", False),
        ("CC", "200", False),
        ("PRJ", "P1", False),
        ("PRJ", "P2", False),
    }

    # The job drew its vendors, tax codes and tags from that data, and every item was delivered.
    (job,) = report.jobs
    items = [sandbox.export_item(i.accounting_entry_id) for i in sandbox.job_items(job.job_id)]
    assert sum(1 for item in items if item.get("vendor")) >= 5
    reasons = {failure.reason_type for failure in job.failures}
    assert not reasons & MASTER_DATA_FAILURES, job.failures
    assert job.failed == 0, job.failures
    assert job.posted == len(items)

    # On the server: every item in the manifest and in a published CSV file, whose rows carry
    # only vendor codes, tax codes and dimension values the receiving system's files list.
    sftp = SftpSettings(local_dir=remote)
    manifest = parse_manifest((remote / sftp.manifest_name).read_bytes(), sftp.manifest_name)
    assert {i["accountingEntryId"] for i in items} <= set(manifest.entries)
    rows = [
        row
        for path in sorted(remote.glob(f"{sftp.file_prefix}-*.csv"))
        for row in read_rows(path.read_bytes(), sftp)
    ]
    assert {row["entry_id"] for row in rows} == {i["accountingEntryId"] for i in items}
    # (Items without a vendor keep the sandbox's legacy supplier codes, so only the rows of
    # items with Pleo's vendor are compared; those are the rows a vendor code matters for.)
    with_vendor = {i["accountingEntryId"] for i in items if i.get("vendor")}
    delivered_vendors = {row["vendor_code"] for row in rows if row["entry_id"] in with_vendor}
    delivered_taxes = {row["tax_code"] for row in rows if row["tax_code"]}
    delivered_tags = {tag for row in rows for tag in parse_dimensions(row["dimensions"])}
    assert delivered_vendors and delivered_vendors <= vendor_codes
    assert delivered_taxes and delivered_taxes <= tax_codes
    assert delivered_tags and delivered_tags <= open_tags
    payables = {row["account"] for row in rows if row["role"] == "accounts_payable"}
    if vendor_accounts:
        assert payables and payables <= {f"2100:{code}" for code in vendor_codes}
    else:  # accounts_payable_account, the vendor told apart by vendor_code
        assert payables == {"2100"}

    # A second sync plans nothing and sends no write request.
    assert second.writes == 0
    assert second_writes == []
    assert all(outcome.plan is not None and outcome.plan.writes == () for outcome in second.kinds)


NEW_VENDOR = ["L-301", "Fresh Paint Ltd", "GBP", "ERP-301", "GB1112222", "", "GB"]


async def test_a_vendor_created_in_pleo_is_requested_on_the_server_until_it_is_listed_there(
    sshd: SshServer, tmp_path: Path
) -> None:
    remote = remote_dir(tmp_path)
    sandbox, company_id, key = empty_sandbox()
    settings = settings_for(tmp_path, sandbox, company_id, key, "sftp", server_values(sshd, remote))
    draft = sandbox.create_draft_vendor(
        company_id, "Fresh Paint Ltd", "GBP", country="GB", tax_registration_number="GB 111 2222"
    )

    async with session_on(settings, sandbox) as (session, pleo):
        drafts = DraftVendors(session.connector, pleo)
        (first,) = await drafts.poll()
        (again,) = await drafts.poll()
        after_two_rounds = await pleo.get_vendor(draft["id"])
        requested = requests_on_server(remote)

        # The accounting team creates the vendor and the system exports its vendor list again.
        (remote / FILES["vendors_file"]).write_bytes(csv_bytes([*VENDORS, NEW_VENDOR]))
        (third,) = await drafts.poll()
        activated = await pleo.get_vendor(draft["id"])
        after = await drafts.poll()

    # Refused, with the reason and where the request is; the draft stays a draft.
    assert first.status is DraftStatus.REJECTED
    assert "is not in the receiving system's vendor list" in first.message
    assert "vendors.csv" in first.message
    assert "now requested in" in first.message and "vendor-requests.csv" in first.message
    assert "activated in Pleo when it appears there" in first.message
    assert again.status is DraftStatus.REJECTED
    assert "already requested" in again.message
    assert after_two_rounds.state is VendorState.DRAFT
    # One request line, however many rounds ask.
    assert [
        (r["pleo_id"], r["name"], r["tax_number"], r["currency"], r["country"]) for r in requested
    ] == [(draft["id"], "Fresh Paint Ltd", "GB 111 2222", "GBP", "GB")]
    assert requests_on_server(remote) == requested
    # Once vendors.csv lists it (matched on the tax number), the next round activates it.
    assert third.status is DraftStatus.ACTIVATED, third.message
    assert (third.code, third.external_id) == ("L-301", "ERP-301")
    assert activated.state is VendorState.ACTIVE
    assert (activated.code, activated.external_id) == ("L-301", "ERP-301")
    assert after == []


async def test_run_watch_activates_a_requested_vendor_once_the_server_lists_it(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = remote_dir(tmp_path)
    sandbox, company_id, key = empty_sandbox()
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", key.get_secret_value())
    config = watch_config(
        tmp_path, sandbox, company_id, "sftp", server_values(sshd, remote), poll=0.2, listen=None
    )

    async with watching(config, sandbox):
        draft = sandbox.create_draft_vendor(
            company_id, "Fresh Paint Ltd", "GBP", tax_registration_number="GB1112222"
        )
        requested = await wait_requested(remote)
        assert sandbox.master_data(company_id).vendors[draft["id"]].state == "DRAFT"
        (remote / FILES["vendors_file"]).write_bytes(csv_bytes([*VENDORS, NEW_VENDOR]))
        vendor = await wait_active(sandbox, company_id, draft["id"])

    assert [r["pleo_id"] for r in requested] == [draft["id"]]
    assert (vendor.code, vendor.external_id) == ("L-301", "ERP-301")
