"""Supplier invoices checked against the receiving system's vendor list (``vendors_file``):
a vendor the file lists is a known vendor, booked to its ``vendor_accounts`` entry or else to
``accounts_payable_account`` with the file's code in the ``vendor_code`` column; an archived one
fails with ``vendor_unknown``; the file is read once per job. Over the real OpenSSH server, and
in a local directory for the read counts."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import Harness, SshServer, job, local_settings
from pleo_export import ExportItem, ExportJob, ExternalRecord, ItemRejected, JobRejected, Role
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.testing import plan_item
from pleo_export_sftp import SftpConnector, SftpSettings
from pleo_export_sftp.reader import read_rows

pytestmark = pytest.mark.anyio

VENDORS_CSV = (
    b"code,name,currency,external_id,tax_number,archived\r\n"
    b"K-100,Fjord Kaffe A/S,DKK,ERP-100,DK 12 34 56 78,\r\n"
    b"K-200,Nordlys Studio ApS,DKK,ERP-200,DK87654321,\r\n"
    b"K-300,Old Paper Oy,EUR,ERP-300,FI12345671,yes\r\n"
)
FILES = {"vendors_file": "vendors.csv"}


def invoice(vendor: dict[str, Any], *, amount: int = 12500) -> ExportItem:
    """A supplier invoice (accounts-payable method) from ``vendor``, 125.00 DKK on 6900."""
    entry_id = str(uuid.uuid4())
    money = {
        "inWalletCurrency": {"value": amount, "currency": "DKK"},
        "inSupplierCurrency": {"value": amount, "currency": "DKK"},
    }
    return ExportItem.model_validate(
        {
            "_links": {"web": {"exportItem": f"https://app.pleo.io/export/{entry_id}"}},
            "accountingEntryId": entry_id,
            "accountingEntryLines": [
                {
                    "accountingEntryLineId": str(uuid.uuid4()),
                    "lineAmount": money,
                    "netAmount": money,
                    "account": {"id": str(uuid.uuid4()), "name": "Software", "code": "6900"},
                }
            ],
            "additionalInformation": {
                "reconciliationId": f"BK-{entry_id[:8]}",
                "invoiceInformation": {
                    "invoiceNumber": f"F-{entry_id[:6]}",
                    "invoiceDate": "2025-03-05T00:00:00Z",
                    "status": "scheduled",
                },
            },
            "amount": money,
            "companyId": "c0ffee00-0000-4000-8000-000000000001",
            "date": "2025-03-05T10:00:00Z",
            "type": "invoice",
            "supplier": {"name": vendor["name"]},
            "vendor": {"id": str(uuid.uuid4()), "defaultCurrency": "DKK", **vendor},
            "bookkeeping": {"method": "accounts_payable"},
        }
    )


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    directory = tmp_path / "remote"
    directory.mkdir()
    (directory / "vendors.csv").write_bytes(VENDORS_CSV)
    return directory


def over_sftp(sshd: SshServer, remote: Path, **overrides: Any) -> SftpSettings:
    values: dict[str, Any] = {
        "attachments": False,
        "vendor_accounts": {},
        "unknown_vendor": "fail",
        **FILES,
    }
    values.update(overrides)
    return sshd.settings(remote, **values)


async def deliver(
    settings: SftpSettings, work: Path, *items: ExportItem
) -> list[ExternalRecord | ItemRejected]:
    """Like the engine: one job, check, prepare each item, publish the prepared ones; what
    each item got (its record, or the refusal of ``prepare`` or of publishing)."""
    the_job = job(vendor_based=True, job_id=str(uuid.uuid4()))
    outcomes: list[ExternalRecord | ItemRejected | None] = []
    async with Harness(settings, work).opened(the_job) as connector:
        prepared = []
        for item in items:
            try:
                prepared.append(await connector.prepare(plan_item(item, the_job)))
                outcomes.append(None)
            except ItemRejected as refused:
                outcomes.append(refused)
        posted = iter(await connector.post_batch(prepared))
    return [outcome if outcome is not None else next(posted) for outcome in outcomes]


def payable_rows(directory: Path, settings: SftpSettings) -> dict[str, dict[str, str]]:
    """The accounts-payable row of every delivered entry, by entry id."""
    local = SftpSettings(local_dir=directory, columns=settings.columns)
    return {
        row["entry_id"]: row
        for path in sorted(directory.glob("pleo-*.csv"))
        for row in read_rows(path.read_bytes(), local)
        if row["role"] == "accounts_payable"
    }


@pytest.mark.parametrize(
    ("vendor", "matched_by"),
    [
        ({"name": "Fjord Kaffe", "code": "K-100"}, "code"),
        ({"name": "Fjord Kaffe", "externalId": "ERP-100"}, "external id"),
        ({"name": "Fjord Kaffe", "taxRegistrationNumber": "dk12345678"}, "tax number"),
    ],
)
async def test_a_vendor_only_in_vendors_file_is_booked_to_the_payable_account_with_its_code(
    sshd: SshServer, remote: Path, tmp_path: Path, vendor: dict[str, Any], matched_by: str
) -> None:
    settings = over_sftp(sshd, remote)
    item = invoice(vendor)

    (outcome,) = await deliver(settings, tmp_path, item)

    assert isinstance(outcome, ExternalRecord), outcome
    row = payable_rows(remote, settings)[item.accounting_entry_id]
    assert (row["account"], row["amount"], row["currency"]) == ("2100", "-125.00", "DKK")
    # The code the receiving system gave the vendor, in the column that carries vendor codes;
    # the name stays Pleo's.
    assert (row["vendor"], row["vendor_code"]) == ("Fjord Kaffe", "K-100")


async def test_a_vendor_in_both_is_booked_to_its_vendor_accounts_entry(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    settings = over_sftp(
        sshd, remote, vendor_accounts={"DK87654321": "2100:K-200"}, accounts_payable_account="2199"
    )
    by_code = invoice({"name": "Nordlys", "code": "K-200"})
    by_tax = invoice({"name": "Nordlys Studio", "taxRegistrationNumber": "DK 8765 4321"})

    outcomes = await deliver(settings, tmp_path, by_code, by_tax)

    assert all(isinstance(outcome, ExternalRecord) for outcome in outcomes), outcomes
    rows = payable_rows(remote, settings)
    assert {(rows[i.accounting_entry_id]["account"]) for i in (by_code, by_tax)} == {"2100:K-200"}
    assert rows[by_tax.accounting_entry_id]["vendor_code"] == "K-200"


@pytest.mark.parametrize("unknown_vendor", ["fail", "fallback"])
async def test_a_vendor_the_file_lists_as_archived_fails_saying_so(
    sshd: SshServer, remote: Path, tmp_path: Path, unknown_vendor: str
) -> None:
    # Archived in the receiving system: blocked there, whatever vendor_accounts still says.
    settings = over_sftp(
        sshd, remote, vendor_accounts={"K-300": "2100:K-300"}, unknown_vendor=unknown_vendor
    )
    item = invoice({"name": "Old Paper", "taxRegistrationNumber": "FI 1234 5671"})

    (outcome,) = await deliver(settings, tmp_path, item)

    assert isinstance(outcome, ItemRejected)
    assert outcome.reason_type is Reason.VENDOR_UNKNOWN
    assert "tax number 'FI 1234 5671' is vendor K-300 (Old Paper Oy)" in outcome.message
    listed = f"{remote / 'vendors.csv'} on 127.0.0.1:{sshd.port} (setting vendors_file)"
    assert listed in outcome.message
    assert "archived in the receiving system" in outcome.message
    assert payable_rows(remote, settings) == {}


async def test_a_vendor_in_neither_fails_as_before_or_goes_to_the_fallback(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    stranger = {"name": "Stranger Ltd", "code": "X-1", "taxRegistrationNumber": "GB123456782"}
    item = invoice(stranger)

    (refused,) = await deliver(over_sftp(sshd, remote), tmp_path, item)
    fallback = over_sftp(sshd, remote, unknown_vendor="fallback")
    (delivered,) = await deliver(fallback, tmp_path, item)

    assert isinstance(refused, ItemRejected)
    assert refused.reason_type is Reason.VENDOR_UNKNOWN
    assert "code 'X-1', tax_number 'GB123456782'" in refused.message
    assert "in neither vendor_accounts nor the vendor list" in refused.message
    listed = f"{remote / 'vendors.csv'} on 127.0.0.1:{sshd.port} (setting vendors_file)"
    assert listed in refused.message
    assert isinstance(delivered, ExternalRecord)
    row = payable_rows(remote, fallback)[item.accounting_entry_id]
    assert (row["account"], row["vendor_code"]) == ("2100", "X-1")


@pytest.mark.parametrize("setup", ["unset", "missing"])
async def test_without_the_file_only_vendor_accounts_count_as_before(
    tmp_path: Path, setup: str, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "outbox"
    files = FILES if setup == "missing" else {}
    settings = local_settings(directory, vendor_accounts={"K-200": "2100:K-200"}, **files)
    listed_elsewhere = invoice({"name": "Fjord Kaffe", "code": "K-100"})
    known = invoice({"name": "Nordlys", "code": "K-200"})

    with caplog.at_level(logging.WARNING):
        refused, delivered = await deliver(settings, tmp_path, listed_elsewhere, known)

    assert isinstance(refused, ItemRejected)
    assert refused.reason_type is Reason.VENDOR_UNKNOWN
    assert refused.message.endswith(
        "(vendor 'Fjord Kaffe': code 'K-100' is not in vendor_accounts; add it there or set "
        'unknown_vendor = "fallback")'
    )
    assert isinstance(delivered, ExternalRecord)
    assert payable_rows(directory, settings)[known.accounting_entry_id]["account"] == "2100:K-200"
    warned = [r.getMessage() for r in caplog.records if "vendors_file" in r.getMessage()]
    if setup == "missing":
        assert warned == [
            f"{directory / 'vendors.csv'} (setting vendors_file) does not exist: vendors are "
            "matched against vendor_accounts only"
        ]
    else:
        assert warned == []


async def test_a_vendor_file_that_is_not_a_vendor_list_fails_the_job_naming_it(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "outbox"
    settings = local_settings(directory, **FILES)
    (directory / "vendors.csv").write_bytes(b"code,name\r\nK-1,Fjord\r\n")
    with pytest.raises(JobRejected) as raised:
        async with Harness(settings, tmp_path).opened(job(vendor_based=True)):
            pass
    assert "vendors.csv (setting vendors_file) has no column currency" in raised.value.message


def count_reads(connector: SftpConnector, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the connector's storage reads each file (the storage itself still reads)."""
    reads: Counter[str] = Counter()
    read: Callable[[str], Awaitable[bytes | None]] = connector.storage.read

    async def counted(name: str) -> bytes | None:
        reads[name] += 1
        return await read(name)

    monkeypatch.setattr(connector.storage, "read", counted)
    return reads


