"""``pleo-export check``: pre-export validation only."""

from __future__ import annotations

import sys
from typing import Any

import click

from pleo_export.cli.common import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    Context,
    emit_json,
    run_command,
)
from pleo_export.cli.root import main


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def check(obj: Context, as_json: bool) -> None:
    """Run pre-export validation only: settings, connector, target and pending jobs.

    Nothing is started, posted or reported. Use it after changing the
    configuration.
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
        summary: dict[str, Any] = {
            "connector": type(session.connector).manifest.id,
            "connector_ok": unavailable is None,
            "connector_problem": unavailable.message if unavailable else None,
            "pending_jobs": results,
            "plugin_failures": [str(f) for f in session.host.failures],
        }
    failing = [r for r in results if not r["ok"]]
    ok = summary["connector_ok"] and not failing
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
    return EXIT_OK if ok else EXIT_ITEMS_FAILED
