"""Master data as the accounting system knows it, and entries read back from it.

Connectors that declare the master-data capabilities (see :class:`pleo_export.Capability`)
answer with these models; ``pleo-export sync`` compares them with Pleo's Vendors, Tax Code and
Tags APIs and applies the difference. :class:`BookedEntry` is what a connector with
``read_booked`` says it booked for an export item, for reconciliation reports.

Amounts in :class:`BookedPosting` follow :mod:`pleo_export.ledger`: integers in minor units of
the wallet currency, a debit positive and a credit negative.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from pleo_export.pleo.models import TaxType


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AccountingVendor(_Frozen):
    """A vendor (supplier, party) in the accounting system."""

    name: str = Field(min_length=1)
    code: str = Field(min_length=1)
    """The vendor number people see in the accounting system; Pleo's ``VendorResponse.code``."""
    external_id: str = Field(min_length=1)
    """The system's stable identifier of the vendor; Pleo's ``VendorResponse.externalId``.
    May equal ``code`` when the system has nothing else."""
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    """The vendor's default currency (ISO 4217)."""
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2."""
    tax_registration_number: str | None = None
    registration_number: str | None = None
    archived: bool = False
    """Closed or inactive in the accounting system: archived in Pleo, never deleted."""


class AccountingTaxCode(_Frozen):
    """A tax code in the accounting system."""

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    rate: Decimal = Field(ge=0, le=1)
    """A fraction, as Pleo's Tax Code API has it: 25 % is ``Decimal("0.25")``."""
    type: TaxType
    ingoing_tax_account: str | None = None
    outgoing_tax_account: str | None = None
    archived: bool = False


class DimensionValue(_Frozen):
    """One value of a dimension (a tag in Pleo)."""

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    archived: bool = False


class AccountingDimension(_Frozen):
    """A dimension (cost centre, project, department...): a tag group in Pleo."""

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    values: tuple[DimensionValue, ...] = ()
    archived: bool = False


class VendorDraft(_Frozen):
    """A vendor created in Pleo (state ``DRAFT``) that the accounting system should create.

    Carries what Pleo knows of it; the connector chooses the code and external id and answers
    the :class:`AccountingVendor` it created, which pleo-export then activates in Pleo.
    """

    pleo_id: str
    name: str
    currency: str
    country: str | None = None
    tax_registration_number: str | None = None
    registration_number: str | None = None


class BookedPosting(_Frozen):
    """One line as the accounting system holds it."""

    account: str
    """The account code in the accounting system."""
    amount: int
    """Minor units of ``currency``; debit positive, credit negative."""
    currency: str
    tax_code: str | None = None


class BookedEntry(_Frozen):
    """What the accounting system holds for one export item (found by its reference)."""

    reference: str
    """The reference the engine posted under (``PostingPlan.reference``)."""
    external_id: str | None = None
    postings: tuple[BookedPosting, ...] = ()
