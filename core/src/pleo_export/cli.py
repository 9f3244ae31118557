"""The ``pleo-export`` command."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click

from pleo_export import __version__, logs
from pleo_export.config import ConfigError, Settings, load_settings
from pleo_export.engine.report import JobReport, RunReport
from pleo_export.exit_codes import ExitCode
from pleo_export.exit_codes import describe as describe_exit_codes
from pleo_export.host import PluginError, PluginHost
from pleo_export.ledger import PreparedEntry
from pleo_export.pleo.errors import PleoApiError
from pleo_export.pleo.models import ExportJob
from pleo_export.state import StateStoreError, redact_url

T = TypeVar("T")
log = logging.getLogger("pleo_export.cli")

EXIT_OK = ExitCode.OK
EXIT_ITEMS_FAILED = ExitCode.ITEMS_FAILED
EXIT_CONFIG = ExitCode.CONFIG
EXIT_UNAVAILABLE = ExitCode.UNAVAILABLE
EXIT_INTERNAL = ExitCode.INTERNAL
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
EXIT_BROKEN_PIPE = ExitCode.BROKEN_PIPE
EXIT_TERMINATED = ExitCode.TERMINATED

MAIN_HELP = """Move approved spend from Pleo into your accounting system.

\b
pleo-export runs Pleo's export lifecycle: it finds export jobs waiting in
Pleo, books every expense through a connector (beancount, ...) and tells Pleo
which entries landed (with their reference in the accounting system) and
which failed (with the reason to fix). Nothing is posted twice: entries are
looked up by reference before posting, and a crash resumes where it stopped.

\b
Start here:
  pleo-export demo                 export sandbox jobs into a local ledger
  pleo-export init beancount       write pleo-export.toml and a starter ledger
  pleo-export check                pre-export validation only
  pleo-export run --dry-run        show what would be posted, post nothing
  pleo-export run                  process pending jobs, then exit
  pleo-export run --watch          keep polling for new jobs
  pleo-export connectors list      installed connectors and their capabilities

\b
Configuration comes from ./pleo-export.toml (or --config, or
$PLEO_EXPORT_CONFIG) and PLEO_EXPORT_* environment variables, which win
over the file; see docs/configuration.md. Only `demo` works without any
configuration: `run` and `check` need a connector and pleo.base_url (`jobs`
needs base_url), which `init CONNECTOR` writes (base_url = "sandbox": the
built-in Pleo sandbox, generated expenses, no account needed; set
"production" to go live).

