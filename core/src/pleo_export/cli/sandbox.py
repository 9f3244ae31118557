"""``pleo-export sandbox serve``: the built-in Pleo sandbox over HTTP."""

from __future__ import annotations

import click

from pleo_export.cli.common import (
    EXIT_CONFIG,
    Context,
    fail,
)
from pleo_export.cli.root import main
from pleo_export.config import ConfigError


@main.group()
def sandbox() -> None:
    """The built-in Pleo Export API sandbox."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option(
    "--files-port",
    type=int,
    default=None,
    help="Port of the receipt files' own listener (default: --port + 1; 0: any free port).",
)
@click.pass_obj
def sandbox_serve(obj: Context, host: str, port: int, files_port: int | None) -> None:
    """Serve the sandbox over HTTP, seeded from the [sandbox] settings.

    Receipt files are served on a second port, apart from the API, as Pleo serves them
    from its own storage: downloads do not count against the API's request budget.

    \b
    Point another installation at it with:
      [pleo]
      base_url = "http://127.0.0.1:8765"
      api_key = "<the key printed at start>"
      receipt_hosts = ["127.0.0.1:8766"]
    Admin endpoints under /_sandbox/ queue exports and inject faults.
    """
    from pleo_export.app import build_sandbox
    from pleo_export.simulator import require_sandbox

    try:
        require_sandbox("pleo-export sandbox serve")
        settings = obj.settings()
        sandbox_obj, company_id, key = build_sandbox(settings)
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
    from pleo_export.httpserver import CannotListen
    from pleo_export_sandbox.server import serve

    def ready(api_url: str, files_url: str) -> None:
        click.echo(f"company_id = {company_id}")
        click.echo(f"api_key    = {key.get_secret_value()}")
        click.echo(f"listening on {api_url}")
        click.echo(f"receipts on {files_url}: allow them with")
        click.echo(f'  receipt_hosts = ["{files_url.removeprefix("http://")}"]')

    if files_port is None:
        files_port = port + 1 if 0 < port < 65535 else 0
    try:
        serve(sandbox_obj, host=host, port=port, files_port=files_port, on_ready=ready)
    except CannotListen as error:
        fail(f"{error}: choose another --port or --files-port", EXIT_CONFIG)
