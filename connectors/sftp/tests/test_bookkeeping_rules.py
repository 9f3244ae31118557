"""Issue 11's bookkeeping cases delivered to the real OpenSSH server and judged by hledger
through the shipped rules: a bounced reimbursement reverses the payout, a sign that contradicts
the type fails the item (nothing delivered), vendors are found by tax number in any spelling
(and an unknown vendor fails by default), and exclusive tax lines must add up."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import Harness, SshServer, job, unavailable
from connectors.sftp.tests.test_hledger import balances
from pleo_export import ExportItem, ExternalRecord, ItemRejected
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.testing import plan_item
from pleo_export_sftp import SftpSettings, hledger_rules_path
from pleo_export_sftp.layout import HLEDGER_CLEARING_ACCOUNT

pytestmark = pytest.mark.anyio

CURRENCY = "GBP"


@pytest.fixture
def hledger() -> str:
    path = shutil.which("hledger")
    if path is None:
        unavailable("hledger not installed: apt-get install hledger")
    assert path is not None
    return path


# --- hand-built items ---------------------------------------------------------------------------


def dual(wallet: int, supplier: int | None = None, currency: str = CURRENCY) -> dict[str, Any]:
    return {
        "inWalletCurrency": {"value": wallet, "currency": CURRENCY},
        "inSupplierCurrency": {
            "value": wallet if supplier is None else supplier,
            "currency": currency,
        },
    }


def line(
    gross: int, *, tax: int | None = None, net: int | None = None, kind: str = "exclusive"
) -> Any:
    data: dict[str, Any] = {
        "accountingEntryLineId": str(uuid.uuid4()),
        "account": {"id": str(uuid.uuid4()), "name": "Office Supplies", "code": "6100"},
        "lineAmount": dual(gross),
        "netAmount": dual(gross if net is None else net),
    }
    if tax is not None:
        data["tax"] = {
            "id": str(uuid.uuid4()),
            "code": "EX20",
            "rate": 0.2,
            "type": kind,
            "ingoingTaxAccount": "2610",
            "amount": dual(tax),
        }
    return data


def item(
    type: str,
    amount: int,
    *,
    sub_type: str | None = None,
    lines: list[Any] | None = None,
    vendor_tax_number: str | None = None,
) -> ExportItem:
    transfer = type in {"wallet_topup", "direct_reimbursement", "invoice_payment"}
    data: dict[str, Any] = {
        "_links": {},
        "accountingEntryId": str(uuid.uuid4()),
        "companyId": "c0ffee00-0000-4000-8000-000000000001",
        "type": type,
        "subType": sub_type,
        "date": "2025-03-04T12:00:00Z",
        "amount": dual(amount),
        "additionalInformation": {"reconciliationId": "R1"},
        "accountingEntryLines": lines
        if lines is not None
        else ([] if transfer else [line(amount)]),
    }
    if vendor_tax_number is not None:
        data["bookkeeping"] = {"method": "accounts_payable"}
        data["vendor"] = {
            "id": str(uuid.uuid4()),
            "name": "Initech",
            "defaultCurrency": CURRENCY,
            "taxRegistrationNumber": vendor_tax_number,
        }
    return ExportItem.model_validate(data)


# --- delivery like the engine does it, then hledger ---------------------------------------------


async def export(
    settings: SftpSettings, tmp_path: Path, items: Sequence[ExportItem], vendor_based: bool = False
) -> tuple[list[ExternalRecord], dict[str, ItemRejected]]:
    """Plan, prepare and post ``items`` in one batch; the records and the failures by id."""
    the_job = job(vendor_based)
    failed: dict[str, ItemRejected] = {}
    records: list[ExternalRecord] = []
    async with Harness(settings, tmp_path / "work").opened(the_job) as connector:
        prepared = []
        for it in items:
            try:
                prepared.append(await connector.prepare(plan_item(it, the_job)))
            except ItemRejected as rejected:
                failed[it.accounting_entry_id] = rejected
        if prepared:
            for result in await connector.post_batch(prepared):
                assert isinstance(result, ExternalRecord), result
                records.append(result)
    return records, failed


def ledger(hledger: str, remote: Path, settings: SftpSettings, work: Path) -> dict[str, int]:
    """hledger's non-zero balances (minor units) over every CSV file delivered to ``remote``."""
    found: dict[str, int] = {}
    for path in sorted(remote.rglob("*.csv")):
        copy = work / path.name
        copy.write_bytes(path.read_bytes())
        check = subprocess.run(
            [hledger, "-f", str(copy), "--rules-file", str(hledger_rules_path()), "check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (check.returncode, check.stderr) == (0, "")
        for account, value in balances(hledger, copy, hledger_rules_path(), settings).items():
            found[account] = found.get(account, 0) + value
    assert found.pop(HLEDGER_CLEARING_ACCOUNT, 0) == 0
    return {account: value for account, value in found.items() if value}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote"
    path.mkdir()
    (tmp_path / "work").mkdir()
    return path


# --- the cases ----------------------------------------------------------------------------------


async def test_a_bounced_payout_reverses_the_payout(
    sshd: SshServer, hledger: str, remote: Path, tmp_path: Path
) -> None:
    settings = sshd.settings(remote)
    payout = item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee")
    bounced = item("direct_reimbursement", 5000, sub_type="reimbursement_to_employee_refund")
    records, failed = await export(settings, tmp_path, [payout])
    assert (len(records), failed) == (1, {})
    assert ledger(hledger, remote, settings, tmp_path / "work") == {"2250": 5000, "1290": -5000}
    records, failed = await export(settings, tmp_path, [bounced])
    assert (len(records), failed) == (1, {})
    assert ledger(hledger, remote, settings, tmp_path / "work") == {}


@pytest.mark.parametrize(
    ("item_type", "amount"), [("refund", 2000), ("cashback", 300), ("wallet_topup", -50000)]
)
async def test_a_sign_that_contradicts_the_type_is_not_delivered(
    sshd: SshServer, hledger: str, remote: Path, tmp_path: Path, item_type: str, amount: int
) -> None:
    settings = sshd.settings(remote)
    wrong = item(item_type, amount)
    right = item("refund", -2000)
    records, failed = await export(settings, tmp_path, [wrong, right])
    assert len(records) == 1
    error = failed[wrong.accounting_entry_id]
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert error.message.startswith(
        f"amount.inWalletCurrency.value is {amount} for type {item_type}"
    )
    assert ledger(hledger, remote, settings, tmp_path / "work") == {"6100": -2000, "1290": 2000}


async def test_vendors_are_found_by_tax_number_and_unknown_ones_fail_by_default(
    sshd: SshServer, hledger: str, remote: Path, tmp_path: Path
) -> None:
    settings = sshd.settings(remote, vendor_accounts={"DK 12 34 56 78": "2100:INITECH"})
    spellings = ["dk12345678", "12.34.56.78", "DK\u00a012-34/56-78"]
    found = [item("invoice", 1000, vendor_tax_number=s) for s in spellings]
    other_country = item("invoice", 700, vendor_tax_number="SE12345678")
    records, failed = await export(settings, tmp_path, [*found, other_country], vendor_based=True)
    assert len(records) == 3
    assert list(failed) == [other_country.accounting_entry_id]
    assert failed[other_country.accounting_entry_id].reason_type is Reason.VENDOR_UNKNOWN
    assert ledger(hledger, remote, settings, tmp_path / "work") == {
        "6100": 3000,
        "2100:INITECH": -3000,
    }
    assert settings.unknown_vendor == "fail"  # the default, as in the other connectors


async def test_exclusive_tax_must_add_up(
    sshd: SshServer, hledger: str, remote: Path, tmp_path: Path
) -> None:
    settings = sshd.settings(remote)
    agrees = item("card_purchase", 12000, lines=[line(12000, tax=2000, net=10000)])
    disagrees = item("card_purchase", 12000, lines=[line(12000, tax=2000, net=12000)])
    records, failed = await export(settings, tmp_path, [agrees, disagrees])
    assert len(records) == 1
    error = failed[disagrees.accounting_entry_id]
    assert error.reason_type is Reason.VALIDATION_FAILURE
    assert (
        "is 140.00 GBP, but accountingEntryLines[0].lineAmount.inWalletCurrency is 120.00 GBP"
        in (error.message)
    )
    assert ledger(hledger, remote, settings, tmp_path / "work") == {
        "6100": 10000,
        "2610": 2000,
        "1290": -12000,
    }
