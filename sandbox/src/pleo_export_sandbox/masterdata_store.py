"""The sandbox's master data per company: vendors, tax codes, tag groups and tags, and
webhook subscriptions made through the Webhook Subscriptions API.

A company's master data is seeded from :data:`~pleo_export_sandbox.chart.DEMO_CHART` the first
time it is used (unless ``SandboxConfig.seed_master_data`` is off): its vendors as ``ACTIVE``,
its tax codes and tag groups unarchived, each with the id the generated export items carry.

Where Pleo's specs are silent the sandbox chooses (inferred, not documented by Pleo):

* a vendor created with an ``externalId`` is ``ACTIVE`` (it comes from the accounting system),
  one created without is a ``DRAFT`` and fires ``v1.vendor.created``;
* a second vendor with the same ``code`` or ``externalId`` in a company is 409;
* a second tax code, tag group or tag (within its group) with the same ``code`` is 409
  ``CONFLICT``; archived ones count too, since they are unarchived rather than recreated;
* ``GET /v0/tag-groups/{groupId}/tags`` leaves archived tags out unless
  ``include_archived=true``.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pleo_export.pleo.models import format_timestamp
from pleo_export_sandbox.chart import DEMO_CHART, Chart, stable_uuid
from pleo_export_sandbox.records import ApiError

VENDOR_STATES = ("DRAFT", "ACTIVE", "ARCHIVED")
TAX_TYPES = ("inclusive", "exclusive", "reverse")
EVENT_TYPES = ("v1.export-job.created", "v1.vendor.created")
"""The event types the sandbox emits (and accepts in a subscription)."""


def conflict(message: str) -> ApiError:
    return ApiError(409, "CONFLICT", message)


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found: {ident}")


def _put(wire: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        wire[key] = value


@dataclass
class VendorRecord:
    id: str
    company_id: str
    seq: int
    name: str
    state: str
    default_currency: str
    created_at: datetime
    updated_at: datetime
    code: str | None = None
    external_id: str | None = None
    country: str | None = None
    tax_registration_number: str | None = None
    registration_number: str | None = None

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "companyId": self.company_id,
            "name": self.name,
            "state": self.state,
            "defaultCurrency": self.default_currency,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }
        _put(wire, "code", self.code)
        _put(wire, "externalId", self.external_id)
        _put(wire, "country", self.country)
        _put(wire, "taxRegistrationNumber", self.tax_registration_number)
        _put(wire, "registrationNumber", self.registration_number)
        return wire


@dataclass
class TaxCodeRecord:
    id: str
    company_id: str
    seq: int
    name: str
    rate: Decimal
    type: str
    archived: bool
    created_at: datetime
    updated_at: datetime
    code: str | None = None
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "companyId": self.company_id,
            "name": self.name,
            "code": self.code,
            "rate": float(self.rate),
            "type": self.type,
            "archived": self.archived,
            "ingoingTaxAccount": self.ingoing_tax_account,
            "outgoingTaxAccount": self.outgoing_tax_account,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass
class TagGroupRecord:
    id: str
    company_id: str
    seq: int
    code: str
    name: str
    archived: bool
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "companyId": self.company_id,
            "code": self.code,
            "name": self.name,
            "archived": self.archived,
            "metadata": dict(self.metadata),
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass
class TagRecord:
    id: str
    group_id: str
    company_id: str
    seq: int
    code: str
    archived: bool
    created_at: datetime
    updated_at: datetime
    name: str | None = None

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "groupId": self.group_id,
            "code": self.code,
            "archived": self.archived,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }
        _put(wire, "name", self.name)
        return wire


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class SubscriptionRecord:
    id: str
    company_id: str
    seq: int
    endpoint_url: str
    event_types: list[str]
    status: str
    created_at: datetime
    updated_at: datetime
    secret: str = field(default_factory=new_secret, repr=False)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpointUrl": self.endpoint_url,
            "eventTypes": list(self.event_types),
            "status": self.status,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass
class CompanyMasterData:
    vendors: dict[str, VendorRecord] = field(default_factory=dict)
    tax_codes: dict[str, TaxCodeRecord] = field(default_factory=dict)
    tag_groups: dict[str, TagGroupRecord] = field(default_factory=dict)
    tags: dict[str, TagRecord] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)

    def active_vendors(self) -> list[VendorRecord]:
        return sorted(
            (v for v in self.vendors.values() if v.state == "ACTIVE"), key=lambda v: v.seq
        )

    def open_tax_codes(self) -> list[TaxCodeRecord]:
        return sorted((t for t in self.tax_codes.values() if not t.archived), key=lambda t: t.seq)

    def open_tags(self) -> list[tuple[TagGroupRecord, list[TagRecord]]]:
        """Unarchived groups with their unarchived tags (groups without any are left out)."""
        found = []
        for group in sorted(self.tag_groups.values(), key=lambda g: g.seq):
            if group.archived:
                continue
            tags = sorted(
                (t for t in self.tags.values() if t.group_id == group.id and not t.archived),
                key=lambda t: t.seq,
            )
            if tags:
                found.append((group, tags))
        return found


class MasterDataStore:
    """Master data of every company, created (and seeded) on first use."""

    def __init__(
        self, now: Callable[[], datetime], *, seed: bool = True, chart: Chart = DEMO_CHART
    ) -> None:
        self.now = now
        self.seed = seed
        self.chart = chart
        self._companies: dict[str, CompanyMasterData] = {}
        self._seq = 0
        self.on_vendor_created: list[Callable[[VendorRecord], None]] = []
        """Called for each vendor created as a ``DRAFT`` (the webhook emitter listens)."""

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def company(self, company_id: str) -> CompanyMasterData:
        data = self._companies.get(company_id)
        if data is None:
            data = self._companies[company_id] = CompanyMasterData()
            if self.seed:
                self._seed(company_id, data)
        return data

    def companies(self) -> Iterable[tuple[str, CompanyMasterData]]:
        return self._companies.items()

    def _seed(self, company_id: str, data: CompanyMasterData) -> None:
        now = self.now()
        for v in self.chart.vendors:
            data.vendors[v.id] = VendorRecord(
                id=v.id,
                company_id=company_id,
                seq=self.next_seq(),
                name=v.name,
                state="ACTIVE",
                default_currency=v.default_currency,
                created_at=now,
                updated_at=now,
                code=v.code,
                external_id=v.external_id,
                country=v.country,
                tax_registration_number=v.tax_registration_number,
                registration_number=v.registration_number,
            )
        for t in self.chart.tax_codes:
            data.tax_codes[t.id] = TaxCodeRecord(
                id=t.id,
                company_id=company_id,
                seq=self.next_seq(),
                name=t.name,
                rate=t.rate,
                type=t.type,
                archived=False,
                created_at=now,
                updated_at=now,
                code=t.code,
                ingoing_tax_account=t.ingoing_tax_account,
                outgoing_tax_account=t.outgoing_tax_account,
            )
        for g in self.chart.tag_groups:
            group_id = stable_uuid(f"tag-group:{g.code}")
            data.tag_groups[group_id] = TagGroupRecord(
                group_id, company_id, self.next_seq(), g.code, g.name, False, now, now
            )
            for tag in g.tags:
                data.tags[tag.id] = TagRecord(
                    tag.id,
                    group_id,
                    company_id,
                    self.next_seq(),
                    tag.code,
                    False,
                    now,
                    now,
                    tag.name,
                )

    # --- vendors ------------------------------------------------------------------------------

    def find_vendor(self, company_ids: Iterable[str], vendor_id: str) -> VendorRecord:
        for company_id in company_ids:
            vendor = self.company(company_id).vendors.get(vendor_id)
            if vendor is not None:
                return vendor
        raise not_found("Vendor", vendor_id)

    def _vendor_clash(
        self, data: CompanyMasterData, code: str | None, external_id: str | None, own: str | None
    ) -> None:
        for other in data.vendors.values():
            if other.id == own:
                continue
            if code is not None and other.code == code:
                raise conflict(f"Vendor already exists: code {code!r} is vendor {other.id}")
            if external_id is not None and other.external_id == external_id:
                raise conflict(
                    f"Vendor already exists: externalId {external_id!r} is vendor {other.id}"
                )

    def create_vendor(self, company_id: str, fields: dict[str, Any]) -> VendorRecord:
        """A new vendor from validated snake_case ``fields``; ``DRAFT`` without an external id
        (and then ``on_vendor_created`` fires)."""
        data = self.company(company_id)
        self._vendor_clash(data, fields.get("code"), fields.get("external_id"), None)
        now = self.now()
        state = "ACTIVE" if fields.get("external_id") else "DRAFT"
        vendor = VendorRecord(
            id=str(uuid.uuid4()),
            company_id=company_id,
            seq=self.next_seq(),
            state=state,
            created_at=now,
            updated_at=now,
            **fields,
        )
        data.vendors[vendor.id] = vendor
        if state == "DRAFT":
            for listener in self.on_vendor_created:
                listener(vendor)
        return vendor

    def update_vendor(self, vendor: VendorRecord, fields: dict[str, Any]) -> VendorRecord:
        data = self.company(vendor.company_id)
        self._vendor_clash(data, fields.get("code"), fields.get("external_id"), vendor.id)
        for name in (
            "code",
            "external_id",
            "country",
            "tax_registration_number",
            "registration_number",
        ):
            setattr(vendor, name, fields.get(name))
        vendor.name = fields["name"]
        vendor.default_currency = fields["default_currency"]
        vendor.state = fields["state"]
        vendor.updated_at = self.now()
        return vendor

    def set_vendor_state(
        self,
        vendor: VendorRecord,
        state: str,
        *,
        code: str | None = None,
        external_id: str | None = None,
    ) -> None:
        if external_id is not None:
            self._vendor_clash(self.company(vendor.company_id), code, external_id, vendor.id)
            vendor.external_id = external_id
            if code is not None:
                vendor.code = code
        vendor.state = state
        vendor.updated_at = self.now()

    # --- tax codes ----------------------------------------------------------------------------

    def find_tax_code(self, company_ids: Iterable[str], tax_code_id: str) -> TaxCodeRecord:
        for company_id in company_ids:
            found = self.company(company_id).tax_codes.get(tax_code_id)
            if found is not None:
                return found
        raise not_found("Tax code", tax_code_id)

    def save_tax_code(
        self, company_id: str, fields: dict[str, Any], existing: TaxCodeRecord | None = None
    ) -> TaxCodeRecord:
        data = self.company(company_id)
        code = fields.get("code")
        own = existing.id if existing is not None else None
        if code is not None:
            for other in data.tax_codes.values():
                if other.id != own and other.code == code:
                    raise conflict(f"Tax code {code!r} exists already (tax code {other.id})")
        now = self.now()
        if existing is None:
            existing = TaxCodeRecord(
                id=str(uuid.uuid4()),
                company_id=company_id,
                seq=self.next_seq(),
                created_at=now,
                updated_at=now,
                **fields,
            )
            data.tax_codes[existing.id] = existing
            return existing
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.updated_at = now
        return existing

    # --- tag groups and tags ------------------------------------------------------------------

    def find_group(self, company_ids: Iterable[str], group_id: str) -> TagGroupRecord:
        for company_id in company_ids:
            found = self.company(company_id).tag_groups.get(group_id)
            if found is not None:
                return found
        raise not_found("Tag group", group_id)

    def find_tag(self, company_ids: Iterable[str], tag_id: str) -> TagRecord:
        for company_id in company_ids:
            found = self.company(company_id).tags.get(tag_id)
            if found is not None:
                return found
        raise not_found("Tag", tag_id)

    def save_group(
        self, company_id: str, fields: dict[str, Any], existing: TagGroupRecord | None = None
    ) -> TagGroupRecord:
        data = self.company(company_id)
        own = existing.id if existing is not None else None
        for other in data.tag_groups.values():
            if other.id != own and other.code == fields["code"]:
                raise conflict(f"Tag group {fields['code']!r} exists already ({other.id})")
        now = self.now()
        if existing is None:
            existing = TagGroupRecord(
                id=str(uuid.uuid4()),
                company_id=company_id,
                seq=self.next_seq(),
                created_at=now,
                updated_at=now,
                **fields,
            )
            data.tag_groups[existing.id] = existing
            return existing
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.updated_at = now
        return existing

    def save_tag(
        self, group: TagGroupRecord, fields: dict[str, Any], existing: TagRecord | None = None
    ) -> TagRecord:
        data = self.company(group.company_id)
        own = existing.id if existing is not None else None
        for other in data.tags.values():
            if other.group_id == group.id and other.id != own and other.code == fields["code"]:
                raise conflict(
                    f"Tag {fields['code']!r} exists already in group {group.code} ({other.id})"
                )
        now = self.now()
        if existing is None:
            existing = TagRecord(
                id=str(uuid.uuid4()),
                group_id=group.id,
                company_id=group.company_id,
                seq=self.next_seq(),
                created_at=now,
                updated_at=now,
                **fields,
            )
            data.tags[existing.id] = existing
            return existing
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.updated_at = now
        return existing

    # --- subscriptions ------------------------------------------------------------------------

    def find_subscription(self, company_ids: Iterable[str], ident: str) -> SubscriptionRecord:
        for company_id in company_ids:
            found = self.company(company_id).subscriptions.get(ident)
            if found is not None:
                return found
        raise not_found("Subscription", ident)

    def save_subscription(
        self,
        company_id: str,
        fields: dict[str, Any],
        existing: SubscriptionRecord | None = None,
    ) -> SubscriptionRecord:
        now = self.now()
        if existing is None:
            existing = SubscriptionRecord(
                id=str(uuid.uuid4()),
                company_id=company_id,
                seq=self.next_seq(),
                created_at=now,
                updated_at=now,
                **fields,
            )
            self.company(company_id).subscriptions[existing.id] = existing
            return existing
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.updated_at = now
        return existing

    def delete_subscription(self, subscription: SubscriptionRecord) -> None:
        self.company(subscription.company_id).subscriptions.pop(subscription.id, None)

    def subscribers(self, company_id: str, event_type: str) -> list[SubscriptionRecord]:
        """Active API subscriptions of ``company_id`` to ``event_type``."""
        return [
            s
            for s in sorted(self.company(company_id).subscriptions.values(), key=lambda s: s.seq)
            if s.status == "ACTIVE" and event_type in s.event_types
        ]
