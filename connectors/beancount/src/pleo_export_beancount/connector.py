"""The beancount connector: books Pleo export items into a plain-text ledger."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio.to_thread

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    BookedEntry,
    BookedInvoice,
    Capability,
    Connector,
    ConnectorContext,
    ConnectorManifest,
    ExportItemFile,
    ExportJob,
    ExportJobFailureReasonType,
    ExternalRecord,
    ItemRejected,
    JobRejected,
    Limits,
    Posting,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
    TargetTemporarilyUnavailable,
    VendorDraft,
    decimals,
    format_timestamp,
    settle_payment,
    settlement_request,
    to_decimal,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.attachments import PLEO_MAX_RECEIPT_BYTES, extension_for, too_large
from pleo_export_beancount import masterdata
from pleo_export_beancount.booked import read_booked
from pleo_export_beancount.chart import LoadedLedger, PayableIndex, load_ledger
from pleo_export_beancount.documents import remove_documents, write_document
from pleo_export_beancount.output import OutputFile, disk_full, out_of_space
from pleo_export_beancount.render import (
    DocumentLine,
    RenderedPosting,
    TransactionText,
    invoice_number,
    link_for,
    reference_token,
    render_block,
    transaction_meta,
)
from pleo_export_beancount.resolve import ROLE_SETTINGS, Resolver
from pleo_export_beancount.settings import BeancountSettings
from pleo_export_beancount.starter import StarterChart, starter_from_chart, write_starter_ledger

MAX_ATTACHMENT_BYTES = PLEO_MAX_RECEIPT_BYTES
"""Pleo's largest receipt (30 MB per file)."""

_MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class _Attachment:
    index: int
    file: ExportItemFile
    path: Path


@dataclass(frozen=True)
class _Payload:
    """What ``prepare`` hands to ``post`` besides the rendered text."""

    reference: str
    attachments: tuple[_Attachment, ...]
    first_transaction_line: int
    expected_directives: int
    exported_at: datetime
    payables: tuple[tuple[str, str, Posting], ...] = ()
    """(account, invoice number, posting) of the transactions that carry an invoice number."""


def parse_check(text: str, reference: str, expected: int) -> list[str]:
    """Problems found when parsing ``text`` alone with beancount's parser (empty if none)."""
    from beancount.core import data
    from beancount.parser import parser

    entries, errors, _ = parser.parse_string(text, report_filename="<pleo-export block>")
    problems = [str(getattr(error, "message", error)) for error in errors]
    if len(entries) != expected:
        problems.append(f"expected {expected} directives, the parser found {len(entries)}")
    for entry in entries:
        if isinstance(entry, data.Transaction) and entry.meta.get("pleo-entry-id") != reference:
            problems.append(f"pleo-entry-id reads back as {entry.meta.get('pleo-entry-id')!r}")
    return problems


