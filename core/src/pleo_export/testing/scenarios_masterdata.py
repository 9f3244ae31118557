"""The conformance scenarios of the master-data capabilities: what ``list_vendors``,
``list_tax_codes`` and ``list_dimensions`` answer, and that ``create_vendor`` is idempotent.

They call the connector directly (``open``, the method, ``close``), as ``pleo-export sync``
does, against the target the ``connector_target`` fixture built from the kit's chart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pleo_export.connector import Capability, Connector, ConnectorError
from pleo_export.masterdata import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    VendorDraft,
)
from pleo_export.testing.harness import SkipClock, World
from pleo_export.testing.kit import Kit

DRAFT_TAX_NUMBERS = ("DK31415934", "DK31415942")
"""Valid Danish VAT numbers (CVR check digits) that no chart vendor has."""


@asynccontextmanager
async def opened(world: World) -> AsyncIterator[Connector[Any]]:
    """A connector on the target, opened as ``pleo-export sync`` opens it, closed after."""
    client = world.client(SkipClock())
    connector = world.new_connector(world.settings(), client)
    async with client:
        try:
            await connector.open()
        except ConnectorError as error:
            raise world.fail(
                f"open() raised {type(error).__name__} against connector_target.settings: "
                f"{error.message}"
            ) from error
        try:
            yield connector
        finally:
            await connector.close()


async def answer(world: World, method: str, call: Callable[[], Any], model: type) -> list[Any]:
    """The sequence ``call`` answers, every element a ``model``; fails the scenario else."""
    try:
        result = await call()
    except ConnectorError as error:
        raise world.fail(
            f"{method} raised {type(error).__name__} on the target built from the kit's chart: "
            f"{error.message}"
        ) from error
    if not isinstance(result, Sequence) or isinstance(result, str | bytes):
        raise world.fail(f"{method} must answer a list, got {type(result).__name__}")
    wrong = [type(r).__name__ for r in result if not isinstance(r, model)]
    if wrong:
        raise world.fail(
            f"{method} must answer {model.__name__} objects (pleo_export), got {wrong[0]}"
        )
    return list(result)


def duplicates(what: str, method: str, values: Sequence[str]) -> list[str]:
    twice = sorted(v for v, n in Counter(values).items() if n > 1)
    if not twice:
        return []
    return [
        f"{method} answers {what} {', '.join(map(repr, twice))} more than once: each must be "
        "unique, or sync cannot tell which one Pleo's copy stands for"
    ]


async def read_vendors(kit: Kit) -> None:
    world = kit.world("read_vendors")
    async with opened(world) as connector:
        vendors: list[AccountingVendor] = await answer(
            world, "list_vendors()", connector.list_vendors, AccountingVendor
        )
    problems = duplicates("the code", "list_vendors()", [v.code for v in vendors])
    problems += duplicates("the external id", "list_vendors()", [v.external_id for v in vendors])
    codes = {v.code for v in vendors}
    missing = [v.code for v in kit.chart.vendors if v.code not in codes]
    if missing:
        problems.append(
            f"list_vendors() does not answer the chart's vendors {', '.join(missing)} (found by "
            "code): the connector_target fixture builds the target from conformance_chart, so "
            "its vendors must be listed with their code"
        )
    if problems:
        raise world.fail(*problems)


async def read_tax_codes(kit: Kit) -> None:
    world = kit.world("read_tax_codes")
    async with opened(world) as connector:
        codes: list[AccountingTaxCode] = await answer(
            world, "list_tax_codes()", connector.list_tax_codes, AccountingTaxCode
        )
    problems = duplicates("the tax code", "list_tax_codes()", [c.code for c in codes])
    if problems:
        raise world.fail(*problems)


async def read_dimensions(kit: Kit) -> None:
    world = kit.world("read_dimensions")
    async with opened(world) as connector:
        dimensions: list[AccountingDimension] = await answer(
            world, "list_dimensions()", connector.list_dimensions, AccountingDimension
        )
    problems = duplicates("the dimension", "list_dimensions()", [d.code for d in dimensions])
    for dimension in dimensions:
        problems += duplicates(
            f"in dimension {dimension.code!r} the value",
            "list_dimensions()",
            [v.code for v in dimension.values],
        )
    if problems:
        raise world.fail(*problems)


def _draft(kit: Kit, index: int, **changes: Any) -> VendorDraft:
    values: dict[str, Any] = {
        "pleo_id": f"conformance-draft-vendor-{index}",
        "name": "Conformance Draft Vendor ApS",
        "currency": kit.currency,
        "country": "DK",
        "tax_registration_number": DRAFT_TAX_NUMBERS[0],
    }
    return VendorDraft.model_validate(values | changes)


async def _create(world: World, connector: Connector[Any], draft: VendorDraft) -> AccountingVendor:
    try:
        created = await connector.create_vendor(draft)
    except ConnectorError as error:
        raise world.fail(
            f"create_vendor({draft.name!r}) raised {type(error).__name__}: {error.message}"
        ) from error
    if not isinstance(created, AccountingVendor):
        raise world.fail(
            f"create_vendor must answer an AccountingVendor, got {type(created).__name__}"
        )
    return created


def _same(a: AccountingVendor, b: AccountingVendor) -> bool:
    return (a.code, a.external_id) == (b.code, b.external_id)


async def create_vendor_idempotent(kit: Kit) -> None:
    world = kit.world("create_vendor_idempotent")
    draft = _draft(kit, 1)
    problems: list[str] = []
    async with opened(world) as connector:
        created = await _create(world, connector, draft)
        again = await _create(world, connector, draft)
        if not _same(created, again):
            problems.append(
                f"the same draft twice made two vendors ({created.code}/{created.external_id} "
                f"and {again.code}/{again.external_id}): create_vendor must answer the vendor it "
                "created before (a retried webhook delivers the same draft again)"
            )
        if created.name.casefold() != draft.name.casefold():
            problems.append(f"create_vendor answered the name {created.name!r} for {draft.name!r}")
    async with opened(world) as connector:  # a new process: nothing remembered in memory
        restarted = await _create(world, connector, draft)
        if not _same(created, restarted):
            problems.append(
                "after a restart the same draft made another vendor "
                f"({restarted.code}/{restarted.external_id}): find the vendor created before "
                "in the target, not in memory"
            )
        other = _draft(kit, 2)  # another Pleo vendor, the same tax registration number
        twin = await _create(world, connector, other)
        if not _same(created, twin):
            problems.append(
                f"a draft with the tax registration number {other.tax_registration_number} of "
                f"vendor {created.code} made another vendor ({twin.code}): answer the existing "
                "vendor when the tax number (or else the name) matches"
            )
        if Capability.READ_VENDORS in world.capabilities:
            listed = await answer(world, "list_vendors()", connector.list_vendors, AccountingVendor)
            found = [v for v in listed if v.code == created.code]
            if len(found) != 1:
                problems.append(
                    f"list_vendors() answers the created vendor {created.code} {len(found)} "
                    "times, not once"
                )
            elif not _same(found[0], created) or found[0].archived:
                problems.append(
                    f"list_vendors() answers the created vendor as {found[0]!r}, not as "
                    f"create_vendor answered it ({created!r}) and active"
                )
    if problems:
        raise world.fail(*problems)
