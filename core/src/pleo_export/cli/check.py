"""``pleo-export check``: pre-export validation only."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from pleo_export.cli.common import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    Context,
    emit_json,
    run_command,
)
from pleo_export.cli.root import main

if TYPE_CHECKING:
    from pleo_export.app import Session
    from pleo_export.pleo.models import ExportJob
    from pleo_export.sync.drift import DriftReport


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def check(obj: Context, as_json: bool) -> None:
    """Run pre-export validation only: settings, connector, target and pending jobs.

    \b
    Also compares master data (for what the connector can list: vendors,
    tax codes, dimensions). A vendor, tax code or tag that items of a
    pending job carry, that the accounting system lacks and that the
    connector refuses for it makes the verdict NOT READY. Differences in
    Pleo's master data alone are notes; `pleo-export sync` fixes Pleo's side.

    Nothing is started, posted, reported or synchronised. Use it after
    changing the configuration.
    """
    code = run_command(lambda: _check_async(obj, as_json), as_json=as_json)
    sys.exit(code)


async def _check_async(obj: Context, as_json: bool) -> int:
    from pleo_export.app import open_session

    settings = obj.settings()
    async with open_session(settings, dry_run=True) as session:
        preflight = await session.worker.check()
        results: list[dict[str, Any]] = [
            {
                "job_id": checked.job.id,
                "status": checked.job.status.value,
                "items": checked.job.number_of_items,
                "ok": checked.problem is None,
                "failure_reason_type": checked.problem[0].value if checked.problem else None,
                "failure_reason": checked.problem[1] if checked.problem else None,
            }
            for checked in preflight.jobs
        ]
        unavailable = preflight.unavailable
        drift = (
            await _drift(session, [checked.job for checked in preflight.jobs])
            if unavailable is None
            else None
        )
        summary: dict[str, Any] = {
            "connector": type(session.connector).manifest.id,
            "connector_ok": unavailable is None,
            "connector_problem": unavailable.message if unavailable else None,
            "pending_jobs": results,
            "plugin_failures": [str(f) for f in session.host.failures],
            "master_data": drift.to_json() if drift is not None else None,
        }
    failing = [r for r in results if not r["ok"]]
    blocking = drift.blocking if drift is not None else []
    ok = summary["connector_ok"] and not failing and not blocking
    summary["ok"] = ok
    if as_json:
        emit_json(summary)
    else:
        # "ok" only when nothing below would fail: a connector that loads but rejects a job
        # (an account missing from the books) is not ready.
        if unavailable is not None:
            state = f"NOT USABLE: {unavailable.message}"
        elif failing:
            state = (
                f"NOT READY: {len(failing)} of {len(results)} pending "
                f"job{'s' if len(results) != 1 else ''} would fail pre-export validation"
            )
        elif blocking:
            state = (
                f"NOT READY: {len(blocking)} master-data difference"
                f"{'s' if len(blocking) != 1 else ''} would make items fail"
            )
        elif not results:
            state = "ok (no pending jobs in Pleo to validate against)"
        else:
            state = "ok"
        click.echo(f"connector {summary['connector']}: {state}")
        for r in results:
            verdict = (
                "ok"
                if r["ok"]
                else f"would fail: {r['failure_reason_type']}: {r['failure_reason']}"
            )
            click.echo(f"job {r['job_id']} ({r['status']}, {r['items']} items): {verdict}")
        for failure in summary["plugin_failures"]:
            click.echo(f"plugin failed to load: {failure}")
        if drift is not None:
            _print_drift(drift)
    return EXIT_OK if ok else EXIT_ITEMS_FAILED


async def _drift(session: Session, jobs: list[ExportJob]) -> DriftReport | None:
    """Master-data drift, when the connector can list any master data and the company is
    known (the Vendors and Tax Code APIs need it)."""
    from pleo_export.pleo.masterdata import PleoMasterData
    from pleo_export.sync.drift import find_drift
    from pleo_export.sync.runner import CAPABILITY

    declared = type(session.connector).manifest.capabilities
    if session.company_id is None or not any(c in declared for c in CAPABILITY.values()):
        return None
    pleo = PleoMasterData(session.client, session.company_id)
    return await find_drift(
        session.connector, pleo, session.client, jobs, session.engine.options.plan
    )


def _print_drift(drift: DriftReport) -> None:
    if not drift.findings and not drift.not_checked:
        click.echo("master data: Pleo and the accounting system agree")
        return
    missing: dict[str, list[str]] = {}
    only_in_pleo: dict[str, list[str]] = {}
    for finding in drift.findings:
        if finding.missing_in_pleo:
            missing.setdefault(finding.kind.value, []).append(finding.code)
            continue
        if finding.missing_in_accounting and not finding.blocking:
            only_in_pleo.setdefault(finding.kind.value, []).append(finding.code)
            continue
        verdict = "would fail" if finding.blocking else "note"
        items = (
            f" ({finding.items} item{'s' if finding.items != 1 else ''})" if finding.items else ""
        )
        click.echo(f"master data: {verdict}{items}: {finding.problem}")
    for kind, codes in only_in_pleo.items():
        click.echo(
            f"master data: note: {kind}: {len(codes)} open in Pleo but missing or closed in the "
            f"accounting system ({_first(codes)}): items that use them may fail; "
            "`pleo-export sync` archives them in Pleo (--json lists each)"
        )
    for kind, codes in missing.items():
        click.echo(
            f"master data: note: {kind}: {len(codes)} in the accounting system but not in Pleo "
            f"({_first(codes)}): `pleo-export sync` adds them"
        )
    for reason in drift.not_checked:
        click.echo(f"master data: not checked: {reason}")


def _first(codes: list[str]) -> str:
    return ", ".join(codes[:6]) + (f" and {len(codes) - 6} more" if len(codes) > 6 else "")