class BeancountConnector(Connector[BeancountSettings]):
    """Appends one block of beancount directives per Pleo export item to the output file.

    ``open`` cuts a torn trailing block off the output file, loads the ledger and indexes the
    entries pleo-export wrote (metadata ``pleo-entry-id``); ``prepare`` resolves accounts and
    vendors from the ledger's ``open`` directives and renders the exact text ``post`` appends;
    ``post`` stores receipts under ``documents_dir`` and appends the block in one write.
    """

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="beancount",
        display_name="Beancount",
        docs_url="https://github.com/pleo-export/pleo-export/blob/main/connectors/beancount/README.md",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.ATTACHMENTS,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.READ_VENDORS,
                Capability.READ_TAX_CODES,
                Capability.READ_DIMENSIONS,
                Capability.CREATE_VENDORS,
                Capability.READ_BOOKED,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_ATTACHMENT_BYTES),
        settings_model=BeancountSettings,
    )

    def __init__(self, settings: BeancountSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._ledger: LoadedLedger | None = None
        self._output = OutputFile(settings.output_path, context.logger)
        self._records: dict[str, ExternalRecord] = {}
        self._payables = PayableIndex()

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Repair the output file, load the ledger and index what was posted before."""
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        ledger = self.settings.ledger
        if ledger.is_dir():
            raise JobRejected(
                ExportJobFailureReasonType.INVALID_CONFIGURATION,
                f"the ledger {ledger} (setting ledger) is a directory, not a file: set ledger to "
                "the main .beancount file (for example "
                f"{ledger / 'main.beancount'}), or create one with `pleo-export init beancount`",
            )
        if not ledger.is_file():
            raise JobRejected(
                ExportJobFailureReasonType.MISSING_CONFIGURATION,
                f"the ledger file {ledger} (setting ledger) does not exist: create one with "
                "`pleo-export init beancount` (or write_starter_ledger) or correct the path",
            )
        output = self.settings.output_path
        try:
            if not output.exists():
                # The ledger includes the output file; beancount refuses a missing include.
                output.parent.mkdir(parents=True, exist_ok=True)
                output.touch()
                self.context.logger.info("created the empty output file %s", output)
            self._output.recover()
        except OSError as error:
            if out_of_space(error):
                raise disk_full(f"the output file {output}", error) from error
            raise JobRejected(
                ExportJobFailureReasonType.INVALID_CONFIGURATION,
                f"cannot use the output file {output} (setting output): {error.strerror}",
            ) from error
        loaded = load_ledger(ledger)
        if loaded.errors:
            listed = loaded.errors[:_MAX_LISTED_ERRORS]
            more = len(loaded.errors) - len(listed)
            raise JobRejected(
                ExportJobFailureReasonType.INVALID_CONFIGURATION,
                f"the ledger {ledger} does not load cleanly ({len(loaded.errors)} "
                "errors); fix them (bean-check) and export again:\n  "
                + "\n  ".join(listed)
                + (f"\n  ... and {more} more" if more else ""),
            )
        self._ledger = loaded
        self._payables = loaded.payables
        self._records = {}
        for reference, posted in loaded.posted.items():
            exported_at = posted.exported_at or datetime.fromtimestamp(
                Path(posted.filename).stat().st_mtime, UTC
            )
            self._records[reference] = ExternalRecord(
                external_id=link_for(reference),
                external_url=f"{Path(posted.filename).absolute().as_uri()}#L{posted.lineno}",
                exported_at=exported_at,
            )

    # --- master data (see pleo_export_beancount.masterdata) --------------------------------

    async def list_vendors(self) -> list[AccountingVendor]:
        """Accounts whose ``open`` carries vendor metadata; closed ones are archived."""
        return masterdata.list_vendors(self._require_ledger(), self._now().date())

    async def list_tax_codes(self) -> list[AccountingTaxCode]:
        """The ledger's ``custom "pleo-tax-code"`` directives."""
        return masterdata.list_tax_codes(self._require_ledger())

    async def list_dimensions(self) -> list[AccountingDimension]:
        """The ledger's ``custom "pleo-dimension"`` and ``"pleo-dimension-value"`` directives."""
        return masterdata.list_dimensions(self._require_ledger())

    async def create_vendor(self, draft: VendorDraft) -> AccountingVendor:
        """Open a payable account for ``draft`` in the output file, unless the ledger has one
        for it already (same Pleo vendor, tax number or name): then answer that one."""
        self._require_ledger()
        return await anyio.to_thread.run_sync(self._create_vendor_sync, draft)

    def _create_vendor_sync(self, draft: VendorDraft) -> AccountingVendor:
        vendor, self._ledger, created = masterdata.create_vendor(
            self._output, self.settings, draft, self._now().date()
        )
        if created:
            self.context.logger.info(
                "opened %s for vendor %r (code %s)", vendor.external_id, draft.name, vendor.code
            )
        return vendor

    async def verify(self) -> list[str]:
        """Load the whole ledger with beancount and return its errors (empty when clean)."""
        loaded = await anyio.to_thread.run_sync(load_ledger, self.settings.ledger)
        return list(loaded.errors)

    @classmethod
    def scaffold(cls, directory: Path, chart: Any, currency: str) -> dict[str, Any]:
        """A starter ledger in ``directory/ledger`` opening every account of ``chart``.

        ``chart`` is the sandbox's :data:`pleo_export_sandbox.DEMO_CHART`: its expense, wallet
        and VAT accounts are opened with ``pleo-code`` metadata and each vendor gets a payable
        account with its identifiers, so sandbox items book without any mapping.
        """
        starter = starter_from_chart(chart, currency)
        write_starter_ledger(directory / "ledger", starter, overwrite=True)
        return {"ledger": "ledger/main.beancount"}

    @classmethod
    def starter(cls, directory: Path, currency: str) -> dict[str, Any]:
        """A starter ledger ``directory/books/main.beancount`` for a real company.

        It sets the operating currency, includes the (empty) output file and opens every role
        account with the default names, so pre-export validation passes; the company's own
        expense, VAT and vendor accounts are then added with ``pleo-code`` metadata.
        """
        write_starter_ledger(directory / "books", StarterChart(currency=currency))
        return {"ledger": "books/main.beancount"}

    def _require_ledger(self) -> LoadedLedger:
        if self._ledger is None:
            raise RuntimeError("BeancountConnector.open() must be called first")
        return self._ledger

    async def check(self, job: ExportJob) -> None:
        """Reject the job if the output is not included or a role account is not open."""
        await anyio.to_thread.run_sync(self._check_sync, job)

    def _check_sync(self, job: ExportJob) -> None:
        ledger = self._require_ledger()
        output = self.settings.output_path.resolve()
        if output not in ledger.includes:
            try:
                shown = os.path.relpath(output, self.settings.ledger.resolve().parent)
            except ValueError:  # another drive on Windows
                shown = str(output)
            raise JobRejected(
                ExportJobFailureReasonType.MISSING_CONFIGURATION,
                f"the ledger {self.settings.ledger} does not include the output file {output}"
                f', so what pleo-export books would be invisible: add the line `include "'
                f'{Path(shown).as_posix()}"` to {self.settings.ledger}',
            )
        today = datetime.now(UTC).date()
        missing: list[str] = []
        for role, setting in ROLE_SETTINGS.items():
            name: str | None = getattr(self.settings, setting)
            if name is None:  # an optional role: an item that needs it fails on its own
                continue
            account = ledger.chart.get(name)
            if account is None:
                missing.append(f"{setting} = {name} is not opened: add `2000-01-01 open {name}`")
            elif account.closed is not None and account.closed < today:
                missing.append(
                    f"{setting} = {name} ({role.value}) was closed on "
                    f"{account.closed.isoformat()} at {account.where()}: remove the close "
                    "directive or choose another account"
                )
        if missing:
            raise JobRejected(
                ExportJobFailureReasonType.MISSING_CONFIGURATION,
                f"accounts the connector books to are missing from the ledger "
                f"{self.settings.ledger}: " + "; ".join(missing),
            )
        if not os.access(self.settings.output_path, os.W_OK):
            raise JobRejected(
                ExportJobFailureReasonType.INVALID_CONFIGURATION,
                f"the output file {self.settings.output_path} is not writable: fix its permissions",
            )
        # Accounts payable is supported, so jobs with or without vendorBasedBookkeeping run;
        # vendors are resolved per item in prepare().
        self.context.logger.debug(
            "job %s: vendor based bookkeeping %s", job.id, job.vendor_based_bookkeeping
        )

    # --- prepare --------------------------------------------------------------------------

    def _booking_date(self, day: date) -> tuple[date, date | None]:
        """The date to book on and, when it was moved out of a closed period, the original."""
        closed_before = self.settings.closed_before
        if closed_before is None or day >= closed_before:
            return day, None
        if self.settings.closed_period == "first_open_date":
            return closed_before, day
        raise ItemRejected(
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
            f"date {day.isoformat()} is in a closed accounting period (entries before "
            f"{closed_before.isoformat()} are closed by the setting closed_before; "
            'closed_period = "fail"): move closed_before back to reopen the period, or set '
            'closed_period = "first_open_date" to book such items on the first open date',
        )

    def _documents(
        self, plan: PostingPlan, day: date, account: str
    ) -> tuple[list[DocumentLine], list[_Attachment]]:
        limit = self.manifest.limits.max_attachment_bytes
        documents: list[DocumentLine] = []
        attachments: list[_Attachment] = []
        output_dir = self.settings.output_path.absolute().parent
        for index, file in enumerate(plan.attachments):
            if limit is not None and file.size > limit:
                raise too_large(f"files[{index}]", file.size, limit, mime_type=file.type)
            name = f"{reference_token(plan.reference)}-{index + 1}.{extension_for(file.type)}"
            path = self.settings.documents_path.absolute() / f"{day.year:04d}" / name
            try:
                shown = Path(os.path.relpath(path, output_dir)).as_posix()
            except ValueError:  # another drive on Windows
                shown = path.as_posix()
            documents.append(
                DocumentLine(
                    date=day,
                    account=account,
                    path=shown,
                    meta=(("pleo-entry-id", plan.reference), ("pleo-file-type", file.type)),
                )
            )
            attachments.append(_Attachment(index=index, file=file, path=path))
        return documents, attachments

    def _settle(self, plan: PostingPlan, resolver: Resolver) -> PostingPlan:
        """An invoice payment at the rate its invoice was booked at (see pleo_export.settlement).

        The invoice is found by its number among what the ledger holds on the vendor's payable
        account; a payment whose invoice is not there is booked as it comes.
        """
        request = settlement_request(plan)
        if request is None:
            return plan
        entry = plan.entries[request.entry_index]
        payable = entry.postings[request.posting_index]
        account = resolver.resolve(payable, self._booking_date(entry.date)[0])
        found = self._payables.open_amounts(
            account, request.invoice_number, payable.currency, request.supplier_currency
        )
        if found is None:
            self.context.logger.info(
                "item %s pays invoice %s, which the ledger does not hold on %s in %s: booked "
                "at the payment's own rate",
                plan.reference,
                request.invoice_number,
                account,
                request.supplier_currency,
            )
            return plan
        amount, supplier = found
        booked = BookedInvoice(
            amount=_minor(amount, payable.currency),
            supplier_amount=_minor(supplier, request.supplier_currency),
            supplier_currency=request.supplier_currency,
        )
        return settle_payment(plan, booked)

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        """Resolve every posting to a ledger account and render the block; write nothing."""
        ledger = self._require_ledger()
        resolver = Resolver(self.settings, ledger.chart, self.settings.ledger, self.context.logger)
        plan = self._settle(plan, resolver)
        exported_at = self._now()
        payee = plan.vendor.name if plan.vendor is not None else None
        if not payee and plan.item.supplier is not None:
            payee = plan.item.supplier.name
        transactions: list[TransactionText] = []
        resolved: list[ResolvedEntry] = []
        for entry in plan.entries:
            day, original = self._booking_date(entry.date)
            if original is not None:
                self.context.logger.warning(
                    "item %s: %s is before closed_before %s; booking it on %s "
                    '(closed_period = "first_open_date"), original date kept as '
                    "pleo-original-date",
                    plan.reference,
                    original.isoformat(),
                    day.isoformat(),
                    day.isoformat(),
                )
            postings = tuple(
                RenderedPosting(account=resolver.resolve(p, day), posting=p) for p in entry.postings
            )
            meta = transaction_meta(plan, entry, original)
            if not transactions:
                meta.append(("pleo-exported-at", format_timestamp(exported_at)))
            transactions.append(
                TransactionText(
                    entry=entry,
                    date=day,
                    flag=self.settings.beancount_flag,
                    payee=payee,
                    link=link_for(plan.reference),
                    meta=tuple(meta),
                    postings=postings,
                )
            )
            resolved.append(
                ResolvedEntry(
                    kind=entry.kind,
                    date=day,
                    narration=entry.narration,
                    postings=tuple(
                        ResolvedPosting.from_posting(r.posting, r.account) for r in postings
                    ),
                )
            )
        payables = tuple(
            (r.account, number, r.posting)
            for txn in transactions
            if (number := invoice_number(plan, txn.entry)) is not None
            for r in txn.postings
        )
        documents, attachments = self._documents(
            plan, transactions[0].date, self._document_account(transactions[0])
        )
        block = render_block(plan.reference, documents, transactions)
        expected = len(documents) + len(transactions)
        problems = parse_check(block.text, plan.reference, expected)
        if problems:
            raise ItemRejected(
                Reason.UNEXPECTED_FAILURE,
                "the beancount text rendered for this item does not parse ("
                + "; ".join(problems)
                + "): this is a bug in pleo-export-beancount; please report it",
            )
        return PreparedEntry(
            plan=plan,
            entries=tuple(resolved),
            rendered=block.text,
            payload=_Payload(
                reference=plan.reference,
                attachments=tuple(attachments),
                first_transaction_line=block.first_transaction_line,
                expected_directives=expected,
                exported_at=exported_at,
                payables=payables,
            ),
        )

    @staticmethod
    def _document_account(first: TransactionText) -> str:
        """Receipts hang off the vendor's payable account, else the (first) expense account."""
        for role in (Role.ACCOUNTS_PAYABLE, Role.EXPENSE):
            for p in first.postings:
                if p.posting.account.role is role:
                    return p.account
        return first.postings[0].account

    def _now(self) -> datetime:
        """The export timestamp (UTC, whole seconds); a seam for tests."""
        return datetime.now(UTC).replace(microsecond=0)

    # --- post and lookup ------------------------------------------------------------------

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        """Store the receipts, then append the rendered block in one write and fsync it."""
        payload = prepared.payload
        if not isinstance(payload, _Payload) or prepared.rendered is None:
            raise TypeError("post() takes a PreparedEntry returned by this connector's prepare()")
        existing = await self.find_existing(payload.reference)
        if existing is not None:
            self.context.logger.warning(
                "item %s is already in the ledger (%s): not appending it again",
                payload.reference,
                existing.external_url,
            )
            return existing
        problems = parse_check(prepared.rendered, payload.reference, payload.expected_directives)
        if problems:
            raise ItemRejected(
                Reason.UNEXPECTED_FAILURE,
                "refusing to append text that does not parse as beancount ("
                + "; ".join(problems)
                + ")",
            )
        stored: list[Path] = []  # receipts this call wrote, removed if nothing is appended
        try:
            for attachment in payload.attachments:
                content = await self._download(attachment)
                try:
                    if await anyio.to_thread.run_sync(write_document, attachment.path, content):
                        stored.append(attachment.path)
                except OSError as error:
                    if out_of_space(error):
                        raise disk_full(
                            f"files[{attachment.index}] as {attachment.path}", error
                        ) from error
                    raise ItemRejected(
                        Reason.RECEIPT_UPLOAD_FAILURE,
                        f"files[{attachment.index}] could not be stored as {attachment.path}: "
                        f"{error.strerror or error}; check documents_dir and free disk space",
                    ) from error
            start = await anyio.to_thread.run_sync(self._output.append, prepared.rendered)
        except (ItemRejected, JobRejected, TargetTemporarilyUnavailable):
            # Nothing was appended: the receipts would only take space (a retry rewrites them).
            await anyio.to_thread.run_sync(remove_documents, stored)
            raise
        line = start + payload.first_transaction_line - 1
        record = ExternalRecord(
            external_id=link_for(payload.reference),
            external_url=f"{self.settings.output_path.absolute().as_uri()}#L{line}",
            exported_at=payload.exported_at,
        )
        self._records[payload.reference] = record
        for account, number, posting in payload.payables:
            self._payables.add(
                account,
                number,
                to_decimal(posting.amount, posting.currency),
                posting.currency,
                _supplier_decimal(posting),
                posting.supplier_currency if _supplier_decimal(posting) is not None else None,
            )
        return record

    async def _download(self, attachment: _Attachment) -> bytes:
        return await self.context.fetch_attachment(
            attachment.file,
            label=f"files[{attachment.index}]",
            max_bytes=self.manifest.limits.max_attachment_bytes,
        )

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        """What the ledger holds now under each reference (``pleo-entry-id``), read with
        beancount from the whole ledger; see :mod:`pleo_export_beancount.booked`."""
        return await anyio.to_thread.run_sync(read_booked, self.settings.ledger, list(references))

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        """The entry posted for ``reference``, from the ledger index or the output file."""
        record = self._records.get(reference)
        if record is not None:
            return record
        await anyio.to_thread.run_sync(self._output.refresh)
        block = self._output.blocks.get(reference_token(reference))
        if block is None:
            return None
        return ExternalRecord(
            external_id=link_for(reference),
            external_url=f"{self.settings.output_path.absolute().as_uri()}#L{block.line}",
            exported_at=block.exported_at or datetime.now(UTC).replace(microsecond=0),
        )


def _minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(decimals(currency)).to_integral_value())


def _supplier_decimal(posting: Posting) -> Decimal | None:
    """The posting's supplier amount as ``pleo-supplier-amount`` renders it, if it does."""
    if (
        posting.supplier_currency is None
        or posting.supplier_amount is None
        or posting.supplier_currency == posting.currency
        or posting.account.role in (Role.ROUNDING, Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS)
    ):
        return None
    return to_decimal(posting.supplier_amount, posting.supplier_currency)
