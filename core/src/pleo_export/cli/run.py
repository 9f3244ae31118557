"""``pleo-export run`` (and ``run --watch``): process pending jobs."""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import click
from pydantic import SecretStr

from pleo_export.cli.common import (
    EXIT_CONFIG,
    Context,
    emit_json,
    fail,
    log,
    run_command,
)
from pleo_export.cli.output import TerminalProgress, print_report, report_exit_code
from pleo_export.cli.root import main
from pleo_export.config import ConfigError
from pleo_export.engine.report import RunReport
from pleo_export.host import PluginError, PluginHost
from pleo_export.ledger import PreparedEntry
from pleo_export.service import Service

if TYPE_CHECKING:
    import httpx

    from pleo_export.app import Session
    from pleo_export.sync.drafts import VendorFlow


@main.command()
@click.option(
    "--watch",
    is_flag=True,
    help=(
        "Keep running: poll for new jobs every engine.poll_interval s, and sooner when a "
        "Pleo webhook arrives (webhooks.listen)."
    ),
)
@click.option(
    "--dry-run",
    is_flag=True,
    help=(
        "Print the exact balanced entries that would be posted; "
        "post nothing, change nothing in Pleo."
    ),
)
@click.option("--job", "job_id", help="Process only this job id (the manual trigger).")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--verbose", "-v", is_flag=True, help="List every failed item under its reason.")
@click.option(
    "--company",
    "companies",
    multiple=True,
    help="Serve this company (repeat for several); overrides pleo.company_id/company_ids.",
)
@click.pass_obj
def run(
    obj: Context,
    watch: bool,
    dry_run: bool,
    job_id: str | None,
    max_jobs: int | None,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    companies: tuple[str, ...],
) -> None:
    """Process pending export jobs, then exit.

    \b
    Each job goes through Pleo's lifecycle: start, pre-export validation,
    read all job items, fetch the export items, book each item through the
    connector, report outcomes in batches of 100, complete the job. Jobs are
    processed one at a time, oldest first.

    \b
    Examples:
      pleo-export run --dry-run          preview: nothing is booked, Pleo is not changed
      pleo-export run --json > run.json  machine-readable report
      pleo-export run --watch            run as a service
    """
    if watch and dry_run:
        fail("--watch and --dry-run cannot be combined", EXIT_CONFIG, as_json=as_json)
    code = run_command(
        lambda: _run_async(
            obj,
            watch,
            dry_run,
            job_id,
            max_jobs,
            as_json,
            quiet,
            companies=companies,
            verbose=verbose,
        ),
        as_json=as_json,
    )
    sys.exit(code)


async def _run_async(
    obj: Context,
    watch: bool,
    dry_run: bool,
    job_id: str | None,
    max_jobs: int | None,
    as_json: bool,
    quiet: bool,
    *,
    companies: tuple[str, ...] = (),
    verbose: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    serving: bool = False,
) -> int:
    from pleo_export.app import open_session
    from pleo_export.engine.runner import EngineOptions
    from pleo_export.outage import OutageBackoff, pleo_outage
    from pleo_export.webhooks import receiver

    settings = obj.settings()
    progress = TerminalProgress(enabled=not quiet and not as_json and not dry_run)
    options = EngineOptions(on_preview=_print_preview if dry_run and not as_json else None)
    previews: list[dict[str, Any]] = []
    if dry_run and as_json:
        options.on_preview = lambda p: previews.append(_preview_json(p))
    hook = settings.webhooks
    secret: SecretStr | list[SecretStr] | None = hook.secret
    if secret is None and watch and hook.listen:
        from pleo_export.webhook_store import stored_secrets

        secret = await stored_secrets(settings)  # from `pleo-export webhooks subscribe`
    async with (
        open_session(
            settings,
            dry_run=dry_run,
            progress=progress,
            options=options,
            companies=companies,
            transport=transport,
        ) as s,
        receiver(
            hook.listen if watch else None,
            secret,
            hook.path,
            max_body_bytes=hook.max_body_bytes,
            read_timeout=hook.read_timeout,
            max_connections=hook.max_connections,
        ) as wakeups,
        AsyncExitStack() as plugin_services,
    ):
        runner = s.worker if s.worker is not None else s.engine
        drafts = draft_vendors(s) if watch else None
        service = Service(s.worker, s.client.stats, poll_interval=settings.engine.poll_interval)
        if watch:
            started = await _start_plugin_services(plugin_services, s.host, service)
            log.info(
                "watching for export jobs",
                extra={
                    "event": "watch.started",
                    "poll_interval": settings.engine.poll_interval,
                    "webhooks": wakeups.url,
                    "plugin_services": started,
                    "worker": s.worker.holder,
                },
            )
            if serving:
                hooks_at = wakeups.url or "off (set webhooks.listen)"
                click.echo(
                    f"pleo-export serve: polling every {settings.engine.poll_interval:g} s; "
                    f"webhooks: {hooks_at}; plugin endpoints: {', '.join(started) or 'none'}; "
                    f"worker {s.worker.holder}; stop with SIGTERM",
                    err=True,
                )
        last_idle: tuple[list[str], dict[str, int]] | None = None
        outage = OutageBackoff(
            first=min(settings.engine.poll_interval, 5.0),
            cap=max(settings.engine.outage_backoff_max, min(settings.engine.poll_interval, 5.0)),
        )
        while True:
            service.round_started()
            try:
                if job_id:
                    job_report = await runner.run_job(job_id)
                    report = RunReport(jobs=[job_report] if job_report else [])
                    if job_report is None:
                        report.skipped_jobs.append(job_id)
                else:
                    report = await runner.run_pending(max_jobs=max_jobs)
                if drafts is not None:
                    await handle_drafts(drafts, wakeups.take_vendor_ids(), quiet=quiet or as_json)
            except Exception as error:
                cause = pleo_outage(error) if watch else None
                if cause is None:
                    raise
                # A service rides out the outage: log, back off, poll again. The job in hand
                # resumes from the state store on the next round.
                delay = outage.next_delay()
                log.warning(
                    "Pleo is unavailable; polling again in %.0f s: %s",
                    delay,
                    cause,
                    extra={
                        "event": "watch.pleo_unavailable",
                        "failures": outage.failures,
                        "retry_in": round(delay, 1),
                    },
                )
                if not dry_run:
                    s.host.round_finished(result=service.round_finished(jobs=0, error=str(cause)))
                await wakeups.wait(delay)
                continue
            if not dry_run:
                s.host.round_finished(result=service.round_finished(jobs=len(report.jobs)))
            if outage.failures:
                log.warning(
                    "Pleo is reachable again",
                    extra={"event": "watch.pleo_recovered", "failures": outage.failures},
                )
                outage.reset()
            elsewhere = s.worker.leased_elsewhere if s.worker is not None else []
            idle = (elsewhere, dict(report.waiting_elsewhere))
            if watch and not report.jobs and not report.skipped_jobs and idle == last_idle:
                # Nothing new since the last poll: no repeated line on every poll.
                log.debug(
                    "no pending export jobs",
                    extra={"event": "poll.idle", "companies_leased_elsewhere": elsewhere},
                )
            elif as_json:
                data = report.to_json()
                if dry_run:
                    data["would_post"] = previews
                data["companies_leased_elsewhere"] = elsewhere
                emit_json(data)
            else:
                print_report(report, verbose=verbose)
                for company in elsewhere:
                    click.echo(f"company {company}: another worker is serving it; skipped")
            if not watch:
                return report_exit_code(report)
            last_idle = idle if not report.jobs and not report.skipped_jobs else None
            await wakeups.wait(settings.engine.poll_interval)


