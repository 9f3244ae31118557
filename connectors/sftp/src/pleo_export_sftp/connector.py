"""The SFTP connector: Pleo export items as CSV journal-line files on an SFTP server.

``prepare`` maps roles to accounts (see :mod:`pleo_export_sftp.accounts`) and renders the rows
of one item; ``post_batch`` publishes a batch of items as one CSV file with its receipts (see
:mod:`pleo_export_sftp.publish`); ``find_existing`` answers from the manifest in the delivery
directory.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio.to_thread
import asyncssh

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    BookedEntry,
    BookedInvoice,
    Capability,
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorManifest,
    ExportItemFile,
    ExportJob,
    ExternalRecord,
    ItemRejected,
    JobRejected,
    Limits,
    OutcomeUncertain,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
    TargetTemporarilyUnavailable,
    VendorDraft,
    settle_payment,
    settlement_request,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.attachments import PLEO_MAX_RECEIPT_BYTES
from pleo_export.attachments import extension_for as _extension_for
from pleo_export_sftp import masterdata
from pleo_export_sftp.accounts import account_for, payable_account, tax_code_for
from pleo_export_sftp.booked import read_booked
from pleo_export_sftp.layout import item_rows, render_csv, safe_component, unencodable_cells
from pleo_export_sftp.manifest import EntryLocation, PayableLine
from pleo_export_sftp.masterdata import ListedVendors
from pleo_export_sftp.publish import BatchEntry, PlannedAttachment, Publisher, PublishResult
from pleo_export_sftp.settings import SftpSettings
from pleo_export_sftp.storage import (
    TRANSIENT,
    DeliveryError,
    LocalStorage,
    Problem,
    SftpStorage,
    Storage,
    match_known_hosts,
)

MAX_ATTACHMENT_BYTES = PLEO_MAX_RECEIPT_BYTES
"""Pleo's largest receipt (30 MB per file)."""
DEFAULT_BATCH_SIZE = 1000

T = TypeVar("T")


def extension_for(mime_type: str) -> str:
    """A safe file extension for a receipt's MIME type (``bin`` when unknown).

    A receipt is never published as ``.csv``: readers pick up ``*.csv`` files."""
    return _extension_for(mime_type, overrides={"text/csv": "csv.txt"}, refused=("csv",))


@dataclass(frozen=True)
class _Attachment:
    index: int
    file: ExportItemFile
    name: str


@dataclass(frozen=True)
class _Payload:
    """What ``prepare`` hands to ``post_batch``: the rows and the receipts to upload."""

    reference: str
    job_id: str
    rows: list[list[str]]
    attachments: tuple[_Attachment, ...]
    payables: list[PayableLine]


def as_connector_error(error: DeliveryError, *, uncertain: bool = False) -> ConnectorError:
    """The connector error (and so the reason type Pleo gets) for a delivery problem."""
    problem, message = error.problem, error.message
    if uncertain and problem in TRANSIENT:
        return OutcomeUncertain(
            f"{message}; the file may or may not have been published (it is looked up in the "
            "manifest before anything is sent again)"
        )
    if problem in (Problem.UNREACHABLE, Problem.CONNECTION_LOST, Problem.FAILURE):
        return TargetTemporarilyUnavailable(message)
    if problem is Problem.TIMEOUT:
        return TargetTemporarilyUnavailable(message, reason_type=Reason.ACCOUNTING_SYSTEM_TIMEOUT)
    if problem is Problem.AUTHENTICATION:
        return JobRejected(JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE, message)
    if problem is Problem.MISSING_DIRECTORY:
        return JobRejected(JobReason.MISSING_CONFIGURATION, message)
    if problem is Problem.PERMISSION_DENIED:
        return JobRejected(JobReason.AUTHORIZATION_FAILURE, message)
    if problem is Problem.DISK_FULL:
        return JobRejected(JobReason.INTEGRATION_UNUSABLE, message)
    return JobRejected(JobReason.INVALID_CONFIGURATION, message)  # HOST_KEY, CONFIGURATION


