"""The Tryton connector: books Pleo export items into a Tryton company over JSON-RPC.

* Journal bookkeeping: one ``account.move`` per item in the configured journal, one line per
  posting (split lines, VAT with tax lines, the counter account of the item type), posted or
  left in draft.
* Accounts payable: a supplier invoice (``account.invoice`` of type ``in``; a credit note
  when money comes back) against the vendor's party, and a payment move that settles it,
  reconciled with the invoice. An invoice and its payment may come in different jobs; the
  later one settles the earlier when the vendor and the invoice number match.
* Every record's description starts with the marker ``pleo:<accountingEntryId>#<part>/<parts>``
  followed by the reconciliation id: ``find_existing`` finds items by it, and ``post``
  finishes an item whose writing was interrupted instead of writing it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar

from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorManifest,
    ItemRejected,
    JobRejected,
    Limits,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export.ledger import (
    EntryKind,
    ExternalRecord,
    LedgerEntry,
    Posting,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export.money import decimals
from pleo_export.pleo.models import (
    BookkeepingMethod,
    ExportItemType,
    ExportJob,
)
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as Reason
from pleo_export.settlement import (
    BookedInvoice,
    SettlementRequest,
    settle_payment,
    settlement_request,
)
from pleo_export_tryton.books import Account, Books, Company, Party, Period, Tax, to_amount
from pleo_export_tryton.errors import classify_foreign, to_connector_error
from pleo_export_tryton.rpc import (
    TrytonClient,
    TrytonError,
    TrytonFault,
    TrytonRefused,
    TrytonWarning,
)
from pleo_export_tryton.settings import TrytonSettings
from pleo_export_tryton.specs import (
    Attachment,
    InvoiceLineSpec,
    InvoiceSpec,
    InvoiceTaxSpec,
    MoveLineSpec,
    MoveSpec,
    Payload,
    RecordSpec,
    TaxLineSpec,
    like_prefix,
    marker,
    parse_marker,
    supplier_total,
    supplier_total_comment,
)

MAX_ATTACHMENT_BYTES = 30 * 1024 * 1024
"""Pleo's largest receipt; Tryton itself accepts far larger requests from a logged-in user."""

VENDOR_UNKNOWN_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)
"""The message Pleo's accounts-payable guide asks for when vendor matching fails."""

_COUNTER_ROLES = frozenset({Role.WALLET, Role.OUT_OF_POCKET, Role.CONTRA})
_LOOKUP_MEMORY = 1000
"""Lookups kept for the posts that follow them (more than one batch's worth)."""
_ATTACHMENT_CHUNK_BYTES = 16 * 1024 * 1024
"""Receipts sent to Tryton in one request, at most (one receipt may be larger alone)."""
_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/webp": "webp",
    "image/tiff": "tiff",
    "text/plain": "txt",
    "text/csv": "csv",
}


def extension_for(mime_type: str) -> str:
    base = mime_type.split(";", 1)[0].strip().lower()
    if base in _EXTENSIONS:
        return _EXTENSIONS[base]
    guessed = (mimetypes.guess_extension(base) or ".bin").lstrip(".")
    return guessed if guessed.isalnum() and len(guessed) <= 8 else "bin"


@dataclass
class _Found:
    """A record written earlier for an item, found by its marker."""

    model: str
    id: int
    part: int
    parts: int
    state: str
    created: dt.datetime | None

    @property
    def posted(self) -> bool:
        return self.state in ("posted", "paid")


@dataclass
class _Work:
    """One item of a ``post_batch`` call, while it is written."""

    prepared: PreparedEntry
    payload: Payload
    files: list[tuple[Attachment, bytes]] = field(default_factory=list)
    records: dict[int, _Found] = field(default_factory=dict)
    """Part number -> the record that holds it (found, or created now)."""
    created: set[int] = field(default_factory=set)
    """Parts created by this call (a refused post deletes them again)."""
    error: ItemRejected | None = None


def _item_error(error: TrytonError, doing: str) -> ItemRejected:
    mapped = to_connector_error(error, doing)
    if isinstance(mapped, ItemRejected):
        return mapped
    return ItemRejected(Reason.UNEXPECTED_FAILURE, mapped.message)


def _chunks(
    pending: list[tuple[_Work, dict[str, Any]]], limit: int
) -> list[list[tuple[_Work, dict[str, Any]]]]:
    """``pending`` cut into requests of at most ``limit`` bytes of receipts (one at least)."""
    chunks: list[list[tuple[_Work, dict[str, Any]]]] = []
    size = 0
    for entry in pending:
        length = len(entry[1]["data"])
        if not chunks or size + length > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += length
    return chunks


@dataclass(frozen=True)
class _Resolved:
    posting: Posting
    account: Account
    party: int | None
    tax: Tax | None


