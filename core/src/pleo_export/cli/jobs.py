"""``pleo-export jobs``: recent jobs and item outcomes from the state store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pleo_export.cli.common import (
    Context,
    UsageError,
    emit_json,
    run_command,
)
from pleo_export.cli.root import main
from pleo_export.state import redact_url


@main.command()
@click.option("--job", "job_id", help="Show the items of this job.")
@click.option("--limit", default=20, show_default=True, help="How many recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def jobs(obj: Context, job_id: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs and item outcomes from the local state store."""
    run_command(lambda: _jobs_async(obj, job_id, limit, as_json), as_json=as_json)


async def _jobs_async(obj: Context, job_id: str | None, limit: int, as_json: bool) -> None:
    from pleo_export.config import require_pleo_target
    from pleo_export.state import open_store

    settings = obj.settings()
    require_pleo_target(settings)
    url = settings.state_url()
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        # Nothing has run with this configuration: say so, and create no database.
        if job_id:
            raise UsageError(
                f"job {job_id} is unknown: there is no state database at {sqlite_file} yet "
                "(nothing has run with this configuration)"
            )
        if as_json:
            emit_json([])
        else:
            click.echo(f"no jobs: {sqlite_file} does not exist yet (nothing has run here)")
        return
    store = open_store(url)
    await store.open()
    try:
        if job_id:
            if await store.get_job(job_id) is None:
                raise UsageError(
                    f"job {job_id} is not in the state store {redact_url(url)}; "
                    "`pleo-export jobs` lists the recent ones"
                )
            items = await store.items(job_id)
            rows = [
                {
                    "accounting_entry_id": i.accounting_entry_id,
                    "phase": i.phase.value,
                    "reported": i.reported,
                    "external_id": i.outcome.external_id if i.outcome else None,
                    "failure_reason_type": i.outcome.failure_reason_type if i.outcome else None,
                    "failure_reason": i.outcome.failure_reason if i.outcome else None,
                }
                for i in items
            ]
            if as_json:
                emit_json(rows)
                return
            for row in rows:
                detail = row["external_id"] or (
                    f"{row['failure_reason_type']}: {row['failure_reason']}"
                    if row["failure_reason_type"]
                    else ""
                )
                told = "reported" if row["reported"] else "not reported"
                click.echo(f"{row['accounting_entry_id']}  {row['phase']:<9} {told:<12} {detail}")
            return
        records = await store.recent_jobs(limit)
        out: list[dict[str, Any]] = []
        for record in records:
            counts = await store.counts(record.job_id)
            out.append(
                {
                    "job_id": record.job_id,
                    "company_id": record.company_id,
                    "final_event": record.final_event,
                    "updated_at": record.updated_at.isoformat(),
                    "items": counts.total,
                    "succeeded": counts.succeeded,
                    "failed": counts.failed,
                    "unreported": counts.unreported,
                }
            )
        if as_json:
            emit_json(out)
            return
        if not out:
            click.echo(f"no jobs in {redact_url(settings.state_url())}")
        for row in out:
            click.echo(
                f"{row['job_id']}  {row['final_event'] or 'in progress':<22} "
                f"{row['items']:>6} items  {row['succeeded']:>6} ok  {row['failed']:>5} failed"
                f"  {row['unreported']} unreported  ({row['updated_at']})"
            )
    finally:
        await store.close()


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` state URL (``None`` for other stores and ``:memory:``)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])