class SftpConnector(Connector[SftpSettings]):
    """Publishes Pleo export items as CSV journal-line files on SFTP or in a local directory.

    One CSV file per batch of items (``batch_size``; ``"job"`` for one per job), receipts
    beside it, and a manifest with checksums that maps every accountingEntryId to its file
    and rows. Nothing is visible under its final name before it is complete.
    """

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="sftp",
        display_name="CSV files over SFTP",
        docs_url="https://github.com/pleo-export/pleo-export/blob/main/docs/connectors/sftp.md",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.ATTACHMENTS,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.BATCH_POSTING,
                Capability.READ_BOOKED,
                Capability.READ_VENDORS,
                Capability.READ_TAX_CODES,
                Capability.READ_DIMENSIONS,
                Capability.CREATE_VENDORS,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_ATTACHMENT_BYTES, max_batch_size=DEFAULT_BATCH_SIZE),
        settings_model=SftpSettings,
    )

    def __init__(self, settings: SftpSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.storage: Storage = (
            LocalStorage(settings.local_dir)
            if settings.local_dir is not None
            else SftpStorage(settings)
        )
        self.publisher = Publisher(self.storage, settings, context.logger)
        self._prepared_payables: dict[str, list[PayableLine]] = {}
        """Payable rows of the items prepared in this run, published or not yet."""
        self._listed: tuple[str, ListedVendors | None] | None = None
        """``vendors_file`` as read for a job: (job id, its vendors; ``None`` when the file is
        not set or not there). Read in ``check`` (or by the job's first ``prepare``)."""
        self._listed_lock = anyio.Lock()

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Check the local side of the settings; the server is first contacted in ``check``."""
        s = self.settings
        if s.host is None:
            return
        await anyio.to_thread.run_sync(self._check_local_files)

    def _check_local_files(self) -> None:
        s = self.settings
        assert s.known_hosts is not None and s.host is not None
        try:
            known = asyncssh.read_known_hosts(str(s.known_hosts))
        except (OSError, ValueError) as error:
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"known_hosts {s.known_hosts} cannot be read ({error}): create it with the "
                "server's host key (ssh-keyscan prints it; compare the fingerprint with the one "
                "the server's administrator gives you)",
            ) from error
        address = s.host if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", s.host) else ""
        host_keys, ca_keys, *_ = match_known_hosts(known, s.host, address, s.port)
        if not host_keys and not ca_keys:
            pattern = s.host if s.port == 22 else f"[{s.host}]:{s.port}"
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"known_hosts {s.known_hosts} has no key for {pattern}: add the server's host "
                f"key (`ssh-keyscan -p {s.port} {s.host}`), after checking its fingerprint with "
                "the server's administrator; pleo-export never trusts an unknown server",
            )
        if s.private_key is not None:
            passphrase = (
                s.private_key_passphrase.get_secret_value()
                if s.private_key_passphrase is not None
                else None
            )
            try:
                asyncssh.read_private_key(str(s.private_key), passphrase)
            except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
                raise JobRejected(
                    JobReason.INVALID_CONFIGURATION,
                    f"the private key {s.private_key} (setting private_key) cannot be read "
                    f"({error}): check the path, the file's permissions and "
                    "private_key_passphrase",
                ) from error

    async def close(self) -> None:
        await self.storage.close()

    # --- master data (see pleo_export_sftp.masterdata) -----------------------------------

    async def _master_data(self, read: Callable[[Storage, SftpSettings], Awaitable[T]]) -> T:
        try:
            await self.storage.connect()
            return await read(self.storage, self.settings)
        except DeliveryError as error:
            raise as_connector_error(error) from error

    async def list_vendors(self) -> list[AccountingVendor]:
        """The rows of ``vendors_file``."""
        return await self._master_data(masterdata.list_vendors)

    async def list_tax_codes(self) -> list[AccountingTaxCode]:
        """The rows of ``tax_codes_file``."""
        return await self._master_data(masterdata.list_tax_codes)

    async def list_dimensions(self) -> list[AccountingDimension]:
        """The dimensions of ``dimensions_file``."""
        return await self._master_data(masterdata.list_dimensions)

    async def create_vendor(self, draft: VendorDraft) -> AccountingVendor:
        """The vendor in ``vendors_file`` with the draft's tax number or name; otherwise a
        request in ``vendor_requests_file`` and ``ItemRejected`` (the receiving system creates
        its vendors itself)."""
        return await self._master_data(
            lambda storage, settings: masterdata.create_vendor(storage, settings, draft)
        )

    async def check(self, job: ExportJob) -> None:
        """Connect, check the directory and settle what an interrupted run left there.

        In a dry run only reads: the directory and the manifest.
        """
        try:
            await self.storage.connect()
            await self.storage.check_directory()
            if self.context.dry_run:
                await self.publisher.load()
            else:
                await self.publisher.repair()
                await self.publisher.probe()
        except DeliveryError as error:
            raise as_connector_error(error) from error
        await self._listed_vendors(job.id, refresh=True)
        self.context.logger.debug(
            "delivery directory ready",
            extra={
                "event": "sftp.ready",
                "job_id": job.id,
                "destination": self.settings.destination,
            },
        )

    async def verify(self) -> list[str]:
        """Files missing or changed since publication, pending records, temporary leftovers."""
        try:
            return await self.publisher.verify()
        except DeliveryError as error:
            return [error.message]

    async def _listed_vendors(self, job_id: str, *, refresh: bool = False) -> ListedVendors | None:
        """``vendors_file`` as read for the job ``job_id``: read once per job (in ``check``,
        or by the first ``prepare`` of a job that was not checked), never once per item."""
        async with self._listed_lock:
            if not refresh and self._listed is not None and self._listed[0] == job_id:
                return self._listed[1]
            self._listed = None
            if self.settings.vendors_file is None:
                self._listed = (job_id, None)
                return None
            try:
                await self.storage.connect()
                listed = await masterdata.read_listed_vendors(self.storage, self.settings)
            except DeliveryError as error:
                raise as_connector_error(error) from error
            if listed is None:
                self.context.logger.warning(
                    "%s (setting vendors_file) does not exist: vendors are matched against "
                    "vendor_accounts only",
                    self.storage.describe(self.settings.vendors_file),
                    extra={"event": "sftp.vendors_file_missing", "job_id": job_id},
                )
            self._listed = (job_id, listed)
            return listed

    def batch_size(self) -> int:
        return self.settings.engine_batch_size

    @classmethod
    def scaffold(cls, directory: Path, chart: Any, currency: str) -> dict[str, Any]:
        """A local delivery directory ``directory/outbox`` that knows the sandbox chart.

        The chart's line accounts become ``accounts`` (so items on other accounts fail with
        ``account_unknown``), its tax codes ``tax_codes``, and each vendor gets a payable
        sub-account ``2100:<code>`` (other vendors fail with ``vendor_unknown``). The chart's
        vendors, tax codes and tag groups are written as the master-data CSV files.
        """
        (directory / "outbox").mkdir(parents=True, exist_ok=True)
        files = masterdata.write_chart_files(directory / "outbox", chart)
        accounts = [account.code for account in chart.expense_accounts]
        vendors = {vendor.code: f"2100:{vendor.code}" for vendor in chart.vendors}
        return {
            "local_dir": "outbox",
            "accounts": accounts,
            "tax_codes": [tax.code for tax in chart.tax_codes],
            "wallet_account": chart.wallet_account.code,
            "accounts_payable_account": "2100",
            "unknown_vendor": "fail",
            "vendor_accounts": vendors,
            **files,
        }

    @classmethod
    def starter(cls, directory: Path, currency: str) -> dict[str, Any]:
        """A local delivery folder ``directory/outbox`` and hledger rules that read its files.

        ``outbox/`` takes the CSV files, receipts and manifest (switch to a server with
        ``host``, ``username``, ``known_hosts`` and ``remote_dir``); ``keys/`` is for the SSH
        key and ``known_hosts``; ``pleo-export.rules`` is the hledger CSV rules file for the
        default layout (regenerate it with :func:`pleo_export_sftp.hledger_rules` after
        changing the columns).
        """
        from pleo_export_sftp.layout import hledger_rules

        rules = directory / "pleo-export.rules"
        if rules.exists():
            raise FileExistsError(f"{rules} exists; move it away or choose another directory")
        (directory / "outbox").mkdir(parents=True, exist_ok=True)
        (directory / "keys").mkdir(mode=0o700, exist_ok=True)
        settings = SftpSettings(local_dir=directory / "outbox")
        rules.write_text(hledger_rules(settings), encoding="utf-8")
        return {"local_dir": "outbox"}

    def classify_error(self, error: BaseException) -> ConnectorError | None:
        if isinstance(error, DeliveryError):
            return as_connector_error(error)
        return None

    # --- prepare --------------------------------------------------------------------------

    async def _settle(self, plan: PostingPlan) -> PostingPlan:
        """An invoice payment at the rate its invoice was booked at (pleo_export.settlement).

        The invoice is what the manifest (and the items prepared before in this run) hold on
        the vendor's payable account under the invoice number; when there is nothing, the
        payment is booked as it comes.
        """
        request = settlement_request(plan)
        if request is None:
            return plan
        entry = plan.entries[request.entry_index]
        payable = entry.postings[request.posting_index]
        listed = await self._listed_vendors(plan.job.id)
        account = account_for(self.settings, payable, listed)
        try:
            published = await self.publisher.payables()
        except DeliveryError as error:
            raise as_connector_error(error) from error
        lines = [line for lines in published.values() for line in lines]
        lines += [
            line
            for reference, prepared in self._prepared_payables.items()
            if reference not in published
            for line in prepared
        ]
        amounts: dict[str, int] = {}
        supplier: dict[str, int] = {}
        for line in lines:
            if line.account == account and line.invoice_number == request.invoice_number:
                amounts[line.currency] = amounts.get(line.currency, 0) + line.amount
                supplier[line.supplier_currency] = (
                    supplier.get(line.supplier_currency, 0) + line.supplier_amount
                )
        amounts = {c: v for c, v in amounts.items() if v}
        supplier = {c: v for c, v in supplier.items() if v}
        if set(amounts) - {payable.currency} or set(supplier) - {request.supplier_currency}:
            return plan  # the invoice is held in other currencies: nothing to compare
        if not amounts:
            self.context.logger.info(
                "item %s pays invoice %s, which nothing delivered holds on %s: booked at the "
                "payment's own rate",
                plan.reference,
                request.invoice_number,
                account,
            )
            return plan
        booked = BookedInvoice(
            amount=-amounts[payable.currency],
            supplier_amount=-supplier.get(request.supplier_currency, 0),
            supplier_currency=request.supplier_currency,
        )
        return settle_payment(plan, booked)

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        """Resolve the accounts and render the item's rows; writes nothing."""
        plan = await self._settle(plan)
        listed = await self._listed_vendors(plan.job.id)
        entries: list[ResolvedEntry] = []
        names: dict[tuple[int, int], str | None] = {}
        codes: dict[tuple[int, int], str | None] = {}
        vendor_code: str | None = None
        for e_index, entry in enumerate(plan.entries):
            self._check_period(entry.date)
            postings = []
            for p_index, posting in enumerate(entry.postings):
                if posting.account.role is Role.ACCOUNTS_PAYABLE:
                    account, listed_code = payable_account(self.settings, posting, listed)
                    if posting.account.vendor == plan.vendor:
                        vendor_code = listed_code or vendor_code
                else:
                    account = account_for(self.settings, posting, listed)
                resolved = ResolvedPosting.from_posting(posting, account)
                tax_code = tax_code_for(self.settings, posting)
                if tax_code != posting.tax_code:
                    resolved = resolved.model_copy(update={"tax_code": tax_code})
                postings.append(resolved)
                names[(e_index, p_index)] = posting.account.name
                codes[(e_index, p_index)] = posting.account.code
            entries.append(
                ResolvedEntry(
                    kind=entry.kind,
                    date=entry.date,
                    narration=entry.narration,
                    postings=tuple(postings),
                )
            )
        attachments = self._attachments(plan)
        rows = item_rows(
            plan,
            entries,
            self.settings,
            [a.name for a in attachments],
            names,
            codes,
            vendor_code=vendor_code,
        )
        if self.settings.unencodable == "fail":
            bad = unencodable_cells(rows, self.settings)
            if bad:
                raise ItemRejected(
                    Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                    f"the columns {', '.join(bad)} hold characters that the file encoding "
                    f'{self.settings.encoding} cannot represent: set encoding = "utf-8" or '
                    'unencodable = "replace" in [connector.settings], or change the text in Pleo',
                )
        payables = _payables(plan, entries)
        self._prepared_payables[plan.reference] = payables
        payload = _Payload(
            reference=plan.reference,
            job_id=plan.job.id,
            rows=rows,
            attachments=tuple(attachments),
            payables=payables,
        )
        return PreparedEntry(
            plan=plan,
            entries=tuple(entries),
            rendered=render_csv(rows, self.settings, header=True),
            payload=payload,
        )

    def _attachments(self, plan: PostingPlan) -> list[_Attachment]:
        if not self.settings.attachments:
            return []
        stem = f"{self.settings.file_prefix}-{safe_component(plan.reference, limit=64)}"
        return [
            _Attachment(index, file, f"{stem}-{index + 1}.{extension_for(file.type)}")
            for index, file in enumerate(plan.attachments)
        ]

    def _check_period(self, day: date) -> None:
        closed_before = self.settings.closed_before
        if closed_before is not None and day < closed_before:
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"date {day.isoformat()} is in a closed accounting period: the books are closed "
                f"for days before {closed_before.isoformat()} (setting closed_before); move "
                "closed_before back to reopen the period, or correct the date in Pleo",
            )

    # --- post -----------------------------------------------------------------------------

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        """Publish ``entries`` as one CSV file with their receipts; answer per entry."""
        if not entries:
            return []
        payloads = [self._payload(prepared) for prepared in entries]
        job_ids = {p.job_id for p in payloads}
        if len(job_ids) != 1:
            raise ValueError(f"a batch must hold entries of one job, got {sorted(job_ids)}")
        batch = [
            BatchEntry(
                reference=p.reference,
                rows=p.rows,
                attachments=[
                    PlannedAttachment(a.index, a.name, self._fetcher(a)) for a in p.attachments
                ],
                payables=p.payables,
            )
            for p in payloads
        ]
        result = await self._publish(payloads[0].job_id, batch)
        answers: list[ExternalRecord | ItemRejected] = []
        for payload in payloads:
            rejected = result.rejected.get(payload.reference)
            if rejected is not None:
                self._prepared_payables.pop(payload.reference, None)  # never delivered
                answers.append(rejected)
            else:
                answers.append(self._record(result.locations[payload.reference]))
        return answers

    async def _publish(self, job_id: str, batch: list[BatchEntry]) -> PublishResult:
        for attempt in (1, 2):
            try:
                return await self.publisher.publish(job_id, batch)
            except DeliveryError as error:
                uncertain = self.publisher.committing
                if error.problem is Problem.CONNECTION_LOST and not uncertain and attempt == 1:
                    # Nothing was published; a connection that broke (often one the server
                    # closed while idle) is opened again once before the engine retries.
                    self.context.logger.warning(
                        "connection lost before publishing; reconnecting: %s",
                        error.message,
                        extra={"event": "sftp.reconnect", "job_id": job_id},
                    )
                    await self.storage.reset()
                    continue
                raise as_connector_error(error, uncertain=uncertain) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _payload(self, prepared: PreparedEntry) -> _Payload:
        payload = prepared.payload
        if not isinstance(payload, _Payload):
            raise TypeError(
                "post_batch() takes PreparedEntry objects from this connector's prepare()"
            )
        return payload

    def _fetcher(self, attachment: _Attachment) -> Callable[[], Awaitable[bytes]]:
        async def fetch() -> bytes:
            return await self.context.fetch_attachment(
                attachment.file,
                label=f"files[{attachment.index}]",
                max_bytes=self.manifest.limits.max_attachment_bytes,
            )

        return fetch

    def _record(self, location: EntryLocation) -> ExternalRecord:
        return ExternalRecord(
            external_id=location.external_id,
            external_url=self.storage.url(location.file),
            exported_at=location.exported_at,
        )

    # --- lookup ---------------------------------------------------------------------------

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        """The file and rows of ``reference`` from the manifest; reads only."""
        try:
            location = await self.publisher.lookup(reference)
        except DeliveryError as error:
            raise as_connector_error(error) from error
        return self._record(location) if location is not None else None

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        """The rows published under each reference, read back from the delivered files as
        they are now (see :mod:`pleo_export_sftp.booked`)."""
        try:
            return await read_booked(self.publisher, self.storage, self.settings, references)
        except DeliveryError as error:
            raise as_connector_error(error) from error


def _payables(plan: PostingPlan, entries: Sequence[ResolvedEntry]) -> list[PayableLine]:
    """The rows on payable accounts that name the item's invoice number (for later payments)."""
    info = plan.item.additional_information.invoice_information
    number = info.invoice_number.strip() if info is not None and info.invoice_number else ""
    if not number:
        return []
    return [
        PayableLine(
            account=p.account,
            invoice_number=number,
            amount=p.amount,
            currency=p.currency,
            supplier_amount=p.amount if p.supplier_amount is None else p.supplier_amount,
            supplier_currency=p.supplier_currency or p.currency,
        )
        for entry in entries
        for p in entry.postings
        if p.role is Role.ACCOUNTS_PAYABLE
    ]
