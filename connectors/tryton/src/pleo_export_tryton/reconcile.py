"""Reconciliation: supplier invoices settled with the payment moves that pay them, in the
same item, the same batch or an earlier job."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from pleo_export_tryton.base import TrytonBase, Work
from pleo_export_tryton.rpc import TrytonError
from pleo_export_tryton.specs import Payload


class TrytonReconcile(TrytonBase):
    """Pairs invoices with payments and reconciles their payable lines."""

    async def _reconcile(self, works: list[Work]) -> None:
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
