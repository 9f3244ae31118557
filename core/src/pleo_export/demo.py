"""``pleo-export demo``: the sandbox, the beancount connector and a local folder.

The first run creates ``<dir>/pleo-export.toml``, a starter ledger whose accounts carry the
sandbox chart's codes and which holds its vendors, tax codes and dimensions, and then exports
the sandbox's jobs. Later runs reuse the folder: the sandbox offers the same expenses again,
the connector finds each one in the ledger by its reference, and nothing is posted twice.

Before the export the demo synchronises master data (:mod:`pleo_export.sync`): the demo's Pleo
starts with no vendors, tax codes or tags (``[sandbox] master_data = "empty"``), the sync
creates the ledger's in Pleo, and only then is the vendor-based job made, drawing its vendors,
tax codes and tags from what Pleo now holds. So the only failed items are the deliberate ones
(a category whose account the ledger does not have).

This module does the work and returns a :class:`DemoResult`; the command's output is printed by
:mod:`pleo_export.cli.demo`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleo_export.config import (
    SANDBOX,
    ConfigError,
    SandboxSettings,
    Settings,
    connector_env_prefix,
)
from pleo_export.connector import SupportsScaffold
from pleo_export.engine.report import RunReport
from pleo_export.host import PluginHost

if TYPE_CHECKING:
    from collections.abc import Callable

    from pleo_export.app import Session
    from pleo_export.engine.options import Progress
    from pleo_export.sync import SyncReport
    from pleo_export_sandbox import Sandbox

DEMO_CONNECTOR = "beancount"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path | str):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} to the demo configuration")


def write_demo_config(directory: Path, connector_settings: dict[str, Any]) -> Path:
    """Write the demo's configuration file (values only of simple types)."""
    lines = [
        "# pleo-export demo configuration: the built-in Pleo sandbox and a beancount ledger.",
        "# `pleo-export demo` runs only on the sandbox. To go live, copy this file, point",
        '# [pleo] at a real company (base_url = "production", company_id and the API key in',
        "# PLEO_EXPORT_PLEO__API_KEY) and a real ledger, and use `pleo-export run`.",
        "",
        "[pleo]",
        'base_url = "sandbox"',
        "",
        "[state]",
        'url = "sqlite:///state.db"',
        "",
        "[connector]",
        f'name = "{DEMO_CONNECTOR}"',
        "",
        "[connector.settings]",
    ]
    for key, value in connector_settings.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in connector_settings.items():
        if isinstance(value, dict):
            lines += ["", f"[connector.settings.{key}]"]
            lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()]
    lines += [
        "",
        "[sandbox]",
        "seed = 7",
        "jobs = 2",
        "items_per_job = 80",
        "# The vendor-based job is made after `sync` has filled Pleo's master data.",
        "vendor_based_jobs = 0",
        'master_data = "empty"',
        "unknown_account_rate = 0.03",
        "",
    ]
    path = directory / "pleo-export.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _refuse_connector_overrides() -> None:
    """The demo books generated expenses into its own folder only: environment variables that
    would point its connector elsewhere (``PLEO_EXPORT_CONNECTOR__*``, which override the demo's
    file, and ``PLEO_EXPORT_<CONNECTOR>_*``) are refused rather than followed into real books."""
    connector_prefix = connector_env_prefix(DEMO_CONNECTOR)
    overrides = sorted(
        name
        for name in os.environ
        if name.startswith(("PLEO_EXPORT_CONNECTOR__", connector_prefix))
    )
    if overrides:
        raise ConfigError(
            f"pleo-export demo books only into its own folder, but {', '.join(overrides)} "
            "would change where its connector writes: unset them for the demo"
        )


DEMO_PLUGIN_DEFAULTS: dict[str, dict[str, str]] = {"report": {"directory": "."}}
"""Settings of first-party plugins in the demo, when installed and not configured: the
report plugin writes its reports into the demo folder, next to the ledger."""


def with_demo_plugin_defaults(settings: Settings, directory: Path) -> Settings:
    """``settings`` with a ``[plugins.<name>]`` table for each installed plugin of
    :data:`DEMO_PLUGIN_DEFAULTS` that has none (paths relative to ``directory``)."""
    from pleo_export.host import PLUGINS_GROUP, _entry_points

    installed = {ep.name for ep in _entry_points(PLUGINS_GROUP)}
    tables = settings.plugins.tables()
    added = {
        name: {key: str(directory / value) for key, value in values.items()}
        for name, values in DEMO_PLUGIN_DEFAULTS.items()
        if name in installed and name not in tables and name not in settings.plugins.disabled
    }
    if not added:
        return settings
    plugins = type(settings.plugins)(disabled=settings.plugins.disabled, **tables, **added)
    return settings.model_copy(update={"plugins": plugins})


