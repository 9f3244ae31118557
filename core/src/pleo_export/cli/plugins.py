"""``pleo-export connectors list`` and ``pleo-export plugins list``."""

from __future__ import annotations

from typing import Any

import click

from pleo_export.cli.common import (
    EXIT_CONFIG,
    emit_json,
    fail,
)
from pleo_export.cli.root import main
from pleo_export.host import PluginError, PluginHost


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
        emit_json(rows)
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
        fail(str(error), EXIT_CONFIG, as_json=as_json, kind="plugin")
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
        emit_json({"loaded": loaded, "failed": failed})
        return
    if not loaded and not failed:
        click.echo("No plugins installed.")
    for p in loaded:
        click.echo(
            f"{p['name']}  {p['distribution']} {p['version']}  hooks: {', '.join(p['hooks'])}"
        )
    for f in failed:
        click.echo(f"{f['name']}  {f['distribution']} {f['version']}  FAILED: {f['reason']}")