def draft_vendors(session: Session) -> VendorFlow | None:
    """The vendor flow of ``run --watch``: vendors created in Pleo as drafts (announced by
    ``v1.vendor.created``, or found by polling when the connector can create vendors), for
    every company the session serves, each with the connector of its own engine.

    ``None`` when no company is known (the credential's companies are discovered from the job
    list): the flow needs the company to list its drafts."""
    from pleo_export.pleo.masterdata import PleoMasterData
    from pleo_export.sync.drafts import DraftVendors, VendorFlow

    companies = session.worker.companies or (
        [session.company_id] if session.company_id is not None else []
    )
    if not companies:
        return None
    return VendorFlow(
        {
            company: DraftVendors(
                session.worker.engine_for(company).connector,
                PleoMasterData(session.client, company),
            )
            for company in companies
        }
    )


async def handle_drafts(drafts: VendorFlow, announced: list[str], *, quiet: bool) -> None:
    """One round of the vendor flow: the vendors webhooks announced, and (for each company
    whose connector can create vendors) one search for drafts, the safety net for lost
    deliveries."""
    outcomes = await drafts.handle_ids(announced) if announced else []
    outcomes += await drafts.poll(skip=[o.vendor_id for o in outcomes])
    if not quiet:
        several = len(drafts.companies) > 1
        for outcome in outcomes:
            if outcome.repeated:
                continue
            company = f"company {outcome.company_id}: " if several else ""
            click.echo(
                f"{company}vendor {outcome.name!r}: {outcome.status.value}: {outcome.message}"
            )


async def _start_plugin_services(
    stack: AsyncExitStack, host: PluginHost, service: Service
) -> list[str]:
    """Enter what plugins run beside the service (``pleo_export_service_started``); return
    the addresses they announce (what ``__aenter__`` returned, when a string). A plugin whose
    service cannot start stops the command (exit 2)."""
    announced: list[str] = []
    for context in host.service_started(service=service):
        try:
            entered = await stack.enter_async_context(context)
        except (PluginError, ConfigError):
            raise
        except Exception as error:
            raise PluginError(f"a plugin's service could not start: {error}") from error
        if isinstance(entered, str):
            announced.append(entered)
    return announced


def _print_preview(prepared: PreparedEntry) -> None:
    plan = prepared.plan
    click.echo(
        f"; would post {plan.item.type} {plan.reference} ({plan.method.value}, "
        f"{plan.method_source})"
    )
    click.echo(prepared.describe())
    click.echo("")


def _preview_json(prepared: PreparedEntry) -> dict[str, Any]:
    return {
        "accounting_entry_id": prepared.plan.reference,
        "type": prepared.plan.item.type,
        "method": prepared.plan.method.value,
        "entries": [e.model_dump(mode="json") for e in prepared.entries],
        "rendered": prepared.rendered,
    }
