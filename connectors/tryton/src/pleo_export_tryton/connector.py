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

The connector is assembled from one class per concern, each in its own module: ``check``
(pre-export validation), ``accounts`` (parties, accounts, taxes), ``settlement`` (invoice
payments at the invoice's rate), ``documents`` (moves, supplier invoices and credit notes),
``prepare``, ``lookup`` (by reference), ``post`` (batched writing and receipts),
``reconcile`` and ``masterdata`` (vendors, taxes and analytic accounts for sync); ``base``
holds the state they share.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pleo_export import Capability, ConnectorError, ConnectorManifest, JobRejected, Limits, decimals
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export.attachments import extension_for as extension_for
from pleo_export_tryton.base import MAX_ATTACHMENT_BYTES as MAX_ATTACHMENT_BYTES
from pleo_export_tryton.base import VENDOR_UNKNOWN_MESSAGE as VENDOR_UNKNOWN_MESSAGE
from pleo_export_tryton.booked import TrytonBooked
from pleo_export_tryton.books import Books, Company
from pleo_export_tryton.check import TrytonCheck
from pleo_export_tryton.errors import classify_foreign, to_connector_error
from pleo_export_tryton.masterdata import TrytonMasterData
from pleo_export_tryton.post import TrytonPost
from pleo_export_tryton.prepare import TrytonPrepare
from pleo_export_tryton.rpc import TrytonClient, TrytonError
from pleo_export_tryton.settings import TrytonSettings


class TrytonConnector(TrytonCheck, TrytonPrepare, TrytonPost, TrytonBooked, TrytonMasterData):
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
                Capability.BATCH_POSTING,
                Capability.READ_BOOKED,
                Capability.READ_VENDORS,
                Capability.READ_TAX_CODES,
                Capability.READ_DIMENSIONS,
                Capability.CREATE_VENDORS,
            }
        ),
        limits=Limits(max_attachment_bytes=MAX_ATTACHMENT_BYTES, max_batch_size=25),
        settings_model=TrytonSettings,
    )

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

    def classify_error(self, error: BaseException) -> ConnectorError | None:
        return classify_foreign(error)

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
