"""Supplier invoices and their payments, published over the real OpenSSH server and read back
by hledger through the shipped rules: invoice dates, and the realised exchange difference of
a foreign-currency invoice paid at another rate."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import Harness, SshServer, job, unavailable
from pleo_export import ExportItem, ExternalRecord, ItemRejected
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.testing import plan_item
from pleo_export_sftp import SftpSettings, hledger_rules_path

pytestmark = pytest.mark.anyio

WALLET = "GBP"
VENDOR = {"id": "9d7d5e0c-2f55-4a3e-9a43-7b1c1d7e0a01", "name": "Müller GmbH", "code": "V-DE1"}


@pytest.fixture
def hledger() -> str:
    path = shutil.which("hledger")
    if path is None:
        unavailable("hledger not installed: apt-get install hledger")
    assert path is not None
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    directory = tmp_path / "remote"
    directory.mkdir()
    return directory


def _dual(wallet: int, supplier: int, currency: str) -> dict[str, Any]:
    return {
        "inWalletCurrency": {"value": wallet, "currency": WALLET},
        "inSupplierCurrency": {"value": supplier, "currency": currency},
    }


def ap_item(
    type: str,
    wallet: int,
    supplier: int,
    *,
    currency: str = "EUR",
    date: str = "2025-03-05T10:00:00Z",
    invoice_number: str = "RE-2025-117",
    invoice_date: str | None = None,
    method: str = "accounts_payable",
) -> ExportItem:
    entry_id = str(uuid.uuid4())
    lines = []
    if type != "invoice_payment":
        lines = [
            {
                "accountingEntryLineId": str(uuid.uuid4()),
                "lineAmount": _dual(wallet, supplier, currency),
                "netAmount": _dual(wallet, supplier, currency),
                "account": {"id": str(uuid.uuid4()), "name": "Software", "code": "6900"},
            }
        ]
    return ExportItem.model_validate(
        {
            "_links": {"web": {"exportItem": f"https://app.pleo.io/export/{entry_id}"}},
            "accountingEntryId": entry_id,
            "accountingEntryLines": lines,
            "additionalInformation": {
                "reconciliationId": f"BK-{entry_id[:8]}",
                "invoiceInformation": {
                    "invoiceNumber": invoice_number,
                    "invoiceDate": invoice_date or date,
                    "status": "paid" if type == "invoice_payment" else "scheduled",
                },
            },
            "amount": _dual(wallet, supplier, currency),
            "companyId": "c0ffee00-0000-4000-8000-000000000001",
            "date": date,
            "type": type,
            "subType": "invoice_payment_sent" if type == "invoice_payment" else None,
            "supplier": {"name": "Müller GmbH"},
            "vendor": {**VENDOR, "defaultCurrency": currency},
            "bookkeeping": {"method": method},
        }
    )


def settings_for(sshd: SshServer, remote: Path, **overrides: Any) -> SftpSettings:
    values: dict[str, Any] = {
        "attachments": False,
        "vendor_accounts": {"V-DE1": "2100:V-DE1"},
        "unknown_vendor": "fail",
    }
    values.update(overrides)
    return sshd.settings(remote, **values)


async def publish(settings: SftpSettings, work: Path, *items: ExportItem) -> None:
    """Like the engine: look each item up, prepare, publish the batch (one job per call)."""
    the_job = job(vendor_based=True, job_id=str(uuid.uuid4()))
    async with Harness(settings, work).opened(the_job) as connector:
        prepared = []
        for export_item in items:
            plan = plan_item(export_item, the_job)
            assert await connector.find_existing(plan.reference) is None
            prepared.append(await connector.prepare(plan))
        results = await connector.post_batch(prepared)
        assert all(isinstance(r, ExternalRecord) for r in results), results


def hledger_csv(hledger: str, remote: Path, *command: str) -> list[list[str]]:
    """Run hledger over every published CSV file (journal-lines rules) and parse its CSV."""
    rules = hledger_rules_path("journal-lines")
    args = [hledger]
    for path in sorted(remote.glob("*.csv")):
        args += ["-f", str(path)]
    result = subprocess.run(
        [*args, "--rules-file", str(rules), *command, "-O", "csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return list(csv.reader(io.StringIO(result.stdout)))[1:]


@pytest.mark.parametrize("method", ["accounts_payable", "journal"])
async def test_supplier_invoice_is_dated_by_its_invoice_date(
    sshd: SshServer, remote: Path, tmp_path: Path, hledger: str, method: str
) -> None:
    invoice = ap_item(
        "invoice",
        12000,
        12000,
        currency=WALLET,
        date="2025-03-05T10:00:00Z",
        invoice_date="2025-02-20",
        method=method,
    )
    await publish(settings_for(sshd, remote), tmp_path, invoice)
    rows = hledger_csv(hledger, remote, "register", "6900")
    assert [row[1] for row in rows] == ["2025-02-20"]


EXCHANGE = {"exchange_gain_account": "8100", "exchange_loss_account": "7100"}


@pytest.mark.parametrize(
    ("payment_gbp", "fx_account", "fx"), [(87000, "7100", "GBP20.00"), (84000, "8100", "GBP-10.00")]
)
async def test_foreign_invoice_paid_at_another_rate_clears_the_vendor(
    sshd: SshServer,
    remote: Path,
    tmp_path: Path,
    hledger: str,
    payment_gbp: int,
    fx_account: str,
    fx: str,
) -> None:
    # 1,000.00 EUR booked at 850.00 GBP in one job, paid at 870.00 (840.00) GBP in the next.
    settings = settings_for(sshd, remote, **EXCHANGE)
    await publish(settings, tmp_path, ap_item("invoice", 85000, 100000))
    await publish(
        settings, tmp_path, ap_item("invoice_payment", payment_gbp, 100000, date="2025-04-02")
    )
    balances = dict(hledger_csv(hledger, remote, "balance", "--flat", "--no-total", "--empty"))
    assert balances["2100:V-DE1"] == "0"
    assert balances[fx_account] == fx
    assert balances["6900"] == "GBP850.00"


async def test_invoice_and_payment_in_one_batch_with_the_journal_method(
    sshd: SshServer, remote: Path, tmp_path: Path, hledger: str
) -> None:
    settings = settings_for(sshd, remote, **EXCHANGE)
    await publish(
        settings,
        tmp_path,
        ap_item("invoice", 85000, 100000, method="journal"),
        ap_item("invoice_payment", 86000, 100000, method="journal"),
    )
    balances = dict(hledger_csv(hledger, remote, "balance", "--flat", "--no-total", "--empty"))
    assert balances["2100:V-DE1"] == "0"
    assert balances["7100"] == "GBP10.00"


async def test_exchange_difference_without_an_account_fails_naming_the_setting(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    settings = settings_for(sshd, remote)
    await publish(settings, tmp_path, ap_item("invoice", 85000, 100000))
    the_job = job(vendor_based=True, job_id=str(uuid.uuid4()))
    async with Harness(settings, tmp_path).opened(the_job) as connector:
        with pytest.raises(ItemRejected) as caught:
            await connector.prepare(plan_item(ap_item("invoice_payment", 87000, 100000), the_job))
    assert caught.value.reason_type is Reason.MISSING_CONFIGURATION
    assert "exchange_loss_account is not set" in caught.value.message
    assert "20.00 GBP" in caught.value.message
