"""Prometheus metrics, ``/healthz`` and ``/readyz`` for ``pleo-export run --watch`` and ``serve``.

A class plugin (entry point ``metrics`` in ``pleo_export.plugins``), configured in
``[plugins.metrics]``. With ``listen`` unset it counts but serves nothing. The counts come from
the hooks: items (``pleo_export_item_outcome``), jobs (``pleo_export_job_finished``), rounds
(``pleo_export_round_finished``); the Pleo client's counters and the leases are read from the
service's view (``pleo_export_service_started``) on every scrape. See docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from prometheus_client import CollectorRegistry, Counter
from pydantic import Field, field_validator

from pleo_export import (
    ExportJob,
    ItemOutcome,
    JobReport,
    PluginSettings,
    RoundResult,
    ServiceView,
    hookimpl,
)
from pleo_export_metrics.collector import ServiceCollector
from pleo_export_metrics.endpoints import Readiness, endpoints_app, parse_listen, serving

__all__ = ["MetricsPlugin", "MetricsSettings"]


class MetricsSettings(PluginSettings):
    """``[plugins.metrics]``."""

    listen: str | None = None
    """``host:port`` of ``/metrics``, ``/healthz`` and ``/readyz`` (port 0: any free port),
    e.g. ``127.0.0.1:9464``. Unset (the default): nothing is served. The endpoints have no
    authentication: an address beyond loopback is logged as ``metrics.exposed``."""
    ready_max_age: float | None = Field(default=None, gt=0)
    """``/readyz`` fails when no round has succeeded for this many seconds and none is
    running. Unset: three poll intervals, and at least 60 s."""

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value


class MetricsPlugin:
    """Counts what the service does and serves it to Prometheus."""

    settings_model = MetricsSettings

    def __init__(self) -> None:
        self.settings = MetricsSettings()
        self.registry = CollectorRegistry(auto_describe=True)
        self.items = Counter(
            "pleo_export_items",
            "Items whose outcome was recorded, by outcome (posted, recovered, failed) and "
            "Pleo's failure reason (empty when the item succeeded).",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "pleo_export_jobs",
            "Jobs the engine finished, by the final event sent to Pleo (none: the job ended "
            "on Pleo's side first).",
            ["final_event"],
            registry=self.registry,
        )
        self.rounds = Counter(
            "pleo_export_rounds",
            "Rounds of the watch loop, by result (succeeded, failed: Pleo unreachable).",
            ["result"],
            registry=self.registry,
        )
        self.collector = ServiceCollector()
        self.registry.register(self.collector)
        self.url: str | None = None
        """Where the endpoints are served, once they are."""

    def configure(self, settings: MetricsSettings) -> None:
        self.settings = settings

    # --- hooks ---------------------------------------------------------------------------

    @hookimpl
    def pleo_export_item_outcome(self, outcome: ItemOutcome) -> None:
        if outcome.succeeded:
            label = "recovered" if outcome.recovered else "posted"
            reason = ""
        else:
            label = "failed"
            reason = outcome.failure_reason_type.value if outcome.failure_reason_type else ""
        self.items.labels(outcome=label, reason=reason).inc()

    @hookimpl
    def pleo_export_job_finished(self, job: ExportJob, report: JobReport) -> None:
        if report.dry_run:
            return
        self.jobs.labels(final_event=report.final_event or "none").inc()

    @hookimpl
    def pleo_export_round_finished(self, result: RoundResult) -> None:
        self.rounds.labels(result="succeeded" if result.succeeded else "failed").inc()

    @hookimpl
    def pleo_export_service_started(
        self, service: ServiceView
    ) -> AbstractAsyncContextManager[object] | None:
        self.collector.service = service
        if self.settings.listen is None:
            return None
        return self._serve(service, self.settings.listen)

    @asynccontextmanager
    async def _serve(self, service: ServiceView, listen: str) -> AsyncIterator[str]:
        readiness = Readiness(service, self.settings.ready_max_age)
        app = endpoints_app(self.registry, readiness)
        async with serving(app, listen) as url:
            self.url = url
            try:
                yield f"{url}/metrics"
            finally:
                self.url = None
