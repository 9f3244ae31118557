"""Typed models of Pleo's master-data APIs: Vendors, Tax Code, Tags and Webhook Subscriptions.

Field names follow the OpenAPI specs (``pleo-vendors-openapi.yml`` ``VendorResponse``,
``pleo-tax-code-openapi.yml`` ``TaxCodeModel``, ``pleo-tags-openapi.yml`` ``TagGroupModel`` and
``TagModel``, ``pleo-webhook-subscriptions-openapi.yml`` ``SubscriptionModel``); attributes are
snake_case with the spec's camelCase as aliases. Like :mod:`pleo_export.pleo.models` they parse
leniently (unknown fields are ignored) and are frozen.

A tax rate is a fraction (25 % is ``Decimal("0.25")``), as the Tax Code API has it; it is read
into a :class:`~decimal.Decimal` through its JSON text, so ``0.2`` stays ``0.2``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from pleo_export.pleo.models import PleoModel, TaxType

__all__ = [
    "EXPORT_JOB_CREATED",
    "VENDOR_CREATED",
    "PleoSubscription",
    "PleoTag",
    "PleoTagGroup",
    "PleoTaxCode",
    "PleoVendor",
    "SubscriptionStatus",
    "VendorState",
]

EXPORT_JOB_CREATED = "v1.export-job.created"
"""The event type of a new export job (the payload's ``eventType``)."""
VENDOR_CREATED = "v1.vendor.created"
"""The event type of a vendor created in Pleo as a draft (``data`` is the vendor)."""


class VendorState(StrEnum):
    """``VendorState``: ``ACTIVE`` is in step with the accounting system, ``DRAFT`` still has
    to be created there, ``ARCHIVED`` is inactive (never deleted)."""

    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class SubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


class PleoVendor(PleoModel):
    """A vendor in Pleo (``VendorResponse``)."""

    id: str
    company_id: str
    name: str
    state: VendorState
    default_currency: str
    code: str | None = None
    """The accounting system's vendor number; what export items carry as ``vendor.code``."""
    external_id: str | None = None
    """The accounting system's stable id of the vendor."""
    country: str | None = None
    """ISO 3166-1 alpha-2, or ``UNDEFINED``."""
    tax_registration_number: str | None = None
    registration_number: str | None = None
    accounting_system: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PleoTaxCode(PleoModel):
    """A tax code in Pleo (``TaxCodeModel``)."""

    id: str
    company_id: str
    name: str
    rate: Decimal
    type: TaxType
    archived: bool
    code: str | None = None
    """The accounting system's tax code; what export lines carry as ``tax.code``."""
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None
    accounting_integration_system: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    _rate = field_validator("rate", mode="before")(_decimal)


class PleoTagGroup(PleoModel):
    """A tag group (``TagGroupModel``): one accounting dimension."""

    id: str
    company_id: str
    code: str
    name: str
    archived: bool
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PleoTag(PleoModel):
    """A tag (``TagModel``): one value of a dimension."""

    id: str
    group_id: str
    code: str
    archived: bool
    name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PleoSubscription(PleoModel):
    """A webhook subscription (``SubscriptionModel``).

    ``custom_headers`` and ``endpoint_auth`` may hold credentials of the receiving endpoint, so
    they are left out of ``repr()``; show them to nobody.
    """

    id: str
    endpoint_url: str
    event_types: tuple[str, ...]
    status: SubscriptionStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    custom_headers: dict[str, str] | None = Field(default=None, repr=False)
    endpoint_auth: dict[str, Any] | None = Field(default=None, repr=False)
