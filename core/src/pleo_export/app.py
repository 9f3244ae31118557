"""Wiring: from :class:`~pleo_export.config.Settings` to a ready engine.

:func:`open_session` loads the configured connector (and nothing else from the connector
group), validates its settings before any job is touched, opens the state store, the Pleo
client (or the built-in sandbox) and the connector, and closes all of them on exit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from pleo_export import logs
from pleo_export.bookkeeping import PlanOptions
from pleo_export.config import (
    SANDBOX,
    ConfigError,
    Settings,
    connector_settings,
    require_pleo_target,
)
from pleo_export.connector import (
    Connector,
    ConnectorManifest,
    ConnectorSettings,
)
from pleo_export.engine.factory import EngineFactory, connector_context, open_connector
from pleo_export.engine.options import EngineOptions, Progress
from pleo_export.engine.runner import ExportEngine
from pleo_export.engine.worker import Worker, WorkerOptions
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth, BearerTokenAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.masterdata import PleoMasterData
from pleo_export.pleo.oauth import OAuthInstallation
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.simulator import require_sandbox
from pleo_export.state import open_store
from pleo_export.state.base import StateStore

if TYPE_CHECKING:
    from pleo_export_sandbox import Sandbox

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
    worker: Worker
    """The runner: the engine of every configured company, under per-company leases."""
    sandbox: Sandbox | None = None


def build_sandbox(settings: Settings) -> tuple[Sandbox, str, SecretStr]:
    """The in-process sandbox with the deterministic demo exports of ``[sandbox]``.

    Needs the ``pleo-export-sandbox`` distribution (:class:`~pleo_export.simulator.
    SandboxNotInstalled` names it when missing).
    """
    require_sandbox('pleo.base_url = "sandbox"')
    from pleo_export_sandbox import Sandbox, SandboxConfig

    cfg = settings.sandbox
    sandbox = Sandbox(
        SandboxConfig(
            api_latency=cfg.api_latency,
            file_latency=cfg.file_latency,
            seed_master_data=cfg.master_data == "chart",
        )
    )
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
    for secret in (settings.pleo.api_key, settings.pleo.access_token, settings.oauth.client_secret):
        if secret is not None:
            logs.register_secret(secret.get_secret_value())
    if connector is not None:
        for name in type(connector).model_fields:
            value = getattr(connector, name)
            if isinstance(value, SecretStr):
                logs.register_secret(value.get_secret_value())


def oauth_installation(settings: Settings, **options: Any) -> OAuthInstallation:
    """The OAuth installation configured in ``[oauth]``, with its own state-store handle.

    The tokens live in the state store of ``state.url`` (also for ``--dry-run`` and ``check``,
    which keep their outbox in memory). ``options`` go to :class:`OAuthInstallation` (tests
    pass a transport or a clock).
    """
    cfg = settings.oauth
    if cfg.client_id is None:
        raise ConfigError(
            "oauth.client_id is not set: add the OAuth client's id to the [oauth] table "
            "(or PLEO_EXPORT_OAUTH__CLIENT_ID)"
        )
    if cfg.client_secret is None or not cfg.client_secret.get_secret_value():
        raise ConfigError(
            "oauth.client_secret is required with oauth.client_id: set "
            "PLEO_EXPORT_OAUTH__CLIENT_SECRET (keep it out of the file)"
        )
    logs.register_secret(cfg.client_secret.get_secret_value())
    auth_url = cfg.resolved_auth_url(settings.pleo.base_url)
    if auth_url is None:
        raise ConfigError(
            "OAuth needs Pleo or a sandbox served over HTTP, but pleo.base_url is 'sandbox' (in "
            "process): set pleo.base_url to production, staging or the served sandbox's URL, or "
            "set oauth.auth_url"
        )
    return OAuthInstallation(
        store=open_store(settings.state_url()),
        auth_url=auth_url,
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        redirect_uri=cfg.redirect_uri,
        scopes=cfg.scopes,
        installation=cfg.installation,
        refresh_margin=cfg.refresh_margin,
        **options,
    )


def load_connector_class(settings: Settings, host: PluginHost) -> type[Connector[Any]]:
    name = settings.connector.name
    if not name:
        installed = [info.origin.name for info in host.installed_connectors() if info.manifest]
        hint = (
            f"installed connectors: {', '.join(installed)}; `pleo-export init {installed[0]}` "
            "writes a configuration for one"
            if installed
            else "no connector is installed; install one next to pleo-export, e.g. "
            "`pip install pleo-export-beancount`"
        )
        raise ConfigError(
            "no connector configured: set `name` in the [connector] table of the configuration "
            f"(or PLEO_EXPORT_CONNECTOR__NAME); {hint}"
        )
    return host.load_connector(name)


@dataclass(frozen=True)
class Serving:
    """Which companies a session serves, with the validated connector settings of each."""

    companies: list[str]
    """The companies served in turn (empty: the sandbox's, or whatever the credential sees)."""
    shared: ConnectorSettings | None
    """``[connector.settings]``, when a served company (or no company) uses them."""
    own: dict[str, ConnectorSettings]
    """Companies with their own ``[connector.companies."<id>"]`` settings."""

    def settings_for(self, company_id: str | None) -> ConnectorSettings:
        if company_id is not None and company_id in self.own:
            return self.own[company_id]
        if self.shared is not None:
            return self.shared
        return self.own[self.companies[0]]


@dataclass(frozen=True)
class PleoEndpoint:
    """Where the Pleo client goes and how it authenticates."""

    base_url: str
    auth: ApiKeyAuth | BearerTokenAuth
    transport: httpx.AsyncBaseTransport | None
    company_id: str | None
    sandbox: Sandbox | None = None
    oauth: OAuthInstallation | None = None


def serving(
    settings: Settings, manifest: ConnectorManifest, companies: Sequence[str] | None
) -> Serving:
    """The companies served (``companies`` replaces the configured ones) and their validated
    connector settings; every secret among them is registered for redaction."""
    configured = list(dict.fromkeys(companies)) if companies else settings.pleo.companies()
    served = [] if settings.pleo.base_url == SANDBOX else configured
    by_company = company_connector_settings(settings, manifest, served)
    for values in by_company.values():
        register_secrets(settings, values)
    own = {c: values for c, values in by_company.items() if c is not None}
    return Serving(companies=served, shared=by_company.get(None), own=own)


def pleo_endpoint(
    settings: Settings, serving: Serving, transport: httpx.AsyncBaseTransport | None
) -> PleoEndpoint:
    """The built-in sandbox (with its own in-process transport), or Pleo at
    ``pleo.base_url`` with the configured credential (API key, access token or OAuth)."""
    company_id = serving.companies[0] if serving.companies else settings.pleo.company_id
    if settings.pleo.base_url == SANDBOX:
        sandbox, sandbox_company, key = build_sandbox(settings)
        return PleoEndpoint(
            base_url=sandbox.base_url,
            auth=ApiKeyAuth(key),
            transport=sandbox.transport(),
            company_id=sandbox_company,
            sandbox=sandbox,
        )
    base_url = settings.pleo.resolved_url()
    if settings.oauth.client_id is not None:
        if settings.pleo.api_key is not None or settings.pleo.access_token is not None:
            raise ConfigError(
                "both oauth.client_id and pleo.api_key (or pleo.access_token) are set: "
                "authenticate one way, remove the other"
            )
        oauth = oauth_installation(settings)
        return PleoEndpoint(base_url, oauth.auth(), transport, company_id, oauth=oauth)
    if settings.pleo.api_key is not None:
        return PleoEndpoint(base_url, ApiKeyAuth(settings.pleo.api_key), transport, company_id)
    if settings.pleo.access_token is not None:
        auth = BearerTokenAuth(settings.pleo.access_token)
        return PleoEndpoint(base_url, auth, transport, company_id)
    raise ConfigError(
        "pleo.api_key (or pleo.access_token, or an [oauth] installation) is required "
        "when pleo.base_url is "
        f"{settings.pleo.base_url!r}: set PLEO_EXPORT_PLEO__API_KEY or add it to the "
        "[pleo] table"
    )


def pleo_client(
    settings: Settings, endpoint: PleoEndpoint, progress: Progress | None
) -> PleoClient:
    """The Pleo client with the ``[pleo]`` settings; the progress display announces waits
    for the request budget."""
    client = PleoClient(
        endpoint.base_url,
        endpoint.auth,
        requests_per_minute=settings.pleo.requests_per_minute,
        page_size=settings.pleo.page_size,
        timeout=settings.pleo.timeout,
        retry=RetryPolicy(max_attempts=settings.pleo.retry_attempts),
        download_timeout=settings.pleo.download_timeout,
        download_hosts=settings.pleo.receipt_hosts,
        download_concurrency=settings.pleo.download_concurrency,
        transport=endpoint.transport,
    )
    client.budget.on_wait = getattr(progress, "waiting", None)
    return client


def engine_options(
    settings: Settings, options: EngineOptions | None, *, company_id: str | None, dry_run: bool
) -> EngineOptions:
    """``options`` (a copy; the caller's object is left alone) with the ``[engine]``
    settings, the company and the dry-run flag."""
    return replace(
        options or EngineOptions(),
        company_id=company_id,
        dry_run=dry_run,
        report_interval=settings.engine.report_interval,
        post_attempts=settings.engine.post_attempts,
        receipt_prefetch=settings.engine.receipt_prefetch,
        receipt_prefetch_bytes=settings.engine.receipt_prefetch_bytes,
        max_concurrent_posts=settings.engine.max_concurrent_posts,
        read_ahead=settings.engine.read_ahead,
        plan=PlanOptions(
            rounding_tolerance_per_line=settings.engine.rounding_tolerance_per_line,
            booking_timezone=settings.engine.booking_timezone,
        ),
    )


@asynccontextmanager
async def open_session(
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    host: PluginHost | None = None,
    options: EngineOptions | None = None,
    companies: Sequence[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Session]:
    """Everything a command needs, opened; closed on exit.

    ``companies`` replaces ``pleo.company_id``/``pleo.company_ids`` for this session (the
    ``run --company`` option). ``transport`` carries the Pleo client's requests (tests wrap
    it to inject faults); the built-in sandbox always uses its own in-process transport.
    ``options`` is copied, never changed.
    """
    require_pleo_target(settings, companies or ())
    host = host or PluginHost(disabled=settings.plugins.disabled)
    host.configure_plugins(settings.plugins.tables(), settings.config_dir)
    connector_cls = load_connector_class(settings, host)
    manifest = connector_cls.manifest
    plan = serving(settings, manifest, companies)
    endpoint = pleo_endpoint(settings, plan, transport)
    company_id = endpoint.company_id
    client = pleo_client(settings, endpoint, progress)
    store = open_store("sqlite:///:memory:" if dry_run else settings.state_url())
    context = connector_context(
        client=client, manifest=manifest, work_dir=settings.config_dir, dry_run=dry_run
    )
    connectors = {c: connector_cls(values, context) for c, values in plan.own.items()}
    connector = (
        connectors.pop(company_id)
        if company_id is not None and company_id in connectors
        else connector_cls(plan.settings_for(None), context)
    )
    factory = EngineFactory(
        client=client,
        store=store,
        hooks=host,
        options=engine_options(settings, options, company_id=company_id, dry_run=dry_run),
        progress=progress,
    )
    async with AsyncExitStack() as stack:
        if endpoint.oauth is not None:
            await stack.enter_async_context(endpoint.oauth)
        await stack.enter_async_context(client)
        await store.open()
        stack.push_async_callback(store.close)
        engine = await _open_engine(stack, factory, connector, company_id)
        engines = {
            company: await _open_engine(stack, factory, own, company)
            for company, own in connectors.items()
        }
        worker = Worker(
            engine,
            plan.companies or ([company_id] if company_id else []),
            engines=engines,
            options=WorkerOptions(
                lease_ttl=settings.engine.lease_ttl,
                take_leases=not dry_run,
                holder=worker_id(settings),
            ),
        )
        yield Session(
            settings=settings,
            host=host,
            client=client,
            connector=connector,
            store=store,
            engine=engine,
            company_id=company_id,
            sandbox=endpoint.sandbox,
            worker=worker,
        )


async def _open_engine(
    stack: AsyncExitStack,
    factory: EngineFactory,
    connector: Connector[Any],
    company_id: str | None,
) -> ExportEngine:
    """Open ``connector`` (closed with ``stack``) and build its company's engine."""
    stack.push_async_callback(connector.close)
    unavailable = await open_connector(connector, company_id)
    return factory.build(connector, company_id=company_id, unavailable=unavailable)


def master_data(session: Session) -> PleoMasterData:
    """Pleo's Vendors, Tax Code, Tags and Webhook Subscriptions APIs for the session's company,
    on the session's client (one request budget, credential and retry policy with the export
    run; the built-in sandbox's master data when ``pleo.base_url = "sandbox"``)."""
    if session.company_id is None:
        raise ConfigError(_NO_COMPANY)
    return PleoMasterData(session.client, session.company_id)


_NO_COMPANY = (
    "Pleo's master-data APIs need the company: set pleo.company_id (or "
    "PLEO_EXPORT_PLEO__COMPANY_ID) to the Pleo company's id"
)


@asynccontextmanager
async def open_master_data(
    settings: Settings,
    *,
    company_id: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[PleoMasterData]:
    """Pleo's master-data APIs for the configured company (or ``company_id``), without a
    connector: for commands that only talk to Pleo (``webhooks``). The client is built and
    authenticated as :func:`open_session`'s, from the same ``[pleo]``/``[oauth]`` settings."""
    companies = [company_id] if company_id else []
    require_pleo_target(settings, companies)
    plan = Serving(companies=companies or settings.pleo.companies(), shared=None, own={})
    if settings.pleo.base_url == SANDBOX:
        plan = Serving(companies=[], shared=None, own={})
    register_secrets(settings, None)
    endpoint = pleo_endpoint(settings, plan, transport)
    if endpoint.company_id is None:
        raise ConfigError(_NO_COMPANY)
    client = pleo_client(settings, endpoint, progress)
    async with AsyncExitStack() as stack:
        if endpoint.oauth is not None:
            await stack.enter_async_context(endpoint.oauth)
        await stack.enter_async_context(client)
        pleo = PleoMasterData(client, endpoint.company_id)
        pleo.sandbox = endpoint.sandbox
        yield pleo


def worker_id(settings: Settings) -> str:
    """``engine.worker_id``, else the installation's stable default
    (:func:`~pleo_export.state.process.default_worker_id` of the state store's location)."""
    from pleo_export.state import redact_url
    from pleo_export.state.process import default_worker_id

    return settings.engine.worker_id or default_worker_id(redact_url(settings.state_url()))


def company_connector_settings(
    settings: Settings, manifest: ConnectorManifest, companies: list[str]
) -> dict[str | None, ConnectorSettings]:
    """Validated connector settings: under ``None`` the shared ``[connector.settings]`` (when
    a company uses them, or no company is configured), and under each company of
    ``companies`` that has a ``[connector.companies."<id>"]`` table those settings laid over
    the shared ones. A table for a configured company not served now is ignored; one for a
    company configured nowhere is an error (a mistyped id)."""
    overrides = settings.connector.companies
    known = {*companies, *settings.pleo.companies()}
    stray = [company for company in overrides if company not in known]
    if stray:
        raise ConfigError(
            f"connector.companies has settings for {', '.join(map(repr, stray))}, which is not "
            "a company this worker serves: add it to pleo.company_id or pleo.company_ids, or "
            "remove its table"
        )
    base = settings.connector.settings
    found: dict[str | None, ConnectorSettings] = {}
    if not companies or any(company not in overrides for company in companies):
        found[None] = connector_settings(manifest, base, settings.config_dir)
    for company in companies:
        if company in overrides:
            found[company] = connector_settings(
                manifest, {**base, **overrides[company]}, settings.config_dir
            )
    return found
