"""One scenario's world: a sandbox company, a SQLite state store and the connector under test.

The connector class is loaded through the real plugin host by its entry-point name, so a
packaging mistake (missing entry point, wrong manifest id) fails the kit as it would fail
``pleo-export run``. Each engine run builds a fresh connector instance from the target's
settings, opens it as ``pleo-export run`` does, and drives the real :class:`ExportEngine`
against the in-process sandbox. Waits of the Pleo client (backoff, ``Retry-After``) are
counted on a skipping clock instead of slept, so a 429 storm takes no real time.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from pydantic import SecretStr

from pleo_export.bookkeeping import PlanOptions, plan_item
from pleo_export.config import ConfigError, connector_settings
from pleo_export.connector import (
    Capability,
    Connector,
    ConnectorError,
    ConnectorManifest,
    ConnectorSettings,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
)
from pleo_export.engine.factory import EngineFactory, connector_context, open_connector
from pleo_export.engine.options import EngineOptions
from pleo_export.engine.report import RunReport
from pleo_export.host import PluginError, PluginHost
from pleo_export.ledger import ExternalRecord, PostingPlan, PreparedEntry
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.models import (
    ExportItem,
    ExportJob,
    ExportJobItem,
)
from pleo_export.pleo.ratelimit import RetryPolicy
from pleo_export.state import open_store
from pleo_export.testing.checks import ConformanceFailure
from pleo_export.testing.items import ItemFactory, stable_id
from pleo_export.testing.target import ConnectorTarget, TargetEntry
from pleo_export_sandbox import Chart, Sandbox, SandboxConfig

log = logging.getLogger("pleo_export.testing")

KIT_DIR = "pleo-export-conformance"
"""Folder under the test's ``tmp_path`` where the kit keeps its state stores."""


class SimulatedCrash(BaseException):
    """Raised by the kit right after a target write to stop the engine before it records the
    outcome, as a killed process would. A ``BaseException``, so nothing catches it on the way."""


async def maybe_await(value: Any) -> Any:
    """``value``, awaited if it is awaitable: the target's callables may be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


def is_crash(error: BaseException) -> bool:
    """Whether ``error`` is the kit's simulated crash (also inside a task group's group)."""
    if isinstance(error, SimulatedCrash):
        return True
    if isinstance(error, BaseExceptionGroup):
        _crashes, rest = error.split(SimulatedCrash)
        return rest is None
    return False


class SkipClock:
    """A clock for the Pleo client whose waits advance a counter instead of sleeping."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return anyio.current_time() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


def load_connector_class(
    connector_id: str, host: PluginHost | None = None, *, scenario: str = "setup"
) -> type[Connector[Any]]:
    """The connector registered under ``connector_id``, loaded as ``pleo-export run`` loads it."""
    if not connector_id:
        raise ConformanceFailure(
            scenario,
            [
                "connector_id is not set: set it on your ConformanceSuite subclass to the name "
                "your connector is registered under in the entry-point group "
                "pleo_export.connectors"
            ],
        )
    try:
        return (host or PluginHost(load_entry_points=False)).load_connector(connector_id)
    except PluginError as error:
        raise ConformanceFailure(
            scenario,
            [
                f"the connector cannot be loaded by its entry-point name: {error}. Install the "
                "package into the test environment (e.g. `pip install -e .`) and check "
                '[project.entry-points."pleo_export.connectors"] in its pyproject.toml'
            ],
        ) from None


@dataclass
class EngineRun:
    """What one engine run left behind."""

    report: RunReport | None
    crashed: bool
    connector: Connector[Any]
    unavailable: JobRejected | None
    """Set when ``open`` refused (the run then failed every job's pre-export validation)."""
    client_waits: float


