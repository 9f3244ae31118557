"""The difference between the accounting system's master data and Pleo's, as a typed plan.

The accounting system is the source of truth for vendors, tax codes and dimensions (tag groups
and their tags). :func:`diff_vendors`, :func:`diff_tax_codes` and :func:`diff_tags` match each
record of the accounting system with one record in Pleo (vendors on external id, then code,
then tax registration number, then name; tax codes, tag groups and tags on code, then name) and
plan one :class:`Change` per record:

* ``create``: nothing in Pleo matches it;
* ``update``: a field differs (listed old -> new in :attr:`Change.changes`), or it is archived
  in Pleo but open in the accounting system;
* ``activate``: it matches a vendor Pleo holds as a draft, which is activated with its code and
  external id;
* ``archive``: it is archived in the accounting system, or it is open in Pleo and the
  accounting system no longer has it. Nothing is ever deleted: Pleo may have used it;
* ``unchanged``: Pleo holds it as the accounting system does.

A field the accounting system leaves empty (``None``) is not compared: Pleo keeps what it has.
Draft vendors that match nothing are left to the vendor flow (:mod:`pleo_export.sync.drafts`).
Nothing here talks to anything: the same inputs give the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from pleo_export.masterdata import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    DimensionValue,
)

__all__ = [
    "Action",
    "Change",
    "Entity",
    "FieldChange",
    "Kind",
    "PleoRecord",
    "RecordState",
    "SyncPlan",
    "diff_tags",
    "diff_tax_codes",
    "diff_vendors",
    "normalise_rate",
]

FieldValue = str | None


class Kind(StrEnum):
    """What ``pleo-export sync`` synchronises, as named on its command line."""

    VENDORS = "vendors"
    TAX_CODES = "tax-codes"
    TAGS = "tags"


class Entity(StrEnum):
    VENDOR = "vendor"
    TAX_CODE = "tax code"
    TAG_GROUP = "tag group"
    TAG = "tag"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ACTIVATE = "activate"
    ARCHIVE = "archive"
    UNCHANGED = "unchanged"


class RecordState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DRAFT = "draft"
    """Vendors only: created in Pleo, waiting for the accounting system."""


@dataclass(frozen=True)
class PleoRecord:
    """A vendor, tax code, tag group or tag as Pleo holds it, reduced to what sync compares."""

    id: str
    fields: Mapping[str, FieldValue]
    state: RecordState = RecordState.ACTIVE
    group_id: str | None = None
    """Tags: the id of their tag group."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Tag groups: Pleo's metadata, sent back unchanged with an update."""

    def get(self, name: str) -> FieldValue:
        return self.fields.get(name)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: FieldValue
    new: FieldValue

    def describe(self) -> str:
        return f"{self.field}: {_shown(self.old)} -> {_shown(self.new)}"


def _shown(value: FieldValue) -> str:
    return "(none)" if value is None else repr(value)


@dataclass(frozen=True)
class Change:
    """One planned write (or ``unchanged``) for one record."""

    kind: Kind
    entity: Entity
    action: Action
    code: str
    name: str
    pleo_id: str | None = None
    """The Pleo record it concerns; ``None`` for ``create``."""
    changes: tuple[FieldChange, ...] = ()
    desired: Mapping[str, FieldValue] = field(default_factory=dict)
    """Every field as the accounting system has it (what create and update send)."""
    group_code: str | None = None
    """Tags: the code of their tag group in the accounting system."""
    group_id: str | None = None
    """Tags: their tag group's id in Pleo, when it exists already."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Tag groups: the metadata Pleo holds, kept by an update."""

    @property
    def writes(self) -> bool:
        return self.action is not Action.UNCHANGED

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "entity": self.entity.value,
            "action": self.action.value,
            "code": self.code,
            "name": self.name,
            "pleo_id": self.pleo_id,
            "group": self.group_code,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in self.changes],
        }


@dataclass(frozen=True)
class SyncPlan:
    """The planned changes of one kind, in the order they are applied."""

    kind: Kind
    changes: tuple[Change, ...]

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)

    @property
    def writes(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.writes)


def normalise_rate(rate: Decimal | float | str) -> str:
    """A tax rate (a fraction) as a canonical string, so ``0.25`` and ``0.250`` compare equal."""
    value = Decimal(str(rate)).normalize()
    text = format(value, "f")
    return text if text not in ("-0", "") else "0"


def _tax_number(value: FieldValue) -> str | None:
    if not value:
        return None
    return "".join(value.split()).upper()


def _name_key(value: FieldValue) -> str | None:
    if not value:
        return None
    return " ".join(value.split()).casefold()


