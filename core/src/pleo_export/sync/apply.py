"""Applying a :class:`~pleo_export.sync.diff.SyncPlan` through Pleo's master-data APIs.

Every planned change is one independent write (two for a draft vendor whose other fields also
differ: activate, then update), so an interrupted sync leaves Pleo consistent and the next run
plans only what is left. Nothing is deleted: ``archive`` archives. Writes go through the same
:class:`~pleo_export.pleo.client.PleoClient` as the export, so they share its request budget
and retries.

A write Pleo refuses for that record alone (400, 404, 409, 422) is reported with the change and
the others go on; anything else (authentication, Pleo unavailable after the client's retries)
stops the sync: what was written stays written, and the next run continues from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from pleo_export.pleo.errors import PleoHttpError
from pleo_export.pleo.masterdata_models import VendorState
from pleo_export.pleo.models import TaxType
from pleo_export.sync.diff import Action, Change, Entity, SyncPlan

if TYPE_CHECKING:
    from pleo_export.pleo.masterdata import PleoMasterData

__all__ = ["AppliedChange", "ApplyResult", "apply_plan"]

log = logging.getLogger("pleo_export.sync")

_PER_RECORD_STATUSES = frozenset({400, 404, 409, 422})


class _GroupMissing(Exception):
    """A tag whose tag group could not be created."""


@dataclass(frozen=True)
class AppliedChange:
    change: Change
    error: str | None = None
    """Why Pleo refused it; ``None`` when it was written."""


@dataclass
class ApplyResult:
    applied: list[AppliedChange] = field(default_factory=list)
    writes: int = 0
    """Write requests sent to Pleo."""

    @property
    def failed(self) -> list[AppliedChange]:
        return [a for a in self.applied if a.error is not None]


async def apply_plan(plan: SyncPlan, pleo: PleoMasterData) -> ApplyResult:
    """Write every change of ``plan`` that is not ``unchanged``, in order."""
    result = ApplyResult()
    group_ids: dict[str, str] = {}
    for change in plan.changes:
        if change.entity is Entity.TAG_GROUP and change.pleo_id is not None:
            group_ids[change.code] = change.pleo_id
    for change in plan.writes:
        try:
            written = await _write(change, pleo, group_ids)
        except (PleoHttpError, _GroupMissing) as error:
            if isinstance(error, PleoHttpError) and error.status_code not in _PER_RECORD_STATUSES:
                raise
            message = str(error)
            log.warning(
                "Pleo refused a master-data change",
                extra={
                    "event": "sync.refused",
                    "kind": change.kind.value,
                    "action": change.action.value,
                    "code": change.code,
                    "reason": message[:300],
                },
            )
            result.applied.append(AppliedChange(change, message))
            result.writes += 1
            continue
        result.writes += written
        result.applied.append(AppliedChange(change))
        log.info(
            "master data written to Pleo",
            extra={
                "event": "sync.applied",
                "kind": change.kind.value,
                "action": change.action.value,
                "code": change.code,
            },
        )
    return result


async def _write(change: Change, pleo: PleoMasterData, group_ids: dict[str, str]) -> int:
    """Send ``change``; returns how many write requests it took."""
    if change.entity is Entity.VENDOR:
        return await _write_vendor(change, pleo)
    if change.entity is Entity.TAX_CODE:
        await _write_tax_code(change, pleo)
        return 1
    if change.entity is Entity.TAG_GROUP:
        archived = change.action is Action.ARCHIVE
        if change.pleo_id is None:
            group = await pleo.create_tag_group(
                code=change.code, name=change.name, archived=archived
            )
            group_ids[change.code] = group.id
        else:
            await pleo.update_tag_group(
                change.pleo_id,
                code=_value(change, "code") or change.code,
                name=_value(change, "name") or change.name,
                archived=archived,
                metadata=change.metadata,
            )
        return 1
    archived = change.action is Action.ARCHIVE
    if change.pleo_id is None:
        group_id = change.group_id or group_ids.get(change.group_code or "")
        if group_id is None:
            raise _GroupMissing(
                f"tag {change.code!r}: its tag group {change.group_code!r} is not in Pleo (its "
                "creation failed, see above); the next sync creates both"
            )
        await pleo.create_tag(group_id, code=change.code, name=change.name, archived=archived)
    else:
        await pleo.update_tag(
            change.pleo_id,
            code=_value(change, "code") or change.code,
            name=_value(change, "name"),
            archived=archived,
        )
    return 1


def _value(change: Change, name: str) -> str | None:
    return change.desired.get(name)


async def _write_vendor(change: Change, pleo: PleoMasterData) -> int:
    desired = change.desired
    if change.pleo_id is None:
        await pleo.create_vendor(
            name=change.name,
            default_currency=desired.get("default_currency") or "",
            code=desired.get("code"),
            external_id=desired.get("external_id"),
            country=desired.get("country"),
            tax_registration_number=desired.get("tax_registration_number"),
            registration_number=desired.get("registration_number"),
        )
        return 1
    if change.action is Action.ARCHIVE:
        await pleo.archive_vendor(change.pleo_id)
        return 1
    writes = 0
    rest = [c for c in change.changes if c.field != "state"]
    if change.action is Action.ACTIVATE:
        await pleo.activate_vendor(
            change.pleo_id,
            code=desired.get("code") or change.code,
            external_id=desired.get("external_id") or change.code,
        )
        writes += 1
        rest = [c for c in rest if c.field not in ("code", "external_id")]
        if not rest:
            return writes
    current = await pleo.get_vendor(change.pleo_id)
    await pleo.update_vendor(
        change.pleo_id,
        name=desired.get("name") or current.name,
        default_currency=desired.get("default_currency") or current.default_currency,
        external_id=desired.get("external_id") or current.external_id or change.code,
        state=VendorState.ACTIVE,
        code=desired.get("code") or current.code,
        country=desired.get("country") or current.country,
        tax_registration_number=(
            desired.get("tax_registration_number") or current.tax_registration_number
        ),
        registration_number=desired.get("registration_number") or current.registration_number,
    )
    return writes + 1


async def _write_tax_code(change: Change, pleo: PleoMasterData) -> None:
    desired = change.desired
    archived = change.action is Action.ARCHIVE
    rate = Decimal(desired.get("rate") or "0")
    tax_type = TaxType(desired.get("type") or TaxType.INCLUSIVE.value)
    if change.pleo_id is None:
        await pleo.create_tax_code(
            name=change.name,
            rate=rate,
            type=tax_type,
            code=desired.get("code"),
            ingoing_tax_account=desired.get("ingoing_tax_account"),
            outgoing_tax_account=desired.get("outgoing_tax_account"),
            archived=archived,
        )
        return
    await pleo.update_tax_code(
        change.pleo_id,
        name=desired.get("name") or change.name,
        rate=rate,
        type=tax_type,
        code=desired.get("code"),
        ingoing_tax_account=desired.get("ingoing_tax_account"),
        outgoing_tax_account=desired.get("outgoing_tax_account"),
        archived=archived,
    )
