"""Master-data drift: what would make export items fail, found before a job starts.

``pleo-export check`` asks :func:`find_drift` for two kinds of findings, for each kind of master
data the connector can list (``read_vendors``, ``read_tax_codes``, ``read_dimensions``):

* **in pending jobs**: a vendor, tax code or tag that items of a pending job carry and the
  accounting system does not list. Each such item is planned and handed to the connector's
  ``prepare`` (which writes nothing), the way the export would: the finding blocks only when
  the connector refuses items with that kind's reason (``vendor_unknown``,
  ``tax_code_unknown``, ``tag_unknown``). A connector that books the item all the same (a
  ledger that keeps tax codes as metadata only) gets a note, not a verdict.
* **in Pleo's master data**: what a sync would change. A vendor, tax code or tag open in Pleo
  that the accounting system lacks (or has closed, or knows under another code) may be chosen
  on expenses later: a note, since no pending item uses it yet, with ``pleo-export sync`` as
  the fix. One the accounting system has and Pleo lacks cannot be chosen in Pleo yet: a note
  too, ``pleo-export sync`` adds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pleo_export.bookkeeping import PlanOptions, plan_item
from pleo_export.connector import Connector, ConnectorError, ItemRejected
from pleo_export.masterdata import AccountingDimension, AccountingTaxCode, AccountingVendor
from pleo_export.pleo.errors import PleoHttpError
from pleo_export.pleo.models import ExportItem, ExportJob, ExportJobItemFailureReasonType
from pleo_export.sync.diff import Action, Change, Entity, Kind, SyncPlan
from pleo_export.sync.runner import missing_capabilities, plan_kind, skip_reason

if TYPE_CHECKING:
    from pleo_export.pleo.client import PleoClient
    from pleo_export.pleo.masterdata import PleoMasterData

__all__ = ["Drift", "DriftReport", "DriftScan", "find_drift", "start_drift"]

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
    missing_in_accounting: bool = False
    """Open in Pleo, missing or closed in the accounting system (what ``sync`` archives)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "missing_in_pleo": self.missing_in_pleo,
            "missing_in_accounting": self.missing_in_accounting,
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


def _vendor_keys(code: str | None, external_id: str | None, tax_number: str | None) -> set[str]:
    """What a vendor is matched on, the same for Pleo's vendor on an item and the accounting
    system's."""
    keys = {f"code:{code}", f"external_id:{external_id}"}
    if tax_number:
        keys.add(f"tax:{''.join(tax_number.split()).upper()}")
    return keys


def _known_vendors(vendors: Iterable[AccountingVendor]) -> set[str]:
    keys: set[str] = set()
    for vendor in vendors:
        if not vendor.archived:
            keys |= _vendor_keys(vendor.code, vendor.external_id, vendor.tax_registration_number)
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
    plan_options: PlanOptions | None = None,
) -> DriftReport:
    """The drift of every kind the connector can list, in Pleo's master data and in the items
    of ``jobs`` (pending jobs), whose items are planned with ``plan_options``."""
    scan = await start_drift(connector, pleo, plan_options)
    if scan.reads_items:
        for job in jobs:
            async for page in client.iter_export_items(job.id):
                for raw in page:
                    await scan.add_item(raw, job)
    return scan.finish()


async def start_drift(
    connector: Connector[Any], pleo: PleoMasterData, plan_options: PlanOptions | None = None
) -> DriftScan:
    """:func:`find_drift` for a caller that reads the export items itself (``pleo-export
    check``, which previews every item anyway): Pleo's master data compared now, each item of
    the pending jobs handed to :meth:`DriftScan.add_item`, then :meth:`DriftScan.finish`."""
    report = DriftReport()
    kinds = [k for k in Kind if not missing_capabilities(connector, [k])]
    report.not_checked += [skip_reason(connector, k) for k in Kind if k not in kinds]
    known = _Known()
    for kind in list(kinds):
        try:
            await _learn(kind, connector, known)
        except ConnectorError as error:
            # A connector that can list master data but is not set up to (the SFTP connector
            # without its vendors_file) says so; the other kinds are still compared.
            kinds.remove(kind)
            report.not_checked.append(f"{kind.value}: {error.message}")
    for kind in kinds:
        try:
            plan = await plan_kind(kind, connector, pleo)
        except PleoHttpError as error:
            if error.status_code not in (403, 404):
                raise
            report.not_checked.append(f"{kind.value} in Pleo's master data: {error}")
            continue
        report.findings += _plan_drift(plan)
    return DriftScan(report, kinds, known, _Confirmer(connector, plan_options or PlanOptions()))