class TrytonConnector(Connector[TrytonSettings]):
    """Books each Pleo export item as Tryton moves and supplier invoices (see the module)."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="tryton",
        display_name="Tryton",
        docs_url="https://github.com/pleo-export/pleo-export/blob/main/docs/connectors/tryton.md",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.ATTACHMENTS,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.DRAFT_POSTING,
                Capability.MULTI_CURRENCY,
                Capability.BATCH_POSTING,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_ATTACHMENT_BYTES, max_batch_size=25),
        settings_model=TrytonSettings,
    )

    def __init__(self, settings: TrytonSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._client: TrytonClient | None = None
        self._books: Books | None = None
        self._looked_up: OrderedDict[str, tuple[dict[int, _Found], bool]] = OrderedDict()
        """Recent lookups by reference, for the ``post_batch`` that follows them."""
        self._prepared_invoices: dict[tuple[int, int, str], dict[str, tuple[int, int, str]]] = {}
        """Invoices prepared in this run, by (party, payable account, invoice number) and
        reference: their payable amount and supplier amount (debit positive) and currency. A
        payment in the same batch settles against them before they are in Tryton."""
        self.log: logging.Logger = context.logger

    # --- lifecycle ------------------------------------------------------------------------

    def make_client(self) -> TrytonClient:
        """The JSON-RPC client (a seam for tests)."""
        s = self.settings
        return TrytonClient(s.url, s.database, s.user, s.password, timeout=s.timeout)

    async def open(self) -> None:
        """Log in and find the company; ``JobRejected`` when that is impossible."""
        client = self.make_client()
        self._client = client
        try:
            await client.login()
            preferences = await client.call("model.res.user.get_preferences", True, {})
            company = await self._company(client, preferences or {})
        except TrytonError as error:
            mapped = to_connector_error(error, f"logging in to {self.settings.url}")
            raise self._job_level(mapped) from error
        client.context = {
            "company": company.id,
            "companies": [company.id],
            "language": "en",
        }
        self._books = Books(client, company)
        self.log.info(
            "logged in to Tryton %s, database %s, company %s (%s)",
            self.settings.url,
            self.settings.database,
            company.name,
            company.currency,
            extra={"tryton_company": company.id, "tryton_database": self.settings.database},
        )

    @staticmethod
    def _job_level(error: ConnectorError) -> ConnectorError:
        if isinstance(error, ItemRejected):
            return JobRejected(JobReason.INVALID_CONFIGURATION, error.message)
        return error

    async def _company(self, client: TrytonClient, preferences: dict[str, Any]) -> Company:
        wanted = self.settings.company
        allowed = [int(c) for c in preferences.get("companies") or []]
        domain: list[Any]
        if wanted is None:
            current = preferences.get("company")
            if not current:
                raise JobRejected(
                    JobReason.MISSING_CONFIGURATION,
                    f"Tryton user {self.settings.user!r} has no current company: set company "
                    "in [connector.settings] to the company's name or id",
                )
            domain = [("id", "=", int(current))]
        elif wanted.isdigit():
            domain = [("id", "=", int(wanted))]
        else:
            domain = [("party.name", "=", wanted)]
        rows = await client.search_read(
            "company.company",
            domain,
            ["rec_name", "currency", "currency.code", "currency.digits"],
            context={"companies": allowed} if allowed else None,
        )
        if not rows:
            raise JobRejected(
                JobReason.INVALID_CONFIGURATION,
                f"company {wanted!r} (setting company) does not exist in Tryton database "
                f"{self.settings.database!r}, or user {self.settings.user!r} may not use it: "
                "give the company's exact name or id",
            )
        row = rows[0]
        if allowed and row["id"] not in allowed:
            raise JobRejected(
                JobReason.AUTHORIZATION_FAILURE,
                f"user {self.settings.user!r} may not book into company {row['rec_name']!r}: "
                "add the company to the user's companies in Tryton",
            )
        currency = row.get("currency.") or {}
        code = str(currency.get("code") or "")
        return Company(
            id=row["id"],
            name=row["rec_name"],
            currency_id=int(row["currency"]),
            currency=code,
            digits=int(currency.get("digits") or decimals(code)),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _require(self) -> tuple[TrytonClient, Books]:
        if self._client is None or self._books is None:
            raise RuntimeError("TrytonConnector.open() must succeed first")
        return self._client, self._books

    def classify_error(self, error: BaseException) -> ConnectorError | None:
        return classify_foreign(error)

    # --- pre-export validation ------------------------------------------------------------

    async def check(self, job: ExportJob) -> None:
        """The journals, the accounts named in the settings and an open fiscal year exist."""
        try:
            await self._check(job)
        except TrytonError as error:
            raise self._job_level(to_connector_error(error, "checking the Tryton setup")) from error

    async def _check(self, job: ExportJob) -> None:
        _, books = self._require()
        s = self.settings
        company = books.company
        problems: list[str] = []
        if not await books.open_fiscal_years():
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"Tryton company {company.name} has no open fiscal year: create the fiscal "
                "year of the expenses (Financial > Configuration > Fiscal Years) with its "
                "periods, then export again",
            )
        journals: list[tuple[str, str, set[str] | None]] = [
            ("journal", s.journal, {"general", "situation"})
        ]
        if job.vendor_based_bookkeeping:
            journals += [
                ("invoice_journal", s.invoice_journal, {"expense"}),
                ("payment_journal", s.payment_journal, None),
            ]
        for setting, code, types in journals:
            journal = await books.journal(code)
            if journal is None:
                problems.append(
                    f"journal {code} (setting {setting}) does not exist: create it in Tryton "
                    "or set it to the code of an existing journal"
                )
            elif types is not None and journal.type not in types:
                problems.append(
                    f"journal {code} (setting {setting}) is of type {journal.type}; use a "
                    f"journal of type {' or '.join(sorted(types))}"
                )
        accounts: list[tuple[str, str]] = [
            ("out_of_pocket_account", s.out_of_pocket_account),
            ("contra_account", s.contra_account),
            ("rounding_account", s.rounding_account),
        ]
        for setting in ("wallet_account", "payable_account", "vat_input_account"):
            value = getattr(s, setting)
            if value:
                accounts.append((setting, value))
        if s.vat_output_account:
            accounts.append(("vat_output_account", s.vat_output_account))
        for item_type, roles in s.counter_accounts.items():
            for role, code in roles.items():
                accounts.append((f"counter_accounts.{item_type.value}.{role}", code))
        for setting, code in accounts:
            account = await books.account(code)
            if account is None:
                problems.append(
                    f"account {code} (setting {setting}) does not exist in company "
                    f"{company.name}: create it in Tryton or correct the setting"
                )
            elif not account.postable:
                problems.append(
                    f"account {account.label} (setting {setting}) is closed or has no type, "
                    "so nothing can be booked on it: reopen it or choose another account"
                )
        if s.payable_account is None and await books.default_payable() is None:
            problems.append(
                "there is no payable account for items without a vendor: set payable_account, "
                "or a default payable account in Tryton's accounting configuration"
            )
        for pleo_code, name in s.tax_map.items():
            if await books.tax(name) is None:
                problems.append(
                    f"tax {name!r} (tax_map[{pleo_code!r}]) does not exist in company "
                    f"{company.name}: create it or correct tax_map"
                )
        if problems:
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"the Tryton setup for company {company.name} is incomplete: "
                + "; ".join(problems),
            )

    # --- prepare --------------------------------------------------------------------------

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        """Resolve accounts, taxes, the vendor's party and the period; write nothing."""
        try:
            return await self._prepare(plan)
        except TrytonError as error:
            raise to_connector_error(error, "reading the Tryton chart of accounts") from error

    async def _prepare(self, plan: PostingPlan) -> PreparedEntry:
        _, books = self._require()
        company = books.company
        currency = plan.item.amount.in_wallet_currency.currency
        if currency != company.currency:
            raise ItemRejected(
                Reason.INVALID_CONFIGURATION,
                f"amount.inWalletCurrency is in {currency} but Tryton company {company.name} "
                f"keeps its books in {company.currency}: export this Pleo company into a "
                f"Tryton company whose currency is {currency}",
            )
        party = await self._party(plan)
        plan = await self._settle_at_invoice_rate(plan, party)
        parts_count = len(plan.entries)
        parts: list[RecordSpec] = []
        resolved_entries: list[ResolvedEntry] = []
        payable_account: int | None = None
        for number, entry in enumerate(plan.entries, start=1):
            day, original, period = await self._booking_date(entry.date)
            resolved = [
                await self._resolve(plan, posting, party)
                for posting in entry.postings
                if posting.amount != 0
            ]
            for r in resolved:
                if r.posting.account.role is Role.ACCOUNTS_PAYABLE and payable_account is None:
                    payable_account = r.account.id
            description = self._description(plan, entry, number, parts_count, original, period)
            if entry.kind in (EntryKind.AP_INVOICE, EntryKind.AP_CREDIT_NOTE):
                parts.append(
                    await self._invoice_spec(plan, entry, resolved, party, day, description)
                )
                parts[-1] = _renumber(parts[-1], number, parts_count)
            else:
                parts.append(
                    await self._move_spec(plan, entry, resolved, number, parts_count, day, period)
                )
                parts[-1] = _with_description(parts[-1], description)
            resolved_entries.append(
                ResolvedEntry(
                    kind=entry.kind,
                    date=day,
                    narration=entry.narration,
                    postings=tuple(
                        ResolvedPosting.from_posting(r.posting, r.account.code) for r in resolved
                    ),
                )
            )
        self._remember_invoice(plan, party, payable_account)
        payload = replace(self._payload(plan, parts, party), payable_account=payable_account)
        return PreparedEntry(
            plan=plan,
            entries=tuple(resolved_entries),
            payload=payload,
            rendered=self._render(plan, parts, resolved_entries),
        )

    async def _party(self, plan: PostingPlan) -> Party | None:
        _, books = self._require()
        if plan.vendor is None:
            return None
        party = await books.vendor_party(plan.vendor)
        if party is None and plan.method is BookkeepingMethod.ACCOUNTS_PAYABLE:
            raise ItemRejected(Reason.VENDOR_UNKNOWN, self._vendor_unknown(plan))
        if party is not None:
            self.log.debug(
                "item %s: vendor %s is Tryton party %s (matched on %s)",
                plan.reference,
                plan.vendor.name,
                party.id,
                party.matched_on,
                extra={"accounting_entry_id": plan.reference, "tryton_party": party.id},
            )
        return party

    def _vendor_unknown(self, plan: PostingPlan) -> str:
        vendor = plan.vendor
        tried = (
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vendor.match_keys())
            if vendor
            else ""
        )
        name = vendor.name if vendor else "(none)"
        return (
            f"{VENDOR_UNKNOWN_MESSAGE} No Tryton party matches vendor {name} ({tried}): give "
            "the party the vendor's code as its code, or its external id or tax number as an "
            "identifier"
        )

    async def _booking_date(self, day: dt.date) -> tuple[dt.date, dt.date | None, Period]:
        """The day to book on, the original day when it moved, and the period."""
        _, books = self._require()
        company = books.company
        period = await books.period_for(day)
        if period is None:
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"date {day.isoformat()}: no fiscal year of Tryton company {company.name} "
                "covers it: create the fiscal year and its periods in Tryton, then export again",
            )
        if period.open:
            return day, None, period
        state = (
            f"period {period.name} is {period.state}"
            if period.state != "open"
            else f"fiscal year {period.fiscal_year} is {period.fiscal_year_state}"
        )
        if self.settings.closed_period == "fail":
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"date {day.isoformat()} is in a closed accounting period in Tryton ({state}; "
                'closed_period = "fail"): reopen the period in Tryton, or set closed_period = '
                '"first_open_date" to book such items on the first day of the next open period',
            )
        later = await books.first_open_period_after(day)
        if later is None:
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"date {day.isoformat()} is in a closed accounting period in Tryton ({state}) "
                'and no later period is open (closed_period = "first_open_date"): open the next '
                "period in Tryton",
            )
        self.log.warning(
            "%s is in closed period %s; booking on %s, the first open date "
            '(closed_period = "first_open_date")',
            day.isoformat(),
            period.name,
            later.start.isoformat(),
            extra={"original_date": day.isoformat(), "booking_date": later.start.isoformat()},
        )
        return later.start, day, later

    def _description(
        self,
        plan: PostingPlan,
        entry: LedgerEntry,
        part: int,
        parts: int,
        original: dt.date | None,
        period: Period,
    ) -> str:
        text = f"{marker(plan.reference, part, parts)} {plan.reconciliation_id} {entry.narration}"
        if original is not None:
            text += (
                f" [Pleo date {original.isoformat()} is in a closed period; booked on the "
                f"first open date of {period.name}]"
            )
        return text

    async def _resolve(self, plan: PostingPlan, posting: Posting, party: Party | None) -> _Resolved:
        _, books = self._require()
        s = self.settings
        company = books.company
        ref = posting.account
        role = ref.role
        field = posting.field or "amount"
        item_type = _item_type(plan)
        tax = (
            await self._tax(posting)
            if role in (Role.EXPENSE, Role.TAX_INPUT, Role.TAX_OUTPUT)
            else None
        )

        async def by_code(code: str, where: str) -> Account:
            tryton_code = s.account_code(code)
            account = await books.account(tryton_code)
            shown = code if tryton_code == code else f"{code} (Tryton {tryton_code})"
            if account is None:
                raise ItemRejected(
                    Reason.ACCOUNT_UNKNOWN,
                    f"{where} {shown}{_named(ref.name)} does not exist in Tryton company "
                    f"{company.name}: create the account in Tryton, map it in account_map, or "
                    "change the category in Pleo",
                )
            if not account.postable:
                raise ItemRejected(
                    Reason.ACCOUNT_UNKNOWN,
                    f"{where} {shown} is account {account.label} in Tryton, which is closed or "
                    "a view account: open it in Tryton or change the category in Pleo",
                )
            return account

        async def by_setting(code: str, setting: str) -> Account:
            account = await books.account(code)
            if account is None or not account.postable:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"account {code} (setting {setting}) does not exist or cannot be booked on in "
                    f"Tryton company {company.name}: correct the setting",
                )
            return account

        account: Account
        by_role: dict[str, str] = {}
        if item_type is not None:
            by_role = {str(k): v for k, v in s.counter_accounts.get(item_type, {}).items()}
        override = by_role.get(role.value)
        if role is Role.EXPENSE:
            if not ref.code:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.account has no code: set a category with an account code on the "
                    "expense in Pleo",
                )
            account = await by_code(ref.code, f"{field}.account.code")
        elif role in _COUNTER_ROLES and override:
            account = await by_setting(override, f"counter_accounts.{item_type}.{role.value}")
        elif role is Role.WALLET:
            if ref.code:
                account = await by_code(ref.code, "contraAccount.code")
            elif s.wallet_account:
                account = await by_setting(s.wallet_account, "wallet_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    "the item has no contraAccount and the wallet_account setting is empty: map "
                    "the Pleo wallet account in Pleo's accounting settings or set wallet_account",
                )
        elif role is Role.OUT_OF_POCKET:
            account = await by_setting(s.out_of_pocket_account, "out_of_pocket_account")
        elif role is Role.CONTRA:
            account = await by_setting(s.contra_account, "contra_account")
        elif role is Role.ROUNDING:
            account = await by_setting(s.rounding_account, "rounding_account")
        elif role is Role.TAX_INPUT:
            if ref.code:
                account = await by_code(ref.code, f"{field}.tax.ingoingTaxAccount")
            elif tax is not None and (tax.invoice_account or tax.credit_note_account):
                tax_account = (
                    (tax.credit_note_account if posting.amount < 0 else tax.invoice_account)
                    or tax.invoice_account
                    or tax.credit_note_account
                )
                found = await books.account_by_id(int(tax_account or 0))
                if found is None:
                    raise ItemRejected(
                        Reason.MISSING_CONFIGURATION,
                        f"Tryton tax {tax.name} names no usable account: set its invoice account",
                    )
                account = found
            elif s.vat_input_account:
                account = await by_setting(s.vat_input_account, "vat_input_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.tax has no ingoingTaxAccount and no Tryton tax gives one: map the "
                    "VAT accounts of the tax code in Pleo, or set vat_input_account",
                )
        elif role is Role.TAX_OUTPUT:
            if ref.code:
                account = await by_code(ref.code, f"{field}.tax.outgoingTaxAccount")
            elif s.vat_output_account:
                account = await by_setting(s.vat_output_account, "vat_output_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.tax is reverse charge but has no outgoingTaxAccount: map it on "
                    "the tax code in Pleo, or set vat_output_account",
                )
        elif role in (Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS):
            account = await self._exchange_account(posting)
        else:  # Role.ACCOUNTS_PAYABLE
            account = await self._payable(party, posting)
        line_party: int | None = None
        if account.party_required:
            if party is None:
                if role is Role.ACCOUNTS_PAYABLE:
                    raise ItemRejected(Reason.VENDOR_UNKNOWN, self._vendor_unknown(plan))
                raise ItemRejected(
                    Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                    f"account {account.label} ({role.value}) requires a party in Tryton but the "
                    "item names no vendor: uncheck Party Required on the account or book the "
                    "role to another account",
                )
            line_party = party.id
        return _Resolved(posting=posting, account=account, party=line_party, tax=tax)

    async def _exchange_account(self, posting: Posting) -> Account:
        """The exchange gain or loss account: the setting, else Tryton's configuration."""
        _, books = self._require()
        gain = posting.account.role is Role.EXCHANGE_GAIN
        setting = "exchange_gain_account" if gain else "exchange_loss_account"
        code = self.settings.exchange_gain_account if gain else self.settings.exchange_loss_account
        what = "gain" if gain else "loss"
        if code is not None:
            account = await books.account(code)
            if account is None or not account.postable:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"account {code} (setting {setting}) does not exist or cannot be booked on "
                    f"in Tryton company {books.company.name}: correct the setting",
                )
            return account
        credit, debit = await books.exchange_accounts()
        configured = credit if gain else debit
        found = await books.account_by_id(configured) if configured is not None else None
        if found is None or not found.postable:
            field_name = "Credit" if gain else "Debit"
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"a realised exchange {what} of "
                f"{to_amount(abs(posting.amount), books.company.digits)} {posting.currency} (a "
                "foreign-currency invoice paid at another rate than it was booked at) needs an "
                f"account: set the Currency Exchange {field_name} Account in Tryton's accounting "
                f"configuration, or {setting} in [connector.settings], and export again",
            )
        return found

    async def _settle_at_invoice_rate(self, plan: PostingPlan, party: Party | None) -> PostingPlan:
        """An invoice payment at the rate its invoice was booked at (pleo_export.settlement)."""
        request = settlement_request(plan)
        if request is None or party is None:
            return plan
        payable = plan.entries[request.entry_index].postings[request.posting_index]
        account = await self._payable(party, payable)
        booked = await self._booked_invoice(party, account, request)
        if booked is None:
            self.log.info(
                "item %s pays invoice %s, which Tryton does not hold open for %s in %s: booked "
                "at the payment's own rate",
                plan.reference,
                request.invoice_number,
                party.name,
                request.supplier_currency,
                extra={"accounting_entry_id": plan.reference},
            )
        return settle_payment(plan, booked)

    def _remember_invoice(
        self, plan: PostingPlan, party: Party | None, account: int | None
    ) -> None:
        """Keep the payable postings of an item that names an invoice (see ``__init__``)."""
        number = _invoice_number(plan)
        if party is None or number is None or account is None:
            return
        for entry in plan.entries:  # payments too: what stays open is what counts
            for p in entry.postings:
                if p.account.role is not Role.ACCOUNTS_PAYABLE or not p.supplier_currency:
                    continue
                supplier = p.amount if p.supplier_amount is None else p.supplier_amount
                key = (party.id, account, number)
                known = self._prepared_invoices.setdefault(key, {})
                amount, supplier_sum, _ = known.get(plan.reference, (0, 0, p.supplier_currency))
                known[plan.reference] = (
                    amount + p.amount,
                    supplier_sum + supplier,
                    p.supplier_currency,
                )

    def _prepared_invoice(
        self, party: Party, account: Account, request: SettlementRequest
    ) -> BookedInvoice | None:
        """What the invoices prepared in this run (not in Tryton yet) put on the account."""
        known = self._prepared_invoices.get((party.id, account.id, request.invoice_number), {})
        if not known or any(c != request.supplier_currency for _, _, c in known.values()):
            return None
        return BookedInvoice(
            amount=-sum(a for a, _, _ in known.values()),
            supplier_amount=-sum(s for _, s, _ in known.values()),
            supplier_currency=request.supplier_currency,
        )

    async def _booked_invoice(
        self, party: Party, account: Account, request: SettlementRequest
    ) -> BookedInvoice | None:
        """What Tryton holds open for the invoice on the vendor's payable account.

        The open (unreconciled, posted) lines on the account for the party that are the
        invoice's own payable lines (a supplier invoice with this reference) or carry the
        invoice number as description (journal entries and earlier payments). Their supplier
        amounts come from the second currency, or from the invoice's ``Pleo amount`` comment;
        a line without either cannot be compared, and nothing is settled.
        """
        client, books = self._require()
        currency = await books.currency_id(request.supplier_currency)
        if currency is None:
            return None
        invoices = await client.search_read(
            "account.invoice",
            [
                ("company", "=", books.company.id),
                ("type", "=", "in"),
                ("party", "=", party.id),
                ("reference", "=", request.invoice_number),
                ("state", "=", "posted"),
            ],
            ["comment"],
        )
        totals = {
            f"account.invoice,{row['id']}": supplier_total(row.get("comment")) for row in invoices
        }
        domain: list[Any] = [
            ("account", "=", account.id),
            ("party", "=", party.id),
            ("reconciliation", "=", None),
            ("move.state", "=", "posted"),
        ]
        if totals:
            domain.append(
                [
                    "OR",
                    ("description", "=", request.invoice_number),
                    ("move.origin", "in", list(totals)),
                ]
            )
        else:
            domain.append(("description", "=", request.invoice_number))
        rows = await client.search_read(
            "account.move.line",
            domain,
            ["debit", "credit", "second_currency", "amount_second_currency", "move.origin"],
        )
        if not rows:
            return self._prepared_invoice(party, account, request)
        digits = books.company.digits
        supplier_digits = decimals(request.supplier_currency)
        amount = Decimal(0)
        supplier = Decimal(0)
        counted: set[str] = set()
        for row in rows:
            line = row["debit"] - row["credit"]
            amount += line
            origin = (row.get("move.") or {}).get("origin")
            if row.get("second_currency") == currency and row.get("amount_second_currency"):
                supplier += row["amount_second_currency"]
            elif origin in totals:
                total = totals[origin]
                if total is None or total[1] != request.supplier_currency:
                    return None
                if origin not in counted:  # one payable line per invoice without a term
                    counted.add(origin)
                    supplier += -total[0]
            else:
                return None
        return BookedInvoice(
            amount=int(-amount.scaleb(digits)),
            supplier_amount=int(-supplier.scaleb(supplier_digits)),
            supplier_currency=request.supplier_currency,
        )

    async def _payable(self, party: Party | None, posting: Posting) -> Account:
        _, books = self._require()
        s = self.settings
        account_id: int | None = party.payable_account if party is not None else None
        account: Account | None = None
        if account_id is not None:
            account = await books.account_by_id(account_id)
        elif party is None and s.payable_account:
            account = await books.account(s.payable_account)
        if account is None:
            default = await books.default_payable()
            account = await books.account_by_id(default) if default is not None else None
        if account is None or not account.postable:
            who = f"vendor {party.name}" if party is not None else "items without a vendor"
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"there is no usable payable account for {who} ({posting.field}): set the "
                "party's payable account, a default payable account in Tryton's accounting "
                "configuration, or the payable_account setting",
            )
        return account

    async def _tax(self, posting: Posting) -> Tax | None:
        _, books = self._require()
        code = posting.tax_code
        if not code:
            return None
        name = self.settings.tax_map.get(code, code)
        tax = await books.tax(name)
        if tax is None:
            shown = f"{code!r}" + (f" (Tryton tax {name!r})" if name != code else "")
            raise ItemRejected(
                Reason.TAX_CODE_UNKNOWN,
                f"{posting.field}.tax.code {shown} has no tax of that name in Tryton company "
                f"{books.company.name}: create the tax in Tryton, map the code in tax_map, or "
                "change the tax code on the expense in Pleo",
            )
        return tax

    async def _move_spec(
        self,
        plan: PostingPlan,
        entry: LedgerEntry,
        resolved: Sequence[_Resolved],
        part: int,
        parts: int,
        day: dt.date,
        period: Period,
    ) -> MoveSpec:
        _, books = self._require()
        kind = entry.kind
        code = (
            self.settings.payment_journal if kind is EntryKind.AP_PAYMENT else self.settings.journal
        )
        setting = "payment_journal" if kind is EntryKind.AP_PAYMENT else "journal"
        journal = await books.journal(code)
        if journal is None:
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"journal {code} (setting {setting}) does not exist in Tryton: create it or "
                "correct the setting",
            )
        digits = books.company.digits
        invoice_number = _invoice_number(plan)
        lines = []
        for r in resolved:
            p = r.posting
            description = _line_description(p)
            if p.account.role is Role.ACCOUNTS_PAYABLE and invoice_number:
                description = invoice_number
            elif p.account.role in (Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS):
                description = f"realised exchange difference, invoice {invoice_number}"
            second, second_amount = await self._second_currency(p)
            lines.append(
                MoveLineSpec(
                    account=r.account.id,
                    amount=to_amount(p.amount, digits),
                    party=r.party,
                    description=description,
                    second_currency=second,
                    amount_second_currency=second_amount,
                    tax_lines=self._tax_lines(r, digits),
                )
            )
        return MoveSpec(
            part=part,
            parts=parts,
            kind=kind.value,
            journal=journal.id,
            period=period.id,
            date=day,
            description="",
            lines=tuple(lines),
        )

    @staticmethod
    def _tax_lines(r: _Resolved, digits: int) -> tuple[TaxLineSpec, ...]:
        if r.tax is None:
            return ()
        amount = to_amount(r.posting.amount, digits)
        kind = "base" if r.posting.account.role is Role.EXPENSE else "tax"
        return (TaxLineSpec(type=kind, tax=r.tax.id, amount=amount),)

    async def _second_currency(self, posting: Posting) -> tuple[int | None, Decimal | None]:
        _, books = self._require()
        code = posting.supplier_currency
        amount = posting.supplier_amount
        if not code or code == books.company.currency or not amount:
            return None, None
        if (amount > 0) != (posting.amount > 0):
            return None, None
        currency = await books.currency_id(code)
        if currency is None:
            return None, None  # Tryton does not know the currency: company currency only
        return currency, to_amount(amount, decimals(code))

    async def _invoice_spec(
        self,
        plan: PostingPlan,
        entry: LedgerEntry,
        resolved: Sequence[_Resolved],
        party: Party | None,
        day: dt.date,
        description: str,
    ) -> InvoiceSpec:
        _, books = self._require()
        company = books.company
        digits = company.digits
        if party is None:  # resolve_method guarantees a vendor; _party a party
            raise ItemRejected(Reason.VENDOR_UNKNOWN, self._vendor_unknown(plan))
        if party.invoice_address is None:
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"Tryton party {party.name} (vendor {plan.vendor.name if plan.vendor else ''}) "
                "has no address, and a supplier invoice needs one: add an invoice address to "
                "the party in Tryton",
            )
        journal = await books.journal(self.settings.invoice_journal)
        if journal is None:
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"journal {self.settings.invoice_journal} (setting invoice_journal) does not "
                "exist in Tryton: create it or correct the setting",
            )
        payable: _Resolved | None = None
        lines: list[InvoiceLineSpec] = []
        bases: dict[str | None, Decimal] = defaultdict(Decimal)
        taxed: list[_Resolved] = []
        for r in resolved:
            role = r.posting.account.role
            if role is Role.ACCOUNTS_PAYABLE:
                payable = r
                continue
            if role in (Role.TAX_INPUT, Role.TAX_OUTPUT):
                taxed.append(r)
                continue
            if not (r.account.expense or r.account.debt):
                raise ItemRejected(
                    Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                    f"{r.posting.field}: account {r.account.label} has type {r.account.kind}, "
                    "and Tryton books supplier invoice lines only on accounts whose type is "
                    "Expense or Debt: change the category in Pleo or the account type in Tryton",
                )
            amount = to_amount(r.posting.amount, digits)
            if role is Role.EXPENSE:
                bases[r.posting.line_id] += amount
            lines.append(
                InvoiceLineSpec(
                    account=r.account.id,
                    amount=amount,
                    description=_invoice_line_description(r.posting, entry.narration),
                )
            )
        if payable is None:
            raise AssertionError("an accounts-payable document without a payable posting")
        if not payable.account.payable:
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"the payable account {payable.account.label} of {party.name} is not of a "
                "payable type in Tryton, so no supplier invoice can use it: set the party's "
                "payable account",
            )
        taxes = [
            InvoiceTaxSpec(
                description=_tax_description(r),
                account=r.account.id,
                base=bases.get(r.posting.line_id, Decimal(0)),
                amount=to_amount(r.posting.amount, digits),
                tax=r.tax.id if r.tax is not None else None,
            )
            for r in taxed
        ]
        info = plan.item.additional_information.invoice_information
        invoice_day = day
        due: dt.date | None = None
        if info is not None and entry.kind is not EntryKind.JOURNAL:
            if info.invoice_date is not None:
                invoice_day = info.invoice_date.date()
            if info.due_date is not None:
                due = info.due_date.date()
        if due is not None and due < invoice_day:
            due = None
        comment = None
        p = payable.posting
        if p.supplier_currency and p.supplier_currency != company.currency and p.supplier_amount:
            comment = supplier_total_comment(
                to_amount(-p.supplier_amount, decimals(p.supplier_currency)), p.supplier_currency
            )
        return InvoiceSpec(
            part=0,
            parts=0,
            kind=entry.kind.value,
            party=party.id,
            invoice_address=party.invoice_address,
            account=payable.account.id,
            journal=journal.id,
            currency=company.currency_id,
            invoice_date=invoice_day,
            accounting_date=day,
            payment_term_date=due,
            reference=_invoice_number(plan),
            description=description,
            lines=tuple(lines),
            taxes=tuple(taxes),
            comment=comment,
        )

    def _payload(self, plan: PostingPlan, parts: list[RecordSpec], party: Party | None) -> Payload:
        _, books = self._require()
        kinds = [p.kind for p in parts]
        has_document = any(k in ("ap_invoice", "ap_credit_note") for k in kinds)
        has_payment = "ap_payment" in kinds
        match_open: str | None = None
        number = _invoice_number(plan)
        if number and party is not None:
            if (
                has_payment
                and not has_document
                and plan.item.sub_type != "invoice_payment_returned"
            ):
                match_open = "payment"
            elif has_document and not has_payment:
                match_open = "invoice"
        attachments: tuple[Attachment, ...] = ()
        if self.settings.attachments:
            attachments = tuple(
                Attachment(
                    index=index,
                    name=f"pleo-{plan.reference}-{index + 1}.{extension_for(file.type)}",
                    mime_type=file.type,
                    size=file.size,
                )
                for index, file in enumerate(plan.attachments)
            )
        return Payload(
            reference=plan.reference,
            parts=tuple(parts),
            attachments=attachments,
            party=party.id if party is not None else None,
            invoice_number=number,
            settles=has_document and has_payment,
            match_open=match_open,
            amount=to_amount(_payable_amount(plan), books.company.digits),
        )

    def _render(
        self, plan: PostingPlan, parts: list[RecordSpec], entries: list[ResolvedEntry]
    ) -> str:
        lines: list[str] = []
        for spec, entry in zip(parts, entries, strict=True):
            if isinstance(spec, InvoiceSpec):
                what = "supplier credit note" if spec.total < 0 else "supplier invoice"
                lines.append(
                    f"{spec.accounting_date.isoformat()} {what} (account.invoice, party "
                    f"{spec.party}, total {spec.total}): {spec.description}"
                )
            else:
                lines.append(
                    f"{spec.date.isoformat()} move (account.move, journal {spec.journal}): "
                    f"{spec.description}"
                )
            for posting in entry.postings:
                tax = f"  tax {posting.tax_code}" if posting.tax_code else ""
                lines.append(
                    f"    {posting.account:<12} {posting.role.value:<16} "
                    f"{to_amount(posting.amount, decimals(posting.currency)):>14} "
                    f"{posting.currency}{tax}"
                )
        return "\n".join(lines)

    # --- lookup ---------------------------------------------------------------------------

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        """The item's record when everything ``post`` writes for it is in Tryton.

        With ``state = "posted"`` one search over moves answers it: the item's own moves carry
        the marker, and its supplier invoices are found through their moves' origin (an
        invoice without a move is still a draft, so the item is not complete anyway).
        """
        try:
            if self.settings.state == "posted":
                found = (await self._existing_posted([reference])).get(reference, {})
                self._remember(reference, found, drafts_known=False)
            else:
                found = (await self._existing_all([reference])).get(reference, {})
                self._remember(reference, found, drafts_known=True)
            if not found or not self._complete(found):
                return None
        except TrytonError as error:
            raise to_connector_error(error, f"looking up {reference} in Tryton") from error
        return self._record(found[min(found)])

    def _remember(self, reference: str, found: dict[int, _Found], *, drafts_known: bool) -> None:
        """Keep a lookup for the ``post`` that follows it (nothing writes in between)."""
        self._looked_up[reference] = (found, drafts_known)
        self._looked_up.move_to_end(reference)
        while len(self._looked_up) > _LOOKUP_MEMORY:
            self._looked_up.popitem(last=False)

    async def _existing_posted(self, references: Sequence[str]) -> dict[str, dict[int, _Found]]:
        """Records of ``references`` that have a move: their own moves, and posted invoices."""
        client, books = self._require()
        patterns = [like_prefix(r) for r in references]
        own: list[Any] = ["OR", *[("description", "like", p) for p in patterns]]
        invoices: list[Any] = [
            "OR",
            *[("origin.description", "like", p, "account.invoice") for p in patterns],
        ]
        rows = await client.search_read(
            "account.move",
            [("company", "=", books.company.id), ["OR", [own, ("origin", "=", None)], invoices]],
            [
                "description",
                "state",
                "create_date",
                "origin",
                "origin.description",
                "origin.state",
                "origin.create_date",
            ],
        )
        found: dict[str, dict[int, _Found]] = {r: {} for r in references}
        for row in rows:
            origin = row.get("origin")
            if origin:
                invoice = row.get("origin.") or {}
                self._add_found(
                    found,
                    "account.invoice",
                    int(invoice.get("id") or str(origin).partition(",")[2]),
                    invoice.get("description"),
                    invoice.get("state") or "",
                    invoice.get("create_date"),
                )
            else:
                self._add_found(
                    found,
                    "account.move",
                    row["id"],
                    row.get("description"),
                    row.get("state") or "",
                    row.get("create_date"),
                )
        return found

    async def _existing_all(
        self,
        references: Sequence[str],
        *,
        models: Sequence[str] = ("account.move", "account.invoice"),
    ) -> dict[str, dict[int, _Found]]:
        """Every record of ``references``, drafts included (one search per model)."""
        client, books = self._require()
        patterns: list[Any] = ["OR", *[("description", "like", like_prefix(r)) for r in references]]
        found: dict[str, dict[int, _Found]] = {r: {} for r in references}
        if "account.move" in models:
            moves = await client.search_read(
                "account.move",
                [("company", "=", books.company.id), ("origin", "=", None), patterns],
                ["description", "state", "create_date"],
            )
            for row in moves:
                self._add_found(
                    found,
                    "account.move",
                    row["id"],
                    row.get("description"),
                    row.get("state") or "",
                    row.get("create_date"),
                )
        if "account.invoice" in models:
            invoices = await client.search_read(
                "account.invoice",
                [
                    ("company", "=", books.company.id),
                    ("type", "=", "in"),
                    ("state", "!=", "cancelled"),
                    patterns,
                ],
                ["description", "state", "create_date"],
            )
            for row in invoices:
                self._add_found(
                    found,
                    "account.invoice",
                    row["id"],
                    row.get("description"),
                    row.get("state") or "",
                    row.get("create_date"),
                )
        return found

    @staticmethod
    def _add_found(
        found: dict[str, dict[int, _Found]],
        model: str,
        record_id: int,
        description: str | None,
        state: str,
        created: dt.datetime | None,
    ) -> None:
        parsed = parse_marker(description)
        if parsed is None or parsed[0] not in found:
            return
        reference, part, parts = parsed
        current = found[reference].get(part)
        if current is not None and current.id < record_id:
            return  # keep the oldest record of a part
        found[reference][part] = _Found(
            model=model, id=record_id, part=part, parts=parts, state=state, created=created
        )

    def _complete(self, found: dict[int, _Found]) -> bool:
        parts = max(f.parts for f in found.values())
        if set(found) != set(range(1, parts + 1)):
            return False
        if self.settings.state == "draft":
            return True
        if not all(f.posted for f in found.values()):
            return False
        invoice = next((f for f in found.values() if f.model == "account.invoice"), None)
        payment = any(f.model == "account.move" for f in found.values())
        # An invoice paid within the same item must have been reconciled with its payment.
        return not (invoice is not None and payment and invoice.state != "paid")

    def _record(self, found: _Found) -> ExternalRecord:
        created = found.created or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        url = f"{self.settings.url}/#{self.settings.database}/model/{found.model}/{found.id}"
        return ExternalRecord(
            external_id=f"{found.model},{found.id}",
            external_url=url,
            exported_at=created.replace(tzinfo=dt.UTC, microsecond=0),
        )

    # --- post -----------------------------------------------------------------------------

    def batch_size(self) -> int:
        return self.settings.batch_size

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        """Write one item's records, attach its receipts, post and reconcile (see module)."""
        (result,) = await self.post_batch([prepared])
        if isinstance(result, ItemRejected):
            raise result
        return result

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        """Write several items with few requests: one ``create`` and one ``post`` per model
        and part for the whole batch, one request for the receipts. When Tryton refuses a
        batch request, its records are retried one by one, so one bad item fails alone."""
        works: list[_Work] = []
        for prepared in entries:
            payload = prepared.payload
            if not isinstance(payload, Payload):
                raise TypeError(
                    "post() takes a PreparedEntry returned by this connector's prepare()"
                )
            works.append(_Work(prepared=prepared, payload=payload))
        for work in works:
            try:
                work.files = await self._download(work.prepared.plan, work.payload)
            except ItemRejected as rejected:
                work.error = rejected
        try:
            await self._load_existing([w for w in works if w.error is None])
        except TrytonError as error:
            raise to_connector_error(error, "looking up what Tryton already holds") from error
        posted = self.settings.state == "posted"
        try:
            for part in range(1, max((len(w.payload.parts) for w in works), default=0) + 1):
                active = [w for w in works if w.error is None and part <= len(w.payload.parts)]
                await self._create_many([w for w in active if part not in w.records], part)
                if part == 1:
                    await self._attach_many([w for w in active if w.error is None and w.files])
                if posted:
                    await self._post_many(
                        [w for w in active if w.error is None and not w.records[part].posted],
                        part,
                    )
        except TargetTemporarilyUnavailable as error:
            if not any(w.created for w in works):
                raise
            # Records were written before Tryton went away: not "nothing written". The engine
            # looks each item up; the ones not complete are posted again and finished.
            raise OutcomeUncertain(
                f"{error.message}; some records of this batch were already written"
            ) from error
        if posted:
            await self._reconcile([w for w in works if w.error is None])
        await self._created_at([w for w in works if w.error is None])
        results: list[ExternalRecord | ItemRejected] = []
        for work in works:
            if work.error is not None:
                results.append(work.error)
                continue
            first = work.records[1]
            if first.created is None:
                first.created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            results.append(self._record(first))
        return results

    async def _created_at(self, works: list[_Work]) -> None:
        """Read when Tryton created the first records written now (``exportedAt``)."""
        client, _ = self._require()
        by_model: dict[str, list[_Found]] = defaultdict(list)
        for work in works:
            first = work.records[1]
            if first.created is None:
                by_model[first.model].append(first)
        for model, records in by_model.items():
            try:
                rows = await client.model(model, "read", [r.id for r in records], ["create_date"])
            except TrytonError as error:  # the records are booked; the time is a detail
                self.log.debug("could not read create_date: %s", error.message)
                continue
            created = {row["id"]: row.get("create_date") for row in rows}
            for record in records:
                record.created = created.get(record.id)

    async def _load_existing(self, works: list[_Work]) -> None:
        """What each item already has in Tryton: from the lookup just before, else searched."""
        unknown: list[_Work] = []
        drafts_unknown: list[_Work] = []
        for work in works:
            remembered = self._looked_up.pop(work.payload.reference, None)
            if remembered is None:
                unknown.append(work)
                continue
            work.records, drafts_known = dict(remembered[0]), remembered[1]
            has_invoice = any(isinstance(s, InvoiceSpec) for s in work.payload.parts)
            if not drafts_known and has_invoice:
                drafts_unknown.append(work)
        if unknown:
            found = await self._existing_all([w.payload.reference for w in unknown])
            for work in unknown:
                work.records = dict(found[work.payload.reference])
        if drafts_unknown:  # draft invoices have no move: the posted-mode lookup misses them
            found = await self._existing_all(
                [w.payload.reference for w in drafts_unknown], models=("account.invoice",)
            )
            for work in drafts_unknown:
                work.records.update(found[work.payload.reference])

    async def _download(
        self, plan: PostingPlan, payload: Payload
    ) -> list[tuple[Attachment, bytes]]:
        files: list[tuple[Attachment, bytes]] = []
        for attachment in payload.attachments:
            file = plan.attachments[attachment.index]
            content = await self.context.fetch_attachment(
                file, label=f"files[{attachment.index}]", max_bytes=MAX_ATTACHMENT_BYTES
            )
            files.append((attachment, content))
        return files

    async def _create_many(self, works: list[_Work], part: int) -> None:
        """Create part ``part`` of every item in ``works``: one request per model."""
        client, books = self._require()
        by_model: dict[str, list[_Work]] = defaultdict(list)
        for work in works:
            by_model[work.payload.parts[part - 1].model].append(work)
        for model, group in by_model.items():
            specs = [w.payload.parts[part - 1] for w in group]
            values = [spec.values(books.company.id) for spec in specs]
            what = _what(specs[0]) if len(specs) == 1 else f"{len(specs)} records ({model})"
            try:
                ids = await client.model(model, "create", values, write=True)
            except (TrytonRefused, TrytonWarning, TrytonFault) as error:
                if len(group) == 1:
                    group[0].error = _item_error(error, f"creating the {what}")
                    continue
                for work in group:  # find the one Tryton refuses
                    await self._create_many([work], part)
                continue
            except TrytonError as error:
                raise to_connector_error(error, f"creating the {what}") from error
            for work, spec, record_id in zip(group, specs, ids, strict=True):
                work.records[part] = _Found(
                    model=model,
                    id=int(record_id),
                    part=part,
                    parts=spec.parts,
                    state="draft",
                    created=None,
                )
                work.created.add(part)
                self.log.info(
                    "created %s %s for %s (part %s/%s)",
                    model,
                    record_id,
                    work.payload.reference,
                    part,
                    spec.parts,
                    extra={
                        "accounting_entry_id": work.payload.reference,
                        "tryton_model": model,
                        "tryton_id": record_id,
                    },
                )

    async def _attach_many(self, works: list[_Work]) -> None:
        """Attach the receipts each item's first record lacks (new records have none)."""
        client, _ = self._require()
        pending: list[tuple[_Work, dict[str, Any]]] = []
        for work in works:
            found = work.records[1]
            resource = f"{found.model},{found.id}"
            present: set[str] = set()
            if 1 not in work.created:
                try:
                    rows = await client.search_read(
                        "ir.attachment", [("resource", "=", resource)], ["name"]
                    )
                except TrytonError as error:
                    raise to_connector_error(
                        error, f"reading the receipts of {resource}"
                    ) from error
                present = {row["name"] for row in rows}
            for attachment, content in work.files:
                if attachment.name in present:
                    continue
                pending.append(
                    (
                        work,
                        {
                            "name": attachment.name,
                            "resource": resource,
                            "type": "data",
                            "data": content,
                            "description": f"Pleo receipt {attachment.index + 1} of "
                            f"{work.payload.reference} ({attachment.mime_type})",
                        },
                    )
                )
        for chunk in _chunks(pending, _ATTACHMENT_CHUNK_BYTES):
            try:
                await client.model("ir.attachment", "create", [v for _, v in chunk], write=True)
            except (TrytonRefused, TrytonFault) as error:
                if len(chunk) == 1:
                    work, values = chunk[0]
                    work.error = ItemRejected(
                        Reason.RECEIPT_UPLOAD_FAILURE,
                        f"Tryton refused receipt {values['name']} for {values['resource']}: "
                        f"{error.message}. The record stays in draft; attach the receipt by "
                        "hand and post it, or export the item again",
                    )
                    continue
                for single in chunk:
                    if single[0].error is None:
                        await self._attach_values([single])
            except TrytonError as error:
                raise to_connector_error(error, "attaching receipts") from error

    async def _attach_values(self, chunk: list[tuple[_Work, dict[str, Any]]]) -> None:
        client, _ = self._require()
        work, values = chunk[0]
        try:
            await client.model("ir.attachment", "create", [values], write=True)
        except (TrytonRefused, TrytonFault) as error:
            work.error = ItemRejected(
                Reason.RECEIPT_UPLOAD_FAILURE,
                f"Tryton refused receipt {values['name']} for {values['resource']}: "
                f"{error.message}. The record stays in draft; attach the receipt by hand and "
                "post it, or export the item again",
            )
        except TrytonError as error:
            raise to_connector_error(error, "attaching receipts") from error

    async def _post_many(self, works: list[_Work], part: int) -> None:
        """Post part ``part`` of every item in ``works``: one request per model."""
        client, _ = self._require()
        by_model: dict[str, list[_Work]] = defaultdict(list)
        for work in works:
            by_model[work.records[part].model].append(work)
        for model, group in by_model.items():
            if len(group) > 1:
                ids = [w.records[part].id for w in group]
                try:
                    await client.model(model, "post", ids, write=True)
                except (TrytonRefused, TrytonWarning, TrytonFault):
                    pass  # find the one Tryton refuses, below
                except TrytonError as error:
                    raise to_connector_error(error, f"posting {len(ids)} records") from error
                else:
                    for work in group:
                        work.records[part].state = "posted"
                    continue
            for work in group:
                await self._post_one(work, part)

    async def _post_one(self, work: _Work, part: int) -> None:
        client, _ = self._require()
        found = work.records[part]
        what = f"{_what(work.payload.parts[part - 1])} {found.id}"
        for attempt in (1, 2):
            try:
                await client.model(found.model, "post", [found.id], write=True)
                break
            except TrytonWarning as warning:
                if not self.settings.confirm_warnings or attempt == 2:
                    work.error = _item_error(warning, f"posting {what}")
                    return
                await self._confirm(warning)
            except (TrytonRefused, TrytonFault) as error:
                if part in work.created:
                    await self._delete_draft(found)
                    del work.records[part]
                work.error = _item_error(error, f"posting {what}")
                return
            except TrytonError as error:
                raise to_connector_error(error, f"posting {what}") from error
        found.state = "posted"

    async def _confirm(self, warning: TrytonWarning) -> None:
        client, _ = self._require()
        self.log.warning(
            "confirming Tryton warning %s: %s (confirm_warnings = true)",
            warning.name,
            warning.tryton_message,
            extra={"tryton_warning": warning.name},
        )
        try:
            await client.model(
                "res.user.warning",
                "create",
                [{"user": client.user_id, "name": warning.name, "always": False}],
                write=True,
            )
        except TrytonError as error:
            raise to_connector_error(error, f"confirming Tryton warning {warning.name}") from error

    async def _delete_draft(self, found: _Found) -> None:
        client, _ = self._require()
        try:
            await client.model(found.model, "delete", [found.id], write=True)
        except TrytonError as error:
            self.log.warning(
                "could not delete draft %s %s after Tryton refused to post it: %s",
                found.model,
                found.id,
                error.message,
                extra={"tryton_model": found.model, "tryton_id": found.id},
            )

    # --- reconciliation -------------------------------------------------------------------

    async def _reconcile(self, works: list[_Work]) -> None:
        """Settle invoices with the payments that pay them; never fails an item.

        An item's own invoice and payment always pair up; an invoice payment pairs with the
        vendor's open invoice of the same number and amount, and an invoice with such a
        payment booked earlier. The pairs of one batch are reconciled per vendor and payable
        account, each group in one reconciliation.
        """
        pairs: list[tuple[Payload, int, int]] = []
        for work in works:
            payload = work.payload
            records = [work.records[spec.part] for spec in payload.parts]
            try:
                if payload.settles:
                    invoice = next(r for r in records if r.model == "account.invoice")
                    payment = next(r for r in records if r.model == "account.move")
                    pairs.append((payload, invoice.id, payment.id))
                elif payload.match_open == "payment":
                    invoice_id = await self._open_invoice(payload)
                    if invoice_id is not None:
                        pairs.append((payload, invoice_id, records[0].id))
                elif payload.match_open == "invoice":
                    payment_id = await self._open_payment(payload)
                    if payment_id is not None:
                        pairs.append((payload, records[0].id, payment_id))
            except TrytonError as error:
                self._not_reconciled(payload, error.message)
        if not pairs:
            return
        try:
            await self._settle(pairs)
        except TrytonError as error:
            for payload, _, _ in pairs:
                self._not_reconciled(payload, error.message)

    def _not_reconciled(self, payload: Payload, why: str) -> None:
        self.log.warning(
            "item %s is booked but its invoice and payment could not be reconciled in "
            "Tryton: %s; reconcile them by hand",
            payload.reference,
            why,
            extra={"accounting_entry_id": payload.reference},
        )

    async def _settle(self, pairs: list[tuple[Payload, int, int]]) -> None:
        """Reconcile each invoice's open payable lines with its payment's, where they balance."""
        client, _ = self._require()
        accounts = sorted({p.payable_account for p, _, _ in pairs if p.payable_account})
        if not accounts:
            return
        moves = sorted({move_id for _, _, move_id in pairs})
        origins = sorted({f"account.invoice,{invoice_id}" for _, invoice_id, _ in pairs})
        rows = await client.search_read(
            "account.move.line",
            [
                ("account", "in", accounts),
                ("reconciliation", "=", None),
                ["OR", ("move", "in", moves), ("move.origin", "in", origins)],
            ],
            ["debit", "credit", "move", "move.origin", "account", "party"],
        )
        groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        used: set[int] = set()
        settled = 0
        for payload, invoice_id, move_id in pairs:
            account = payload.payable_account
            paying = [r for r in rows if r["move"] == move_id and r["account"] == account]
            origin = f"account.invoice,{invoice_id}"
            to_pay = [
                r
                for r in rows
                if (r.get("move.") or {}).get("origin") == origin and r["account"] == account
            ]
            balance = sum((r["debit"] - r["credit"] for r in (*paying, *to_pay)), Decimal(0))
            parties = {r["party"] for r in (*paying, *to_pay)}
            ids = {r["id"] for r in (*paying, *to_pay)}
            if not paying or not to_pay or balance != 0 or len(parties) != 1 or ids & used:
                self.log.info(
                    "invoice %s and move %s do not settle each other exactly (difference %s): "
                    "left for manual reconciliation",
                    invoice_id,
                    move_id,
                    balance,
                    extra={"accounting_entry_id": payload.reference},
                )
                continue
            used |= ids
            settled += 1
            groups[(int(account or 0), parties.pop())] += sorted(ids)
        for lines in groups.values():
            context = {
                "active_model": "account.move.line",
                "active_id": lines[0],
                "active_ids": lines,
            }
            await client.wizard("account.move.reconcile_lines", "start", {}, context)
        if groups:
            self.log.info(
                "reconciled %s supplier invoices with their payments",
                settled,
                extra={"reconciliations": len(groups)},
            )

    async def _open_invoice(self, payload: Payload) -> int | None:
        """The vendor's posted, unpaid invoice with the payment's invoice number and amount."""
        client, books = self._require()
        rows = await client.search_read(
            "account.invoice",
            [
                ("company", "=", books.company.id),
                ("type", "=", "in"),
                ("party", "=", payload.party),
                ("reference", "=", payload.invoice_number),
                ("state", "=", "posted"),
            ],
            ["amount_to_pay"],
            order=[("id", "ASC")],
        )
        for row in rows:
            if row.get("amount_to_pay") == payload.amount:
                return int(row["id"])
        return None

    async def _open_payment(self, payload: Payload) -> int | None:
        """A posted payment move for this vendor and invoice number, not reconciled yet."""
        client, books = self._require()
        rows = await client.search_read(
            "account.move.line",
            [
                ("move.company", "=", books.company.id),
                ("party", "=", payload.party),
                ("description", "=", payload.invoice_number),
                ("reconciliation", "=", None),
                ("move.state", "=", "posted"),
                ("move.origin", "=", None),
                ("debit", "=", payload.amount),
            ],
            ["move"],
            order=[("id", "ASC")],
            limit=1,
        )
        return int(rows[0]["move"]) if rows else None

    # --- after the run --------------------------------------------------------------------

    async def verify(self) -> list[str]:
        """Tryton's trial balance over posted moves must sum to zero."""
        try:
            client, books = self._require()
            rows = await client.search_read(
                "account.account",
                [("company", "=", books.company.id), ("type", "!=", None)],
                ["code", "debit", "credit"],
                context={"posted": True},
            )
        except (TrytonError, RuntimeError) as error:
            return [f"could not read Tryton's trial balance: {error}"]
        debit = sum((row["debit"] for row in rows), Decimal(0))
        credit = sum((row["credit"] for row in rows), Decimal(0))
        if debit != credit:
            return [f"Tryton's trial balance does not sum to zero: debit {debit}, credit {credit}"]
        return []


