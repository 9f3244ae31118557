"""``prepare``: an item resolved against the Tryton books and turned into record specs,
without writing anything."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from pleo_export import (
    EntryKind,
    ItemRejected,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_tryton.books import Period
from pleo_export_tryton.documents import TrytonDocuments, renumber, with_description
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonError
from pleo_export_tryton.settlement import TrytonSettlement
from pleo_export_tryton.specs import RecordSpec


class TrytonPrepare(TrytonDocuments, TrytonSettlement):
    """Resolve accounts, taxes, the vendor's party and the period; write nothing."""

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
                parts[-1] = renumber(parts[-1], number, parts_count)
            else:
                parts.append(
                    await self._move_spec(plan, entry, resolved, number, parts_count, day, period)
                )
                parts[-1] = with_description(parts[-1], description)
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
