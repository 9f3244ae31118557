"""``pleo-export new-connector``: a connector package from the template."""

from __future__ import annotations

from pathlib import Path

import click

from pleo_export.cli.common import (
    EXIT_CONFIG,
    fail,
)
from pleo_export.cli.root import main


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
        fail(str(error), EXIT_CONFIG)
    click.echo(next_steps(target, names))