class DriftScan:
    """The findings in the items of pending jobs, one item at a time (see
    :func:`start_drift`)."""

    def __init__(
        self,
        report: DriftReport,
        kinds: list[Kind],
        known: _Known,
        confirm: Callable[[ExportItem, ExportJob], Awaitable[ItemRejected | None]],
    ) -> None:
        self.report = report
        self.confirm = confirm
        self.tally = _Tally(kinds, known)

    @property
    def reads_items(self) -> bool:
        """Whether any kind is compared in the items (else :meth:`add_item` does nothing)."""
        return bool(self.tally.kinds)

    async def add_item(self, raw: dict[str, Any], job: ExportJob) -> None:
        """One export item of ``job`` as Pleo returned it: an item carrying something the
        accounting system lacks is planned and prepared here."""
        found = self._unknown(raw)
        if found is not None:
            item, keys = found
            self.tally.count(keys, await self.confirm(item, job))

    def add_answered(self, raw: dict[str, Any], refused: ItemRejected | None) -> None:
        """One export item the caller has prepared already: ``refused`` is what the
        connector's ``prepare`` answered (``None``: accepted)."""
        found = self._unknown(raw)
        if found is not None:
            self.tally.count(found[1], refused)

    def _unknown(self, raw: dict[str, Any]) -> tuple[ExportItem, set[_Key]] | None:
        """The item and what it carries that the accounting system lacks, or ``None``."""
        if not self.tally.kinds:
            return None
        try:
            item = ExportItem.model_validate(raw)
        except ValidationError:
            return None  # the export reports it as malformed; not master data
        keys = self.tally.unknown(item)
        return (item, keys) if keys else None

    def finish(self) -> DriftReport:
        """The report: Pleo's master data, then the findings in the items added."""
        self.report.findings += [
            _item_finding(key, counts) for key, counts in sorted(self.tally.counts.items())
        ]
        return self.report


async def _learn(kind: Kind, connector: Connector[Any], known: _Known) -> None:
    if kind is Kind.VENDORS:
        known.vendor_keys = _known_vendors(await connector.list_vendors())
    elif kind is Kind.TAX_CODES:
        known.tax_codes = _known_tax_codes(await connector.list_tax_codes())
    else:
        dimensions = await connector.list_dimensions()
        known.tags = _known_tags(dimensions)
        known.groups = {d.code for d in dimensions}


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
            "that use it may fail; `pleo-export sync` archives it in Pleo (or open it in the "
            "accounting system)",
            blocking=False,
            missing_in_accounting=True,
        )
    if change.action is Action.ARCHIVE:
        return Drift(
            change.kind,
            change.code,
            change.name,
            f"{label} is open in Pleo but missing or closed in the accounting system: items "
            "tagged from it may fail; `pleo-export sync` archives it in Pleo",
            blocking=False,
            missing_in_accounting=True,
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
                "items carrying Pleo's values may fail; `pleo-export sync` updates Pleo"
                if identity
                else "`pleo-export sync` updates Pleo"
            ),
            blocking=False,
        )
    return None


_REASON = {
    Kind.VENDORS: ExportJobItemFailureReasonType.VENDOR_UNKNOWN,
    Kind.TAX_CODES: ExportJobItemFailureReasonType.TAX_CODE_UNKNOWN,
    Kind.TAGS: ExportJobItemFailureReasonType.TAG_UNKNOWN,
}

