"""What a running service (``run --watch``, ``serve``) shows its plugins.

The watch loop builds one :class:`Service` when it starts and hands it to the
``pleo_export_service_started`` hook; after every round it records a :class:`RoundResult` and
calls ``pleo_export_round_finished``. A plugin keeps the :class:`ServiceView` and reads it
whenever it likes (a metrics endpoint reads it on every scrape): :meth:`ServiceView.pleo_calls`
and :meth:`ServiceView.leases` are read live from the Pleo client and the worker, so they move
during a long job too, not only between rounds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pleo_export.engine.worker import Worker
    from pleo_export.pleo.transport import ClientStats

__all__ = ["LeaseState", "PleoCalls", "RoundResult", "Service", "ServiceView"]


class PleoCalls(BaseModel):
    """The Pleo client's counters since the service started (they only grow)."""

    model_config = ConfigDict(frozen=True)

    requests: int
    """Requests put on the wire: every attempt, redirect hop and receipt download."""
    by_endpoint: dict[str, int]
    """``requests`` split by ``"METHOD /v3/template-path"`` (downloads: ``"GET (download)"``)."""
    by_status: dict[int, int]
    """Responses received, by HTTP status."""
    rate_limited: int
    """429 answers."""
    retries: int
    """Attempts repeated after a retryable failure (429, 5xx, a broken connection)."""
    budget_wait_seconds: float
    """Time requests waited for the request budget (``pleo.requests_per_minute``)."""
    retry_wait_seconds: float
    """Time spent backing off between attempts (``Retry-After`` included)."""


class LeaseState(BaseModel):
    """This worker's company leases right now."""

    model_config = ConfigDict(frozen=True)

    worker: str
    """This worker's name in the leases (``engine.worker_id``)."""
    companies: tuple[str, ...]
    """The companies configured for this worker (empty: discovered from the job list)."""
    held: tuple[str, ...]
    """Companies whose lease this worker holds now (it is working on one of their jobs)."""
    leased_elsewhere: tuple[str, ...]
    """Companies skipped in the last round because another worker held their lease."""


class RoundResult(BaseModel):
    """How one round of the watch loop ended (a round runs every pending job it finds)."""

    model_config = ConfigDict(frozen=True)

    finished_at: datetime
    """When the round ended (UTC)."""
    succeeded: bool
    """``False`` when Pleo could not be reached; the loop backs off and tries again."""
    jobs: int
    """Jobs the round finished (0 when there was nothing to do)."""
    error: str | None = None
    """Why the round failed (the outage's cause), else ``None``."""


class ServiceView(Protocol):
    """The running service, as plugins see it (read-only)."""

    @property
    def started_at(self) -> datetime:
        """When the service started (UTC)."""
        ...

    @property
    def poll_interval(self) -> float:
        """Seconds between polls when no webhook arrives (``engine.poll_interval``)."""
        ...

    @property
    def last_round(self) -> RoundResult | None:
        """The round that finished last, or ``None`` before the first one ends."""
        ...

    @property
    def last_success(self) -> RoundResult | None:
        """The last round that succeeded, or ``None``."""
        ...

    @property
    def round_started_at(self) -> datetime | None:
        """When the round running now started, or ``None`` between rounds."""
        ...

    def pleo_calls(self) -> PleoCalls:
        """The Pleo client's counters, read now."""
        ...

    def leases(self) -> LeaseState:
        """This worker's leases, read now."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class Service:
    """The :class:`ServiceView` of a watch loop over one worker and its Pleo client."""

    def __init__(self, worker: Worker, stats: ClientStats, *, poll_interval: float) -> None:
        self._worker = worker
        self._stats = stats
        self._poll_interval = poll_interval
        self._started_at = _now()
        self._last_round: RoundResult | None = None
        self._last_success: RoundResult | None = None
        self._round_started_at: datetime | None = None

    @property
    def started_at(self) -> datetime:
        return self._started_at

    @property
    def poll_interval(self) -> float:
        return self._poll_interval

    @property
    def last_round(self) -> RoundResult | None:
        return self._last_round

    @property
    def last_success(self) -> RoundResult | None:
        return self._last_success

    @property
    def round_started_at(self) -> datetime | None:
        return self._round_started_at

    def round_started(self) -> None:
        self._round_started_at = _now()

    def round_finished(self, *, jobs: int, error: str | None = None) -> RoundResult:
        """Record the end of the running round and return it."""
        result = RoundResult(finished_at=_now(), succeeded=error is None, jobs=jobs, error=error)
        self._last_round = result
        if result.succeeded:
            self._last_success = result
        self._round_started_at = None
        return result

    def pleo_calls(self) -> PleoCalls:
        stats = self._stats
        return PleoCalls(
            requests=stats.requests,
            by_endpoint=dict(stats.requests_by_endpoint),
            by_status=dict(stats.responses_by_status),
            rate_limited=stats.rate_limited,
            retries=stats.retries,
            budget_wait_seconds=stats.budget_wait_seconds,
            retry_wait_seconds=stats.retry_wait_seconds,
        )

    def leases(self) -> LeaseState:
        worker = self._worker
        lease = worker.current_lease
        held = (lease.company_id,) if lease is not None and lease.lost is None else ()
        return LeaseState(
            worker=worker.holder,
            companies=tuple(worker.companies),
            held=held,
            leased_elsewhere=tuple(worker.leased_elsewhere),
        )
