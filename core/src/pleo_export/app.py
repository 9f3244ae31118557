"""Wiring: from :class:`~pleo_export.config.Settings` to a ready engine.

:func:`open_session` loads the configured connector (and nothing else from the connector
group), validates its settings before any job is touched, opens the state store, the Pleo
client (or the built-in sandbox) and the connector, and closes all of them on exit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from pleo_export import logs
from pleo_export.bookkeeping import PlanOptions
from pleo_export.config import SANDBOX, ConfigError, Settings, connector_settings
from pleo_export.connector import (
    Connector,
    ConnectorContext,
    ConnectorSettings,
    ItemRejected,
    JobRejected,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine.runner import EngineOptions, ExportEngine, Progress
from pleo_export.host import PluginHost
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.auth import ApiKeyAuth, BearerTokenAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportItemFile
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.sandbox import Sandbox, SandboxConfig
from pleo_export.state import open_store
from pleo_export.state.base import StateStore

log = logging.getLogger("pleo_export.app")


@dataclass
class Session:
    settings: Settings
    host: PluginHost
    client: PleoClient
    connector: Connector[Any]
    store: StateStore
    engine: ExportEngine
    company_id: str | None
    sandbox: Sandbox | None = None


def build_sandbox(settings: Settings) -> tuple[Sandbox, str, SecretStr]:
    """The in-process sandbox with the deterministic demo exports of ``[sandbox]``."""
    cfg = settings.sandbox
    sandbox = Sandbox(SandboxConfig())
    # A stable company id makes the generated expenses (and their ids) the same on every run,
    # so a second run offers the same entries again and shows that none is posted twice.
    stable_id = uuid.uuid5(uuid.NAMESPACE_URL, f"pleo-export-sandbox:{cfg.company_name}:{cfg.seed}")
    company = sandbox.add_company(
        name=cfg.company_name, wallet_currency=cfg.wallet_currency, company_id=str(stable_id)
    )
    first_vendor_job = cfg.jobs - cfg.vendor_based_jobs
    for index in range(cfg.jobs):
        sandbox.schedule_export(
            company.id,
            count=cfg.items_per_job,
            seed=cfg.seed * 1000 + index,
            vendor_based_bookkeeping=index >= first_vendor_job,
            unknown_account_rate=cfg.unknown_account_rate,
        )
    return sandbox, company.id, SecretStr(company.api_key)


def register_secrets(settings: Settings, connector: ConnectorSettings | None) -> None:
    for secret in (settings.pleo.api_key, settings.pleo.access_token):
        if secret is not None:
            logs.register_secret(secret.get_secret_value())
    if connector is not None:
        for name in type(connector).model_fields:
            value = getattr(connector, name)
            if isinstance(value, SecretStr):
                logs.register_secret(value.get_secret_value())


def load_connector_class(settings: Settings, host: PluginHost) -> type[Connector[Any]]:
    name = settings.connector.name
    if not name:
        installed = [info.origin.name for info in host.installed_connectors() if info.manifest]
        hint = (
            f"installed connectors: {', '.join(installed)}"
            if installed
            else "no connector is installed; install one next to pleo-export, e.g. "
            "`pip install pleo-export-beancount`"
        )
        raise ConfigError(
            "no connector configured: set `name` in the [connector] table of the configuration "
            f"(or PLEO_EXPORT_CONNECTOR__NAME); {hint}"
        )
    return host.load_connector(name)


@asynccontextmanager
async def open_session(
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    host: PluginHost | None = None,
    options: EngineOptions | None = None,
) -> AsyncIterator[Session]:
    host = host or PluginHost(disabled=settings.plugins.disabled)
    connector_cls = load_connector_class(settings, host)
    conn_settings = connector_settings(
        connector_cls.manifest, settings.connector.settings, settings.config_dir
    )
    register_secrets(settings, conn_settings)

    sandbox: Sandbox | None = None
    company_id = settings.pleo.company_id
    transport = None
    if settings.pleo.base_url == SANDBOX:
        sandbox, company_id, key = build_sandbox(settings)
        base_url = sandbox.base_url
        auth: ApiKeyAuth | BearerTokenAuth = ApiKeyAuth(key)
        transport = sandbox.transport()
    else:
        base_url = settings.pleo.resolved_url()
        if settings.pleo.api_key is not None:
            auth = ApiKeyAuth(settings.pleo.api_key)
        elif settings.pleo.access_token is not None:
            auth = BearerTokenAuth(settings.pleo.access_token)
        else:
            raise ConfigError(
                "pleo.api_key (or pleo.access_token) is required when pleo.base_url is "
                f"{settings.pleo.base_url!r}: set PLEO_EXPORT_PLEO__API_KEY or add it to the "
                "[pleo] table"
            )

    client = PleoClient(
        base_url,
        auth,
        requests_per_minute=settings.pleo.requests_per_minute,
        page_size=settings.pleo.page_size,
        timeout=settings.pleo.timeout,
        transport=transport,
    )
    limit = connector_cls.manifest.limits.max_attachment_bytes

    async def fetch_attachment(file: ExportItemFile) -> bytes:
        try:
            return await client.download(file.url, max_bytes=limit)
        except pleo_errors.PleoApiError as error:
            raise ItemRejected(
                ItemReason.RECEIPT_DOWNLOAD_FAILURE,
                f"the receipt ({file.type}, {file.size} bytes) could not be downloaded from "
                f"Pleo: {error}. Receipt links expire 24 hours after the export started; "
                "export the expense again",
            ) from error

    store = open_store("sqlite:///:memory:" if dry_run else settings.state_url())
    context = ConnectorContext(
        logger=logging.getLogger(f"pleo_export.connector.{connector_cls.manifest.id}"),
        fetch_attachment=fetch_attachment,
        work_dir=settings.config_dir,
        dry_run=dry_run,
    )
    connector = connector_cls(conn_settings, context)
    engine_options = options or EngineOptions()
    engine_options.company_id = company_id
    engine_options.dry_run = dry_run
    engine_options.report_interval = settings.engine.report_interval
    engine_options.post_attempts = settings.engine.post_attempts
    engine_options.plan = PlanOptions(
        rounding_tolerance_per_line=settings.engine.rounding_tolerance_per_line,
        booking_timezone=settings.engine.booking_timezone,
    )
    engine = ExportEngine(
        client=client,
        connector=connector,
        store=store,
        hooks=host,
        options=engine_options,
        progress=progress,
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(client)
        await store.open()
        stack.push_async_callback(store.close)
        stack.push_async_callback(connector.close)
        try:
            await connector.open()
        except JobRejected as rejected:
            engine.unavailable = rejected
        except TargetTemporarilyUnavailable as error:
            engine.unavailable = JobRejected(JobReason.ACCOUNTING_SYSTEM_UNREACHABLE, error.message)
        if engine.unavailable is not None:
            log.error(
                "the accounting system cannot be used: %s",
                engine.unavailable.message,
                extra={"event": "connector.unavailable"},
            )
        yield Session(
            settings=settings,
            host=host,
            client=client,
            connector=connector,
            store=store,
            engine=engine,
            company_id=company_id,
            sandbox=sandbox,
        )
