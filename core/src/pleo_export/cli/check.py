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
    import httpx

    from pleo_export.app import Session
    from pleo_export.engine.preview import ItemsPreview
    from pleo_export.engine.worker import JobCheck
    from pleo_export.sync.drift import DriftReport, DriftScan

_DEFAULT_MAX_ITEMS = 1_000
"""Items previewed per job by default. Each costs a ``prepare`` (and a look-up by reference
where the connector has one): on a connector that answers in 200 ms that is a few minutes for
1,000 items, which a pre-export check should not exceed; the first 1,000 show the patterns
(accounts, tax codes, vendors the books lack) that the rest repeat."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--max-items",
    type=click.IntRange(min=0),
    default=_DEFAULT_MAX_ITEMS,
    show_default=True,
    help="Items previewed per pending job (0: none); the rest are counted, not checked.",
)
@click.pass_obj
def check(obj: Context, as_json: bool, max_items: int) -> None:
    """Run pre-export validation only: settings, connector, target and pending jobs.

    \b
    Also previews the items of each pending job as the export would
    (parse, plugins' validation and mapping, plan, the connector's
    prepare) and notes per job how many would post and how many would
    fail, by reason: "items: 11 of 80 would post; 69 would fail:
    account_unknown 66, vendor_unknown 3". Item failures are reported
    to Pleo and fixed there, so this note never changes the verdict or
    the exit code. `pleo-export run --dry-run --verbose` lists the
    failing items. The first 1,000 items of a job are previewed
    (--max-items); the rest are counted.

    \b
    Also compares master data (for what the connector can list: vendors,
    tax codes, dimensions). A vendor, tax code or tag that items of a
    pending job carry, that the accounting system lacks and that the
    connector refuses for it makes the verdict NOT READY. Differences in
    Pleo's master data alone are notes; `pleo-export sync` fixes Pleo's side.

    Nothing is started, posted, reported or synchronised. Use it after
    changing the configuration.
    """
    code = run_command(lambda: _check_async(obj, as_json, max_items), as_json=as_json)
    sys.exit(code)


async def _check_async(
    obj: Context,
    as_json: bool,
    max_items: int = _DEFAULT_MAX_ITEMS,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    from pleo_export.app import open_session

    settings = obj.settings()
    async with open_session(settings, dry_run=True, transport=transport) as session:
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
        drift: DriftReport | None = None
        if unavailable is None:
            # One pass over each job's export items: each is read once and prepared at most
            # once, for the item preview and for the master-data drift alike.
            scan = await _drift(session)
            for checked, result in zip(preflight.jobs, results, strict=True):
                preview = await _preview(session, checked, scan, max_items)
                result.update(preview.to_json())
                result["items_note"] = preview.describe()
            drift = scan.finish() if scan is not None else None
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
            if "items_note" in r:
                click.echo(f"  {r['items_note']}")
        for failure in summary["plugin_failures"]:
            click.echo(f"plugin failed to load: {failure}")
        if drift is not None:
            _print_drift(drift)
    return EXIT_OK if ok else EXIT_ITEMS_FAILED


async def _drift(session: Session) -> DriftScan | None:
    """Master-data drift, when the connector can list any master data and the company is
    known (the Vendors and Tax Code APIs need it): Pleo's side compared, the items to come."""
    from pleo_export.pleo.masterdata import PleoMasterData
    from pleo_export.sync.drift import start_drift
    from pleo_export.sync.runner import CAPABILITY

    declared = type(session.connector).manifest.capabilities
    if session.company_id is None or not any(c in declared for c in CAPABILITY.values()):
        return None
    pleo = PleoMasterData(session.client, session.company_id)
    return await start_drift(session.connector, pleo, session.engine.options.plan)


async def _preview(
    session: Session, checked: JobCheck, scan: DriftScan | None, max_items: int
) -> ItemsPreview:
    """The items of one pending job, previewed as a dry run would (the first ``max_items``)
    and handed to the drift ``scan``; pages past the limit are read only for the scan."""
    from pleo_export.engine.preview import ItemPreview, ItemsPreview
    from pleo_export.pleo.models import ExportJobStatus

    job = checked.job
    drift = scan if scan is not None and scan.reads_items else None
    preview = None
    if checked.problem is None:
        preview = ItemPreview(session.worker.engine_for(job.company_id), job, max_items)
        if job.status is ExportJobStatus.IN_PROGRESS:
            await preview.read_control_layer(session.client)
    read_all = True
    if preview is not None or drift is not None:
        pages = session.client.iter_export_items(job.id)
        try:
            async for page in pages:
                for raw in page:
                    previewed, refused = await preview.item(raw) if preview else (False, None)
                    if drift is not None and previewed:
                        drift.add_answered(raw, refused)
                    elif drift is not None:
                        await drift.add_item(raw, job)
                if preview is not None and preview.full and drift is None:
                    read_all = False
                    break
        finally:
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()  # stopped early: Pleo's paging ends here
    if preview is None:
        return ItemsPreview(job.number_of_items, skipped="the job would fail pre-export validation")
    return preview.finish(read_all=read_all)


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
