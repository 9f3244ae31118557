"""Vendors created in Pleo as drafts: create them in the accounting system, then activate them.

A vendor someone creates in Pleo starts as ``DRAFT`` (Pleo announces it with
``v1.vendor.created``). For each draft, :class:`DraftVendors` asks the connector to create it
(``create_vendor``, capability ``create_vendors``) and then activates it in Pleo with the code
and external id the accounting system gave it (``POST /v1/vendors/{id}:activate``). When the
connector cannot create vendors, or refuses this one (:class:`~pleo_export.ItemRejected`), the
draft stays a draft and the outcome says why.

A worker serving several companies runs one :class:`DraftVendors` per company (its own
connector and ``company_id``), gathered in a :class:`VendorFlow`: a vendor a webhook announces
is read once from Pleo (``GET /v1/vendors/{id}`` answers the vendor of any company the
credential serves, with its ``companyId``) and handled by its company's flow only.

Safe to repeat: only vendors Pleo still holds as drafts are handled (a redelivered webhook
finds the vendor active and does nothing), and a connector answers the vendor it created
earlier instead of creating a second one (the ``create_vendor`` contract), so a run
interrupted between the two writes activates it the next time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import anyio

from pleo_export.connector import Capability, Connector, ConnectorError, ItemRejected
from pleo_export.logs import redact
from pleo_export.masterdata import VendorDraft
from pleo_export.outage import pleo_outage
from pleo_export.pleo.errors import NotFound, PleoHttpError
from pleo_export.pleo.masterdata_models import PleoVendor, VendorState
from pleo_export.pleo.models import ExportJobItemFailureReasonType

if TYPE_CHECKING:
    from pleo_export.pleo.masterdata import PleoMasterData

__all__ = ["DraftOutcome", "DraftStatus", "DraftVendors", "VendorFlow", "vendor_draft"]

log = logging.getLogger("pleo_export.sync.drafts")


class DraftStatus(StrEnum):
    ACTIVATED = "activated"
    """Created in the accounting system (or found there) and activated in Pleo."""
    NOT_CREATED = "not_created"
    """The connector cannot create vendors; someone has to, then run ``sync vendors``."""
    REJECTED = "rejected"
    """The connector refused to create it; the message says what to change."""
    FAILED = "failed"
    """Creating or activating it failed for a passing reason; the next round tries again."""


@dataclass(frozen=True)
class DraftOutcome:
    vendor_id: str
    name: str
    status: DraftStatus
    message: str
    code: str | None = None
    external_id: str | None = None
    repeated: bool = False
    """Reported before with the same message (a poll finding the same draft again)."""
    company_id: str | None = None
    """The Pleo company the vendor belongs to (not part of :meth:`to_json`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "code": self.code,
            "external_id": self.external_id,
        }


def vendor_draft(vendor: PleoVendor) -> VendorDraft:
    country = vendor.country if vendor.country and vendor.country != "UNDEFINED" else None
    return VendorDraft(
        pleo_id=vendor.id,
        name=vendor.name,
        currency=vendor.default_currency,
        country=country,
        tax_registration_number=vendor.tax_registration_number,
        registration_number=vendor.registration_number,
    )


