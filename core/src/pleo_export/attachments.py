"""Receipts: the size limit, file extensions and download errors, shared by every connector.

The engine fails an item whose receipt is larger than the connector's
``limits.max_attachment_bytes`` before the connector sees it (:func:`check_size`);
:meth:`pleo_export.ConnectorContext.fetch_attachment` downloads a receipt, stops past the limit
and turns a failed download into an ``ItemRejected`` (:func:`download_failed`); connectors name
the stored files with :func:`extension_for`.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping

from pleo_export.connector import ItemRejected
from pleo_export.pleo.models import ExportItemFile, ExportJobItemFailureReasonType

PLEO_MAX_RECEIPT_BYTES = 30 * 1024 * 1024
"""Pleo's largest receipt (30 MB per file)."""

EXTENSIONS: Mapping[str, str] = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/webp": "webp",
    "image/tiff": "tiff",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/zip": "zip",
    "message/rfc822": "eml",
}
"""The extension of each common receipt type, independent of the machine's MIME database."""

_SAFE_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")


def extension_for(
    mime_type: str,
    *,
    overrides: Mapping[str, str] | None = None,
    refused: Iterable[str] = (),
) -> str:
    """A safe file extension for a receipt's MIME type: ``application/pdf`` -> ``pdf``.

    Parameters are ignored (``text/plain; charset=utf-8``); a type outside :data:`EXTENSIONS`
    (and ``overrides``) gets what the MIME database guesses when that is 1 to 8 lower-case
    letters or digits and not in ``refused``, else ``bin``.
    """
    base = mime_type.split(";", 1)[0].strip().lower()
    known = (overrides or {}).get(base) or EXTENSIONS.get(base)
    if known:
        return known
    guessed = (mimetypes.guess_extension(base) or "").lstrip(".").lower()
    return guessed if _SAFE_EXTENSION.match(guessed) and guessed not in set(refused) else "bin"


def too_large(
    label: str,
    size: int,
    limit: int,
    *,
    mime_type: str | None = None,
    target: str = "the accounting system",
) -> ItemRejected:
    """The ``receipt_file_size_limit_exceeded`` rejection of a receipt of ``size`` bytes."""
    kind = f" ({mime_type})" if mime_type else ""
    return ItemRejected(
        ExportJobItemFailureReasonType.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED,
        f"{label}{kind} is {size} bytes, more than the {limit} bytes {target} accepts per "
        "file: replace the receipt in Pleo with a smaller file (compress or split it)",
    )


def check_size(
    files: Iterable[ExportItemFile], limit: int | None, *, target: str = "the accounting system"
) -> None:
    """Reject the item when one of its receipts, as Pleo sized it, is larger than ``limit``."""
    if limit is None:
        return
    for index, file in enumerate(files):
        if file.size > limit:
            raise too_large(f"files[{index}]", file.size, limit, mime_type=file.type, target=target)


def download_failed(label: str, file: ExportItemFile, error: BaseException) -> ItemRejected:
    """The ``receipt_download_failure`` rejection of a receipt Pleo did not hand over."""
    return ItemRejected(
        ExportJobItemFailureReasonType.RECEIPT_DOWNLOAD_FAILURE,
        f"{label} ({file.type}) could not be downloaded from Pleo: {error}; export the "
        "expense again (receipt links expire 24 hours after the export started)",
    )


__all__ = [
    "EXTENSIONS",
    "PLEO_MAX_RECEIPT_BYTES",
    "check_size",
    "download_failed",
    "extension_for",
    "too_large",
]
