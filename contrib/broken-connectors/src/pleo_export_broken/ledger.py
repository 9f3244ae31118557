"""A small, correct connector that books into a JSON-lines ledger file.

It is the common ground of the broken examples: each one in :mod:`pleo_export_broken.broken`
changes exactly one behaviour of :class:`LedgerFileConnector`, so the kit's verdict on it points
at that one defect. The ledger is one JSON object per posted item::

    {"reference": "<accountingEntryId>", "external_id": "ledger.jsonl:3", "draft": false,
     "entries": [{"kind": "journal", "date": "2025-01-15", "narration": "...",
                  "postings": [{"account": "expense:6100", "amount": 12000, "currency": "GBP"}]}]}

The settings carry the target's chart: account codes, vendor identifiers and tax codes it
knows, and the first open day of its books.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.to_thread

from pleo_export import (
    Capability,
    Connector,
    ConnectorManifest,
    ConnectorSettings,
    ExportJob,
    ExternalRecord,
    ItemRejected,
    Limits,
    Posting,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
    TargetTemporarilyUnavailable,
)
from pleo_export import ExportJobItemFailureReasonType as Reason

MAX_ATTACHMENT_BYTES = 3_145_728
"""3 MiB, the receipt limit of many accounting systems."""


class LedgerSettings(ConnectorSettings):
    path: Path
    """The JSON-lines ledger file; its folder must exist."""
    accounts: dict[str, str] = {}
    """Pleo account code -> ledger account, for every account the books know."""
    vendors: dict[str, str] = {}
    """Vendor code, external id or tax number -> the vendor's payable account."""
    tax_codes: list[str] = []
    """Tax codes the books know."""
    closed_before: date | None = None
    """First open day of the books: earlier entries are refused."""
    wallet_account: str = "asset:wallet"
    out_of_pocket_account: str = "liability:out-of-pocket"
    contra_account: str = "asset:bank"
    payable_account: str = "liability:payable"
    vat_input_account: str = "asset:vat-input"
    vat_output_account: str = "liability:vat-output"
    rounding_account: str = "expense:rounding"


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the ledger (a torn last line is ignored)."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def append_row(path: Path, row: dict[str, Any]) -> int:
    """Append ``row`` as one line in one write; return its line number.

    Once ``os.write`` returns, the line survives the process dying (it is in the page cache);
    a real connector would also ``fsync`` to survive power loss.
    """
    count = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
    data = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return count + 1


class LedgerFileConnector(Connector[LedgerSettings]):
    """Books each item as one line of a JSON-lines ledger; correct in every scenario."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="ledger-file",
        display_name="JSON-lines ledger (example)",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.ATTACHMENTS,
                Capability.LOOKUP_BY_REFERENCE,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_ATTACHMENT_BYTES),
        settings_model=LedgerSettings,
    )

    async def open(self) -> None:
        folder = self.settings.path.parent
        if not await anyio.Path(folder).is_dir():
            raise TargetTemporarilyUnavailable(
                f"the ledger folder {folder} cannot be reached (is the share mounted?); "
                "check path in [connector.settings]"
            )

    async def check(self, job: ExportJob) -> None:
        folder = self.settings.path.parent
        if not os.access(folder, os.W_OK):
            raise TargetTemporarilyUnavailable(f"the ledger folder {folder} is not writable")

    # --- prepare -----------------------------------------------------------------------------

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        entries = []
        for entry in plan.entries:
            self._check_period(entry.date)
            postings = tuple(
                ResolvedPosting.from_posting(posting, self._account(posting))
                for posting in entry.postings
            )
            entries.append(
                ResolvedEntry(
                    kind=entry.kind, date=entry.date, narration=entry.narration, postings=postings
                )
            )
        return PreparedEntry(plan=plan, entries=tuple(entries))

    def _check_period(self, day: date) -> None:
        first_open = self.settings.closed_before
        if first_open is not None and day < first_open:
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"date {day.isoformat()} is in a closed period: the books are closed before "
                f"{first_open.isoformat()}; reopen the period or change the date in Pleo",
            )

    def unknown(self, reason: Reason, message: str) -> str:
        """What to do with a value the books do not know: fail the item."""
        raise ItemRejected(reason, message)

    def _account(self, posting: Posting) -> str:
        s = self.settings
        ref = posting.account
        if posting.tax_code is not None and posting.tax_code not in s.tax_codes:
            return self.unknown(
                Reason.TAX_CODE_UNKNOWN,
                f"{posting.field}.tax.code {posting.tax_code} is not a tax code of the ledger: "
                "add it to tax_codes or choose another tax code in Pleo",
            )
        if ref.role is Role.EXPENSE:
            if ref.code is not None and ref.code in s.accounts:
                return s.accounts[ref.code]
            return self.unknown(
                Reason.ACCOUNT_UNKNOWN,
                f"{posting.field}.account.code {ref.code} ({ref.name}) is not an account of "
                "the ledger: add it to accounts or change the category in Pleo",
            )
        if ref.role is Role.ACCOUNTS_PAYABLE:
            if ref.vendor is None:
                return s.payable_account
            for _field, value in ref.vendor.match_keys():
                if value in s.vendors:
                    return s.vendors[value]
            return self.unknown(
                Reason.VENDOR_UNKNOWN,
                f"vendor {ref.vendor.name} ({ref.vendor.code}) matches no vendor of the ledger "
                "by code, external id or tax number: add it to vendors or choose another "
                "vendor in Pleo",
            )
        if ref.code and ref.code in s.accounts:
            return s.accounts[ref.code]  # the wallet or VAT account Pleo named
        defaults = {
            Role.WALLET: s.wallet_account,
            Role.OUT_OF_POCKET: s.out_of_pocket_account,
            Role.CONTRA: s.contra_account,
            Role.TAX_INPUT: s.vat_input_account,
            Role.TAX_OUTPUT: s.vat_output_account,
            Role.ROUNDING: s.rounding_account,
        }
        return defaults[ref.role]

    # --- post and lookup ---------------------------------------------------------------------

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        for index, file in enumerate(prepared.plan.attachments):
            await self.context.fetch_attachment(
                file, label=f"files[{index}]", max_bytes=MAX_ATTACHMENT_BYTES
            )
        row = self.row(prepared)
        number = await anyio.to_thread.run_sync(append_row, self.settings.path, row)
        return self._record(row, number)

    def row(self, prepared: PreparedEntry) -> dict[str, Any]:
        """The ledger line for ``prepared``."""
        return {
            "reference": prepared.plan.reference,
            "exported_at": datetime.now(UTC).isoformat(),
            "draft": False,
            "entries": [
                {
                    "kind": entry.kind.value,
                    "date": entry.date.isoformat(),
                    "narration": entry.narration,
                    "postings": [
                        {"account": p.account, "amount": p.amount, "currency": p.currency}
                        for p in self.postings(entry)
                    ],
                }
                for entry in prepared.entries
            ],
        }

    def postings(self, entry: ResolvedEntry) -> tuple[ResolvedPosting, ...]:
        """The postings written for ``entry``: all of them."""
        return entry.postings

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        # Read the ledger itself: another process may have posted since open().
        for number, row in enumerate(await anyio.to_thread.run_sync(self._lines), start=1):
            if row.get("reference") == reference:
                return self._record(row, number)
        return None

    def _lines(self) -> list[dict[str, Any]]:
        return read_lines(self.settings.path)

    def _record(self, row: dict[str, Any], number: int) -> ExternalRecord:
        return ExternalRecord(
            external_id=f"{self.settings.path.name}:{number}",
            exported_at=datetime.fromisoformat(row["exported_at"]),
        )
