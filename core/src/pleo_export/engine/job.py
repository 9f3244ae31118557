"""One job's run: the state the engine keeps while it works on a job, and nothing longer.

An :class:`~pleo_export.engine.runner.ExportEngine` holds what is the same for every job
(client, connector, store, hooks, options); each call of
:meth:`~pleo_export.engine.runner.ExportEngine.process` makes a fresh :class:`JobRun`, which
the lifecycle, delivery and reporting modules share for that job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from pleo_export.connector import JobRejected
    from pleo_export.engine.report import JobReport
    from pleo_export.ledger import PreparedEntry
    from pleo_export.pleo.models import ExportJob


class JobGone(Exception):
    """Pleo finished the job underneath us (expired, cancelled): stop working on it."""


@dataclass(eq=False)
class JobRun:
    """The engine's state for one job, from claim to final event."""

    job: ExportJob
    report: JobReport
    lease_check: Callable[[], None] | None = None
    """Set while a company lease covers the job (:mod:`pleo_export.engine.leases`): raises
    ``LeaseLost`` once the lease is gone. Checked in memory at every item boundary and before
    anything is sent to Pleo, so a worker that lost its lease stops there."""
    aborted: JobRejected | None = None
    """Set when the target refused the job mid-way: the remaining items fail with it."""
    final_in_pleo: Counter[str] = field(default_factory=Counter)
    """Control-layer statuses as Pleo had them when the job was read."""
    last_flush: float = 0.0
    recorded_since_flush: int = 0
    """Outcomes recorded since the last report: spares a store query per item."""
    batch: dict[str, PreparedEntry] = field(default_factory=dict)
    """BATCH_POSTING: prepared entries waiting for ``post_batch``, by accounting entry id, in
    the order they were prepared."""
    batch_limit: int = 1
    in_flight: set[str] = field(default_factory=set)
    """Items planned and handed to a post slot, not finished yet (concurrent delivery)."""
    finished_recently: set[str] = field(default_factory=set)
    """Items finished since the current page's records were read from the store."""
    dry_seen: set[str] = field(default_factory=set)
    """A dry run records nothing, so it remembers which items it showed."""
    report_due: anyio.Event | None = None
    """Set when a full PUT of outcomes waits (the background reporter wakes up)."""
    reporting_stopped: bool = False
    stopping: bool = False
    """An item's task failed (crash, lost lease, Pleo gone): the other items start nothing
    new at the target; they are cancelled."""

    def check_lease(self) -> None:
        """Raise ``LeaseLost`` if the company lease covering this job is gone."""
        if self.lease_check is not None:
            self.lease_check()

    def ctx(self, **fields: Any) -> dict[str, Any]:
        """Log fields naming this job."""
        return ctx(self.job, **fields)


def ctx(job: ExportJob, **fields: Any) -> dict[str, Any]:
    return {"job_id": job.id, "company_id": job.company_id, **fields}