class CrashPlan:
    """Wraps a connector instance's writes: the ``uncertain_on``-th ``post`` loses its answer
    (``OutcomeUncertain`` after the entry was written) and the ``crash_on``-th ``post`` (or the
    first ``post_batch``) is followed by :class:`SimulatedCrash`."""

    def __init__(self, *, uncertain_on: int = 2, crash_on: int = 3) -> None:
        self.uncertain_on = uncertain_on
        self.crash_on = crash_on
        self.writes = 0
        self.uncertain: list[str] = []
        self.crashed: list[str] = []

    def install(self, connector: Connector[Any]) -> None:
        real_post = connector.post

        async def post(prepared: PreparedEntry) -> ExternalRecord:
            record = await real_post(prepared)
            self.writes += 1
            reference = prepared.plan.reference
            if self.writes == self.uncertain_on and not self.crashed:
                self.uncertain.append(reference)
                raise OutcomeUncertain(
                    "simulated by the conformance kit: the entry was written but the answer "
                    "was lost (as after a timeout)"
                )
            if self.writes == self.crash_on and not self.crashed:
                self.crashed.append(reference)
                raise SimulatedCrash(f"simulated crash after posting {reference}")
            return record

        connector.post = post  # type: ignore[method-assign]
        manifest = type(connector).manifest
        real_batch = getattr(connector, "post_batch", None)
        if real_batch is None or Capability.BATCH_POSTING not in manifest.capabilities:
            return

        async def post_batch(*args: Any, **kwargs: Any) -> Any:
            result = await real_batch(*args, **kwargs)
            self.writes += 1
            if not self.crashed:
                self.crashed.extend(_references(args, kwargs))
                raise SimulatedCrash("simulated crash after a batch post")
            return result

        setattr(connector, "post_batch", post_batch)  # noqa: B010 - may not exist on the class


