"""hledger (the Debian package) reads the files through the shipped rules, and through rules
generated for other dialects, with the same balances as the files themselves."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import (
    Harness,
    local_settings,
    plans,
    sandbox_items,
    unavailable,
)
from pleo_export import ExternalRecord, decimals
from pleo_export_sftp import SftpSettings, hledger_rules, hledger_rules_path
from pleo_export_sftp.layout import HLEDGER_CLEARING_ACCOUNT
from pleo_export_sftp.reader import read_postings

pytestmark = pytest.mark.anyio


@pytest.fixture
def hledger() -> str:
    path = shutil.which("hledger")
    if path is None:
        unavailable("hledger not installed: apt-get install hledger")
    assert path is not None
    return path


def balances(hledger: str, csv_file: Path, rules: Path, settings: SftpSettings) -> dict[str, int]:
    result = subprocess.run(
        [
            *(hledger, "-f", str(csv_file), "--rules-file", str(rules)),
            *("balance", "-O", "csv", "--no-total", "--flat", "--empty"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    found: dict[str, int] = {}
    for account, amount in list(csv.reader(io.StringIO(result.stdout)))[1:]:
        if amount == "0":
            found[account] = 0
            continue
        currency, number = amount[:3], amount[3:]
        if settings.decimal_separator == ",":
            number = number.replace(".", "").replace(",", ".")
        else:
            number = number.replace(",", "")
        found[account] = int(Decimal(number).scaleb(decimals(currency)))
    return found


async def deliver(settings: SftpSettings, tmp_path: Path, **options: Any) -> Path:
    """150 sandbox items of every type, published as one file; its path."""
    the_plans = plans(sandbox_items(150, seed=41, **options))
    async with Harness(settings, tmp_path).opened() as connector:
        results = await connector.post_batch([await connector.prepare(p) for p in the_plans])
        assert all(isinstance(r, ExternalRecord) for r in results)
    assert settings.local_dir is not None
    (path,) = settings.local_dir.glob("*.csv")
    return path


def file_totals(path: Path, settings: SftpSettings) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for posting in read_postings(path.read_bytes(), settings):
        totals[posting.account] += posting.amount_minor
    return dict(totals)


@pytest.mark.parametrize("layout", ["journal-lines", "debit-credit"])
async def test_shipped_rules(hledger: str, tmp_path: Path, layout: str) -> None:
    settings = local_settings(tmp_path / "out", layout=layout, attachments=False)
    path = await deliver(settings, tmp_path, multi_currency_rate=0.4)
    found = balances(hledger, path, hledger_rules_path(layout), settings)
    assert found.pop(HLEDGER_CLEARING_ACCOUNT, 0) == 0
    expected = file_totals(path, settings)
    assert {a: v for a, v in found.items() if v} == {a: v for a, v in expected.items() if v}
    assert len(expected) > 15


async def test_generated_rules_for_a_european_dialect(hledger: str, tmp_path: Path) -> None:
    settings = local_settings(
        tmp_path / "out",
        attachments=False,
        delimiter=";",
        decimal_separator=",",
        date_format="%d.%m.%Y",
        sign_convention="credit_positive",
        line_terminator="lf",
        columns=["entry_id", "date", "account", "amount", "currency", "narration", "tag:DEPT"],
        headers={"date": "Buchungsdatum", "account": "Konto"},
    )
    path = await deliver(settings, tmp_path)
    rules = tmp_path / "european.rules"
    rules.write_text(hledger_rules(settings), encoding="utf-8")
    found = balances(hledger, path, rules, settings)
    assert found.pop(HLEDGER_CLEARING_ACCOUNT, 0) == 0
    expected = file_totals(path, settings)
    assert {a: v for a, v in found.items() if v} == {a: v for a, v in expected.items() if v}
    text = path.read_text(encoding="utf-8")
    assert text.startswith("entry_id;Buchungsdatum;Konto;amount;")
