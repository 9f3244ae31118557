"""One sync: read both sides for the kinds asked, plan, and (unless a dry run) apply.

A kind whose capability the connector does not declare is skipped with the reason
(:attr:`KindOutcome.skipped`); :func:`missing_capabilities` lets the command line refuse an
explicit request for such a kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pleo_export.connector import Capability, Connector
from pleo_export.sync.apply import ApplyResult, apply_plan
from pleo_export.sync.diff import (
    Action,
    Kind,
    PleoRecord,
    SyncPlan,
    diff_tags,
    diff_tax_codes,
    diff_vendors,
)
from pleo_export.sync.pleo_side import (
    tag_group_record,
    tag_record,
    tax_code_record,
    vendor_record,
)

if TYPE_CHECKING:
    from pleo_export.pleo.masterdata import PleoMasterData

__all__ = [
    "CAPABILITY",
    "KindOutcome",
    "SyncReport",
    "missing_capabilities",
    "plan_kind",
    "run_sync",
]

CAPABILITY: dict[Kind, Capability] = {
    Kind.VENDORS: Capability.READ_VENDORS,
    Kind.TAX_CODES: Capability.READ_TAX_CODES,
    Kind.TAGS: Capability.READ_DIMENSIONS,
}
"""The connector capability each kind needs."""


@dataclass
class KindOutcome:
    kind: Kind
    plan: SyncPlan | None = None
    skipped: str | None = None
    """Why this kind was not synchronised (the connector cannot read it)."""
    result: ApplyResult | None = None
    """What was written; ``None`` in a dry run."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "skipped": self.skipped}
        if self.plan is not None:
            data["summary"] = {a.value: self.plan.count(a) for a in Action}
            data["changes"] = [c.to_json() for c in self.plan.changes if c.writes]
        if self.result is not None:
            data["writes"] = self.result.writes
            data["failed"] = [{**a.change.to_json(), "error": a.error} for a in self.result.failed]
        return data


@dataclass
class SyncReport:
    connector: str
    dry_run: bool
    kinds: list[KindOutcome] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(k.result.writes for k in self.kinds if k.result is not None)

    @property
    def failed(self) -> int:
        return sum(len(k.result.failed) for k in self.kinds if k.result is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "dry_run": self.dry_run,
            "writes": self.writes,
            "failed": self.failed,
            "kinds": [k.to_json() for k in self.kinds],
        }


def missing_capabilities(connector: Connector[Any], kinds: Sequence[Kind]) -> list[Kind]:
    declared = type(connector).manifest.capabilities
    return [kind for kind in kinds if CAPABILITY[kind] not in declared]


def skip_reason(connector: Connector[Any], kind: Kind) -> str:
    manifest = type(connector).manifest
    return (
        f"connector {manifest.id!r} does not declare {CAPABILITY[kind].value}, so it cannot "
        f"list its {kind.value}: {kind.value} are left as they are in Pleo"
    )


async def pleo_records(kind: Kind, pleo: PleoMasterData) -> tuple[list[PleoRecord], ...]:
    """Pleo's records of ``kind`` (for tags: the groups, then every group's tags)."""
    if kind is Kind.VENDORS:
        return ([vendor_record(v) for v in await pleo.list_vendors()],)
    if kind is Kind.TAX_CODES:
        return ([tax_code_record(t) for t in await pleo.list_tax_codes()],)
    groups = await pleo.list_tag_groups()
    tags: list[PleoRecord] = []
    for group in groups:
        if not group.archived:
            tags += [tag_record(t) for t in await pleo.list_tags(group.id)]
    return [tag_group_record(g) for g in groups], tags


async def plan_kind(kind: Kind, connector: Connector[Any], pleo: PleoMasterData) -> SyncPlan:
    """The plan for ``kind``: the connector's list against Pleo's. The connector must declare
    the kind's capability (:data:`CAPABILITY`)."""
    if kind is Kind.VENDORS:
        (vendors,) = await pleo_records(kind, pleo)
        return diff_vendors(await connector.list_vendors(), vendors)
    if kind is Kind.TAX_CODES:
        (taxes,) = await pleo_records(kind, pleo)
        return diff_tax_codes(await connector.list_tax_codes(), taxes)
    groups, tags = await pleo_records(kind, pleo)
    return diff_tags(await connector.list_dimensions(), groups, tags)


async def run_sync(
    connector: Connector[Any],
    pleo: PleoMasterData,
    kinds: Sequence[Kind],
    *,
    dry_run: bool,
) -> SyncReport:
    """Plan (and unless ``dry_run`` apply) every kind of ``kinds`` the connector can read."""
    report = SyncReport(connector=type(connector).manifest.id, dry_run=dry_run)
    for kind in kinds:
        if missing_capabilities(connector, [kind]):
            report.kinds.append(KindOutcome(kind, skipped=skip_reason(connector, kind)))
            continue
        plan = await plan_kind(kind, connector, pleo)
        outcome = KindOutcome(kind, plan=plan)
        if not dry_run:
            outcome.result = await apply_plan(plan, pleo)
        report.kinds.append(outcome)
    return report
