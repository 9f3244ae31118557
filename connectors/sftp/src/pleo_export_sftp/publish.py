"""Publishing a batch: receipts, one CSV file and the manifest, with nothing partial visible.

The order, for one batch:

1. Read the manifest again, confirm or drop a publication an interrupted run left pending,
   remove this connector's stale temporary files (``.pleo-tmp-*``).
2. Leave out entries the manifest already has: a retried batch never produces a second copy.
3. Upload every receipt under a temporary name and rename it to its final name.
4. Upload the CSV file under a temporary name and check its size.
5. Write the manifest with the file as *pending* (its entries, rows and SHA-256).
6. Rename the CSV file to its final name. This is the moment of publication.
7. Write the manifest with the file moved from *pending* to *files*.

A run that stops before step 6 published nothing: the next run drops the pending record and
the temporary files. A run that stops after step 6 published the file: the next run finds
it under its final name with the recorded checksum and completes the manifest, and
``lookup`` reports its entries in the meantime. The file name depends only on the job and the
references in the batch, so publishing the same batch again replaces the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from pleo_export import ItemRejected
from pleo_export_sftp.layout import encode, render_csv, safe_component
from pleo_export_sftp.manifest import (
    AttachmentRecord,
    EntryLocation,
    FileRecord,
    Manifest,
    ManifestError,
    PayableLine,
    PendingPublication,
    parse_manifest,
)
from pleo_export_sftp.settings import SftpSettings
from pleo_export_sftp.storage import TRANSIENT, DeliveryError, FileStat, Problem, Storage

TEMP_PREFIX = ".pleo-tmp-"
"""Every temporary name this connector uses starts with this; a reader ignores dot files."""
TEMP_SUFFIX = ".part"
ATTACHMENT_CONCURRENCY = 4


def temp_name(final: str) -> str:
    """A fresh temporary name for ``final``; it never ends in ``.csv``."""
    return f"{TEMP_PREFIX}{secrets.token_hex(6)}-{final}{TEMP_SUFFIX}"


def batch_file_name(prefix: str, job_id: str, references: Sequence[str]) -> str:
    """``<prefix>-<job id>-<hash>.csv``: the same job and references give the same name."""
    digest = hashlib.sha256("\n".join(sorted(references)).encode("utf-8")).hexdigest()[:12]
    return f"{prefix}-{safe_component(job_id, limit=48)}-{digest}.csv"


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group: a delivery problem first, else the first one."""
    errors: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            errors.append(error)
    for error in errors:
        if isinstance(error, DeliveryError):
            return error
    return errors[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class PlannedAttachment:
    """A receipt to upload: where it comes from in the item and its final file name."""

    index: int
    name: str
    fetch: Callable[[], Awaitable[bytes]]


@dataclass
class BatchEntry:
    """One prepared entry of a batch: its rows (without header) and its receipts."""

    reference: str
    rows: list[list[str]]
    attachments: list[PlannedAttachment] = field(default_factory=list)
    payables: list[PayableLine] = field(default_factory=list)


@dataclass
class PublishResult:
    locations: dict[str, EntryLocation]
    rejected: dict[str, ItemRejected]
    file: str | None
    """The CSV file written by this call (``None`` when every entry was there already)."""


class Publisher:
    """Publishes batches into one directory of a :class:`Storage` and finds entries again."""

    def __init__(self, storage: Storage, settings: SftpSettings, logger: logging.Logger) -> None:
        self.storage = storage
        self.settings = settings
        self.logger = logger
        self._manifest = Manifest()
        self._stamp: FileStat | None = None
        self._loaded = False
        self._confirmed: dict[tuple[str, str], bool] = {}
        self.committing = False
        """True while the rename that publishes a CSV file is under way (its outcome is
        uncertain if the connection breaks then)."""

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    # --- manifest ------------------------------------------------------------------------

    async def load(self) -> Manifest:
        """Read the manifest (an empty one if the directory has none yet)."""
        name = self.settings.manifest_name
        stamp = await self.storage.stat(name)
        data = await self.storage.read(name) if stamp is not None else None
        if data is None:
            await self._refuse_orphaned_files()
            self._manifest, self._stamp = Manifest(), None
        else:
            try:
                self._manifest = parse_manifest(data, self.storage.describe(name))
            except ManifestError as error:
                raise DeliveryError(Problem.CONFIGURATION, str(error)) from error
            self._stamp = stamp
        self._loaded = True
        return self._manifest

    async def _refuse_orphaned_files(self) -> None:
        prefix = f"{self.settings.file_prefix}-"
        published = [
            n
            for n in await self.storage.list_names()
            if n.startswith(prefix) and n.endswith(".csv")
        ]
        if published:
            raise DeliveryError(
                Problem.CONFIGURATION,
                f"{self.storage.describe()} holds {len(published)} CSV files from pleo-export "
                f"(e.g. {sorted(published)[0]}) but no manifest {self.settings.manifest_name}: "
                "without it, delivered entries would be delivered again. Restore the manifest, "
                "or move the files elsewhere if they are no longer needed",
            )

    async def _refresh(self) -> None:
        """Read the manifest again if it changed since it was last read or written."""
        if not self._loaded:
            await self.load()
            return
        stamp = await self.storage.stat(self.settings.manifest_name)
        if stamp != self._stamp:
            await self.load()

    async def _save(self) -> None:
        name = self.settings.manifest_name
        await self._put(name, self._manifest.to_bytes())
        self._stamp = await self.storage.stat(name)

    async def _write_temporary(self, temporary: str, data: bytes) -> None:
        """Write a temporary file; if that fails (a full disk), remove what was written."""
        try:
            await self.storage.write(temporary, data)
        except DeliveryError as error:
            await self._discard(temporary, error)
            raise

    async def _put(self, name: str, data: bytes) -> None:
        """Write ``name`` through a temporary file renamed into place; never leave the
        temporary file behind when either step fails."""
        temporary = temp_name(name)
        await self._write_temporary(temporary, data)
        try:
            await self.storage.replace(temporary, name)
        except DeliveryError as error:
            await self._discard(temporary, error)
            raise

    async def _discard(self, temporary: str, error: DeliveryError) -> None:
        """Remove ``temporary`` after ``error``, unless the connection is gone: then the next
        run's repair removes it (reconnecting here would only compete with the retry)."""
        if error.problem in TRANSIENT:
            return
        with contextlib.suppress(DeliveryError, OSError):
            await self.storage.remove(temporary)

    async def _matches(self, name: str, digest: str) -> bool:
        key = (name, digest)
        if key not in self._confirmed:
            data = await self.storage.read(name)
            self._confirmed[key] = data is not None and sha256(data) == digest
        return self._confirmed[key]

    # --- read-only lookup ----------------------------------------------------------------

    async def lookup(self, reference: str) -> EntryLocation | None:
        """Where ``reference`` was published, or ``None``. Writes nothing."""
        found = self._manifest.entries.get(reference)
        if found is not None:
            return found
        await self._refresh()
        found = self._manifest.entries.get(reference)
        if found is not None:
            return found
        for name, publication in self._manifest.pending.items():
            location = publication.entries.get(reference)
            if location is not None and await self._matches(name, publication.file.sha256):
                return location
        return None

    async def locations(self) -> dict[str, EntryLocation]:
        """Where every published entry is, by reference. Writes nothing."""
        await self._refresh()
        return dict(self._manifest.entries)

    async def payables(self) -> dict[str, list[PayableLine]]:
        """The payable rows of every published entry, by reference. Writes nothing."""
        await self._refresh()
        return {
            reference: location.payables
            for reference, location in self._manifest.entries.items()
            if location.payables
        }

    # --- repair --------------------------------------------------------------------------

    async def repair(self) -> None:
        """Settle what an interrupted run left: pending publications and temporary files."""
        await self.load()
        names = set(await self.storage.list_names())
        changed = False
        for name, publication in list(self._manifest.pending.items()):
            if name in names and await self._matches(name, publication.file.sha256):
                self._manifest.commit(name)
                self.logger.warning(
                    "completed the manifest for %s, published by an interrupted run",
                    name,
                    extra={"event": "sftp.pending_committed", "file": name},
                )
            else:
                del self._manifest.pending[name]
                self.logger.warning(
                    "dropped the pending record of %s: an interrupted run never published it",
                    name,
                    extra={"event": "sftp.pending_dropped", "file": name},
                )
            changed = True
        stale = sorted(n for n in names if n.startswith(TEMP_PREFIX))
        for name in stale:
            await self.storage.remove(name)
        if stale:
            self.logger.info(
                "removed %d temporary files of an interrupted upload",
                len(stale),
                extra={"event": "sftp.temporary_removed", "files": stale},
            )
        if changed:
            await self._save()

    async def probe(self) -> None:
        """Write and remove a small temporary file: proves the directory takes files."""
        name = temp_name("probe")
        await self.storage.write(name, b"pleo-export write check\n")
        await self.storage.remove(name)

    # --- publish -------------------------------------------------------------------------

    async def publish(self, job_id: str, entries: Sequence[BatchEntry]) -> PublishResult:
        """Publish ``entries`` as one CSV file (see the module docstring for the order)."""
        self.committing = False
        await self.repair()
        locations: dict[str, EntryLocation] = {}
        todo: list[BatchEntry] = []
        seen: set[str] = set()
        for entry in entries:
            known = self._manifest.entries.get(entry.reference)
            if known is not None:
                locations[entry.reference] = known
            elif entry.reference not in seen:
                seen.add(entry.reference)
                todo.append(entry)
        if todo and len(todo) < len(entries):
            self.logger.info(
                "%d entries of the batch are published already; writing the other %d",
                len(entries) - len(todo),
                len(todo),
                extra={"event": "sftp.batch_partly_published", "job_id": job_id},
            )
        rejected: dict[str, ItemRejected] = {}
        uploaded = await self._upload_attachments(todo, rejected)
        todo = [e for e in todo if e.reference not in rejected]
        if not todo:
            return PublishResult(locations, rejected, None)

        name = batch_file_name(self.settings.file_prefix, job_id, [e.reference for e in todo])
        now = datetime.now(UTC).replace(microsecond=0)
        first_row = 2 if self.settings.header_row else 1
        rows: list[list[str]] = []
        new: dict[str, EntryLocation] = {}
        for entry in todo:
            start = first_row + len(rows)
            rows.extend(entry.rows)
            new[entry.reference] = EntryLocation(
                file=name,
                first_row=start,
                last_row=first_row + len(rows) - 1,
                exported_at=now,
                payables=entry.payables,
            )
        data = encode(render_csv(rows, self.settings, header=True), self.settings)
        temporary = temp_name(name)
        await self._write_temporary(temporary, data)
        stat = await self.storage.stat(temporary)
        if stat is None or stat.size != len(data):
            await self.storage.remove(temporary)
            raise DeliveryError(
                Problem.FAILURE,
                f"the upload of {self.storage.describe(name)} is incomplete on the server "
                f"({stat.size if stat else 'no'} of {len(data)} bytes); nothing was published",
            )
        attachments = {a: uploaded[a] for e in todo for a in (p.name for p in e.attachments)}
        record = FileRecord(
            sha256=sha256(data),
            bytes=len(data),
            rows=len(rows),
            job_id=job_id,
            entries=len(todo),
            published_at=now,
            attachments=sorted(attachments),
        )
        self._manifest.pending[name] = PendingPublication(
            file=record, entries=new, attachments=attachments
        )
        await self._save()
        self.committing = True
        await self.storage.replace(temporary, name)
        self.committing = False
        self._confirmed[(name, record.sha256)] = True
        self.logger.info(
            "published %s: %d entries, %d rows, %d receipts",
            name,
            len(todo),
            len(rows),
            len(attachments),
            extra={
                "event": "sftp.published",
                "file": name,
                "job_id": job_id,
                "entries": len(todo),
                "rows": len(rows),
                "bytes": len(data),
            },
        )
        self._manifest.commit(name)
        try:
            await self._save()
        except DeliveryError as error:
            # Published all the same: the pending record names the file and its checksum, so
            # lookups find the entries and the next publish completes the manifest.
            self.logger.warning(
                "%s is published but the manifest could not be completed (%s); the next run "
                "completes it",
                name,
                error.message,
                extra={"event": "sftp.manifest_deferred", "file": name},
            )
            await self.storage.reset()
        locations.update(new)
        return PublishResult(locations, rejected, name)

    async def _upload_attachments(
        self, entries: Sequence[BatchEntry], rejected: dict[str, ItemRejected]
    ) -> dict[str, AttachmentRecord]:
        uploaded: dict[str, AttachmentRecord] = {}
        limiter = anyio.CapacityLimiter(ATTACHMENT_CONCURRENCY)

        async def one(entry: BatchEntry, attachment: PlannedAttachment) -> None:
            async with limiter:
                if entry.reference in rejected:
                    return
                try:
                    content = await attachment.fetch()
                except ItemRejected as error:
                    rejected.setdefault(entry.reference, error)
                    return
                await self._put(attachment.name, content)
                uploaded[attachment.name] = AttachmentRecord(
                    sha256=sha256(content), bytes=len(content), entry_id=entry.reference
                )

        try:
            async with anyio.create_task_group() as group:
                for entry in entries:
                    for attachment in entry.attachments:
                        group.start_soon(one, entry, attachment)
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        return uploaded

    # --- verification --------------------------------------------------------------------

    async def verify(self) -> list[str]:
        """Problems in the directory: missing or resized files, pending records, leftovers."""
        await self.load()
        problems: list[str] = []
        names = set(await self.storage.list_names())
        for name, record in sorted(self._manifest.files.items()):
            stat = await self.storage.stat(name) if name in names else None
            if stat is None:
                problems.append(f"{self.storage.describe(name)} is in the manifest but missing")
            elif stat.size != record.bytes:
                problems.append(
                    f"{self.storage.describe(name)} has {stat.size} bytes, the manifest says "
                    f"{record.bytes}: it was changed after publication"
                )
        for name in sorted(self._manifest.attachments):
            if name not in names:
                problems.append(f"receipt {self.storage.describe(name)} is missing")
        for name in sorted(self._manifest.pending):
            problems.append(f"{name} is still pending: run the export again to settle it")
        problems += [
            f"temporary file {n} is left over" for n in sorted(names) if n.startswith(TEMP_PREFIX)
        ]
        return problems
