"""Master data read from CSV files on the real OpenSSH server (and in a local directory), and
vendors created in Pleo turned into requests for the accounting team."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp.tests.helpers import Harness, SshServer, leftovers, listing, local_settings
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import (
    ItemRejected,
    JobRejected,
    TaxType,
    VendorDraft,
    contract_problems,
)
from pleo_export_sandbox import DEMO_CHART
from pleo_export_sftp import SftpConnector, SftpSettings
from pleo_export_sftp.masterdata import write_chart_files

pytestmark = pytest.mark.anyio

FILES = {
    "vendors_file": "vendors.csv",
    "tax_codes_file": "tax-codes.csv",
    "dimensions_file": "dimensions.csv",
    "vendor_requests_file": "vendor-requests.csv",
}


def test_contract_is_kept() -> None:
    assert contract_problems(SftpConnector) == []


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    directory = tmp_path / "remote"
    directory.mkdir()
    return directory


@pytest.fixture
def over_sftp(sshd: SshServer, remote: Path, tmp_path: Path) -> Harness:
    settings = sshd.settings(remote, **FILES)
    return Harness(settings, tmp_path)


def semicolons(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("cp1252")


async def test_the_server_files_answer_vendors_tax_codes_and_dimensions(
    over_sftp: Harness, remote: Path
) -> None:
    write_chart_files(remote, DEMO_CHART)
    connector = over_sftp.connector()
    await connector.open()
    try:
        vendors = {v.code: v for v in await connector.list_vendors()}
        taxes = {t.code: t for t in await connector.list_tax_codes()}
        dimensions = {d.code: d for d in await connector.list_dimensions()}
    finally:
        await connector.close()
    assert set(vendors) == {v.code for v in DEMO_CHART.vendors}
    cloudhost = vendors["V2003"]
    assert (cloudhost.name, cloudhost.external_id, cloudhost.currency, cloudhost.country) == (
        "Cloudhost GmbH",
        "AS-2003",
        "EUR",
        "DE",
    )
    assert (cloudhost.tax_registration_number, cloudhost.registration_number) == (
        "DE811907980",
        "HRB 1234",
    )
    assert (taxes["RC20"].type, taxes["RC20"].outgoing_tax_account) == (TaxType.REVERSE, "2202")
    assert taxes["R5"].rate == Decimal("0.05")
    assert [(v.code, v.name) for v in dimensions["PROJ"].values] == [
        ("ALPHA", "Project Alpha"),
        ("BRAVO", "Project Bravo"),
    ]
    assert dimensions["DEPT"].name == "Department"


async def test_the_connectors_delimiter_and_encoding_and_any_column_order(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "outbox"
    settings = local_settings(directory, delimiter=";", encoding="cp1252", **FILES)
    (directory / "vendors.csv").write_bytes(
        semicolons(
            [
                ["Name", " CODE ", "currency", "archived", "notes"],
                ["Café Øst", "K-7", "dkk", "yes", "ignored"],
                ["Nord A/S", "K-8", "DKK", "", ""],
                [],
            ]
        )
    )
    (directory / "tax-codes.csv").write_bytes(
        semicolons([["code", "rate", "type"], ["I25", "25%", ""], ["RC", "0,25", "reverse"]])
    )
    (directory / "dimensions.csv").write_bytes(
        semicolons(
            [
                ["dimension", "code", "name", "archived"],
                ["CC", "", "Cost centre", ""],
                ["CC", "100", "Head office", ""],
                ["CC", "200", "Old office", "true"],
                ["PROJ", "", "", "true"],
            ]
        )
    )
    connector = Harness(settings, tmp_path).connector()
    vendors = await connector.list_vendors()
    assert [(v.code, v.name, v.currency, v.archived, v.external_id) for v in vendors] == [
        ("K-7", "Café Øst", "DKK", True, "K-7"),
        ("K-8", "Nord A/S", "DKK", False, "K-8"),
    ]
    taxes = await connector.list_tax_codes()
    assert [(t.code, t.rate, t.type) for t in taxes] == [
        ("I25", Decimal("0.25"), TaxType.INCLUSIVE),
        ("RC", Decimal("0.25"), TaxType.REVERSE),
    ]
    dimensions = {d.code: d for d in await connector.list_dimensions()}
    assert dimensions["CC"].name == "Cost centre"
    assert [(v.code, v.archived) for v in dimensions["CC"].values] == [
        ("100", False),
        ("200", True),
    ]
    assert dimensions["PROJ"].archived and dimensions["PROJ"].values == ()


@pytest.mark.parametrize(
    ("settings", "files", "method", "named"),
    [
        ({}, {}, "list_vendors", "setting vendors_file is not set"),
        (FILES, {}, "list_vendors", "(setting vendors_file) does not exist"),
        (FILES, {"vendors.csv": b"code,name\r\nV1,A\r\n"}, "list_vendors", "no column currency"),
        (
            FILES,
            {"vendors.csv": b"code,name,currency,country\r\nV1,A,EUR,Denmark\r\n"},
            "list_vendors",
            "line 2",
        ),
        (
            FILES,
            {"vendors.csv": b"code,name,currency\r\nV1,A,EUR\r\nV1,B,EUR\r\n"},
            "list_vendors",
            "listed twice",
        ),
        (FILES, {"tax-codes.csv": b"code,rate\r\nX,high\r\n"}, "list_tax_codes", "rate 'high'"),
        (FILES, {}, "list_dimensions", "(setting dimensions_file) does not exist"),
    ],
)
async def test_missing_and_wrong_files_are_clear_errors(
    tmp_path: Path,
    settings: dict[str, str],
    files: dict[str, bytes],
    method: str,
    named: str,
) -> None:
    directory = tmp_path / "outbox"
    connector = Harness(local_settings(directory, **settings), tmp_path).connector()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    with pytest.raises(JobRejected) as raised:
        await getattr(connector, method)()
    assert named in raised.value.message


def test_master_data_files_must_not_look_like_published_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="starts with file_prefix"):
        SftpSettings(local_dir=tmp_path, vendors_file="pleo-vendors.csv")
    with pytest.raises(ValueError, match="file name in the delivery directory"):
        SftpSettings(local_dir=tmp_path, vendors_file="../vendors.csv")
    with pytest.raises(ValueError, match="vendor_requests_file must be a file of its own"):
        SftpSettings(local_dir=tmp_path, vendors_file="v.csv", vendor_requests_file="v.csv")


def draft(**changes: Any) -> VendorDraft:
    values = {
        "pleo_id": "pleo-vendor-1",
        "name": "Fjord Coffee ApS",
        "currency": "DKK",
        "country": "DK",
        "tax_registration_number": "DK31415926",
    } | changes
    return VendorDraft.model_validate(values)


async def test_create_vendor_answers_a_listed_vendor_and_requests_the_others_once(
    over_sftp: Harness, remote: Path
) -> None:
    (remote / "vendors.csv").write_bytes(
        b"code,name,currency,tax_number\r\n"
        b"K-1,Fjord Kaffe A/S,DKK,DK 31 41 59 26\r\n"
        b"K-2,Nordlys Studio,DKK,\r\n"
    )
    connector = over_sftp.connector()
    await connector.open()
    try:
        by_tax = await connector.create_vendor(draft())
        by_name = await connector.create_vendor(
            draft(pleo_id="p-2", name="nordlys studio ", tax_registration_number=None)
        )
        assert (by_tax.code, by_name.code) == ("K-1", "K-2")
        assert not (remote / "vendor-requests.csv").exists()

        new = draft(
            pleo_id="p-3",
            name="Aurora Print Oy",
            country="FI",
            tax_registration_number="FI12345671",
        )
        for expected in ("now requested", "already requested"):
            with pytest.raises(ItemRejected) as raised:
                await connector.create_vendor(new)
            assert raised.value.reason_type is Reason.VENDOR_UNKNOWN
            assert "'Aurora Print Oy'" in raised.value.message
            assert expected in raised.value.message
            assert "vendors_file" in raised.value.message
    finally:
        await connector.close()
    rows = list(csv.reader(io.StringIO((remote / "vendor-requests.csv").read_text())))
    assert rows[0] == [
        "requested_at",
        "pleo_id",
        "name",
        "tax_number",
        "registration_number",
        "currency",
        "country",
    ]
    assert [row[1:] for row in rows[1:]] == [
        ["p-3", "Aurora Print Oy", "FI12345671", "", "DKK", "FI"]
    ]
    assert leftovers(remote) == []

    # Once the accounting team added it and exported the list, the same draft is answered.
    with (remote / "vendors.csv").open("ab") as handle:
        handle.write(b"K-3,Aurora Print Oy,EUR,FI12345671\r\n")
    connector = over_sftp.connector()
    await connector.open()
    try:
        created = await connector.create_vendor(new)
    finally:
        await connector.close()
    assert (created.code, created.currency) == ("K-3", "EUR")


async def test_without_a_requests_file_the_refusal_says_how_to_get_one(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    settings = local_settings(directory, vendors_file="vendors.csv")
    (directory / "vendors.csv").write_bytes(b"code,name,currency\r\n")
    with pytest.raises(ItemRejected) as raised:
        await Harness(settings, tmp_path).connector().create_vendor(draft())
    assert "set vendor_requests_file" in raised.value.message
    assert listing(directory) == ["vendors.csv"]


async def test_a_request_follows_the_columns_of_the_requests_file_it_finds(tmp_path: Path) -> None:
    # The accounting team reordered the columns and added one of its own.
    directory = tmp_path / "outbox"
    settings = local_settings(
        directory, vendors_file="vendors.csv", vendor_requests_file="requests.csv"
    )
    (directory / "vendors.csv").write_bytes(b"code,name,currency\r\n")
    (directory / "requests.csv").write_bytes(
        b"\r\nName,PLEO_ID,status,currency\r\nOld Vendor,p-0,done,DKK\r\n"
    )
    connector = Harness(settings, tmp_path).connector()
    for _ in range(2):
        with pytest.raises(ItemRejected):
            await connector.create_vendor(draft(pleo_id="p-1"))

    rows = list(csv.reader(io.StringIO((directory / "requests.csv").read_text(), newline="")))
    assert rows[1:] == [
        ["Name", "PLEO_ID", "status", "currency"],
        ["Old Vendor", "p-0", "done", "DKK"],
        ["Fjord Coffee ApS", "p-1", "", "DKK"],
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name,tax_number\r\nOld Vendor,DK1\r\n", "has no pleo_id column in its header row"),
        ("pleo_id,name\r\np-0,Gr\u00f8n\r\n".encode("cp1252"), "is not utf-8 text"),
    ],
)
async def test_a_requests_file_pleo_export_cannot_keep_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    # Appending to it would add the same request again on every round of the vendor flow.
    directory = tmp_path / "outbox"
    settings = local_settings(
        directory, vendors_file="vendors.csv", vendor_requests_file="requests.csv"
    )
    (directory / "vendors.csv").write_bytes(b"code,name,currency\r\n")
    (directory / "requests.csv").write_bytes(content)

    with pytest.raises(JobRejected) as raised:
        await Harness(settings, tmp_path).connector().create_vendor(draft())

    assert expected in raised.value.message
    assert "requests.csv (setting vendor_requests_file)" in raised.value.message
    assert "move it away" in raised.value.message or "move the file away" in raised.value.message
    assert (directory / "requests.csv").read_bytes() == content
    assert listing(directory) == ["requests.csv", "vendors.csv"]
