"""Hostile input against the SFTP/CSV connector: host keys for another port, cells too long
for CSV readers, separators inside tag groups and codes, formulas hidden behind invisible
characters, C1 controls and bidi overrides.

The host-key cases run against the real OpenSSH server; the CSV cases publish through the real
connector into a local directory and read the file back with the package's own reader and with
hledger through the shipped rules file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sftp.tests.helpers import (
    Harness,
    SshServer,
    card_purchase,
    job,
    leftovers,
    listing,
    local_settings,
    plans,
    published,
    sandbox_items,
    unavailable,
)
from connectors.sftp.tests.test_hledger import balances
from pleo_export import ExportItem, ExternalRecord, ItemRejected, JobRejected
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.testing import plan_item
from pleo_export_sftp import SftpSettings, hledger_rules_path
from pleo_export_sftp.layout import HLEDGER_CLEARING_ACCOUNT, LAYOUT_COLUMNS, MAX_CELL
from pleo_export_sftp.reader import parse_dimensions, read_postings, read_rows
from pleo_export_sftp.storage import DeliveryError, Problem, SftpStorage

pytestmark = pytest.mark.anyio


# --- host keys: a bare host entry does not vouch for another port -----------------------------


def _bare_known_hosts(sshd: SshServer, path: Path) -> Path:
    """The server's real key, under the bare address: OpenSSH uses it for port 22 only."""
    kind, key = sshd.host_public_key.read_text().split()[:2]
    path.write_text(f"127.0.0.1 {kind} {key}\n")
    return path


