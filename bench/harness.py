"""Run one export job through the real engine, client and state store, and measure it.

The Pleo side is the sandbox, either in this process (``SandboxTransport``: no sockets) or
behind a URL (a loopback HTTP server, possibly in another process). Setup (generating the
sandbox's items, opening the target) is outside every measurement; what is measured is
``ExportEngine.run_pending()``: detect the job, start it, read both layers, book every item,
report outcomes and send the final event.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.noop import NetworkConnector, NetworkSettings, NoopConnector, NoopSettings
from pleo_export.connector import Connector, ConnectorContext
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.host import PluginHost
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import ExportItemFile
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig
from pleo_export_sandbox.transport import SandboxTransport

ConnectorName = Literal["noop", "beancount", "network"]

PUT_BATCH = 100
"""Pleo's maximum number of item updates per PUT."""
NAIVE_PAGE = 50
"""The naive baseline's page size: the sandbox's default when a request names no ``limit``
(the design guide's examples use 20-50)."""
UNLIMITED = 10_000_000
"""A request budget / sandbox limit that never binds (CPU and memory runs)."""
SEED = 7


# --- floors ------------------------------------------------------------------------------------


def api_floor(items: int, page: int) -> int:
    """The fewest Pleo calls that export ``items`` items with pages of ``page``, as the issue
    counts them: 1 list + 1 ``started`` + job-item pages + export-item pages + one PUT per 100
    outcomes + 1 final event."""
    pages = max(1, math.ceil(items / page))
    return 1 + 1 + pages + pages + math.ceil(items / PUT_BATCH) + 1


def engine_floor(items: int, page: int) -> int:
    """:func:`api_floor` plus the one fixed call a polling engine cannot avoid: listing the
    jobs again after the job, because Pleo allows one unfinished job per company and the next
    export only appears once this one is finished."""
    return api_floor(items, page) + 1


def naive_calls(items: int, page: int = NAIVE_PAGE) -> int:
    """The literal reading of the design guide: small pages and one PUT per item."""
    pages = max(1, math.ceil(items / page))
    return 1 + 1 + pages + pages + items + 1


# --- sandbox -----------------------------------------------------------------------------------


