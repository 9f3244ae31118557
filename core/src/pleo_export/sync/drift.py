"""Master-data drift: what would make export items fail, found before a job starts.

``pleo-export check`` asks :func:`find_drift` for two kinds of findings, for each kind of master
data the connector can list (``read_vendors``, ``read_tax_codes``, ``read_dimensions``):

* **in pending jobs**: a vendor, tax code or tag that items of a pending job carry and the
  accounting system does not have. Those items would fail (``vendor_unknown``,
  ``tax_code_unknown``, ``tag_unknown``): blocking.
* **in Pleo's master data**: what a sync would change. A vendor, tax code or tag open in Pleo
  that the accounting system lacks (or has closed, or knows under another code) can be chosen
  on expenses and then fails them: blocking. One the accounting system has and Pleo lacks
  cannot be chosen in Pleo yet: not blocking, ``pleo-export sync`` adds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pleo_export.connector import Connector
from pleo_export.masterdata import AccountingDimension, AccountingTaxCode, AccountingVendor
from pleo_export.pleo.errors import PleoHttpError
from pleo_export.pleo.models import ExportItem, ExportJob
from pleo_export.sync.diff import Action, Change, Entity, Kind, SyncPlan
from pleo_export.sync.runner import missing_capabilities, plan_kind, skip_reason

if TYPE_CHECKING:
    from pleo_export.pleo.client import PleoClient
    from pleo_export.pleo.masterdata import PleoMasterData

__all__ = ["Drift", "DriftReport", "find_drift"]

_IDENTITY_FIELDS = frozenset({"code", "external_id", "state"})
"""Fields whose difference makes items fail (the connector looks records up by them)."""


@dataclass(frozen=True)
class Drift:
    kind: Kind
    code: str
    name: str
    problem: str
    blocking: bool
    items: int = 0
    """Items of pending jobs affected (0 for a finding in Pleo's master data only)."""
    missing_in_pleo: bool = False
    """The accounting system has it and Pleo does not (what ``sync`` creates)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "missing_in_pleo": self.missing_in_pleo,
            "kind": self.kind.value,
            "code": self.code,
            "name": self.name,
            "problem": self.problem,
            "blocking": self.blocking,
            "items": self.items,
        }


@dataclass
class DriftReport:
    findings: list[Drift] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    """Kinds left out, with why (the connector cannot list them, Pleo refused the API)."""

    @property
    def blocking(self) -> list[Drift]:
        return [d for d in self.findings if d.blocking]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.blocking,
            "findings": [d.to_json() for d in self.findings],
            "not_checked": self.not_checked,
        }


@dataclass
class _Known:
    vendor_keys: set[str] = field(default_factory=set)
    tax_codes: set[str] = field(default_factory=set)
    tags: set[tuple[str, str]] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)


def _known_vendors(vendors: Iterable[AccountingVendor]) -> set[str]:
    keys: set[str] = set()
    for vendor in vendors:
        if vendor.archived:
            continue
        keys.update({f"code:{vendor.code}", f"external_id:{vendor.external_id}"})
        if vendor.tax_registration_number:
            keys.add(f"tax:{''.join(vendor.tax_registration_number.split()).upper()}")
    return keys


def _known_tax_codes(taxes: Iterable[AccountingTaxCode]) -> set[str]:
    return {tax.code for tax in taxes if not tax.archived}


def _known_tags(dimensions: Iterable[AccountingDimension]) -> set[tuple[str, str]]:
    return {
        (dimension.code, value.code)
        for dimension in dimensions
        if not dimension.archived
        for value in dimension.values
        if not value.archived
    }


async def find_drift(
    connector: Connector[Any],
    pleo: PleoMasterData,
    client: PleoClient,
    jobs: Sequence[ExportJob],
) -> DriftReport:
    """The drift of every kind the connector can list, in Pleo's master data and in the items
    of ``jobs`` (pending jobs)."""
    report = DriftReport()
    kinds = [k for k in Kind if not missing_capabilities(connector, [k])]
    report.not_checked += [skip_reason(connector, k) for k in Kind if k not in kinds]
    known = _Known()
    if Kind.VENDORS in kinds:
        known.vendor_keys = _known_vendors(await connector.list_vendors())
    if Kind.TAX_CODES in kinds:
        known.tax_codes = _known_tax_codes(await connector.list_tax_codes())
    if Kind.TAGS in kinds:
        dimensions = await connector.list_dimensions()
        known.tags = _known_tags(dimensions)
        known.groups = {d.code for d in dimensions}
    for kind in kinds:
        try:
            plan = await plan_kind(kind, connector, pleo)
        except PleoHttpError as error:
            if error.status_code not in (403, 404):
                raise
            report.not_checked.append(f"{kind.value} in Pleo's master data: {error}")
            continue
        report.findings += _plan_drift(plan)
    if kinds and jobs:
        report.findings += await _items_drift(client, jobs, kinds, known)
    return report


def _plan_drift(plan: SyncPlan) -> list[Drift]:
    found: list[Drift] = []
    for change in plan.changes:
        drift = _change_drift(change)
        if drift is not None:
            found.append(drift)
    return found


def _label(change: Change) -> str:
    if change.group_code:
        return f"{change.entity.value} {change.group_code}/{change.code}"
    return f"{change.entity.value} {change.code or change.name!r}"


def _change_drift(change: Change) -> Drift | None:
    drift = _drift_of(change)
    if drift is not None and change.group_code:
        return replace(drift, code=f"{change.group_code}/{change.code}")
    return drift


def _drift_of(change: Change) -> Drift | None:
    label = _label(change)
    if change.action is Action.CREATE:
        return Drift(
            change.kind,
            change.code,
            change.name,
            f"{label} is in the accounting system but not in Pleo, so nobody can choose it "
            "there yet: `pleo-export sync` adds it",
            blocking=False,
            missing_in_pleo=True,
        )
    if change.action is Action.ARCHIVE and change.entity is not Entity.TAG_GROUP:
        return Drift(
            change.kind,
            change.code,
            change.name,
            f"{label} is open in Pleo but missing or closed in the accounting system: items "
            "using it fail; `pleo-export sync` archives it in Pleo (or open it in the "
            "accounting system)",
            blocking=True,
        )
    if change.action is Action.ARCHIVE:
        return Drift(
            change.kind,
            change.code,
            change.name,
            f"{label} is open in Pleo but missing or closed in the accounting system: its tags "
            "fail items; `pleo-export sync` archives it in Pleo",
            blocking=True,
        )
    if change.action is Action.UPDATE:
        identity = [c for c in change.changes if c.field in _IDENTITY_FIELDS]
        differences = "; ".join(c.describe() for c in change.changes)
        return Drift(
            change.kind,
            change.code,
            change.name,
            f"{label} differs between Pleo and the accounting system ({differences}): "
            + (
                "items carrying Pleo's values fail; `pleo-export sync` updates Pleo"
                if identity
                else "`pleo-export sync` updates Pleo"
            ),
            blocking=bool(identity),
        )
    return None


async def _items_drift(
    client: PleoClient, jobs: Sequence[ExportJob], kinds: list[Kind], known: _Known
) -> list[Drift]:
    """What items of ``jobs`` carry that the accounting system lacks (reads their export
    items: one request per page)."""
    tally = _Tally(kinds, known)
    for job in jobs:
        async for page in client.iter_export_items(job.id):
            for raw in page:
                try:
                    item = ExportItem.model_validate(raw)
                except ValidationError:
                    continue  # the export reports it as malformed; not master data
                tally.add(item)
    vendors, taxes, tags = tally.vendors, tally.taxes, tally.tags
    found = [
        Drift(
            Kind.VENDORS,
            code,
            name,
            f"vendor {code!r} ({name}) is on items of pending jobs but not in the accounting "
            "system: they would fail with vendor_unknown; create it there, then "
            "`pleo-export sync vendors`",
            blocking=True,
            items=count,
        )
        for (code, name), count in sorted(vendors.items())
    ]
    found += [
        Drift(
            Kind.TAX_CODES,
            code,
            code,
            f"tax code {code!r} is on items of pending jobs but not in the accounting system: "
            "they would fail with tax_code_unknown; add it there, or change it in Pleo",
            blocking=True,
            items=count,
        )
        for code, count in sorted(taxes.items())
    ]
    found += [
        Drift(
            Kind.TAGS,
            f"{group}/{code}",
            code,
            f"tag {group}/{code} is on items of pending jobs but dimension {group} of the "
            "accounting system has no such value: they would fail with tag_unknown; add the "
            "value there, or change the tag in Pleo",
            blocking=True,
            items=count,
        )
        for (group, code), count in sorted(tags.items())
    ]
    return found


class _Tally:
    """Counts, per vendor, tax code and tag the accounting system lacks, the items using it."""

    def __init__(self, kinds: list[Kind], known: _Known) -> None:
        self.kinds = kinds
        self.known = known
        self.vendors: Counter[tuple[str, str]] = Counter()
        self.taxes: Counter[str] = Counter()
        self.tags: Counter[tuple[str, str]] = Counter()

    def add(self, item: ExportItem) -> None:
        if Kind.VENDORS in self.kinds and item.vendor is not None:
            vendor = item.vendor
            keys = {f"code:{vendor.code}", f"external_id:{vendor.external_id}"}
            if vendor.tax_registration_number:
                keys.add(f"tax:{''.join(vendor.tax_registration_number.split()).upper()}")
            if not keys & self.known.vendor_keys:
                self.vendors[(vendor.code or vendor.external_id or "", vendor.name)] += 1
        for line in item.accounting_entry_lines:
            code = line.tax.code if line.tax is not None else None
            if Kind.TAX_CODES in self.kinds and code and code not in self.known.tax_codes:
                self.taxes[code] += 1
            if Kind.TAGS not in self.kinds:
                continue
            for tag in line.tags or ():
                # A group that is no dimension of the accounting system is not booked by the
                # connector; only unknown values of known dimensions fail.
                known_group = tag.group_code in self.known.groups
                if known_group and (tag.group_code, tag.code) not in self.known.tags:
                    self.tags[(tag.group_code, tag.code)] += 1
