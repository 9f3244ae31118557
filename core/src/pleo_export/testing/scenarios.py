"""The conformance scenarios: each builds a job in the sandbox, runs the real engine with the
connector under test and judges every item in Pleo and in the target.

:data:`SCENARIOS` maps each stable scenario id to its :class:`Scenario`. Which scenarios apply
follows from the connector's manifest (:func:`not_applicable`); a connector may exempt an
applicable scenario only with a written reason.

The scenarios themselves live in :mod:`~pleo_export.testing.scenarios_booking` and
:mod:`~pleo_export.testing.scenarios_refusals`; :mod:`~pleo_export.testing.kit` holds what they
share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pleo_export.connector import Capability, ConnectorManifest
from pleo_export.testing.kit import FIRST_OPEN_DAY, Kit
from pleo_export.testing.scenarios_booking import (
    crash_retry_no_duplicates,
    happy_accounts_payable,
    happy_journal,
    partial_failure,
    pleo_429_storm,
    rounding_residual,
)
from pleo_export.testing.scenarios_masterdata import (
    create_vendor_idempotent,
    read_dimensions,
    read_tax_codes,
    read_vendors,
)
from pleo_export.testing.scenarios_refusals import (
    attachment_over_limit,
    closed_period,
    target_unreachable_precheck,
    unknown_account,
    unknown_tax_code,
    unknown_vendor,
)

ScenarioRun = Callable[[Kit], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    requires: frozenset[Capability] = frozenset()
    needs_attachment_limit: bool = False
    run: ScenarioRun | None = field(default=None, compare=False)


SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(
            "happy_journal",
            "every item type as journal entries",
            frozenset({Capability.JOURNAL}),
            run=happy_journal,
        ),
        Scenario(
            "happy_accounts_payable",
            "a vendor-based job: invoices, payments and card purchases against vendors",
            frozenset({Capability.ACCOUNTS_PAYABLE}),
            run=happy_accounts_payable,
        ),
        Scenario(
            "partial_failure",
            "failures in the middle of a job; the other items are booked",
            frozenset({Capability.JOURNAL}),
            run=partial_failure,
        ),
        Scenario(
            "crash_retry_no_duplicates",
            "a crash and a lost answer after writing; the retry posts nothing twice",
            frozenset({Capability.JOURNAL}),
            run=crash_retry_no_duplicates,
        ),
        Scenario(
            "unknown_account",
            "an expense account the target does not know",
            frozenset({Capability.JOURNAL}),
            run=unknown_account,
        ),
        Scenario(
            "unknown_vendor",
            "a vendor the target does not know",
            frozenset({Capability.ACCOUNTS_PAYABLE}),
            run=unknown_vendor,
        ),
        Scenario(
            "unknown_tax_code",
            "a tax code the target does not know",
            frozenset({Capability.JOURNAL}),
            run=unknown_tax_code,
        ),
        Scenario(
            "attachment_over_limit",
            "a receipt over the connector's declared size limit",
            frozenset({Capability.JOURNAL, Capability.ATTACHMENTS}),
            needs_attachment_limit=True,
            run=attachment_over_limit,
        ),
        Scenario(
            "closed_period",
            "items dated in a closed accounting period",
            frozenset({Capability.JOURNAL}),
            run=closed_period,
        ),
        Scenario(
            "rounding_residual",
            "multi-currency items whose lines miss the total by a minor unit",
            frozenset({Capability.JOURNAL}),
            run=rounding_residual,
        ),
        Scenario(
            "pleo_429_storm",
            "Pleo answers 429 to every kind of call",
            frozenset({Capability.JOURNAL}),
            run=pleo_429_storm,
        ),
        Scenario(
            "target_unreachable_precheck",
            "the target cannot be reached during pre-export validation",
            frozenset(),
            run=target_unreachable_precheck,
        ),
        Scenario(
            "read_vendors",
            "list_vendors answers the target's vendors, each code once",
            frozenset({Capability.READ_VENDORS}),
            run=read_vendors,
        ),
        Scenario(
            "read_tax_codes",
            "list_tax_codes answers valid tax codes, each code once",
            frozenset({Capability.READ_TAX_CODES}),
            run=read_tax_codes,
        ),
        Scenario(
            "read_dimensions",
            "list_dimensions answers dimensions and values, each code once",
            frozenset({Capability.READ_DIMENSIONS}),
            run=read_dimensions,
        ),
        Scenario(
            "create_vendor_idempotent",
            "a draft vendor created twice (and after a restart) is one vendor, then listed",
            frozenset({Capability.CREATE_VENDORS}),
            run=create_vendor_idempotent,
        ),
    )
}
"""Every scenario by its stable id, in the order the suite runs them."""


def not_applicable(scenario: Scenario, manifest: ConnectorManifest) -> str | None:
    """Why ``scenario`` does not apply to a connector with ``manifest``, or ``None``."""
    missing = sorted(c.value for c in scenario.requires - manifest.capabilities)
    if missing:
        return f"the connector does not declare {', '.join(missing)}"
    if scenario.needs_attachment_limit and manifest.limits.max_attachment_bytes is None:
        return "the connector declares no limits.max_attachment_bytes"
    return None


async def run_scenario(scenario_id: str, kit: Kit) -> None:
    """Run one scenario; raises :class:`~pleo_export.testing.checks.ConformanceFailure`."""
    scenario = SCENARIOS[scenario_id]
    if scenario.run is None:  # pragma: no cover - every scenario has a run
        raise KeyError(scenario_id)
    await scenario.run(kit)


__all__ = ["FIRST_OPEN_DAY", "SCENARIOS", "Kit", "Scenario", "not_applicable", "run_scenario"]
