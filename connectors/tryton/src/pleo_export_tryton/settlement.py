"""Invoice payments settled at the rate their invoice was booked at: what Tryton (or this
run) holds open for the invoice (see ``pleo_export.settlement``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pleo_export import (
    BookedInvoice,
    PostingPlan,
    Role,
    SettlementRequest,
    decimals,
    settle_payment,
    settlement_request,
)
from pleo_export_tryton.accounts import TrytonAccounts
from pleo_export_tryton.base import plan_invoice_number
from pleo_export_tryton.books import Account, Party
from pleo_export_tryton.specs import supplier_total


class TrytonSettlement(TrytonAccounts):
    """What an invoice payment settles, from Tryton and from this run."""

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
        number = plan_invoice_number(plan)
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