async def test_a_bare_host_entry_is_not_trusted_for_another_port(
    sshd: SshServer, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    known_hosts = _bare_known_hosts(sshd, tmp_path / "known_hosts")
    settings = sshd.settings(remote, known_hosts=known_hosts)
    assert settings.port != 22
    with pytest.raises(JobRejected) as caught:
        await Harness(settings, tmp_path).connector().open()
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert f"[127.0.0.1]:{sshd.port}" in caught.value.message
    # The connection itself refuses the server too, not only the check before it.
    storage = SftpStorage(settings)
    with pytest.raises(DeliveryError) as refused:
        await storage.connect()
    await storage.close()
    assert refused.value.problem is Problem.HOST_KEY
    assert listing(remote) == []


async def test_a_bracketed_entry_for_the_port_is_trusted(sshd: SshServer, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    settings = sshd.settings(remote)  # [127.0.0.1]:<port> <key>, as ssh-keyscan -p writes it
    storage = SftpStorage(settings)
    try:
        await storage.connect()
        assert await storage.list_names() == []
    finally:
        await storage.close()


# --- CSV cells -------------------------------------------------------------------------------

HIDDEN_FORMULAS = [
    '\u200b=HYPERLINK("http://evil.invalid","x")',  # zero-width space
    "\ufeff+cmd|' /C calc'!A0",  # byte-order mark
    "\u00a0\u2060@SUM(1+1)",  # no-break space, word joiner
    "\u202e=1+1",  # right-to-left override
]
TAGS = [("DEPT|X", "SALES:EU"), ("PROJ", "A|B"), ("C:D", "100%"), ("DEPT", "plain")]


def _hostile(note: str, supplier: str, tags: list[tuple[str, str]]) -> ExportItem:
    item = card_purchase(note=note, supplier={"name": supplier})
    data = item.model_dump(by_alias=True, mode="json")
    data["accountingEntryLines"][0]["tags"] = [
        {"id": f"t{n}", "groupCode": group, "code": code} for n, (group, code) in enumerate(tags)
    ]
    return ExportItem.model_validate(data)


@pytest.fixture
def hledger() -> str:
    path = shutil.which("hledger")
    if path is None:
        unavailable("hledger not installed: apt-get install hledger")
    assert path is not None
    return path


async def publish(
    tmp_path: Path, items: list[ExportItem]
) -> tuple[SftpSettings, bytes, dict[str, list[dict[str, str]]]]:
    """Publish ``items`` (ids ``00000000-0000``, ``00000001-0000``, ...) through the real
    connector into a local directory; the settings, the CSV file and its rows by entry id."""
    outbox = tmp_path / "out"
    columns = [*LAYOUT_COLUMNS["journal-lines"], "note", "tag:PROJ"]
    settings = local_settings(outbox, columns=columns, attachments=False)
    items = [
        ExportItem.model_validate(
            {**i.model_dump(by_alias=True, mode="json"), "accountingEntryId": f"{n:08d}-0000"}
        )
        for n, i in enumerate(items)
    ]
    async with Harness(settings, tmp_path).opened() as connector:
        prepared = [await connector.prepare(plan_item(i, job())) for i in items]
        results = await connector.post_batch(prepared)
    assert all(isinstance(r, ExternalRecord) for r in results), results
    assert leftovers(outbox) == []
    (name,) = [n for n in published(outbox) if n.endswith(".csv")]
    data = (outbox / name).read_bytes()
    by_entry: dict[str, list[dict[str, str]]] = {}
    for row in read_rows(data, settings):
        by_entry.setdefault(row["entry_id"], []).append(row)
    return settings, data, by_entry


def assert_hledger_agrees(
    hledger: str, tmp_path: Path, settings: SftpSettings, data: bytes
) -> None:
    """hledger reads the file through the shipped rules with the balances the reader sees."""
    totals: dict[str, int] = {}
    for posting in read_postings(data, settings):
        totals[posting.account] = totals.get(posting.account, 0) + posting.amount_minor
    csv_file = tmp_path / "hostile.csv"
    csv_file.write_bytes(data)
    found = balances(hledger, csv_file, hledger_rules_path("journal-lines"), settings)
    assert found.pop(HLEDGER_CLEARING_ACCOUNT, 0) == 0
    assert {a: v for a, v in found.items() if v} == {a: v for a, v in totals.items() if v}


async def test_a_cell_over_the_csv_field_limit_is_cut_and_the_file_reads_back(
    hledger: str, tmp_path: Path
) -> None:
    """A 200,000-character note: Python's csv reader refuses fields over 131,072 characters,
    so the published file used to be unreadable by the package's own reader."""
    settings, data, rows = await publish(tmp_path, [_hostile("n" * 200_000, "Long Ltd", [])])
    (first, *_) = rows["00000000-0000"]
    assert first["note"] == "n" * (MAX_CELL - 1) + "…"
    assert all(len(cell) <= MAX_CELL for r in rows.values() for row in r for cell in row.values())
    assert_hledger_agrees(hledger, tmp_path, settings, data)


async def test_separators_inside_tags_round_trip(hledger: str, tmp_path: Path) -> None:
    """``|`` and ``:`` in a tag group or code used to run into the next tag."""
    settings, data, rows = await publish(tmp_path, [_hostile("fine", "Tag Ltd", TAGS)])
    expense = next(r for r in rows["00000000-0000"] if r["role"] == "expense")
    assert parse_dimensions(expense["dimensions"]) == TAGS
    assert parse_dimensions(expense["tag:PROJ"], group="PROJ") == [("PROJ", "A|B")]
    assert_hledger_agrees(hledger, tmp_path, settings, data)


async def test_no_formula_hides_behind_invisible_characters(hledger: str, tmp_path: Path) -> None:
    """A formula after a zero-width space, a byte-order mark, a word joiner or a bidi
    override is still neutralised; C1 controls and bidi controls never reach a cell."""
    items = [
        _hostile(formula, f"Shop{n} \x9b\x85\u202e\u2066evil\u2069", [])
        for n, formula in enumerate(HIDDEN_FORMULAS)
    ]
    settings, data, rows = await publish(tmp_path, items)
    for n in range(len(HIDDEN_FORMULAS)):
        first = rows[f"{n:08d}-0000"][0]
        assert first["note"].startswith("'"), first["note"]
        assert "evil" in first["narration"]
    for row in (row for r in rows.values() for row in r):
        for column, cell in row.items():
            visible = cell.lstrip("".join(_INVISIBLE)).lstrip()
            assert cell.startswith("'") or not visible.startswith(("=", "+", "@")), (column, cell)
            for char in cell:
                assert unicodedata.category(char) != "Cc", (column, cell)
                assert char not in _BIDI, (column, cell)
    assert_hledger_agrees(hledger, tmp_path, settings, data)


async def test_an_identifying_cell_too_long_for_a_spreadsheet_fails_the_item(
    tmp_path: Path,
) -> None:
    settings = local_settings(tmp_path / "out", attachments=False)
    item = _hostile("fine", "Shop", [("DEPT", "x" * (MAX_CELL + 1))])
    with pytest.raises(ItemRejected) as caught:
        await Harness(settings, tmp_path).connector().prepare(plan_item(item, job()))
    assert caught.value.reason_type is Reason.VALIDATION_FAILURE
    assert "dimensions" in caught.value.message and str(MAX_CELL) in caught.value.message


_INVISIBLE = ("\u200b", "\ufeff", "\u2060", "\u00a0", " ")
_BIDI = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- a full disk on the server ---------------------------------------------------------------


@pytest.fixture
def full_remote(tmp_path: Path) -> Iterator[Path]:
    """``remote_dir`` on a 1 MB tmpfs (mounting needs root; skipped elsewhere, except in CI)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        unavailable("mounting a size-limited tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_a_full_server_disk_stops_the_job_and_leaves_no_temporary_files(
    sshd: SshServer, full_remote: Path, tmp_path: Path
) -> None:
    """Receipts of 60 items do not fit on the server's 1 MB disk: the batch fails with
    ``integration_unusable`` (the job stops), and no temporary file is left behind."""
    settings = sshd.settings(full_remote, batch_size=1)
    the_plans = plans(sandbox_items(60, seed=5))
    published_ok = 0
    failure: JobRejected | None = None
    async with Harness(settings, tmp_path).opened() as connector:
        for plan in the_plans:
            prepared = await connector.prepare(plan)
            try:
                (result,) = await connector.post_batch([prepared])
            except JobRejected as error:
                failure = error
                break
            assert isinstance(result, ExternalRecord), result
            published_ok += 1
    assert failure is not None
    assert failure.reason_type is JobReason.INTEGRATION_UNUSABLE
    assert "space" in failure.message
    assert 0 < published_ok < len(the_plans)
    assert leftovers(full_remote) == []
