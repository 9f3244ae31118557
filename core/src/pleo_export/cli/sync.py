"""``pleo-export sync``: the accounting system's master data into Pleo."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pleo_export.cli.common import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Context,
    UsageError,
    emit_json,
    run_command,
)
from pleo_export.cli.root import main

if TYPE_CHECKING:
    import httpx

    from pleo_export.sync.diff import Change
    from pleo_export.sync.drafts import DraftOutcome
    from pleo_export.sync.runner import KindOutcome, SyncReport

KIND_NAMES = ("vendors", "tax-codes", "tags")


@main.command()
@click.argument("kinds", nargs=-1, type=click.Choice(KIND_NAMES))
@click.option(
    "--dry-run", is_flag=True, help="Show the difference as a table; write nothing to Pleo."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and outcome as JSON.")
@click.option(
    "--company",
    help="Sync this company (default: pleo.company_id, or the first of pleo.company_ids).",
)
@click.pass_obj
def sync(
    obj: Context, kinds: tuple[str, ...], dry_run: bool, as_json: bool, company: str | None
) -> None:
    """Bring Pleo's vendors, tax codes and tags in step with the accounting system.

    \b
    The accounting system is the source of truth. For each KIND (all three when
    none is named) the connector's list is compared with Pleo's, matching
    vendors on external id, then code, then tax registration number, then
    name, and tax codes, tag groups and tags on code, then name:
      create     in the accounting system, not in Pleo
      update     a field differs (shown old -> new), or archived only in Pleo
      activate   a vendor Pleo holds as a draft, found in the accounting system
      archive    archived in the accounting system, or gone from it
    Nothing is ever deleted in Pleo (items may refer to it): archive only.
    Dimensions become tag groups and their values tags.

    \b
    Run it again at any time: a second sync writes nothing, and a sync that
    was interrupted continues where it stopped (every write stands alone).
    Its requests share pleo.requests_per_minute with the export. `sync
    vendors` also handles vendors created in Pleo as drafts: the connector
    creates them (capability create_vendors) and they are activated in Pleo.

    \b
    A kind the connector cannot list (capabilities read_vendors,
    read_tax_codes, read_dimensions; see `pleo-export connectors list`) is
    skipped with a message; naming it explicitly is an error (exit 2).

    \b
    Examples:
      pleo-export sync --dry-run           the difference, nothing written
      pleo-export sync vendors             vendors only (and draft vendors)
      pleo-export sync --json > sync.json  plan and outcome, machine-readable
    """
    code = run_command(lambda: _sync_async(obj, kinds, dry_run, as_json, company), as_json=as_json)
    sys.exit(code)


async def _sync_async(
    obj: Context,
    names: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    company: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    from pleo_export.app import master_data, open_session
    from pleo_export.sync.diff import Kind
    from pleo_export.sync.drafts import DraftVendors
    from pleo_export.sync.runner import CAPABILITY, missing_capabilities, run_sync

    settings = obj.settings()
    kinds = [Kind(name) for name in dict.fromkeys(names)] or list(Kind)
    companies = (company,) if company else None
    async with open_session(
        settings, dry_run=dry_run, companies=companies, transport=transport
    ) as session:
        connector = session.connector
        manifest = type(connector).manifest
        if names:
            missing = missing_capabilities(connector, kinds)
            if missing:
                wanted = ", ".join(f"{k.value} needs {CAPABILITY[k].value}" for k in missing)
                raise UsageError(
                    f"connector {manifest.id!r} cannot list what sync was asked for ({wanted}): "
                    "leave it out, or use a connector that declares the capability (see "
                    "`pleo-export connectors list`)"
                )
        if session.engine.unavailable is not None:
            message = f"connector {manifest.id}: {session.engine.unavailable.message}"
            if as_json:
                error = {"kind": "connector", "message": message}
                emit_json({"error": error, "exit_code": int(EXIT_UNAVAILABLE)})
            else:
                click.secho(f"error: {message}", fg="red", err=True)
            return EXIT_UNAVAILABLE
        pleo = master_data(session)  # the company's APIs on the session's client
        report = await run_sync(connector, pleo, kinds, dry_run=dry_run)
        drafts: list[DraftOutcome] = []
        waiting_drafts = 0
        if Kind.VENDORS in kinds:
            handler = DraftVendors(connector, pleo)
            if dry_run:
                from pleo_export.pleo.masterdata_models import VendorState

                waiting_drafts = len(await pleo.list_vendors(states=[VendorState.DRAFT]))
            else:
                drafts = await handler.poll()
    if as_json:
        data = report.to_json()
        data["draft_vendors"] = [d.to_json() for d in drafts]
        if dry_run:
            data["draft_vendors_waiting"] = waiting_drafts
        emit_json(data)
    else:
        print_sync(report)
        _print_drafts(drafts, waiting_drafts, dry_run)
    troubled = report.failed or any(d.status.value != "activated" for d in drafts)
    return EXIT_ITEMS_FAILED if troubled else EXIT_OK


def _changes_text(change: Change) -> str:
    if change.action.value == "create":
        return "new"
    return "; ".join(c.describe() for c in change.changes)


def print_sync(report: SyncReport) -> None:
    """The diff table (every change that writes) and a summary line per kind."""
    rows: list[tuple[str, ...]] = []
    for outcome in report.kinds:
        if outcome.plan is None:
            continue
        failed = {id(a.change): a.error for a in outcome.result.failed} if outcome.result else {}
        for change in outcome.plan.changes:
            if not change.writes:
                continue
            what = change.entity.value
            code = f"{change.group_code}/{change.code}" if change.group_code else change.code
            text = _changes_text(change)
            if id(change) in failed:
                text = f"FAILED: {failed[id(change)]}"
            rows.append((outcome.kind.value, what, change.action.value, code, change.name, text))
    if rows:
        header = ("KIND", "WHAT", "ACTION", "CODE", "NAME", "CHANGES")
        widths = [min(max(len(r[i]) for r in [header, *rows]), 32) for i in range(5)]
        for row in [header, *rows]:
            cells = [row[i][: widths[i]].ljust(widths[i]) for i in range(5)]
            click.echo("  ".join([*cells, row[5]]).rstrip())
        click.echo("")
    for outcome in report.kinds:
        click.echo(summary_line(outcome, report.dry_run))
    if report.dry_run:
        click.echo("Dry run: nothing was written to Pleo. Run without --dry-run to apply it.")
    else:
        click.echo(f"{report.writes} write request(s) to Pleo.")


def summary_line(outcome: KindOutcome, dry_run: bool) -> str:
    from pleo_export.sync.diff import Action

    if outcome.skipped is not None:
        return f"{outcome.kind.value}: skipped: {outcome.skipped}"
    assert outcome.plan is not None
    verbs = {
        Action.CREATE: "create" if dry_run else "created",
        Action.UPDATE: "update" if dry_run else "updated",
        Action.ACTIVATE: "activate" if dry_run else "activated",
        Action.ARCHIVE: "archive" if dry_run else "archived",
    }
    prefix = "to " if dry_run else ""
    parts = [f"{outcome.plan.count(action)} {prefix}{verb}" for action, verb in verbs.items()] + [
        f"{outcome.plan.count(Action.UNCHANGED)} unchanged"
    ]
    text = f"{outcome.kind.value}: " + ", ".join(parts)
    if outcome.result is not None and outcome.result.failed:
        text += f" ({len(outcome.result.failed)} refused by Pleo, listed above)"
    return text


def _print_drafts(drafts: list[DraftOutcome], waiting: int, dry_run: bool) -> None:
    if dry_run and waiting:
        click.echo(
            f"{waiting} vendor(s) created in Pleo wait as drafts; `pleo-export sync vendors` "
            "creates them in the accounting system (when the connector can) and activates them"
        )
    for draft in drafts:
        click.echo(f"draft vendor {draft.name!r}: {draft.status.value}: {draft.message}")
