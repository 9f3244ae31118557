"""``pleo-export demo``: export sandbox jobs into a local beancount ledger."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pleo_export.cli.common import EXIT_ITEMS_FAILED, EXIT_OK, Context, emit_json, run_command
from pleo_export.cli.output import TerminalProgress, print_report
from pleo_export.cli.root import main
from pleo_export.cli.sync import summary_line

if TYPE_CHECKING:
    from pleo_export.sync import SyncReport


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
    Sets up DIR with a configuration file, a starter ledger whose accounts,
    vendors, tax codes and dimensions match the sandbox's chart, and a state
    database. The demo's Pleo starts with no vendors, tax codes or tags: a
    sync (`pleo-export sync`) creates the ledger's in Pleo first. Then it
    exports the sandbox's jobs (every Pleo expense type, journal and
    accounts-payable bookkeeping; the vendor-based job draws its vendors from
    what Pleo now holds; a few items with an unknown account fail on purpose)
    and checks the ledger. Run it again: nothing is posted twice.
    """
    code = run_command(lambda: _demo_async(obj, directory, fresh, as_json), as_json=as_json)
    sys.exit(code)


async def _demo_async(obj: Context, directory: Path, fresh: bool, as_json: bool) -> int:
    from pleo_export.demo import prepare_demo, run_demo

    config, first_run = prepare_demo(directory, fresh=fresh)
    obj.config = config
    settings = obj.settings()
    progress = TerminalProgress(enabled=not as_json)
    result = await run_demo(
        settings,
        config,
        first_run=first_run,
        progress=progress,
        on_sync=None if as_json else _print_sync,
    )
    summary = result.to_json()
    report, types, target_problems = result.report, result.item_types, result.target_problems
    if as_json:
        emit_json(summary)
    else:
        print_report(report)
        totals = summary["report"]["totals"]
        click.echo("")
        click.echo(f"Demo folder: {result.directory}")
        pages = [path for path in result.reports if path.suffix == ".html"]
        if pages:
            click.echo(f"Reports: {len(pages)} HTML pages, e.g. {pages[0]} (open in a browser)")
        click.echo(
            f"{len(report.jobs)} jobs, {sum(types.values())} items of {len(types)} types: "
            f"{totals['posted']} posted now, {totals['recovered']} already in the ledger, "
            f"{totals['failed']} failed (each with its reason above)"
        )
        if target_problems:
            click.echo("Ledger check: PROBLEMS")
            for problem in target_problems:
                click.echo(f"  {problem}")
        else:
            click.echo("Ledger check: the ledger loads in beancount with no errors")
        if first_run:
            click.echo(
                "Run `pleo-export demo` again: every entry is found by reference, "
                "nothing is posted twice."
            )
    if target_problems:
        return EXIT_ITEMS_FAILED
    return EXIT_OK


def _print_sync(report: SyncReport) -> None:
    click.echo("Master data, ledger -> Pleo (pleo-export sync):")
    for outcome in report.kinds:
        click.echo(f"  {summary_line(outcome, dry_run=False)}")
    click.echo("")