class _Matcher:
    """Finds, for each accounting record, the Pleo record it stands for (each used once)."""

    def __init__(
        self,
        records: Iterable[PleoRecord],
        keys: Sequence[tuple[str, Callable[[FieldValue], str | None]]],
    ) -> None:
        self.records = list(records)
        self.keys = keys
        self.used: set[str] = set()
        self.index: list[dict[str, list[PleoRecord]]] = []
        for name, normalise in keys:
            by_value: dict[str, list[PleoRecord]] = {}
            for record in self.records:
                value = normalise(record.get(name))
                if value is not None:
                    by_value.setdefault(value, []).append(record)
            self.index.append(by_value)

    def take(self, wanted: Mapping[str, FieldValue]) -> PleoRecord | None:
        for (name, normalise), by_value in zip(self.keys, self.index, strict=True):
            value = normalise(wanted.get(name))
            if value is None:
                continue
            candidates = [r for r in by_value.get(value, []) if r.id not in self.used]
            # An open record wins over an archived one of the same key.
            candidates.sort(key=lambda r: r.state is RecordState.ARCHIVED)
            if candidates:
                self.used.add(candidates[0].id)
                return candidates[0]
        return None

    def left_over(self) -> list[PleoRecord]:
        return [r for r in self.records if r.id not in self.used]


def _same(key: str, old: FieldValue, new: FieldValue) -> bool:
    if key == "tax_registration_number":
        return _tax_number(old) == _tax_number(new)
    return old == new


def _field_changes(desired: Mapping[str, FieldValue], record: PleoRecord) -> list[FieldChange]:
    return [
        FieldChange(key, record.get(key), value)
        for key, value in desired.items()
        if value is not None and not _same(key, record.get(key), value)
    ]


def _plan_one(
    kind: Kind,
    entity: Entity,
    code: str,
    name: str,
    desired: Mapping[str, FieldValue],
    archived: bool,
    record: PleoRecord | None,
    group_code: str | None = None,
    group_id: str | None = None,
) -> Change | None:
    def change(action: Action, changes: Sequence[FieldChange] = ()) -> Change:
        return Change(
            kind=kind,
            entity=entity,
            action=action,
            code=code,
            name=name,
            pleo_id=record.id if record is not None else None,
            changes=tuple(changes),
            desired=dict(desired),
            group_code=group_code,
            group_id=group_id,
            metadata=record.metadata if record is not None else {},
        )

    if record is None:
        if archived:
            return None  # closed in the accounting system and unknown to Pleo: nothing to do
        return change(Action.CREATE, [FieldChange(k, None, v) for k, v in desired.items() if v])
    if archived:
        if record.state is RecordState.ARCHIVED:
            return change(Action.UNCHANGED)
        return change(Action.ARCHIVE, [FieldChange("state", record.state.value, "archived")])
    differences = _field_changes(desired, record)
    if record.state is RecordState.DRAFT:
        return change(Action.ACTIVATE, [*differences, FieldChange("state", "draft", "active")])
    if record.state is RecordState.ARCHIVED:
        differences.append(FieldChange("state", "archived", "active"))
    return change(Action.UPDATE if differences else Action.UNCHANGED, differences)


def _archive_left_over(
    kind: Kind,
    entity: Entity,
    records: Iterable[PleoRecord],
    group_code: str | None = None,
    group_id: str | None = None,
) -> list[Change]:
    """Pleo records the accounting system does not have: open ones are archived (drafts are
    the vendor flow's, archived ones stay as they are)."""
    return [
        Change(
            kind=kind,
            entity=entity,
            action=Action.ARCHIVE,
            code=record.get("code") or "",
            name=record.get("name") or "",
            pleo_id=record.id,
            changes=(FieldChange("state", "active", "archived"),),
            desired=dict(record.fields),
            group_code=group_code,
            group_id=group_id,
            metadata=record.metadata,
        )
        for record in records
        if record.state is RecordState.ACTIVE
    ]


# --- vendors ---------------------------------------------------------------------------------

VENDOR_KEYS: tuple[tuple[str, Callable[[FieldValue], str | None]], ...] = (
    ("external_id", lambda v: v or None),
    ("code", lambda v: v or None),
    ("tax_registration_number", _tax_number),
    ("name", _name_key),
)


def vendor_fields(vendor: AccountingVendor) -> dict[str, FieldValue]:
    return {
        "name": vendor.name,
        "code": vendor.code,
        "external_id": vendor.external_id,
        "default_currency": vendor.currency,
        "country": vendor.country,
        "tax_registration_number": vendor.tax_registration_number,
        "registration_number": vendor.registration_number,
    }