@dataclass
class DemoResult:
    """What one demo run did: the run report, the item types exported and the ledger check."""

    directory: Path
    first_run: bool
    report: RunReport
    item_types: Counter[str] = field(default_factory=Counter)
    target_problems: list[str] = field(default_factory=list)
    sync: SyncReport | None = None
    """The master-data sync before the export (``None``: the connector cannot list any)."""
    reports: list[Path] = field(default_factory=list)
    """Files the plugins wrote (those that list them in a ``written`` attribute, as the
    report plugin does), e.g. ``job-<id>.html``."""

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "first_run": self.first_run,
            "sync": self.sync.to_json() if self.sync is not None else None,
            "report": self.report.to_json(),
            "item_types": dict(sorted(self.item_types.items())),
            "target_problems": self.target_problems,
            "reports": [str(path) for path in self.reports],
        }


def prepare_demo(directory: Path, *, fresh: bool) -> tuple[Path, bool]:
    """Create (or with ``fresh`` recreate) the demo folder; returns its configuration file and
    whether this is the first run (the configuration and starter ledger were just written)."""
    from pleo_export.simulator import require_sandbox

    require_sandbox("pleo-export demo")
    from pleo_export_sandbox import DEMO_CHART

    directory = directory.resolve()
    config = directory / "pleo-export.toml"
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    first_run = not config.exists()
    if first_run:
        connector_cls = PluginHost(load_entry_points=False).load_connector(DEMO_CONNECTOR)
        if not isinstance(connector_cls, SupportsScaffold):
            raise ConfigError(
                f"connector {DEMO_CONNECTOR!r} cannot set up a demo target (it has no scaffold)"
            )
        currency = SandboxSettings().wallet_currency
        values = connector_cls.scaffold(directory, DEMO_CHART, currency)
        write_demo_config(directory, values)
    return config, first_run


DEMO_VENDOR_JOBS = 1
"""Vendor-based jobs the demo makes after the sync (``[sandbox] master_data = "empty"``)."""


async def run_demo(
    settings: Settings,
    config: Path,
    *,
    first_run: bool,
    progress: Progress | None = None,
    on_sync: Callable[[SyncReport], None] | None = None,
) -> DemoResult:
    """Synchronise master data, export the sandbox's jobs with ``settings`` (loaded from
    ``config``) and check the ledger. ``on_sync`` sees the sync's report before the export
    starts. Raises :class:`ConfigError` when the settings point at anything but the sandbox."""
    from pleo_export.app import open_session

    if settings.pleo.base_url != SANDBOX:
        # The demo's ledger takes generated expenses; it never talks to a real Pleo company.
        raise ConfigError(
            f"pleo-export demo exports only the built-in sandbox, but pleo.base_url is "
            f"{settings.pleo.base_url!r} (in {config} or PLEO_EXPORT_PLEO__BASE_URL): use "
            f"pleo-export --config {config} run for a real company, or pleo-export demo --fresh"
        )
    _refuse_connector_overrides()
    settings = with_demo_plugin_defaults(settings, config.parent)
    async with open_session(settings, progress=progress) as session:
        synced = await _sync_master_data(session)
        if synced is not None and on_sync is not None:
            on_sync(synced)
        if session.sandbox is not None and settings.sandbox.master_data == "empty":
            _vendor_jobs(session.sandbox, session.company_id or "", settings)
        report: RunReport = await session.worker.run_pending()
        target_problems = await session.connector.verify()
        types: Counter[str] = Counter()
        if session.sandbox is not None:
            for job in report.jobs:
                for item in session.sandbox.job_items(job.job_id):
                    exported = session.sandbox.export_item(item.accounting_entry_id)
                    types[str(exported.get("type"))] += 1
        reports = [
            Path(path)
            for plugin in session.host.pm.get_plugins()
            for path in getattr(plugin, "written", None) or []
            if isinstance(path, str | Path)
        ]
    return DemoResult(
        config.parent, first_run, report, types, list(target_problems), synced, sorted(reports)
    )


async def _sync_master_data(session: Session) -> SyncReport | None:
    """``pleo-export sync`` for every kind the connector can list."""
    from pleo_export.pleo.masterdata import PleoMasterData
    from pleo_export.sync import Kind, missing_capabilities, run_sync

    kinds = [kind for kind in Kind if not missing_capabilities(session.connector, [kind])]
    if not kinds or session.company_id is None or session.engine.unavailable is not None:
        return None
    pleo = PleoMasterData(session.client, session.company_id)
    return await run_sync(session.connector, pleo, kinds, dry_run=False)


def _vendor_jobs(sandbox: Sandbox, company_id: str, settings: Settings) -> None:
    """The demo's vendor-based job(s), drawn from the master data Pleo holds after the sync
    (the same seeds on every run, so a second run offers the same expenses)."""
    cfg = settings.sandbox
    for index in range(DEMO_VENDOR_JOBS):
        sandbox.schedule_export(
            company_id,
            count=cfg.items_per_job,
            seed=cfg.seed * 1000 + cfg.jobs + index,
            vendor_based_bookkeeping=True,
            unknown_account_rate=cfg.unknown_account_rate,
            from_master_data=True,
        )
