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
        fail(str(error), EXIT_CONFIG)
    from pleo_export_sandbox.server import serve

    click.echo(f"company_id = {company_id}")
    click.echo(f"api_key    = {key.get_secret_value()}")
    click.echo(f"listening on http://{host}:{port}")
    serve(sandbox_obj, host=host, port=port)
