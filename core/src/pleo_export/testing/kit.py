"""What every conformance scenario shares: the :class:`Kit` it gets, and the judgement of
a job's items in Pleo and in the target (:func:`verdict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pleo_export.pleo.models import ExportJob, ExportJobStatus
from pleo_export.testing.checks import Expect, judge
from pleo_export.testing.harness import EngineRun, World
from pleo_export.testing.target import ConnectorTarget
from pleo_export_sandbox import Chart

FIRST_OPEN_DAY = date(2025, 3, 1)
"""``closed_period`` closes the books for every day before this one."""


@dataclass
class Kit:
    """What a scenario gets: the connector under test, its target and where to keep files."""

    connector_id: str
    target: ConnectorTarget
    chart: Chart
    currency: str
    work_dir: Path

    def world(self, scenario: str) -> World:
        return World(
            scenario=scenario,
            connector_id=self.connector_id,
            target=self.target,
            chart=self.chart,
            currency=self.currency,
            work_dir=self.work_dir,
        )


# --- shared judgement ----------------------------------------------------------------------------


def label(item: dict[str, Any]) -> str:
    """``card_purchase, accounts_payable, paid in EUR, 2 lines``: an item as messages name it."""
    parts = [str(item.get("type"))]
    method = (item.get("bookkeeping") or {}).get("method")
    if method == "accounts_payable":
        parts.append("accounts_payable")
    amount = item.get("amount") or {}
    supplier = (amount.get("inSupplierCurrency") or {}).get("currency")
    wallet = (amount.get("inWalletCurrency") or {}).get("currency")
    if supplier and supplier != wallet:
        parts.append(f"paid in {supplier}")
    lines = item.get("accountingEntryLines") or []
    if len(lines) > 1:
        parts.append(f"{len(lines)} lines")
    return ", ".join(parts)


def precondition(world: World, run: EngineRun, job: ExportJob) -> None:
    """Stop early, with one clear problem, when the run could not book anything at all."""
    if run.unavailable is not None:
        raise world.fail(
            f"the connector could not open against connector_target.settings "
            f"({run.unavailable.reason_type.value}: {run.unavailable.message}); the fixture "
            "must yield a target the connector can use"
        )
    current = world.job(job.id)
    if current.status is ExportJobStatus.FAILED and not any(
        item.status.is_final and item.status.value != "abandoned"
        for item in world.sandbox.job_items(job.id)
    ):
        raise world.fail(
            f"the job failed pre-export validation with {current.failure_reason_type}: "
            f"{current.failure_reason}; check(job) must accept a job the target can book "
            "(build the target from conformance_chart in the connector_target fixture)"
        )


async def verdict(
    world: World,
    job: ExportJob,
    expectations: Sequence[Expect],
    *,
    final: str,
    extra: Sequence[str] = (),
    after: Sequence[str] = (),
) -> None:
    """Judge the job's items in Pleo and in the target; fail with every problem found.

    ``extra`` problems are listed first, ``after`` problems last.
    """
    entries = await world.read_entries()
    problems = list(extra)
    problems += judge(
        expectations,
        world.pleo_items(job.id),
        entries,
        world.plans(job.id),
        world.currency,
    )
    current = world.job(job.id)
    if current.status.value != final:
        problems.append(
            f"the job ended {current.status.value}"
            + (
                f" ({current.failure_reason_type}: {current.failure_reason})"
                if current.failure_reason
                else ""
            )
            + f" but must end {final}"
        )
    problems += after
    if problems:
        raise world.fail(*problems)


def unknown_line(world: World, item: dict[str, Any], index: int) -> None:
    account = world.items.chart.unknown_account
    item["accountingEntryLines"][index]["account"] = {
        "id": account.id,
        "name": account.name,
        "code": account.code,
    }
