"""The metrics read from the running service on every scrape: Pleo calls, leases, rounds."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pleo_export import ServiceView


class ServiceCollector(Collector):
    """Reads :class:`~pleo_export.ServiceView` when Prometheus scrapes; empty before the
    service starts."""

    def __init__(self) -> None:
        self.service: ServiceView | None = None
        self._companies: set[str] = set()
        """Every company seen, so that a released lease reads 0 rather than vanishing."""

    def describe(self) -> list[Metric]:
        return []  # the families depend on the service; nothing to check up front

    def collect(self) -> Iterator[Metric]:
        service = self.service
        if service is None:
            return
        yield from self._pleo(service)
        yield from self._leases(service)
        yield from self._rounds(service)

    def _pleo(self, service: ServiceView) -> Iterator[Metric]:
        calls = service.pleo_calls()
        requests = CounterMetricFamily(
            "pleo_export_pleo_requests",
            "Requests put on the wire to Pleo (every attempt), by endpoint.",
            labels=["endpoint"],
        )
        for endpoint, count in sorted(calls.by_endpoint.items()):
            requests.add_metric([endpoint], count)
        yield requests
        responses = CounterMetricFamily(
            "pleo_export_pleo_responses",
            "Responses received from Pleo, by HTTP status.",
            labels=["status"],
        )
        for status, count in sorted(calls.by_status.items()):
            responses.add_metric([str(status)], count)
        yield responses
        yield CounterMetricFamily(
            "pleo_export_pleo_rate_limited",
            "429 answers from Pleo.",
            value=calls.rate_limited,
        )
        yield CounterMetricFamily(
            "pleo_export_pleo_retries",
            "Pleo requests repeated after a retryable failure (429, 5xx, a broken connection).",
            value=calls.retries,
        )
        yield CounterMetricFamily(
            "pleo_export_pleo_budget_wait_seconds",
            "Seconds requests waited for the request budget (pleo.requests_per_minute).",
            value=calls.budget_wait_seconds,
        )
        yield CounterMetricFamily(
            "pleo_export_pleo_retry_wait_seconds",
            "Seconds spent backing off between attempts (Retry-After included).",
            value=calls.retry_wait_seconds,
        )

    def _leases(self, service: ServiceView) -> Iterator[Metric]:
        leases = service.leases()
        self._companies.update(leases.companies, leases.held, leases.leased_elsewhere)
        held = GaugeMetricFamily(
            "pleo_export_lease_held",
            "1 while this worker holds the company's lease (it is working on a job of it).",
            labels=["company", "worker"],
        )
        elsewhere = GaugeMetricFamily(
            "pleo_export_lease_elsewhere",
            "1 when the last round skipped the company: another worker held its lease.",
            labels=["company"],
        )
        for company in sorted(self._companies):
            held.add_metric([company, leases.worker], 1.0 if company in leases.held else 0.0)
            elsewhere.add_metric([company], 1.0 if company in leases.leased_elsewhere else 0.0)
        yield held
        yield elsewhere

    def _rounds(self, service: ServiceView) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "pleo_export_service_start_time_seconds",
            "When the service started (Unix time).",
            value=service.started_at.timestamp(),
        )
        success = service.last_success
        if success is not None:
            yield GaugeMetricFamily(
                "pleo_export_last_successful_round_timestamp_seconds",
                "When the last round that reached Pleo and ran every pending job ended "
                "(Unix time).",
                value=success.finished_at.timestamp(),
            )
        last = service.last_round
        if last is not None:
            yield GaugeMetricFamily(
                "pleo_export_last_round_succeeded",
                "1 when the last round succeeded, 0 when Pleo could not be reached.",
                value=1.0 if last.succeeded else 0.0,
            )
        yield GaugeMetricFamily(
            "pleo_export_round_running",
            "1 while a round is running (jobs are being looked for or processed).",
            value=1.0 if service.round_started_at is not None else 0.0,
        )
