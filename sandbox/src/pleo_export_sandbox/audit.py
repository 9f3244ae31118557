"""An audit log of export-job state transitions and of who touched each job, for tests.

::

    audit = JobAudit.attach(sandbox)          # chains any existing on_exchange callback
    ...                                       # workers run against the sandbox
    assert audit.companies_with_parallel_jobs() == {}
    assert audit.jobs_touched_concurrently() == {}

After every exchange the sandbox answers, the audit compares every job's status with the last
one it saw and records a :class:`Transition` (a job appearing is a transition from ``None``;
an expiry is attributed to nobody, ``cause="expired"``). Every request about one job (its
reads, item updates, events and export items) is a :class:`Touch` by the credential that made
it. Workers told apart by their credentials (e.g. one organisation key each, see
:mod:`pleo_export_sandbox.organisations`) can then be checked for overlapping work.

The callback runs on the sandbox's event loop; reading methods take a lock, so a test may call
them from another thread while a server thread serves the sandbox.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleo_export_sandbox.app import Sandbox
    from pleo_export_sandbox.config import RequestRecord

__all__ = ["JobAudit", "Touch", "Transition", "job_of_request"]

_JOB_PATH = re.compile(r"^/v3/export-jobs/([^/]+)(?:/items)?$")


@dataclass(frozen=True)
class Transition:
    seq: int
    """Order in the audit (shared with :class:`Touch`)."""
    at: float
    """Sandbox clock reading of the request after which the change was seen."""
    job_id: str
    company_id: str
    before: str | None
    """The status before; ``None`` when the job appeared (created or promoted from the queue)."""
    after: str
    credential_id: str | None
    """Whose request caused it; ``None`` for expiry and for jobs appearing from the queue."""
    cause: str
    """``created``, ``request`` or ``expired``."""


@dataclass(frozen=True)
class Touch:
    seq: int
    at: float
    job_id: str
    company_id: str
    credential_id: str
    method: str
    path: str
    status: int


def job_of_request(record: RequestRecord) -> str | None:
    """The job a request is about, if it is about exactly one job."""
    match = _JOB_PATH.match(record.path)
    if match:
        return match.group(1)
    if record.path == "/v3/export-items":
        values = record.query.get("job_id")
        return values[0] if values else None
    if record.path == "/v3/export-job-events" and isinstance(record.body, dict):
        job_id = record.body.get("jobId")
        return job_id if isinstance(job_id, str) else None
    return None


class JobAudit:
    """Transitions and touches of every job of one sandbox (see the module docstring)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        self._seq = 0
        self._transitions: list[Transition] = []
        self._touches: list[Touch] = []
        self.observers: list[Callable[[RequestRecord], None]] = []
        """Called after each exchange is audited (tests use it to act at a precise moment)."""
        self._chained: Callable[[RequestRecord], None] | None = None

    @classmethod
    def attach(cls, sandbox: Sandbox) -> JobAudit:
        """Start auditing ``sandbox`` (the jobs it holds now are the starting point)."""
        audit = cls(sandbox)
        audit._chained = sandbox.on_exchange
        audit._observe(None)
        sandbox.on_exchange = audit._on_exchange
        return audit

    # --- recording ------------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _on_exchange(self, record: RequestRecord) -> None:
        self._observe(record)
        if self._chained is not None:
            self._chained(record)
        for observer in list(self.observers):
            observer(record)

    def _observe(self, record: RequestRecord | None) -> None:
        store = self.sandbox.store
        with self._lock:
            at = record.at if record is not None else store.clock()
            job_id = job_of_request(record) if record is not None else None
            job = store.jobs.get(job_id) if job_id is not None else None
            if record is not None and job is not None and record.credential_id is not None:
                self._touches.append(
                    Touch(
                        seq=self._next(),
                        at=at,
                        job_id=job.id,
                        company_id=job.company_id,
                        credential_id=record.credential_id,
                        method=record.method,
                        path=record.path,
                        status=record.status,
                    )
                )
            for current in sorted(store.jobs.values(), key=lambda j: j.seq):
                status = current.status.value
                before = self._seen.get(current.id)
                if before == status:
                    continue
                self._seen[current.id] = status
                if before is None:
                    cause, who = "created", None
                elif current.failure_reason_type == "job_expired" and status == "failed":
                    cause, who = "expired", None
                else:
                    cause, who = "request", record.credential_id if record is not None else None
                self._transitions.append(
                    Transition(
                        seq=self._next(),
                        at=at,
                        job_id=current.id,
                        company_id=current.company_id,
                        before=before,
                        after=status,
                        credential_id=who,
                        cause=cause,
                    )
                )

    # --- reading --------------------------------------------------------------------------

    @property
    def transitions(self) -> list[Transition]:
        with self._lock:
            return list(self._transitions)

    @property
    def touches(self) -> list[Touch]:
        with self._lock:
            return list(self._touches)

    def companies_with_parallel_jobs(self) -> dict[str, list[str]]:
        """Companies that ever had two jobs ``in_progress`` at once, with those jobs."""
        running: dict[str, set[str]] = defaultdict(set)
        found: dict[str, list[str]] = {}
        for transition in self.transitions:
            jobs = running[transition.company_id]
            if transition.after == "in_progress":
                jobs.add(transition.job_id)
            else:
                jobs.discard(transition.job_id)
            if len(jobs) > 1:
                found.setdefault(transition.company_id, sorted(jobs))
        return found

    def workers_of(self, job_id: str) -> list[str]:
        """The credentials that touched ``job_id``, in the order they first did."""
        return list(dict.fromkeys(t.credential_id for t in self.touches if t.job_id == job_id))

    def activity(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Per job, per credential: the audit order of its first and last touch."""
        spans: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for touch in self.touches:
            first, _ = spans[touch.job_id].get(touch.credential_id, (touch.seq, touch.seq))
            spans[touch.job_id][touch.credential_id] = (first, touch.seq)
        return dict(spans)

    def jobs_touched_concurrently(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Jobs on which two credentials' spans of activity overlap (interleaved work)."""
        found: dict[str, dict[str, tuple[int, int]]] = {}
        for job_id, spans in self.activity().items():
            latest_end = 0
            for first, last in sorted(spans.values()):
                if first < latest_end:
                    found[job_id] = spans
                    break
                latest_end = max(latest_end, last)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "transitions": [vars(t) for t in self.transitions],
            "touches": [vars(t) for t in self.touches],
        }
