"""The records of an item: journal and payment moves (``account.move``), supplier invoices
and credit notes (``account.invoice``), the payload ``post`` writes and the preview text."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from pleo_export import (
    EntryKind,
    ItemRejected,
    LedgerEntry,
    Posting,
    PostingPlan,
    ResolvedEntry,
    Role,
    decimals,
    settlement_request,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.attachments import extension_for
from pleo_export_tryton.base import Resolved, TrytonBase, plan_invoice_number
from pleo_export_tryton.books import Party, Period, to_amount
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
    marker,
    supplier_total_comment,
)


class TrytonDocuments(TrytonBase):
    """Builds the record specs of an item from its resolved postings."""

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

    async def _move_spec(
        self,
        plan: PostingPlan,
        entry: LedgerEntry,
        resolved: Sequence[Resolved],
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
        invoice_number = plan_invoice_number(plan)
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
    def _tax_lines(r: Resolved, digits: int) -> tuple[TaxLineSpec, ...]:
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
        resolved: Sequence[Resolved],
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
        payable: Resolved | None = None
        lines: list[InvoiceLineSpec] = []
        bases: dict[str | None, Decimal] = defaultdict(Decimal)
        taxed: list[Resolved] = []
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
            reference=plan_invoice_number(plan),
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
        number = plan_invoice_number(plan)
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


def _tax_description(r: Resolved) -> str:
    code = r.posting.tax_code or "VAT"
    if r.posting.account.role is Role.TAX_OUTPUT:
        return f"{code} reverse charge (due)"
    if r.tax is not None:
        return f"{code} {r.tax.description}".strip()
    return code


def renumber(spec: RecordSpec, part: int, parts: int) -> RecordSpec:
    return replace(spec, part=part, parts=parts)


def with_description(spec: RecordSpec, description: str) -> RecordSpec:
    return replace(spec, description=description)


def _payable_amount(plan: PostingPlan) -> int:
    """What the item books to the vendor's payable account when it pays an invoice: the
    invoice's amount at its own rate after :func:`settle_payment`, else the item's total."""
    request = settlement_request(plan)
    if request is not None:
        return plan.entries[request.entry_index].postings[request.posting_index].amount
    return plan.item.amount.in_wallet_currency.value
