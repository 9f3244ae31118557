"""read_booked against the real OpenSSH server and a local folder: the rows of each reference
read back from the delivered files as they are now."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from connectors.sftp.tests.helpers import Harness, SshServer, local_settings, plans, sandbox_items
from pleo_export import BookedEntry, Capability, ExternalRecord, PreparedEntry
from pleo_export_sftp import SftpConnector, SftpSettings

pytestmark = pytest.mark.anyio


def _lines(prepared: PreparedEntry) -> list[tuple[str, int, str, str | None]]:
    return sorted(
        (p.account, p.amount, p.currency, p.tax_code) for e in prepared.entries for p in e.postings
    )


def _booked(entry: BookedEntry) -> list[tuple[str, int, str, str | None]]:
    return sorted((p.account, p.amount, p.currency, p.tax_code) for p in entry.postings)


async def _deliver(harness: Harness, count: int, seed: int) -> dict[str, PreparedEntry]:
    prepared: dict[str, PreparedEntry] = {}
    async with harness.opened() as connector:
        for plan in plans(sandbox_items(count, seed=seed)):
            prepared[plan.reference] = await connector.prepare(plan)
        results = await connector.post_batch(list(prepared.values()))
    assert all(isinstance(r, ExternalRecord) for r in results)
    return prepared


async def _read(harness: Harness, references: list[str]) -> list[BookedEntry]:
    async with harness.opened() as connector:
        return list(await connector.read_booked(references))


async def test_read_back_over_sftp_matches_what_was_prepared(
    sshd: SshServer, tmp_path: Path
) -> None:
    assert Capability.READ_BOOKED in SftpConnector.manifest.capabilities
    remote = tmp_path / "remote"
    remote.mkdir()
    harness = Harness(sshd.settings(remote), tmp_path)
    prepared = await _deliver(harness, 12, seed=31)
    references = [*prepared, "not-delivered"]
    booked = await _read(harness, references)
    assert [b.reference for b in booked] == list(prepared)
    for entry in booked:
        assert _booked(entry) == _lines(prepared[entry.reference])
        assert entry.external_id and entry.external_id.endswith(
            ".csv:" + entry.external_id.split(":")[-1]
        )
    assert any(p.tax_code for entry in booked for p in entry.postings)


async def test_debit_credit_files_and_hand_edits_read_back_as_they_are(tmp_path: Path) -> None:
    settings: SftpSettings = local_settings(
        tmp_path / "out", layout="debit-credit", delimiter=";", decimal_separator=","
    )
    harness = Harness(settings, tmp_path)
    prepared = await _deliver(harness, 4, seed=5)
    booked = await _read(harness, list(prepared))
    assert {b.reference: _booked(b) for b in booked} == {r: _lines(p) for r, p in prepared.items()}

    # Someone changes the first row's debit by hand: the read-back says so.
    (csv_file,) = (tmp_path / "out").glob("*.csv")
    with csv_file.open(encoding="utf-8", newline="") as file:
        table = list(csv.reader(file, delimiter=";"))
    header = table[0]
    first = dict(zip(header, table[1], strict=True))
    column = "debit" if first["debit"] else "credit"
    table[1][header.index(column)] = "1000,00"
    with csv_file.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, delimiter=";").writerows(table)
    (edited, *_) = await _read(harness, [first["entry_id"]])
    sign = 1 if column == "debit" else -1
    assert sign * 100000 in [p.amount for p in edited.postings]
    assert edited.postings[0].account == first["account"]

    # Someone deletes the file: nothing is booked under any reference any more.
    csv_file.unlink()
    assert await _read(harness, list(prepared)) == []


async def test_files_without_a_currency_column_cannot_be_read_back(tmp_path: Path) -> None:
    columns = ["date", "entry_id", "account", "amount"]
    harness = Harness(local_settings(tmp_path / "out", columns=columns), tmp_path)
    await _deliver(harness, 2, seed=2)
    with pytest.raises(ValueError, match=r"have no currency column, so what was booked"):
        await _read(harness, ["x"])
