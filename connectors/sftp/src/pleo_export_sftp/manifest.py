"""The manifest: which entry is in which published file, with checksums.

It is a JSON document in the delivery directory, replaced atomically (written under a
temporary name, then renamed over the old one). Readers use ``files`` (every published CSV
file with its SHA-256, size and rows) and ``attachments``. ``entries`` maps each Pleo
accountingEntryId to its file and rows, so a retried or re-exported entry is found and never
written twice. ``pending`` holds a publication that was prepared but not confirmed yet: a file
listed there is either complete under its final name with the recorded checksum (the next run
confirms it) or absent (the next run drops the record).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_FORMAT = "pleo-export-sftp-manifest"
MANIFEST_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PayableLine(_Model):
    """A row of an entry on a vendor's payable account that names an invoice number.

    Kept so that a later payment of the invoice finds what the invoice was booked at (see
    ``pleo_export.settlement``). Amounts in minor units, debit positive.
    """

    account: str
    invoice_number: str
    amount: int
    currency: str
    supplier_amount: int
    supplier_currency: str


class EntryLocation(_Model):
    """Where one Pleo entry is: its file and its first and last row (header = row 1)."""

    file: str
    first_row: int
    last_row: int
    exported_at: datetime
    payables: list[PayableLine] = Field(default_factory=list)
    """The entry's rows on payable accounts that name an invoice number."""

    @property
    def external_id(self) -> str:
        return f"{self.file}:{self.first_row}-{self.last_row}"


class FileRecord(_Model):
    """A published CSV file."""

    sha256: str
    bytes: int
    rows: int
    """Data rows (without the header)."""
    job_id: str
    entries: int
    published_at: datetime
    attachments: list[str] = Field(default_factory=list)


class AttachmentRecord(_Model):
    sha256: str
    bytes: int
    entry_id: str


class PendingPublication(_Model):
    """A CSV file about to be renamed into place (see the module docstring)."""

    file: FileRecord
    entries: dict[str, EntryLocation]
    attachments: dict[str, AttachmentRecord] = Field(default_factory=dict)


class Manifest(_Model):
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION
    updated_at: datetime | None = None
    files: dict[str, FileRecord] = Field(default_factory=dict)
    attachments: dict[str, AttachmentRecord] = Field(default_factory=dict)
    entries: dict[str, EntryLocation] = Field(default_factory=dict)
    pending: dict[str, PendingPublication] = Field(default_factory=dict)

    def commit(self, name: str) -> None:
        """Move the pending publication ``name`` into ``files``/``entries``/``attachments``."""
        publication = self.pending.pop(name)
        self.files[name] = publication.file
        self.attachments.update(publication.attachments)
        for reference, location in publication.entries.items():
            self.entries.setdefault(reference, location)

    def to_bytes(self) -> bytes:
        self.updated_at = datetime.now(UTC).replace(microsecond=0)
        data = self.model_dump(mode="json")
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")


class ManifestError(ValueError):
    """The manifest exists but is not one this connector can read."""


def parse_manifest(data: bytes, name: str) -> Manifest:
    """Read a manifest; raise :class:`ManifestError` naming the problem and what to do."""
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(
            f"the manifest {name} is not valid JSON ({error}): restore it from a backup, or "
            "move it away only if the directory holds no files from pleo-export (otherwise "
            "already delivered entries would be delivered again)"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
        raise ManifestError(
            f"{name} is not a pleo-export-sftp manifest (format is not {MANIFEST_FORMAT!r}): "
            "choose another manifest_name or directory"
        )
    if raw.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"the manifest {name} has version {raw.get('version')!r}; this connector reads "
            f"version {MANIFEST_VERSION}: upgrade pleo-export-sftp"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as error:
        raise ManifestError(
            f"the manifest {name} is damaged ({error.error_count()} problems, first: "
            f"{error.errors()[0]['loc']}: {error.errors()[0]['msg']}): restore it from a backup"
        ) from None
