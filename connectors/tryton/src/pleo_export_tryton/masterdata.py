"""Master data read from Tryton for ``pleo-export sync``, and vendors created in it.

* Vendors are the company's parties, the company's own party and its employees' excepted
  (narrowed to a party category with the ``vendor_category`` setting): code = the party's
  code; tax number = its tax identifier (``party.tax_identifier``), else its first
  identifier without a type that reads as a VAT number (two letters, then 8 to 12 letters
  and digits with at least 6 digits); external id = its first other identifier without a
  type, else the code; country = the country of its invoice address (else its first
  address); currency = the company's. An inactive party is archived.
* Tax codes are the company's top-level taxes that are not in a sale-only tax group: the code
  is the Pleo tax code ``tax_map`` maps to the tax's name (else the name), the rate is the
  tax's percentage (a tax with child taxes: the largest child rate), and the type is
  ``reverse`` when child taxes cancel out (+20 % and -20 %), else ``tax_types[code]``, else
  ``inclusive``. The accounts are the codes of the invoice accounts (for reverse charge the
  positive child's and the negative child's). An inactive or ended tax is archived.
* Dimensions are the analytic root accounts (module ``analytic_account``), their values the
  normal analytic accounts under them; a closed or inactive analytic account is archived.
* ``create_vendor`` creates a party with an invoice address in the draft's country and its tax
  number as an identifier without a type, after looking for a party with the same tax
  number, then the same name. Not a typed (``eu_vat``) identifier: Tryton then asks to confirm
  every supplier invoice of the party until the number is validated with VIES, which would
  stop its exports; without a type the connector matches it all the same.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    DimensionValue,
    ExportJobFailureReasonType,
    ItemRejected,
    JobRejected,
    TaxType,
    VendorDraft,
)
from pleo_export_tryton.base import TrytonBase
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonClient, TrytonError

ANY_ACTIVE = ("active", "in", [True, False])
_VAT_LIKE = re.compile(r"^[A-Z]{2}(?=(?:[A-Z]*\d){6})[0-9A-Z]{8,12}$")


class TrytonMasterData(TrytonBase):
    """``list_vendors``, ``list_tax_codes``, ``list_dimensions`` and ``create_vendor``."""

    async def _read(self, doing: str, call: Any) -> Any:
        try:
            return await call
        except TrytonError as error:
            raise self._job_level(to_connector_error(error, doing)) from error

    # --- vendors ------------------------------------------------------------------------------

    async def _vendor_domain(self, client: TrytonClient) -> list[Any]:
        _, books = self._require()
        excluded = await client.search_read(
            "company.company", [("id", "=", books.company.id)], ["party"]
        )
        ids = {int(row["party"]) for row in excluded if row.get("party")}
        employees = await client.search_read(
            "company.employee", [("company", "=", books.company.id), ANY_ACTIVE], ["party"]
        )
        ids |= {int(row["party"]) for row in employees if row.get("party")}
        domain: list[Any] = [ANY_ACTIVE, ("id", "not in", sorted(ids))]
        category = self.settings.vendor_category
        if category is not None:
            found = await client.search_read("party.category", [("name", "=", category)], ["id"])
            if not found:
                raise JobRejected(
                    ExportJobFailureReasonType.INVALID_CONFIGURATION,
                    f"there is no party category {category!r} (setting vendor_category) in "
                    "Tryton: create it and put the vendors in it, or correct the setting",
                )
            domain.append(("categories", "child_of", [found[0]["id"]], "parent"))
        return domain

    async def _vendors(self, domain: list[Any]) -> list[AccountingVendor]:
        client, books = self._require()
        parties = await client.search_read(
            "party.party",
            domain,
            ["name", "code", "active", "tax_identifier.code", "tax_identifier.type"],
            order=[("id", "ASC")],
        )
        if not parties:
            return []
        ids = [row["id"] for row in parties]
        identifiers = await client.search_read(
            "party.identifier",
            [("party", "in", ids)],
            ["party", "type", "code"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        addresses = await client.search_read(
            "party.address",
            [("party", "in", ids), ANY_ACTIVE],
            ["party", "invoice", "country.code"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        untyped: dict[int, list[str]] = {}
        for row in identifiers:
            if not row.get("type") and row.get("code"):
                untyped.setdefault(int(row["party"]), []).append(str(row["code"]))
        countries: dict[int, str] = {}
        for invoice_first in (True, False):
            for row in addresses:
                code = (row.get("country.") or {}).get("code")
                if code and (row.get("invoice") or not invoice_first):
                    countries.setdefault(int(row["party"]), str(code).upper())
        vendors = []
        for row in parties:
            code = str(row.get("code") or row["id"])
            others = untyped.get(row["id"], [])
            tax = _tax_number(row.get("tax_identifier.") or {})
            if tax is None:
                tax = next((value for value in others if _VAT_LIKE.match(value)), None)
            external = next((value for value in others if value != tax), code)
            vendors.append(
                AccountingVendor(
                    name=str(row.get("name") or code),
                    code=code,
                    external_id=external,
                    currency=books.company.currency,
                    country=countries.get(row["id"]),
                    tax_registration_number=tax,
                    archived=not row.get("active", True),
                )
            )
        return vendors

    async def list_vendors(self) -> list[AccountingVendor]:
        """The company's parties as vendors (see the module)."""
        client, _ = self._require()

        async def read() -> list[AccountingVendor]:
            return await self._vendors(await self._vendor_domain(client))

        return list(await self._read("reading the parties", read()))

    # --- tax codes ----------------------------------------------------------------------------

    async def list_tax_codes(self) -> list[AccountingTaxCode]:
        """The company's purchase taxes (see the module)."""
        client, books = self._require()
        fields = ["name", "description", "type", "rate", "active", "end_date"]
        fields += ["invoice_account.code", "group.kind", "parent"]
        rows = await self._read(
            "reading the taxes",
            client.search_read(
                "account.tax",
                [("company", "=", books.company.id), ANY_ACTIVE],
                fields,
                order=[("sequence", "ASC"), ("id", "ASC")],
            ),
        )
        children: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if row.get("parent"):
                children.setdefault(int(row["parent"]), []).append(row)
        codes = {name: code for code, name in self.settings.tax_map.items()}
        today = dt.date.today()
        taxes = []
        for row in rows:
            if row.get("parent") or (row.get("group.") or {}).get("kind") == "sale":
                continue
            tax = self._tax_code(row, children.get(row["id"], []), codes, today)
            if tax is not None:
                taxes.append(tax)
        return taxes

    def _tax_code(
        self,
        row: dict[str, Any],
        children: list[dict[str, Any]],
        codes: dict[str, str],
        today: dt.date,
    ) -> AccountingTaxCode | None:
        name = str(row["name"])
        code = codes.get(name, name)

        def rate_of(tax: dict[str, Any]) -> Decimal | None:
            if tax.get("type") != "percentage" or tax.get("rate") is None:
                return None
            return Decimal(str(tax["rate"]))

        def account(tax: dict[str, Any] | None) -> str | None:
            value = ((tax or {}).get("invoice_account.") or {}).get("code")
            return str(value) if value else None

        rates = [(rate_of(child), child) for child in children]
        positive = [(r, c) for r, c in rates if r is not None and r > 0]
        negative = [(r, c) for r, c in rates if r is not None and r < 0]
        outgoing = None
        rate: Decimal | None
        if positive and negative and sum(r for r, _ in positive + negative) == 0:
            kind = TaxType.REVERSE
            rate, ingoing = positive[0][0], account(positive[0][1])
            outgoing = account(negative[0][1])
        else:
            kind = TaxType(self.settings.tax_types.get(code, TaxType.INCLUSIVE))
            own = rate_of(row)
            rate = own if own is not None else max((r for r, _ in positive), default=None)
            ingoing = account(row) or (account(positive[0][1]) if positive else None)
        if rate is None or not Decimal(0) <= rate <= Decimal(1):
            self.log.debug("tax %s has no percentage rate between 0 and 100 %%: skipped", name)
            return None
        end = row.get("end_date")
        return AccountingTaxCode(
            code=code,
            name=str(row.get("description") or name),
            rate=rate,
            type=kind,
            ingoing_tax_account=ingoing,
            outgoing_tax_account=outgoing,
            archived=not row.get("active", True) or (end is not None and end < today),
        )

    # --- dimensions ---------------------------------------------------------------------------

    async def list_dimensions(self) -> list[AccountingDimension]:
        """Analytic root accounts and the normal accounts under them (see the module)."""
        client, books = self._require()
        activated = await self._read(
            "reading the activated modules",
            client.search_read(
                "ir.module", [("name", "=", "analytic_account"), ("state", "=", "activated")], []
            ),
        )
        if not activated:
            raise JobRejected(
                ExportJobFailureReasonType.INVALID_CONFIGURATION,
                f"Tryton database {self.settings.database!r} has no analytic accounts (module "
                "analytic_account is not activated): activate it in Tryton to synchronise "
                "dimensions as Pleo tags, or leave tags out of pleo-export sync",
            )
        rows = await self._read(
            "reading the analytic accounts",
            client.search_read(
                "analytic_account.account",
                [("company", "=", books.company.id), ANY_ACTIVE],
                ["name", "code", "type", "root", "state", "active"],
                order=[("code", "ASC"), ("id", "ASC")],
            ),
        )

        def archived(row: dict[str, Any]) -> bool:
            return row.get("state") == "closed" or not row.get("active", True)

        values: dict[int, list[DimensionValue]] = {}
        for row in rows:
            if row.get("type") == "normal" and row.get("root"):
                values.setdefault(int(row["root"]), []).append(
                    DimensionValue(
                        code=str(row.get("code") or row["name"]),
                        name=str(row["name"]),
                        archived=archived(row),
                    )
                )
        return [
            AccountingDimension(
                code=str(row.get("code") or row["name"]),
                name=str(row["name"]),
                values=tuple(values.get(row["id"], ())),
                archived=archived(row),
            )
            for row in rows
            if row.get("type") == "root"
        ]

    # --- creating vendors ---------------------------------------------------------------------

    async def _existing(self, draft: VendorDraft) -> AccountingVendor | None:
        client, books = self._require()
        base = await self._vendor_domain(client)
        active = [clause for clause in base if clause != ANY_ACTIVE]
        if draft.tax_registration_number:
            ids = await books.tax_number_parties(draft.tax_registration_number)
            if ids:
                found = await self._vendors([*active, ("id", "in", ids)])
                if found:
                    return found[0]
        found = await self._vendors([*active, ("name", "ilike", draft.name.strip())])
        wanted = draft.name.strip().casefold()
        return next((v for v in found if v.name.strip().casefold() == wanted), None)

    async def create_vendor(self, draft: VendorDraft) -> AccountingVendor:
        """A party for ``draft``, or the party it is already (see the module)."""
        client, _ = self._require()
        doing = f"creating party {draft.name!r}"
        try:
            existing = await self._existing(draft)
            if existing is not None:
                return existing
            values: dict[str, Any] = {"name": draft.name.strip()}
            address: dict[str, Any] = {"invoice": True}
            if draft.country:
                countries = await client.search_read(
                    "country.country", [("code", "=", draft.country.upper())], ["code"]
                )
                if countries:
                    address["country"] = countries[0]["id"]
                else:
                    self.log.warning(
                        "country %s is not in Tryton: party %r gets an address without it",
                        draft.country,
                        draft.name,
                    )
            values["addresses"] = [("create", [address])]
            if self.settings.vendor_category is not None:
                category = await client.search_read(
                    "party.category", [("name", "=", self.settings.vendor_category)], ["id"]
                )
                values["categories"] = [("add", [category[0]["id"]])]
            party = await self._create_party(client, values, draft)
            (vendor,) = await self._vendors([ANY_ACTIVE, ("id", "=", party)])
        except TrytonError as error:
            mapped = to_connector_error(error, doing)
            if isinstance(mapped, ItemRejected):
                raise mapped from error
            raise self._job_level(mapped) from error
        self.log.info(
            "created Tryton party %s (code %s) for vendor %r", party, vendor.code, draft.name
        )
        return vendor

    async def _create_party(
        self, client: TrytonClient, values: dict[str, Any], draft: VendorDraft
    ) -> int:
        """Create the party, with the tax number as an identifier without a type."""
        number = (draft.tax_registration_number or "").strip()
        if number:
            values = {**values, "identifiers": [("create", [{"type": None, "code": number}])]}
        (party,) = await client.model("party.party", "create", [values], write=True)
        return int(party)


def _tax_number(identifier: dict[str, Any]) -> str | None:
    """A tax identifier as Pleo writes tax numbers: compact, with its country prefix (Tryton
    keeps ``gb_vat`` numbers as ``245 7193 48``)."""
    code = "".join(str(identifier.get("code") or "").split())
    if not code:
        return None
    kind = str(identifier.get("type") or "")
    country = kind[:2].upper() if kind.endswith("_vat") and kind[:2] != "eu" else ""
    if country and not code[:2].isalpha():
        code = country + code
    return code
