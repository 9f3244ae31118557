"""The ``pleo-export`` group: global options and the help text."""

from __future__ import annotations

from pathlib import Path

import click

from pleo_export import __version__
from pleo_export.cli.common import (
    Context,
)
from pleo_export.exit_codes import describe as describe_exit_codes

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
  pleo-export sync --dry-run       vendors, tax codes, tags: what Pleo lacks
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
