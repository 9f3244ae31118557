"""``read_booked``: the move lines Tryton holds for export items, for reconciliation.

An item's records are found by their marker (``pleo:<accountingEntryId>#<part>/<parts>``), as
lookup finds them: its own moves by their description, its supplier invoices' moves through
their origin. Their lines are read as Tryton has them now: the account code, debit minus
credit in minor units of the company currency, and the tax of the line's tax lines, named by
its Pleo tax code when ``tax_map`` maps one to it. Tryton links a supplier invoice's VAT to
its tax lines only, not to its expense lines: when an invoice's move names exactly one tax,
its expense-type lines without a tax of their own are read with that tax (the tax they were
the base of). A supplier invoice left in draft (``state = "draft"``) has no move yet, so
nothing is read for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pleo_export import BookedEntry, BookedPosting, decimals
from pleo_export_tryton.base import TrytonBase
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonError
from pleo_export_tryton.specs import like_prefix, parse_marker

CHUNK = 200
"""References per search (each adds two LIKE conditions)."""


class TrytonBooked(TrytonBase):
    """``read_booked`` (``READ_BOOKED``)."""

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        """The move lines of each reference, in order; a reference without moves is left out."""
        wanted = list(dict.fromkeys(references))
        try:
            found: dict[str, BookedEntry] = {}
            for start in range(0, len(wanted), CHUNK):
                found.update(await self._booked(wanted[start : start + CHUNK]))
        except TrytonError as error:
            raise to_connector_error(error, "reading back what was booked in Tryton") from error
        return [found[r] for r in wanted if r in found]

    async def _booked(self, references: Sequence[str]) -> dict[str, BookedEntry]:
        client, books = self._require()
        company = books.company
        patterns = [like_prefix(r) for r in references]
        own: list[Any] = ["OR", *[("description", "like", p) for p in patterns]]
        invoices: list[Any] = [
            "OR",
            *[("origin.description", "like", p, "account.invoice") for p in patterns],
        ]
        moves = await client.search_read(
            "account.move",
            [("company", "=", company.id), ["OR", [own, ("origin", "=", None)], invoices]],
            ["description", "origin", "origin.description"],
            order=[("id", "ASC")],
        )
        wanted = set(references)
        owner: dict[int, str] = {}
        from_invoice: set[int] = set()
        for move in moves:
            description = (
                (move.get("origin.") or {}).get("description")
                if move.get("origin")
                else move.get("description")
            )
            parsed = parse_marker(description)
            if parsed is not None and parsed[0] in wanted:
                owner[int(move["id"])] = parsed[0]
                if move.get("origin"):
                    from_invoice.add(int(move["id"]))
        if not owner:
            return {}
        lines = await client.search_read(
            "account.move.line",
            [("move", "in", sorted(owner))],
            ["move", "account", "account.code", "debit", "credit"],
            order=[("move", "ASC"), ("id", "ASC")],
        )
        tax_rows = await client.search_read(
            "account.tax.line",
            [("move_line.move", "in", sorted(owner))],
            ["move_line", "move_line.move", "tax.name"],
            order=[("id", "ASC")],
        )
        codes = {name: code for code, name in self.settings.tax_map.items()}
        tax_of_line: dict[int, str] = {}
        taxes_of_move: dict[int, set[str]] = {}
        for row in tax_rows:
            name = (row.get("tax.") or {}).get("name")
            if name:
                code = codes.get(name, name)
                tax_of_line.setdefault(int(row["move_line"]), code)
                move_id = int((row.get("move_line.") or {}).get("move") or 0)
                taxes_of_move.setdefault(move_id, set()).add(code)
        currency = company.currency
        try:
            places = decimals(currency)
        except (KeyError, ValueError):
            places = company.digits
        postings: dict[str, list[BookedPosting]] = {}
        first_move: dict[str, int] = {}
        for line in lines:
            move_id = int(line["move"])
            reference = owner[move_id]
            first_move.setdefault(reference, move_id)
            net = Decimal(line.get("debit") or 0) - Decimal(line.get("credit") or 0)
            tax_code = tax_of_line.get(int(line["id"]))
            only = taxes_of_move.get(move_id, set())
            if tax_code is None and move_id in from_invoice and len(only) == 1:
                account = await books.account_by_id(int(line.get("account") or 0))
                if account is not None and account.expense:
                    (tax_code,) = only
            postings.setdefault(reference, []).append(
                BookedPosting(
                    account=str((line.get("account.") or {}).get("code") or ""),
                    amount=int(net.scaleb(places).to_integral_value()),
                    currency=currency,
                    tax_code=tax_code,
                )
            )
        return {
            reference: BookedEntry(
                reference=reference,
                external_id=f"account.move,{first_move[reference]}",
                postings=tuple(found),
            )
            for reference, found in postings.items()
        }
