"""Lookup by reference: the records an item already has in Tryton, found by the marker
``pleo:<accountingEntryId>#<part>/<parts>`` their descriptions start with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pleo_export import ExternalRecord
from pleo_export_tryton.base import Found, TrytonBase
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonError
from pleo_export_tryton.specs import like_prefix, parse_marker

_LOOKUP_MEMORY = 1000
"""Lookups kept for the posts that follow them (more than one batch's worth)."""


class TrytonLookup(TrytonBase):
    """``find_existing`` and the searches ``post`` reuses."""

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

    def _remember(self, reference: str, found: dict[int, Found], *, drafts_known: bool) -> None:
        """Keep a lookup for the ``post`` that follows it (nothing writes in between)."""
        self._looked_up[reference] = (found, drafts_known)
        self._looked_up.move_to_end(reference)
        while len(self._looked_up) > _LOOKUP_MEMORY:
            self._looked_up.popitem(last=False)

    async def _existing_posted(self, references: Sequence[str]) -> dict[str, dict[int, Found]]:
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
        found: dict[str, dict[int, Found]] = {r: {} for r in references}
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
    ) -> dict[str, dict[int, Found]]:
        """Every record of ``references``, drafts included (one search per model)."""
        client, books = self._require()
        patterns: list[Any] = ["OR", *[("description", "like", like_prefix(r)) for r in references]]
        found: dict[str, dict[int, Found]] = {r: {} for r in references}
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
        found: dict[str, dict[int, Found]],
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
        found[reference][part] = Found(
            model=model, id=record_id, part=part, parts=parts, state=state, created=created
        )

    def _complete(self, found: dict[int, Found]) -> bool:
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

    def _record(self, found: Found) -> ExternalRecord:
        created = found.created or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        url = f"{self.settings.url}/#{self.settings.database}/model/{found.model}/{found.id}"
        return ExternalRecord(
            external_id=f"{found.model},{found.id}",
            external_url=url,
            exported_at=created.replace(tzinfo=dt.UTC, microsecond=0),
        )