\b
Exit status:
{exit_codes}
"""


class Context:
    def __init__(self, config: Path | None, log_level: str | None, log_format: str | None):
        self.config = config
        self.log_level = log_level
        self.log_format = log_format

    def settings(self, **overrides: Any) -> Settings:
        settings = load_settings(self.config, **overrides)
        level = self.log_level or settings.log.level
        fmt = self.log_format or settings.log.format
        log_file = settings.log.file
        if log_file is not None and not log_file.is_absolute():
            log_file = settings.config_dir / log_file
        try:
            logs.configure(
                level=level,
                fmt=fmt,
                file=log_file,
                rotate_bytes=settings.log.rotate_bytes,
                backups=settings.log.backups,
            )
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(
                f"log.file {log_file}: cannot be created or opened ({reason}): name a file in a "
                "folder pleo-export may write to, or leave log.file unset to log to stderr"
            ) from None
        return settings


def _fail(message: str, code: int, *, as_json: bool = False, kind: str | None = None) -> None:
    """Print the error (as JSON on stdout with ``--json``) and exit with ``code``."""
    if as_json:
        error = {"kind": kind or ExitCode(code).name.lower(), "message": message}
        _emit_json({"error": error, "exit_code": int(code)})
    else:
        click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(int(code))


class UsageError(Exception):
    """The command line names something that does not exist (exit 2, like click's own)."""


class Terminated(Exception):
    """The process received SIGTERM; the command was cancelled."""


async def _cancel_on_sigterm(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()``; SIGTERM cancels it (between awaits, like Ctrl-C) and raises
    :class:`Terminated` once everything has been closed in order."""
    if sys.platform == "win32":  # pragma: no cover - no signal receivers there
        return await factory()
    terminated = False
    outcome: list[T] = []
    failure: list[BaseException] = []

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal terminated
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                terminated = True
                scope.cancel()
                return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch, tasks.cancel_scope)
        try:
            outcome.append(await factory())
        except Exception as error:  # re-raised outside the task group's wrapping
            failure.append(error)
        finally:
            tasks.cancel_scope.cancel()
    if terminated:
        raise Terminated
    if failure:
        raise failure[0]
    return outcome[0]


def _unwrapped(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``anyio.run`` that raises the real error instead of an exception group wrapping it."""
    from pleo_export.outage import sole_error

    try:
        return anyio.run(_cancel_on_sigterm, factory)
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is group:
            raise
        raise error from error.__cause__


def _run(factory: Callable[[], Coroutine[Any, Any, T]], *, as_json: bool = False) -> T:
    """Run a coroutine, turning the expected failures into clear messages and exit codes."""
    try:
        return _unwrapped(factory)
    except ConfigError as error:
        _fail(str(error), EXIT_CONFIG, as_json=as_json, kind="configuration")
    except PluginError as error:
        _fail(str(error), EXIT_CONFIG, as_json=as_json, kind="plugin")
    except PleoApiError as error:
        from pleo_export.pleo.oauth import OAuthError, RefreshLockTimeout, TokenEndpointUnavailable

        if isinstance(error, OAuthError):
            # A revoked installation or a failed login needs a person (exit 2, like a
            # configuration error); an unreachable token endpoint is Pleo being unavailable.
            transient = isinstance(error, (TokenEndpointUnavailable, RefreshLockTimeout))
            _fail(
                f"OAuth: {error}",
                EXIT_UNAVAILABLE if transient else EXIT_CONFIG,
                as_json=as_json,
                kind="oauth",
            )
        _fail(f"Pleo API: {error}", EXIT_UNAVAILABLE, as_json=as_json, kind="pleo")
    except UsageError as error:
        _fail(str(error), EXIT_CONFIG, as_json=as_json, kind="usage")
    except StateStoreError as error:
        # The message names the database (password hidden) and says what to change.
        _fail(f"state store: {error}", EXIT_CONFIG, as_json=as_json, kind="state_store")
    except KeyboardInterrupt:
        _fail(
            "interrupted (Ctrl-C); what was done is kept in the state store, and the next run "
            "resumes where this one stopped",
            EXIT_INTERRUPTED,
            as_json=as_json,
            kind="interrupted",
        )
    except Terminated:
        _fail(
            "stopped by SIGTERM; what was done is kept in the state store, and the next run "
            "resumes where this one stopped",
            EXIT_TERMINATED,
            as_json=as_json,
            kind="terminated",
        )
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more on stdout, like other Unix tools.
        _silence_stdout()
        sys.exit(int(EXIT_BROKEN_PIPE))
    except Exception as error:
        # A bug, in pleo-export or in a connector. Python's own traceback printer would show
        # the exception text unredacted (a connector error may quote a password), so the
        # traceback goes through the logger, which masks registered secrets.
        from pleo_export.logs import redact

        logging.getLogger("pleo_export.cli").error(
            "unexpected error", exc_info=error, extra={"event": "cli.crash"}
        )
        _fail(
            f"unexpected error: {redact(f'{type(error).__name__}: {error}')} (the traceback is "
            "in the log above; please report it with the connector's name and version)",
            EXIT_INTERNAL,
            as_json=as_json,
            kind="internal",
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class TerminalProgress:
    """Progress on stderr: a live line on a terminal, a line every 10% otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = sys.stderr.isatty()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.last_step = -1
        self.started = time.monotonic()

    def job_started(self, job: ExportJob, items: int) -> None:
        self.total, self.done, self.failed, self.last_step = items, 0, 0, -1
        self.started = time.monotonic()
        if self.enabled:
            click.echo(f"job {job.id}: {items} items", err=True)

    def item_done(self, job: ExportJob, succeeded: bool) -> None:
        self.done += 1
        self.failed += 0 if succeeded else 1
        if not self.enabled:
            return
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        line = f"  {self.done}/{self.total} items, {self.failed} failed, {rate:.0f} items/s"
        if self.live:
            click.echo(f"\r{line}", err=True, nl=False)
            return
        step = (10 * self.done) // max(self.total, 1)
        if step != self.last_step:
            self.last_step = step
            click.echo(line, err=True)

    def waiting(self, seconds: float, why: str) -> None:
        """The Pleo client is about to wait ``seconds`` before its next request."""
        if not self.enabled:
            return
        reason = (
            "Pleo asked to slow down (Retry-After)"
            if why == "retry-after"
            else "the request budget (pleo.requests_per_minute) is used up for this minute"
        )
        prefix = "\n" if self.live and self.done else ""
        click.echo(f"{prefix}  waiting {seconds:.0f} s: {reason}", err=True)

    def job_finished(self, job: ExportJob, report: JobReport) -> None:
        if self.enabled and self.live and self.done:
            click.echo("", err=True)


MAX_GROUPS = 10
"""Failure groups shown per job without ``--verbose``."""


def _print_report(report: RunReport, *, verbose: bool = False) -> None:
    waiting = report.jobs_waiting_elsewhere
    if not report.jobs and not report.skipped_jobs and not report.waiting_elsewhere:
        click.echo("No pending export jobs.")
        return
    if report.waiting_elsewhere:
        companies = len(report.waiting_elsewhere)
        click.echo(
            f"{waiting} pending {'job waits' if waiting == 1 else 'jobs wait'} behind another "
            f"worker ({companies} {'company' if companies == 1 else 'companies'} leased "
            "elsewhere; they are served when that worker finishes or its lease expires)"
        )
    files: dict[str, str] = {}
    for job in report.jobs:
        click.echo(job.summary())
        groups = job.failure_groups()
        shown = groups if verbose else groups[:MAX_GROUPS]
        for group in shown:
            items = "1 item" if group.count == 1 else f"{group.count} items"
            click.echo(f"  {items}: {group.reason_type}: {group.message}")
            if verbose:
                for entry_id in group.accounting_entry_ids:
                    click.echo(f"      {entry_id}")
            files.update(group.paths)
        if len(shown) < len(groups):
            hidden = sum(g.count for g in groups[len(shown) :])
            click.echo(
                f"  ... {len(groups) - len(shown)} more reasons ({hidden} items); "
                "--verbose or --json lists them"
            )
        unlisted = job.failed - len(job.failures)
        if unlisted > 0:
            click.echo(
                f"  ... {unlisted} more failed items not kept in the report; "
                f"`pleo-export jobs --job {job.job_id}` lists every item"
            )
    for name, path in sorted(files.items()):
        click.echo(f"{name}: {path}")
    if any(job.failures for job in report.jobs) and not verbose:
        click.echo("(--verbose lists the items of each reason; --json has everything)")
    for job_id in report.skipped_jobs:
        click.echo(
            f"job {job_id}: left alone (already finished in Pleo, or claimed by another worker)"
        )


def _exit_code(report: RunReport) -> int:
    troubled = any(
        j.failure_reason is not None or (j.final_event is None and not j.dry_run)
        for j in report.jobs
    )
    return EXIT_ITEMS_FAILED if report.items_failed or troubled else EXIT_OK


@click.group(
    help=MAIN_HELP.format(exit_codes=describe_exit_codes()),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="pleo-export")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: ./pleo-export.toml or $PLEO_EXPORT_CONFIG).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log verbosity (default from [log] level, else warning). Logs go to stderr.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Structured log format.")
@click.pass_context
def main(
    ctx: click.Context, config: Path | None, log_level: str | None, log_format: str | None
) -> None:
    ctx.obj = Context(config, log_level, log_format)


# --- run ---------------------------------------------------------------------------------------


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
      pleo-export run --dry-run          preview, nothing is written anywhere
      pleo-export run --json > run.json  machine-readable report
      pleo-export run --watch            run as a service
    """
    if watch and dry_run:
        _fail("--watch and --dry-run cannot be combined", EXIT_CONFIG, as_json=as_json)
    code = _run(
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
    async with (
        open_session(
            settings, dry_run=dry_run, progress=progress, options=options, companies=companies
        ) as s,
        receiver(
            hook.listen if watch else None,
            hook.secret,
            hook.path,
            max_body_bytes=hook.max_body_bytes,
            read_timeout=hook.read_timeout,
            max_connections=hook.max_connections,
        ) as wakeups,
    ):
        runner = s.worker if s.worker is not None else s.engine
        last_idle: tuple[list[str], dict[str, int]] | None = None
        outage = OutageBackoff(
            first=min(settings.engine.poll_interval, 5.0),
            cap=max(settings.engine.outage_backoff_max, min(settings.engine.poll_interval, 5.0)),
        )
        while True:
            try:
                if job_id:
                    job_report = await runner.run_job(job_id)
                    report = RunReport(jobs=[job_report] if job_report else [])
                    if job_report is None:
                        report.skipped_jobs.append(job_id)
                else:
                    report = await runner.run_pending(max_jobs=max_jobs)
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
                await wakeups.wait(delay)
                continue
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
                _emit_json(data)
            else:
                _print_report(report, verbose=verbose)
                for company in elsewhere:
                    click.echo(f"company {company}: another worker is serving it; skipped")
            if not watch:
                return _exit_code(report)
            last_idle = idle if not report.jobs and not report.skipped_jobs else None
            await wakeups.wait(settings.engine.poll_interval)


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


# --- demo --------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("pleo-export-demo"),
    show_default=True,
    help="Folder for the demo's configuration, ledger and state.",
)
@click.option("--fresh", is_flag=True, help="Delete the demo folder's ledger and state first.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_obj
def demo(obj: Context, directory: Path, fresh: bool, as_json: bool) -> None:
    """Export sandbox jobs into a local beancount ledger; no account needed.

    \b
    Sets up DIR with a configuration file, a starter ledger whose accounts
    match the sandbox's chart, and a state database; then runs the export of
    the sandbox's jobs (every Pleo expense type, journal and accounts-payable
    bookkeeping, a few items with an unknown account that fail on purpose)
    and checks the ledger. Run it again: nothing is posted twice.
    """
    from pleo_export.demo import run_demo

    code = _run(lambda: run_demo(obj, directory, fresh=fresh, as_json=as_json), as_json=as_json)
    sys.exit(code)


# --- init --------------------------------------------------------------------------------------


@main.command()
@click.argument("connector")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Folder for pleo-export.toml and the connector's starter files.",
)
@click.option(
    "--base-url",
    default="sandbox",
    show_default=True,
    help='The Pleo API for the configuration: "sandbox", "production", "staging" or a URL.',
)
@click.option(
    "--currency",
    help="The company's Pleo wallet currency, e.g. DKK (default with the sandbox: its GBP).",
)
def init(connector: str, directory: Path, base_url: str, currency: str | None) -> None:
    """Set up a folder for CONNECTOR: pleo-export.toml and the connector's starter files.

    \b
    beancount  books/main.beancount opening every role account, with the
               include of the (empty) output file
    sftp       outbox/ for the CSV files, keys/ for SSH keys and
               pleo-export.rules for hledger
    others     the configuration with every setting listed as a comment
    The configuration points at the Pleo sandbox unless --base-url says
    otherwise, so `pleo-export check` works at once. Nothing that exists is
    overwritten.
    """
    from pleo_export.initialise import init_installation

    try:
        result = init_installation(directory, connector, base_url=base_url, currency=currency)
    except (ConfigError, PluginError) as error:
        _fail(str(error), EXIT_CONFIG)
    here = Path.cwd()
    for path in result.created:
        shown = path.relative_to(here) if path.is_relative_to(here) else path
        click.echo(f"created {shown}{'/' if path.is_dir() else ''}")
    config = "" if directory.resolve() == here.resolve() else f" --config {result.config}"
    if not result.has_starter:
        click.echo(
            f"The {result.connector} connector has no starter files: fill in "
            f"[connector.settings] in {result.config} (every setting is listed there)."
        )
    click.echo("Next:")
    click.echo(f"  pleo-export{config} check              pre-export validation only")
    click.echo(f"  pleo-export{config} run --dry-run      what would be posted, posts nothing")


# --- check -------------------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def check(obj: Context, as_json: bool) -> None:
    """Run pre-export validation only: settings, connector, target and pending jobs.

    Nothing is started, posted or reported. Use it after changing the
    configuration.
    """
    code = _run(lambda: _check_async(obj, as_json), as_json=as_json)
    sys.exit(code)


async def _check_async(obj: Context, as_json: bool) -> int:
    from pleo_export.app import open_session

    settings = obj.settings()
    async with open_session(settings, dry_run=True) as session:
        engines = session.worker.engines() if session.worker is not None else {}
        results: list[dict[str, Any]] = []
        for engine in engines.values() or [session.engine]:
            for job in await engine.pending_jobs():
                problem = await engine.pre_export_validation(job)
                results.append(
                    {
                        "job_id": job.id,
                        "status": job.status.value,
                        "items": job.number_of_items,
                        "ok": problem is None,
                        "failure_reason_type": problem[0].value if problem else None,
                        "failure_reason": problem[1] if problem else None,
                    }
                )
        unavailable = next(
            (e.unavailable for e in [session.engine, *engines.values()] if e.unavailable), None
        )
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
        _emit_json(summary)
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


# --- jobs --------------------------------------------------------------------------------------


@main.command()
@click.option("--job", "job_id", help="Show the items of this job.")
@click.option("--limit", default=20, show_default=True, help="How many recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def jobs(obj: Context, job_id: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs and item outcomes from the local state store."""
    _run(lambda: _jobs_async(obj, job_id, limit, as_json), as_json=as_json)


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
            _emit_json([])
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
                _emit_json(rows)
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
            _emit_json(out)
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


# --- connectors and plugins ----------------------------------------------------------------------


@main.group()
def connectors() -> None:
    """Installed connectors."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def connectors_list(as_json: bool) -> None:
    """Installed connectors with versions, capabilities and load failures."""
    host = PluginHost(load_entry_points=False)
    infos = host.installed_connectors()
    rows: list[dict[str, Any]] = [
        {
            "name": i.origin.name,
            "distribution": i.origin.distribution,
            "version": i.origin.version,
            "display_name": i.manifest.display_name if i.manifest else None,
            "capabilities": sorted(c.value for c in i.manifest.capabilities) if i.manifest else [],
            "docs_url": i.manifest.docs_url if i.manifest else None,
            "error": i.failure,
        }
        for i in infos
    ]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo(
            "No connectors installed. Install one next to pleo-export, e.g.\n"
            "  pip install pleo-export-beancount"
        )
        return
    for row in rows:
        if row["error"]:
            click.echo(
                f"{row['name']}  {row['distribution']} {row['version']}  BROKEN: {row['error']}"
            )
        else:
            caps = ", ".join(row["capabilities"])
            click.echo(
                f"{row['name']}  {row['distribution']} {row['version']}  {row['display_name']}\n"
                f"    capabilities: {caps}"
            )
            if row["docs_url"]:
                click.echo(f"    docs: {row['docs_url']}")


@main.command("new-connector")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to create the package (default: ./pleo-export-NAME); must be new or empty.",
)
@click.option("--display-name", help="Shown in `connectors list` (default: from NAME).")
def new_connector(name: str, directory: Path | None, display_name: str | None) -> None:
    """Generate a connector package NAME from the built-in template.

    \b
    NAME is the connector id (lower-case letters, digits, - and _). The
    package pleo-export-NAME has its own pyproject.toml and entry point, a
    settings model, a manifest, a README, an example configuration for the
    sandbox and tests wired to the conformance kit. It works out of the box
    (it books into a JSON lines file) and passes the kit.
    """
    from pleo_export.new_connector import ConnectorNames, NewConnectorError, generate, next_steps

    try:
        names = ConnectorNames.from_name(name, display_name)
        target = directory if directory is not None else Path(names.distribution)
        generate(target, names)
    except NewConnectorError as error:
        _fail(str(error), EXIT_CONFIG)
    click.echo(next_steps(target, names))


@main.group()
def plugins() -> None:
    """Installed plugins (hooks)."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def plugins_list(as_json: bool) -> None:
    """Loaded plugins with the hooks they implement, and plugins that failed to load."""
    try:
        host = PluginHost()
    except PluginError as error:
        _fail(str(error), EXIT_CONFIG, as_json=as_json, kind="plugin")
    loaded = [
        {
            "name": p.origin.name,
            "distribution": p.origin.distribution,
            "version": p.origin.version,
            "hooks": list(p.hooks),
        }
        for p in host.plugins
    ]
    failed = [
        {
            "name": f.origin.name,
            "distribution": f.origin.distribution,
            "version": f.origin.version,
            "reason": f.reason,
        }
        for f in host.failures
    ]
    if as_json:
        _emit_json({"loaded": loaded, "failed": failed})
        return
    if not loaded and not failed:
        click.echo("No plugins installed.")
    for p in loaded:
        click.echo(
            f"{p['name']}  {p['distribution']} {p['version']}  hooks: {', '.join(p['hooks'])}"
        )
    for f in failed:
        click.echo(f"{f['name']}  {f['distribution']} {f['version']}  FAILED: {f['reason']}")


# --- auth (OAuth for partner apps) --------------------------------------------------------------


@main.group()
def auth() -> None:
    """OAuth installation of a partner app (authorization code with PKCE).

    \b
    Set up the OAuth client in the [oauth] table (client_id, redirect_uri) and
    its secret in PLEO_EXPORT_OAUTH__CLIENT_SECRET, then:
      pleo-export auth login --listen   open the printed URL; the browser
                                        comes back to the loopback redirect_uri
      pleo-export auth login            open the URL, then paste the URL the
                                        browser was redirected to
      pleo-export auth status           is the installation authorised?
    The tokens are kept in the state store (state.url) and refreshed by
    whichever pleo-export process needs them first, one at a time.
    """


@auth.command("login")
@click.option(
    "--listen",
    is_flag=True,
    help="Wait for the browser's redirect on oauth.redirect_uri (http://127.0.0.1:PORT/...).",
)
@click.option(
    "--code",
    "pasted",
    metavar="URL",
    help=(
        "Complete the login started last: the URL the browser was redirected to (or just "
        "its code). Prints no new URL."
    ),
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds --listen waits for the browser.",
)
@click.pass_obj
def auth_login(obj: Context, listen: bool, pasted: str | None, timeout: float) -> None:
    """Install the app: print Pleo's authorize URL, then exchange the code.

    \b
    Without options the command prints the URL and asks for the URL the
    browser ended up on after approving (on a server, open the URL on any
    machine and paste the result back). With --listen it receives the
    redirect itself. A login that was started but not completed can be
    finished within 10 minutes with --code URL. The state parameter is
    checked, and the tokens are stored in the state store.
    """
    if listen and pasted is not None:
        _fail("--listen and --code cannot be combined", EXIT_CONFIG)
    sys.exit(_run(lambda: _auth_login(obj, listen, pasted, wait_seconds=timeout)))


async def _auth_login(
    obj: Context, listen: bool, pasted: str | None, *, wait_seconds: float
) -> int:
    from pleo_export.app import oauth_installation
    from pleo_export.pleo.oauth import RedirectListener

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        flow = installation.login()
        if pasted is None and listen:
            try:
                listener = RedirectListener(flow.redirect_uri)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            async with listener:  # bound before the URL is shown
                request = await flow.start()
                _print_authorize_url(request.url)
                click.echo(
                    f"Waiting for the browser to return to {request.redirect_uri} ...", err=True
                )
                try:
                    with anyio.fail_after(wait_seconds):
                        pasted = await listener.wait()
                except TimeoutError:
                    click.echo(
                        f"No redirect arrived within {wait_seconds:.0f}s. Finish the login with: "
                        "pleo-export auth login --code '<the URL the browser was redirected to>'",
                        err=True,
                    )
                    return EXIT_ITEMS_FAILED
        elif pasted is None:
            request = await flow.start()
            _print_authorize_url(request.url)
            try:
                pasted = click.prompt(
                    "Paste the URL your browser was redirected to", prompt_suffix=": "
                )
            except click.Abort:
                click.echo(
                    "\nNot completed. Within 10 minutes, finish with: "
                    "pleo-export auth login --code '<the URL the browser was redirected to>'",
                    err=True,
                )
                return EXIT_ITEMS_FAILED
        assert pasted is not None
        token = await flow.complete(pasted)
    click.echo(
        f"Installed. The access token is valid until {token.expires_at.isoformat()} and is "
        f"refreshed automatically; scopes: {token.scope or '(not reported)'}."
    )
    return EXIT_OK


def _print_authorize_url(url: str) -> None:
    click.echo("Open this URL in a browser, sign in to Pleo and approve the app:\n")
    click.echo(f"  {url}\n")


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def auth_status(obj: Context, as_json: bool) -> None:
    """Whether the OAuth installation is authorised, and until when its token is valid.

    Exits 0 when tokens are stored and not revoked, 1 otherwise. Never prints
    a token.
    """
    sys.exit(_run(lambda: _auth_status(obj, as_json), as_json=as_json))


async def _auth_status(obj: Context, as_json: bool) -> int:
    from datetime import UTC, datetime

    from pleo_export.app import oauth_installation
    from pleo_export.pleo.oauth import is_dead

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        token = await installation.manager.current()
    now = datetime.now(UTC)
    authorised = token is not None and not is_dead(token)
    info: dict[str, Any] = {
        "installation": installation.key,
        "client_id": installation.client_id,
        "auth_url": installation.auth_url,
        "authorised": authorised,
        "revoked": token is not None and is_dead(token),
        "access_token_expires_at": token.expires_at.isoformat() if authorised and token else None,
        "access_token_valid": bool(authorised and token and token.expires_at > now),
        "generation": token.generation if token else None,
        "scope": token.scope if token else None,
    }
    if as_json:
        _emit_json(info)
    elif token is None:
        click.echo(f"{installation.key}: not installed; run `pleo-export auth login`")
    elif not authorised:
        click.echo(
            f"{installation.key}: REVOKED (Pleo refused its refresh token); run "
            "`pleo-export auth login`"
        )
    else:
        left = (token.expires_at - now).total_seconds()
        validity = (
            f"valid for {left / 60:.0f} more minutes" if left > 0 else "expired (refreshed on use)"
        )
        click.echo(
            f"{installation.key}: authorised; access token {validity} "
            f"(until {token.expires_at.isoformat()}); scope: {token.scope or '(not reported)'}; "
            f"token generation {token.generation}"
        )
    return EXIT_OK if authorised else EXIT_ITEMS_FAILED


@auth.command("refresh")
@click.pass_obj
def auth_refresh(obj: Context) -> None:
    """Refresh the access token now (normally it is refreshed on use)."""
    sys.exit(_run(lambda: _auth_refresh(obj)))


async def _auth_refresh(obj: Context) -> int:
    from pleo_export.app import oauth_installation

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        token = await installation.manager.refresh_now()
    click.echo(
        f"{installation.key}: refreshed; the access token is valid until "
        f"{token.expires_at.isoformat()}"
    )
    return EXIT_OK


# --- sandbox -------------------------------------------------------------------------------------


@main.group()
def sandbox() -> None:
    """The built-in Pleo Export API sandbox."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.pass_obj
def sandbox_serve(obj: Context, host: str, port: int) -> None:
    """Serve the sandbox over HTTP, seeded from the [sandbox] settings.

    \b
    Point another installation at it with:
      [pleo]
      base_url = "http://127.0.0.1:8765"
      api_key = "<the key printed at start>"
    Admin endpoints under /_sandbox/ queue exports and inject faults.
    """
    from pleo_export.app import build_sandbox
    from pleo_export.simulator import require_sandbox

    try:
        require_sandbox("pleo-export sandbox serve")
        settings = obj.settings()
        sandbox_obj, company_id, key = build_sandbox(settings)
    except ConfigError as error:
        _fail(str(error), EXIT_CONFIG)
    from pleo_export_sandbox.server import serve

    click.echo(f"company_id = {company_id}")
    click.echo(f"api_key    = {key.get_secret_value()}")
    click.echo(f"listening on http://{host}:{port}")
    serve(sandbox_obj, host=host, port=port)


__all__ = ["main"]

if __name__ == "__main__":
    main()
