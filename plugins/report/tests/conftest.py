"""A real export for the report plugin: the built-in sandbox, the beancount connector and the
plugin loaded from its entry point, in process."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pleo_export import RunReport
from pleo_export.app import open_session
from pleo_export.config import load_settings
from pleo_export.demo import prepare_demo
from pleo_export.host import Origin, PluginHost
from pleo_export_report import ReportPlugin

HOSTILE_NAMES = [
    "<script>alert('vendor')</script>",
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table><h1 id=pwned>pwned</h1>",
    '=HYPERLINK("http://evil.example/","click")',
    "Caf\u00e9 & Co <b>bold</b>",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Exported:
    directory: Path
    report: RunReport
    plugin: ReportPlugin
    hostile: dict[str, str]
    """Accounting entry id -> the hostile vendor name it was given."""

    def html(self) -> list[Path]:
        return sorted(self.directory.glob("job-*.html"))

    def csv(self) -> list[Path]:
        return sorted(self.directory.glob("job-*.csv"))


Mutate = Callable[[Any], dict[str, str]]


def make_hostile(sandbox: Any) -> dict[str, str]:
    """Give entries hostile vendor/supplier names and notes; returns id -> name."""
    given: dict[str, str] = {}
    for n, (entry_id, entry) in enumerate(sorted(sandbox.store.entries.items())):
        name = HOSTILE_NAMES[n % len(HOSTILE_NAMES)]
        for key in ("vendor", "supplier"):
            if isinstance(entry.get(key), dict):
                entry[key]["name"] = name
        entry["note"] = name
        given[entry_id] = name
    return given


async def export(
    directory: Path,
    *,
    items: int = 24,
    table: str | None = 'directory = "reports"\n',
    mutate: Mutate | None = None,
    unknown_account_rate: float = 0.1,
    extra: Sequence[object] = (),
    dry_run: bool = False,
    fresh: bool = True,
) -> Exported:
    """One sandbox job of ``items`` items exported into a beancount ledger in ``directory``,
    with the report plugin loaded from its entry point and ``table`` as [plugins.report] (None:
    no table). ``fresh=False`` runs again in the folder a first call made, with its settings
    (the sandbox makes the same job again)."""
    config, _ = prepare_demo(directory, fresh=fresh)
    if fresh:
        text = config.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^jobs = \d+$", "jobs = 1", text)
        text = re.sub(r"(?m)^items_per_job = \d+$", f"items_per_job = {items}", text)
        text = re.sub(
            r"(?m)^unknown_account_rate = .*$",
            f"unknown_account_rate = {unknown_account_rate}",
            text,
        )
        if table is not None:
            text += "\n[plugins.report]\n" + table
        config.write_text(text, encoding="utf-8")
    settings = load_settings(config)
    others = {ep.name for ep in importlib.metadata.entry_points(group="pleo_export.plugins")}
    host = PluginHost(strict=True, disabled=sorted(others - {"report"}))
    plugin = host.pm.get_plugin("report")
    assert isinstance(plugin, ReportPlugin), "the report plugin is not installed in this venv"
    for n, other in enumerate(extra):
        assert host.register(other, Origin(f"extra{n}", "tests", "tests", "0"))
    hostile: dict[str, str] = {}
    async with open_session(settings, host=host, dry_run=dry_run) as session:
        if mutate is not None:
            hostile = mutate(session.sandbox)
        report = await session.worker.run_pending()
    return Exported(plugin.settings.directory, report, plugin, hostile)
