"""The shared receipt helpers (``pleo_export.attachments``) and the context's download."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pleo_export import (
    ConnectorContext,
    ExportItemFile,
    ExportJobItemFailureReasonType,
    ItemRejected,
)
from pleo_export.attachments import check_size, extension_for

TOO_LARGE = ExportJobItemFailureReasonType.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED

pytestmark = pytest.mark.anyio


def _file(size: int = 10, type_: str = "application/pdf") -> ExportItemFile:
    return ExportItemFile.model_validate({"url": "https://x.test/r", "type": type_, "size": size})


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        ("application/pdf", "pdf"),
        ("IMAGE/JPEG; q=1", "jpg"),
        ("image/jpg", "jpg"),
        ("text/csv", "csv"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/x-../../etc", "bin"),
        ("", "bin"),
    ],
)
def test_extension_for(mime: str, expected: str) -> None:
    assert extension_for(mime) == expected


def test_extension_overrides_and_refusals() -> None:
    assert extension_for("text/csv", overrides={"text/csv": "csv.txt"}) == "csv.txt"
    assert extension_for("TEXT/CSV", overrides={"text/csv": "csv.txt"}) == "csv.txt"
    # A guessed extension that is refused becomes bin.
    assert extension_for("text/x-comma-separated-values", refused=("csv",)) in {"bin"}


def test_the_connectors_share_one_extension_table() -> None:
    from pleo_export_beancount import connector as beancount
    from pleo_export_sftp import connector as sftp
    from pleo_export_tryton import connector as tryton

    assert beancount.extension_for is extension_for
    assert tryton.extension_for is extension_for
    assert sftp.extension_for("text/csv") == "csv.txt"  # readers pick up *.csv files
    assert sftp.extension_for("image/png") == "png"


def test_check_size_names_the_file_and_the_limit() -> None:
    check_size([_file(100), _file(100)], 100)
    check_size([_file(10**9)], None)
    with pytest.raises(ItemRejected) as caught:
        check_size([_file(100), _file(101, "image/png")], 100)
    assert caught.value.reason_type is TOO_LARGE
    assert caught.value.message.startswith(
        "files[1] (image/png) is 101 bytes, more than the 100 bytes the accounting system "
        "accepts per file"
    )


async def test_fetch_attachment_wraps_download_errors_and_enforces_the_limit(
    tmp_path: Path,
) -> None:
    async def fetch(file: ExportItemFile) -> bytes:
        if file.size < 0:
            raise ConnectionResetError("connection reset by peer")
        return b"x" * file.size

    context = ConnectorContext(
        logger=logging.getLogger("test"), fetch_attachment=fetch, work_dir=tmp_path
    )
    assert await context.fetch_attachment(_file(5), max_bytes=5) == b"xxxxx"
    with pytest.raises(ItemRejected) as caught:
        await context.fetch_attachment(_file(6), label="files[2]", max_bytes=5)
    assert caught.value.reason_type is TOO_LARGE
    assert caught.value.message.startswith("files[2] is 6 bytes, more than the 5 bytes")
    with pytest.raises(ItemRejected) as caught:
        await context.fetch_attachment(_file(-1))
    assert caught.value.reason_type is ExportJobItemFailureReasonType.RECEIPT_DOWNLOAD_FAILURE
    assert "could not be downloaded from Pleo: connection reset by peer" in caught.value.message


def test_check_size_names_the_target() -> None:
    with pytest.raises(ItemRejected, match="more than the 1 bytes Beancount accepts per file"):
        check_size([_file(2)], 1, target="Beancount")