class DraftVendors:
    """Handles draft vendors for one company and connector; keeps what it reported, so a
    draft that cannot be created is logged once, not on every poll."""

    def __init__(self, connector: Connector[Any], pleo: PleoMasterData) -> None:
        self.connector = connector
        self.pleo = pleo
        self._reported: dict[str, str] = {}
        self._rejected: dict[str, tuple[object, DraftOutcome]] = {}
        """Vendor id -> (its ``updated_at``, the outcome): a rejected draft is offered to the
        connector again only once it changed in Pleo, unless the refusal was
        ``vendor_unknown`` (the connector waits for the accounting system to list it)."""
        self._lock = anyio.Lock()
        self.disabled: str | None = None
        """Why polling stopped (Pleo refused the Vendors API to this credential)."""

    @property
    def can_create(self) -> bool:
        return Capability.CREATE_VENDORS in type(self.connector).manifest.capabilities

    async def poll(self) -> list[DraftOutcome]:
        """Handle every draft vendor Pleo holds (one search request when there is none)."""
        if self.disabled is not None:
            return []
        try:
            drafts = await self.pleo.list_vendors(states=[VendorState.DRAFT])
        except PleoHttpError as error:
            if pleo_outage(error) is not None or error.status_code == 401:
                raise  # Pleo is down (the watch loop backs off), or the credential is refused
            # Pleo refuses the Vendors API to this credential (a missing scope, a company it
            # does not serve): the export goes on without the vendor flow.
            self.disabled = str(error)
            log.warning(
                "cannot list draft vendors in Pleo; new Pleo vendors are not handled",
                extra={"event": "vendor.drafts_unavailable", "reason": str(error)[:300]},
            )
            return []
        return await self._handle(drafts)

    async def handle_ids(self, vendor_ids: Iterable[str]) -> list[DraftOutcome]:
        """Handle the vendors a webhook announced: each is read from Pleo (the delivery's
        payload is not trusted) and handled while it is still a draft of this company."""
        return await self.handle(await read_vendors(self.pleo, vendor_ids))

    async def handle(self, vendors: Iterable[PleoVendor]) -> list[DraftOutcome]:
        """Handle ``vendors`` as read from Pleo: the drafts of this company; a vendor of
        another company is left to that company's flow (and logged)."""
        own: list[PleoVendor] = []
        for vendor in vendors:
            if vendor.company_id == self.pleo.company_id:
                own.append(vendor)
            else:
                _not_served(vendor)
        return await self._handle(own)

    async def _handle(self, vendors: list[PleoVendor]) -> list[DraftOutcome]:
        outcomes: list[DraftOutcome] = []
        async with self._lock:
            for vendor in vendors:
                if vendor.state is not VendorState.DRAFT:
                    continue  # activated already (a redelivery, or another worker)
                earlier = self._rejected.get(vendor.id)
                if earlier is not None and earlier[0] == vendor.updated_at:
                    outcomes.append(replace(earlier[1], repeated=True))
                    continue
                outcomes.append(await self._settle(vendor))
        return outcomes

    async def _settle(self, vendor: PleoVendor) -> DraftOutcome:
        manifest = type(self.connector).manifest
        if not self.can_create:
            return self._report(
                vendor,
                DraftStatus.NOT_CREATED,
                f"connector {manifest.id!r} cannot create vendors (it does not declare "
                f"create_vendors): create {vendor.name!r} in the accounting system, then run "
                "`pleo-export sync vendors` to activate it in Pleo",
            )
        try:
            created = await self.connector.create_vendor(vendor_draft(vendor))
        except ItemRejected as rejected:
            outcome = self._report(
                vendor,
                DraftStatus.REJECTED,
                f"connector {manifest.id!r} did not create {vendor.name!r}: {rejected.message}",
            )
            if rejected.reason_type is not ExportJobItemFailureReasonType.VENDOR_UNKNOWN:
                # Only a change in Pleo can help; vendor_unknown waits for the accounting
                # system to list the vendor, so that draft is offered again every round.
                self._rejected[vendor.id] = (vendor.updated_at, outcome)
            return outcome
        except Exception as error:  # the target is down, or a bug: try again next round
            text = redact(
                error.message
                if isinstance(error, ConnectorError)
                else f"{type(error).__name__}: {error}"
            )
            return self._report(
                vendor,
                DraftStatus.FAILED,
                f"connector {manifest.id!r} could not create {vendor.name!r} now ({text}); "
                "it is tried again on the next round",
            )
        try:
            await self.pleo.activate_vendor(vendor.id, created.code, created.external_id)
        except PleoHttpError as error:
            if pleo_outage(error) is not None or error.status_code == 401:
                raise
            return self._report(
                vendor,
                DraftStatus.FAILED,
                f"vendor {vendor.name!r} is {created.code} in the accounting system, but Pleo "
                f"refused to activate it ({error}); it is tried again on the next round",
            )
        self._reported.pop(vendor.id, None)
        message = (
            f"vendor {vendor.name!r} created in the accounting system as {created.code} "
            f"(external id {created.external_id}) and activated in Pleo"
        )
        log.info(
            message,
            extra={
                "event": "vendor.activated",
                "vendor_id": vendor.id,
                "code": created.code,
                "external_id": created.external_id,
            },
        )
        return DraftOutcome(
            vendor.id,
            vendor.name,
            DraftStatus.ACTIVATED,
            message,
            code=created.code,
            external_id=created.external_id,
            company_id=self.pleo.company_id,
        )

    def _report(self, vendor: PleoVendor, status: DraftStatus, message: str) -> DraftOutcome:
        repeated = self._reported.get(vendor.id) == message
        if not repeated:
            self._reported[vendor.id] = message
            log.warning(
                "draft vendor left as a draft in Pleo",
                extra={
                    "event": f"vendor.{status.value}",
                    "vendor_id": vendor.id,
                    "reason": message[:500],
                },
            )
        return DraftOutcome(
            vendor.id,
            vendor.name,
            status,
            message,
            repeated=repeated,
            company_id=self.pleo.company_id,
        )