# --- helpers ------------------------------------------------------------------------------


def _item_type(plan: PostingPlan) -> ExportItemType | None:
    try:
        return ExportItemType(plan.item.type)
    except ValueError:
        return None


def _named(name: str | None) -> str:
    return f" ({name})" if name else ""


def _invoice_number(plan: PostingPlan) -> str | None:
    info = plan.item.additional_information.invoice_information
    number = info.invoice_number if info is not None else None
    return number.strip() if number and number.strip() else None


def _line_description(posting: Posting) -> str | None:
    parts: list[str] = []
    if posting.account.role is Role.EXPENSE and posting.account.name:
        parts.append(posting.account.name)
    if posting.tax_code:
        parts.append(
            f"VAT {posting.tax_code}" + (f" {posting.tax_type}" if posting.tax_type else "")
        )
    parts += [f"{tag.group_code}:{tag.code}" for tag in posting.tags if tag.group_code and tag.code]
    return "; ".join(parts) or None


def _invoice_line_description(posting: Posting, narration: str) -> str:
    text = _line_description(posting) or ""
    if posting.account.role is Role.ROUNDING:
        text = "currency conversion rounding"
    return f"{narration} - {text}" if text else narration


def _tax_description(r: _Resolved) -> str:
    code = r.posting.tax_code or "VAT"
    if r.posting.account.role is Role.TAX_OUTPUT:
        return f"{code} reverse charge (due)"
    if r.tax is not None:
        return f"{code} {r.tax.description}".strip()
    return code


def _what(spec: RecordSpec) -> str:
    if isinstance(spec, InvoiceSpec):
        return "supplier credit note" if spec.total < 0 else "supplier invoice"
    return "payment move" if spec.kind == EntryKind.AP_PAYMENT.value else "journal move"


def _model_name(model: str) -> str:
    return "invoice" if model == "account.invoice" else "move"


def _renumber(spec: RecordSpec, part: int, parts: int) -> RecordSpec:
    return replace(spec, part=part, parts=parts)


def _with_description(spec: RecordSpec, description: str) -> RecordSpec:
    return replace(spec, description=description)


def _payable_amount(plan: PostingPlan) -> int:
    """What the item books to the vendor's payable account when it pays an invoice: the
    invoice's amount at its own rate after :func:`settle_payment`, else the item's total."""
    request = settlement_request(plan)
    if request is not None:
        return plan.entries[request.entry_index].postings[request.posting_index].amount
    return plan.item.amount.in_wallet_currency.value