_Key = tuple[Kind, str, str]
"""(kind, code, name) of one finding on items."""


class _Confirmer:
    """Asks the connector what the export would: plan the item, then ``prepare`` it (which
    writes nothing). Answers the refusal, or ``None`` when the connector accepts the item."""

    def __init__(self, connector: Connector[Any], options: PlanOptions) -> None:
        self.connector = connector
        self.options = options

    async def __call__(self, item: ExportItem, job: ExportJob) -> ItemRejected | None:
        try:
            await self.connector.prepare(plan_item(item, job, self.options))
        except ItemRejected as refused:
            return refused
        return None


def _item_finding(key: _Key, counts: list[int]) -> Drift:
    kind, code, name = key
    refused, accepted, other = counts
    reason = _REASON[kind].value
    if kind is Kind.VENDORS:
        what, fix = f"vendor {code!r} ({name})", "create it there, then `pleo-export sync vendors`"
    elif kind is Kind.TAX_CODES:
        what, fix = f"tax code {code!r}", "add it there, or change it in Pleo"
    else:
        group = code.split("/", 1)[0]
        what = f"tag {code} (dimension {group} has no such value)"
        fix = "add the value there, or change the tag in Pleo"
    problem = f"{what} is on items of pending jobs but not in the accounting system"
    notes = []
    if accepted:
        notes.append(f"the connector accepts {_items(accepted)} all the same")
    if other:
        verb = "fails" if other == 1 else "fail"
        notes.append(
            f"{_items(other)} {verb} for another reason (`pleo-export run --dry-run` shows why)"
        )
    if refused:
        problem += f": the connector refuses {_items(refused)} with {reason}; {fix}"
        if notes:
            problem += f" ({'; '.join(notes)})"
    else:
        problem += f": {'; '.join(notes)}"
    return Drift(kind, code, name, problem, blocking=bool(refused), items=sum(counts))


def _items(count: int) -> str:
    return f"{count} item{'s' if count != 1 else ''}"


class _Tally:
    """Counts, per vendor, tax code and tag the accounting system lacks, the items using it:
    ``[refused with the kind's reason, accepted, refused for another reason]``."""

    def __init__(self, kinds: list[Kind], known: _Known) -> None:
        self.kinds = kinds
        self.known = known
        self.counts: dict[_Key, list[int]] = {}

    def unknown(self, item: ExportItem) -> set[_Key]:
        """The findings ``item`` carries (each once, however many lines carry it)."""
        keys: set[_Key] = set()
        if Kind.VENDORS in self.kinds and item.vendor is not None:
            vendor = item.vendor
            ids = _vendor_keys(vendor.code, vendor.external_id, vendor.tax_registration_number)
            if not ids & self.known.vendor_keys:
                keys.add((Kind.VENDORS, vendor.code or vendor.external_id or "", vendor.name))
        for line in item.accounting_entry_lines:
            code = line.tax.code if line.tax is not None else None
            if Kind.TAX_CODES in self.kinds and code and code not in self.known.tax_codes:
                keys.add((Kind.TAX_CODES, code, code))
            if Kind.TAGS not in self.kinds:
                continue
            for tag in line.tags or ():
                # A group that is no dimension of the accounting system is not booked by the
                # connector; only unknown values of known dimensions fail.
                known_group = tag.group_code in self.known.groups
                if known_group and (tag.group_code, tag.code) not in self.known.tags:
                    keys.add((Kind.TAGS, f"{tag.group_code}/{tag.code}", tag.code))
        return keys

    def count(self, keys: set[_Key], refused: ItemRejected | None) -> None:
        for key in keys:
            counts = self.counts.setdefault(key, [0, 0, 0])
            if refused is None:
                counts[1] += 1
            elif refused.reason_type is _REASON[key[0]]:
                counts[0] += 1
            else:
                counts[2] += 1
