"""``pleo-export init``: set up a folder for a connector."""

from __future__ import annotations

from pathlib import Path

import click

from pleo_export.cli.common import (
    EXIT_CONFIG,
    fail,
)
from pleo_export.cli.root import main
from pleo_export.config import ConfigError
from pleo_export.host import PluginError


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
        fail(str(error), EXIT_CONFIG)
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