class TimedApp:
    """Wraps the sandbox's ASGI app and adds up the CPU time spent inside it.

    In process, a request runs the app to completion without giving the event loop to another
    task (the engine awaits one request at a time), so the CPU time between entering and
    leaving the app is the sandbox's own cost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cpu_seconds = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.process_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.cpu_seconds += time.process_time() - started


@dataclass
class PleoSide:
    """Where the engine finds Pleo and what it needs to talk to it."""

    base_url: str
    api_key: str
    company_id: str
    sandbox: Sandbox | None = None
    """The sandbox object when it lives in this process (its request log is then readable)."""
    timed_app: TimedApp | None = None


def make_sandbox(
    items: int,
    *,
    rate_limit: int = UNLIMITED,
    clock: Any = None,
    attachments: bool = False,
    seed: int = SEED,
    api_latency: float = 0.0,
    file_latency: float = 0.0,
    large_file_rate: float | None = None,
    types: Sequence[str] | None = None,
) -> tuple[Sandbox, str, str]:
    """A sandbox with one company and one pending job of ``items`` items.

    ``api_latency``/``file_latency`` delay every API call / file download (a Pleo across a
    network); ``large_file_rate`` overrides the share of multi-megabyte receipts; ``types``
    limits the generated item types. Returns the sandbox, the company id and its API key.
    """
    extra: dict[str, Any] = {}
    if large_file_rate is not None:
        extra["large_file_rate"] = large_file_rate
    config = SandboxConfig(
        rate_limit_per_minute=rate_limit,
        rate_limit_window=60.0,
        api_latency=api_latency,
        file_latency=file_latency,
        **extra,
    )
    sandbox = Sandbox(config, clock=clock)
    company = sandbox.add_company(name="Bench Ltd", wallet_currency="GBP")
    sandbox.queue_export(company.id, count=items, seed=seed, attachments=attachments, types=types)
    return sandbox, company.id, company.api_key


def in_process(sandbox: Sandbox, company_id: str, api_key: str) -> PleoSide:
    timed = TimedApp(sandbox.app)
    return PleoSide(sandbox.base_url, api_key, company_id, sandbox=sandbox, timed_app=timed)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    items: int
    connector: str
    transport: str
    page_size: int
    report_batch_size: int
    requests_per_minute: int
    calls_client: int
    """Requests the client put on the wire (``ClientStats.requests``)."""
    calls_sandbox: int | None
    """Requests the sandbox recorded under ``/v3/`` (``None`` when it is in another process)."""
    calls_by_endpoint: dict[str, int]
    responses_429: int
    retries: int
    budget_wait_seconds: float
    clock_seconds: float
    """Elapsed time on the event loop's clock (virtual under trio's MockClock)."""
    real_seconds: float
    cpu_seconds: float
    """``time.process_time()`` of the whole process during the run (sandbox included)."""
    sandbox_cpu_seconds: float | None
    """CPU time spent inside the in-process sandbox's ASGI app."""
    posted: int
    recovered: int
    failed: int
    final_event: str | None
    failure_types: dict[str, int] = field(default_factory=dict)

    @property
    def engine_cpu_seconds(self) -> float:
        return self.cpu_seconds - (self.sandbox_cpu_seconds or 0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["engine_cpu_seconds"] = self.engine_cpu_seconds
        return data


def _connector(
    name: ConnectorName, client: PleoClient, work_dir: Path, post_seconds: float = 0.0
) -> Connector[Any]:
    async def fetch(file: ExportItemFile) -> bytes:
        return await client.download(file.url)

    context = ConnectorContext(
        logger=logging.getLogger(f"bench.connector.{name}"),
        fetch_attachment=fetch,
        work_dir=work_dir,
    )
    if name == "noop":
        return NoopConnector(NoopSettings(), context)
    if name == "network":
        return NetworkConnector(NetworkSettings(post_seconds=post_seconds), context)
    from pleo_export_beancount import BeancountConnector, BeancountSettings

    values = BeancountConnector.scaffold(work_dir, DEMO_CHART, "GBP")
    settings = BeancountSettings(ledger=work_dir / values["ledger"])
    beancount: Connector[Any] = BeancountConnector(settings, context)
    return beancount


async def run_job(
    pleo: PleoSide,
    work_dir: Path,
    *,
    items: int,
    connector: ConnectorName = "noop",
    page_size: int = 1000,
    report_batch_size: int = PUT_BATCH,
    requests_per_minute: int = UNLIMITED,
    transport_name: str = "in-process",
    engine_cls: type[ExportEngine] = ExportEngine,
    post_seconds: float = 0.0,
    options: EngineOptions | None = None,
) -> RunResult:
    """Export the sandbox's pending job(s) once and measure the run.

    Must run inside an event loop (asyncio or trio). ``work_dir`` holds the state database
    and the target; it should be empty. ``post_seconds`` is the ``network`` connector's time
    per post; ``options`` (a copy is changed) set the engine's concurrency (default: the
    engine's defaults).
    """
    await anyio.Path(work_dir).mkdir(parents=True, exist_ok=True)
    transport: httpx.AsyncBaseTransport | None = None
    if pleo.timed_app is not None:
        transport = SandboxTransport(pleo.timed_app)
    client = PleoClient(
        pleo.base_url,
        ApiKeyAuth(SecretStr(pleo.api_key)),
        transport=transport,
        requests_per_minute=requests_per_minute,
        page_size=page_size,
        retry=RetryPolicy(),
    )
    store = open_store(f"sqlite:///{work_dir / 'state.db'}")
    target = _connector(connector, client, work_dir, post_seconds)
    options = replace(
        options or EngineOptions(),
        company_id=pleo.company_id,
        report_batch_size=report_batch_size,
    )
    before_requests = len(pleo.sandbox.requests) if pleo.sandbox is not None else 0
    async with client:
        await store.open()
        await target.open()
        try:
            engine = engine_cls(
                client=client,
                connector=target,
                store=store,
                hooks=PluginHost(load_entry_points=False),
                options=options,
            )
            sandbox_cpu_before = pleo.timed_app.cpu_seconds if pleo.timed_app else 0.0
            clock0, real0, cpu0 = anyio.current_time(), time.perf_counter(), time.process_time()
            report = await engine.run_pending()
            cpu = time.process_time() - cpu0
            real = time.perf_counter() - real0
            clock = anyio.current_time() - clock0
        finally:
            await target.close()
            await store.close()
    stats = client.stats
    calls_sandbox: int | None = None
    responses_429 = stats.rate_limited
    if pleo.sandbox is not None:
        sent = [r for r in pleo.sandbox.requests[before_requests:] if r.path.startswith("/v3/")]
        calls_sandbox = len(sent)
        responses_429 = sum(1 for r in sent if r.status == 429)
    failures: Counter[str] = Counter()
    posted = recovered = failed = 0
    final: str | None = None
    for job in report.jobs:
        posted += job.posted
        recovered += job.recovered
        failed += job.failed
        final = job.final_event
        failures.update(job.failure_types)
    return RunResult(
        items=items,
        connector=connector,
        transport=transport_name,
        page_size=page_size,
        report_batch_size=report_batch_size,
        requests_per_minute=requests_per_minute,
        calls_client=stats.requests,
        calls_sandbox=calls_sandbox,
        calls_by_endpoint=dict(sorted(stats.requests_by_endpoint.items())),
        responses_429=responses_429,
        retries=stats.retries,
        budget_wait_seconds=stats.budget_wait_seconds,
        clock_seconds=clock,
        real_seconds=real,
        cpu_seconds=cpu,
        sandbox_cpu_seconds=(
            pleo.timed_app.cpu_seconds - sandbox_cpu_before if pleo.timed_app else None
        ),
        posted=posted,
        recovered=recovered,
        failed=failed,
        final_event=final,
        failure_types=dict(failures),
    )
