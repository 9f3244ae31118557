"""Pleo's master data as the diff compares it: :class:`~pleo_export.sync.diff.PleoRecord`.

The only module of the sync package that reads Pleo's master-data models; the diff itself knows
nothing of the wire.
"""

from __future__ import annotations

from pleo_export.pleo.masterdata_models import (
    PleoTag,
    PleoTagGroup,
    PleoTaxCode,
    PleoVendor,
    VendorState,
)
from pleo_export.sync.diff import PleoRecord, RecordState, normalise_rate

_VENDOR_STATES = {
    VendorState.ACTIVE: RecordState.ACTIVE,
    VendorState.ARCHIVED: RecordState.ARCHIVED,
    VendorState.DRAFT: RecordState.DRAFT,
}


def _archived(flag: bool) -> RecordState:
    return RecordState.ARCHIVED if flag else RecordState.ACTIVE


def vendor_record(vendor: PleoVendor) -> PleoRecord:
    country = vendor.country if vendor.country and vendor.country != "UNDEFINED" else None
    return PleoRecord(
        id=vendor.id,
        fields={
            "name": vendor.name,
            "code": vendor.code,
            "external_id": vendor.external_id,
            "default_currency": vendor.default_currency,
            "country": country,
            "tax_registration_number": vendor.tax_registration_number,
            "registration_number": vendor.registration_number,
        },
        state=_VENDOR_STATES[vendor.state],
    )


def tax_code_record(tax: PleoTaxCode) -> PleoRecord:
    return PleoRecord(
        id=tax.id,
        fields={
            "code": tax.code,
            "name": tax.name,
            "rate": normalise_rate(tax.rate),
            "type": tax.type.value,
            "ingoing_tax_account": tax.ingoing_tax_account,
            "outgoing_tax_account": tax.outgoing_tax_account,
        },
        state=_archived(tax.archived),
    )


def tag_group_record(group: PleoTagGroup) -> PleoRecord:
    return PleoRecord(
        id=group.id,
        fields={"code": group.code, "name": group.name},
        state=_archived(group.archived),
        metadata=dict(group.metadata),
    )


def tag_record(tag: PleoTag) -> PleoRecord:
    return PleoRecord(
        id=tag.id,
        fields={"code": tag.code, "name": tag.name},
        state=_archived(tag.archived),
        group_id=tag.group_id,
    )