def diff_vendors(accounting: Iterable[AccountingVendor], pleo: Iterable[PleoRecord]) -> SyncPlan:
    matcher = _Matcher(pleo, VENDOR_KEYS)
    changes: list[Change] = []
    # Open vendors first, so that an archived duplicate never takes an open one's match.
    for vendor in sorted(accounting, key=lambda v: v.archived):
        desired = vendor_fields(vendor)
        record = matcher.take(desired)
        change = _plan_one(
            Kind.VENDORS, Entity.VENDOR, vendor.code, vendor.name, desired, vendor.archived, record
        )
        if change is not None:
            changes.append(change)
    changes += _archive_left_over(Kind.VENDORS, Entity.VENDOR, matcher.left_over())
    return SyncPlan(Kind.VENDORS, tuple(changes))


# --- tax codes -------------------------------------------------------------------------------

CODE_KEYS: tuple[tuple[str, Callable[[FieldValue], str | None]], ...] = (
    ("code", lambda v: v or None),
    ("name", _name_key),
)


def tax_code_fields(tax: AccountingTaxCode) -> dict[str, FieldValue]:
    return {
        "code": tax.code,
        "name": tax.name,
        "rate": normalise_rate(tax.rate),
        "type": tax.type.value,
        "ingoing_tax_account": tax.ingoing_tax_account,
        "outgoing_tax_account": tax.outgoing_tax_account,
    }


def diff_tax_codes(accounting: Iterable[AccountingTaxCode], pleo: Iterable[PleoRecord]) -> SyncPlan:
    matcher = _Matcher(pleo, CODE_KEYS)
    changes: list[Change] = []
    for tax in sorted(accounting, key=lambda t: t.archived):
        desired = tax_code_fields(tax)
        record = matcher.take(desired)
        change = _plan_one(
            Kind.TAX_CODES, Entity.TAX_CODE, tax.code, tax.name, desired, tax.archived, record
        )
        if change is not None:
            changes.append(change)
    changes += _archive_left_over(Kind.TAX_CODES, Entity.TAX_CODE, matcher.left_over())
    return SyncPlan(Kind.TAX_CODES, tuple(changes))


# --- dimensions: tag groups and tags ---------------------------------------------------------


def _named(code: str, name: str) -> dict[str, FieldValue]:
    return {"code": code, "name": name}


def diff_tags(
    accounting: Iterable[AccountingDimension],
    groups: Iterable[PleoRecord],
    tags: Iterable[PleoRecord],
) -> SyncPlan:
    """Dimensions become tag groups, their values tags. ``tags`` are every tag of every group
    in ``groups`` (each with its ``group_id``)."""
    group_matcher = _Matcher(groups, CODE_KEYS)
    tags_by_group: dict[str, list[PleoRecord]] = {}
    for tag in tags:
        tags_by_group.setdefault(tag.group_id or "", []).append(tag)
    changes: list[Change] = []
    for dimension in sorted(accounting, key=lambda d: d.archived):
        record = group_matcher.take(_named(dimension.code, dimension.name))
        change = _plan_one(
            Kind.TAGS,
            Entity.TAG_GROUP,
            dimension.code,
            dimension.name,
            _named(dimension.code, dimension.name),
            dimension.archived,
            record,
        )
        if change is not None:
            changes.append(change)
        if dimension.archived:
            continue  # an archived group hides its tags; they stay as they are
        existing = tags_by_group.get(record.id, []) if record is not None else []
        changes += _diff_values(dimension, record, existing)
    changes += _archive_left_over(Kind.TAGS, Entity.TAG_GROUP, group_matcher.left_over())
    return SyncPlan(Kind.TAGS, tuple(changes))


def _diff_values(
    dimension: AccountingDimension, group: PleoRecord | None, existing: list[PleoRecord]
) -> list[Change]:
    matcher = _Matcher(existing, CODE_KEYS)
    group_id = group.id if group is not None else None
    changes: list[Change] = []
    values: list[DimensionValue] = sorted(dimension.values, key=lambda v: v.archived)
    for value in values:
        desired = _named(value.code, value.name)
        record = matcher.take(desired)
        change = _plan_one(
            Kind.TAGS,
            Entity.TAG,
            value.code,
            value.name,
            desired,
            value.archived,
            record,
            group_code=dimension.code,
            group_id=group_id,
        )
        if change is not None:
            changes.append(change)
    changes += _archive_left_over(
        Kind.TAGS, Entity.TAG, matcher.left_over(), group_code=dimension.code, group_id=group_id
    )
    return changes