@pytest.mark.parametrize("where", ["local", "sftp"])
async def test_the_vendor_list_is_read_once_per_job(
    request: pytest.FixtureRequest,
    remote: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    if where == "sftp":
        settings = over_sftp(request.getfixturevalue("sshd"), remote)
    else:
        settings = local_settings(remote, vendor_accounts={}, **FILES)
    connector = Harness(settings, tmp_path).connector()
    reads = count_reads(connector, monkeypatch)
    jobs = [job(vendor_based=True, job_id=str(uuid.uuid4())) for _ in range(2)]
    vendors = [{"name": "Fjord", "code": "K-100"}, {"name": "Nordlys", "code": "K-200"}]

    async def export(the_job: ExportJob, *, checked: bool) -> None:
        if checked:
            await connector.check(the_job)
        prepared = [
            await connector.prepare(plan_item(invoice(vendors[n % 2], amount=100 + n), the_job))
            for n in range(20)
        ]
        if checked:
            assert all(isinstance(r, ExternalRecord) for r in await connector.post_batch(prepared))

    await connector.open()
    try:
        await export(jobs[0], checked=True)
        assert reads["vendors.csv"] == 1
        # A later job reads the file again, so a vendor listed since then is known.
        (remote / "vendors.csv").write_bytes(VENDORS_CSV + b"K-400,New Vendor,DKK,,,\r\n")
        await export(jobs[1], checked=True)
        assert reads["vendors.csv"] == 2
        new = await connector.prepare(plan_item(invoice({"name": "N", "code": "K-400"}), jobs[1]))
        payable = [p for e in new.entries for p in e.postings if p.role is Role.ACCOUNTS_PAYABLE]
        assert [p.account for p in payable] == ["2100"]
        # Items prepared without check (as `pleo-export sync` confirms drift): once per job.
        await export(job(vendor_based=True, job_id=str(uuid.uuid4())), checked=False)
        assert reads["vendors.csv"] == 3
    finally:
        await connector.close()