async def read_vendors(pleo: PleoMasterData, vendor_ids: Iterable[str]) -> list[PleoVendor]:
    """The vendors ``vendor_ids`` name, each read once from Pleo (``GET /v1/vendors/{id}``).

    A vendor Pleo does not know, or refuses to show this credential, is logged and left out;
    an outage or a refused credential (401) is raised (the watch loop backs off or stops).
    """
    vendors: list[PleoVendor] = []
    for vendor_id in dict.fromkeys(vendor_ids):
        try:
            vendors.append(await pleo.get_vendor(vendor_id))
        except NotFound:
            log.warning(
                "a vendor announced by webhook is unknown to Pleo",
                extra={"event": "vendor.unknown", "vendor_id": vendor_id[:200]},
            )
        except PleoHttpError as error:
            if pleo_outage(error) is not None or error.status_code == 401:
                raise
            log.warning(
                "a vendor announced by webhook cannot be read from Pleo; polling handles it "
                "if its company's drafts can be listed",
                extra={
                    "event": "vendor.unreadable",
                    "vendor_id": vendor_id[:200],
                    "reason": str(error)[:300],
                },
            )
    return vendors


def _not_served(vendor: PleoVendor) -> None:
    log.warning(
        "a vendor announced by webhook belongs to a company this worker does not serve; left alone",
        extra={
            "event": "vendor.other_company",
            "vendor_id": vendor.id,
            "company_id": vendor.company_id,
        },
    )


class VendorFlow:
    """The vendor flow of every company a worker serves: one :class:`DraftVendors` per
    company, each with the connector of that company's engine and its own
    :class:`~pleo_export.pleo.masterdata.PleoMasterData`.

    A company whose credential is refused the Vendors API stops polling for that company only
    (its :attr:`DraftVendors.disabled`); the others go on.
    """

    def __init__(self, companies: Mapping[str, DraftVendors]) -> None:
        if not companies:
            raise ValueError("a vendor flow needs at least one company")
        self.companies = dict(companies)

    async def handle_ids(self, vendor_ids: Iterable[str]) -> list[DraftOutcome]:
        """Handle the vendors a webhook announced, each by the flow of the company Pleo says
        it belongs to (its ``companyId``, read from Pleo; the delivery is not trusted)."""
        reader = next(iter(self.companies.values())).pleo
        by_company: dict[str, list[PleoVendor]] = {}
        for vendor in await read_vendors(reader, vendor_ids):
            if vendor.company_id in self.companies:
                by_company.setdefault(vendor.company_id, []).append(vendor)
            else:
                _not_served(vendor)
        outcomes: list[DraftOutcome] = []
        for company_id, vendors in by_company.items():
            outcomes += await self.companies[company_id].handle(vendors)
        return outcomes

    async def poll(self, skip: Iterable[str] = ()) -> list[DraftOutcome]:
        """One search for drafts in every company whose connector can create vendors;
        ``skip`` names vendors handled already this round."""
        handled = set(skip)
        outcomes: list[DraftOutcome] = []
        for drafts in self.companies.values():
            if drafts.can_create:
                outcomes += [o for o in await drafts.poll() if o.vendor_id not in handled]
        return outcomes