def _references(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """The references of the prepared entries passed to ``post_batch``."""
    refs: list[str] = []
    for value in [*args, *kwargs.values()]:
        candidates = value if isinstance(value, list | tuple) else [value]
        for candidate in candidates:
            if isinstance(candidate, PreparedEntry):
                refs.append(candidate.plan.reference)
    return refs


class CallCounter:
    """Counts calls of the connector methods that must not run (``prepare``, ``post``)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def install(self, connector: Connector[Any]) -> None:
        for name in ("prepare", "post", "post_batch"):
            real = getattr(connector, name, None)
            if real is None:
                continue
            setattr(connector, name, self._counted(name, real))

    def _counted(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await real(*args, **kwargs)

        return counted


class World:
    """One scenario: a sandbox with one company, a state store and the target."""

    def __init__(
        self,
        *,
        scenario: str,
        connector_id: str,
        target: ConnectorTarget,
        chart: Chart,
        currency: str,
        work_dir: Path,
    ) -> None:
        self.scenario = scenario
        self.connector_id = connector_id
        self.target = target
        self.currency = currency
        self.work_dir = work_dir
        self.host = PluginHost(load_entry_points=False)
        self.connector_cls = load_connector_class(connector_id, self.host, scenario=scenario)
        self.manifest: ConnectorManifest = self.connector_cls.manifest
        self.sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
        company = self.sandbox.add_company(
            name="Conformance Ltd",
            wallet_currency=currency,
            company_id=stable_id("company", scenario),
        )
        self.company_id = company.id
        self.api_key = company.api_key
        self.items = ItemFactory(chart, company.id, currency, scenario)
        state_dir = work_dir / KIT_DIR
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_url = f"sqlite:///{(state_dir / f'{scenario}.db').resolve()}"

    def fail(self, *problems: str) -> ConformanceFailure:
        return ConformanceFailure(self.scenario, list(problems), connector=self.connector_id)

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.manifest.capabilities

    # --- Pleo side -------------------------------------------------------------------------

    def queue(self, items: Sequence[dict[str, Any]], *, vendor_based: bool = False) -> ExportJob:
        """Store ``items`` in the sandbox and put them in a new pending job."""
        ids = self.sandbox.add_entries(self.company_id, items)
        return self.sandbox.create_job(self.company_id, ids, vendor_based)

    def job(self, job_id: str) -> ExportJob:
        return self.sandbox.get_job(job_id)

    def pleo_items(self, job_id: str) -> dict[str, ExportJobItem]:
        return {item.accounting_entry_id: item for item in self.sandbox.job_items(job_id)}

    def plans(self, job_id: str) -> dict[str, PostingPlan]:
        """The plan the engine builds for each item (what the target must hold)."""
        job = self.job(job_id)
        plans: dict[str, PostingPlan] = {}
        for item in self.sandbox.job_items(job_id):
            raw = self.sandbox.export_item(item.accounting_entry_id)
            try:
                plans[item.accounting_entry_id] = plan_item(
                    ExportItem.model_validate(raw), job, PlanOptions()
                )
            except (ItemRejected, ValueError):
                continue  # the engine fails such items itself
        return plans

    # --- the target ------------------------------------------------------------------------

    def settings(self, values: Mapping[str, Any] | None = None) -> ConnectorSettings:
        raw = dict(self.target.settings if values is None else values)
        try:
            return connector_settings(self.manifest, raw, self.work_dir)
        except ConfigError as error:
            which = "unreachable_settings" if values is not None else "settings"
            raise self.fail(
                f"connector_target.{which} are not valid settings for connector "
                f"{self.connector_id!r}: {error}"
            ) from None

    async def read_entries(self) -> list[TargetEntry]:
        try:
            entries = list(await maybe_await(self.target.read_entries()))
        except Exception as error:
            raise self.fail(
                f"connector_target.read_entries raised {type(error).__name__}: {error}"
            ) from error
        wrong = [e for e in entries if not isinstance(e, TargetEntry)]
        if wrong:
            raise self.fail(
                f"connector_target.read_entries must return TargetEntry objects, got "
                f"{type(wrong[0]).__name__}"
            )
        return entries

    def new_connector(self, settings: ConnectorSettings, client: PleoClient) -> Connector[Any]:
        """A connector instance with the context ``pleo-export run`` gives it."""
        context = connector_context(client=client, manifest=self.manifest, work_dir=self.work_dir)
        return self.connector_cls(settings, context)

    def client(self, clock: SkipClock) -> PleoClient:
        return PleoClient(
            self.sandbox.base_url,
            ApiKeyAuth(SecretStr(self.api_key)),
            transport=self.sandbox.transport(),
            retry=RetryPolicy(base_delay=0.05, max_delay=2.0),
            clock=clock,
        )

    async def run(
        self,
        *,
        settings: Mapping[str, Any] | None = None,
        wrap: Callable[[Connector[Any]], None] | None = None,
        report_batch_size: int = 100,
    ) -> EngineRun:
        """One ``pleo-export run`` against the sandbox, with a new connector instance."""
        conn_settings = self.settings(settings)
        clock = SkipClock()
        client = self.client(clock)
        store = open_store(self.state_url)
        connector = self.new_connector(conn_settings, client)
        if wrap is not None:
            wrap(connector)
        options = EngineOptions(
            company_id=self.company_id,
            report_batch_size=report_batch_size,
            post_attempts=3,
            retry_base_delay=0.001,
            retry_max_delay=0.01,
        )
        report: RunReport | None = None
        crashed = False
        async with client:
            await store.open()
            try:
                try:
                    unavailable = await open_connector(connector)
                except Exception as error:
                    hint = (
                        "raise TargetTemporarilyUnavailable when the target cannot be reached "
                        "and JobRejected when it refuses the configuration"
                    )
                    raise self.fail(
                        f"open() raised {type(error).__name__}: {error}; pleo-export run would "
                        f"stop here: {hint}"
                    ) from error
                factory = EngineFactory(
                    client=client, store=store, hooks=self.host, options=options
                )
                engine = factory.build(
                    connector, company_id=self.company_id, unavailable=unavailable
                )
                try:
                    report = await engine.run_pending()
                except (ConnectorError, pleo_errors.PleoApiError) as error:
                    raise self.fail(
                        f"the engine run stopped with {type(error).__name__}: {error}"
                    ) from error
                except BaseException as error:
                    if not is_crash(error):
                        raise
                    crashed = True
                finally:
                    await connector.close()
            finally:
                await store.close()
        return EngineRun(
            report=report,
            crashed=crashed,
            connector=connector,
            unavailable=unavailable,
            client_waits=clock.skipped,
        )

    async def lookup(self, references: Sequence[str]) -> dict[str, ExternalRecord | None]:
        """``find_existing`` on a freshly opened connector, for each reference."""
        clock = SkipClock()
        client = self.client(clock)
        connector = self.new_connector(self.settings(), client)
        found: dict[str, ExternalRecord | None] = {}
        async with client:
            await connector.open()
            try:
                for reference in references:
                    found[reference] = await connector.find_existing(reference)
            finally:
                await connector.close()
        return found


__all__ = [
    "KIT_DIR",
    "CallCounter",
    "CrashPlan",
    "EngineRun",
    "SimulatedCrash",
    "SkipClock",
    "World",
    "is_crash",
    "load_connector_class",
    "maybe_await",
]
