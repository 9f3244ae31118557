"""What the engine is configured with, and the interfaces it calls out to.

:class:`EngineOptions` are the engine's settings; :class:`Hooks` is the slice of the plugin
host the engine calls (one method per hook of :mod:`pleo_export.hookspecs`, with the same
keyword arguments); :class:`Progress` is the display the command line passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pleo_export.bookkeeping import PlanOptions

if TYPE_CHECKING:
    from pleo_export.connector import ConnectorError, ConnectorManifest
    from pleo_export.engine.report import JobReport
    from pleo_export.hookspecs import Problem
    from pleo_export.ledger import PostingPlan, PreparedEntry
    from pleo_export.masterdata import BookedEntry
    from pleo_export.pleo.models import ExportItem, ExportJob
    from pleo_export.state.base import ItemOutcome

MAX_REPORT_BATCH = 100
"""Pleo accepts at most 100 item updates per PUT (413 ``EXPORT_JOB_ITEMS_UPDATE_LIMIT``)."""
MAX_FAILURE_REASON = 1000
MAX_ITEM_DEPTH = 32
"""Export items nested deeper than this fail ``validation_failure``. ``ExportItemV3`` is at
most seven levels deep; the limit keeps a hostile item from exhausting the interpreter's
recursion limit anywhere between the client and the connector."""


class Hooks(Protocol):
    """The slice of :class:`~pleo_export.host.PluginHost` the engine calls.

    Each method calls the hook of the same name in :mod:`pleo_export.hookspecs` (prefixed
    ``pleo_export_``) with exactly these keyword arguments.
    """

    def job_started(self, *, job: ExportJob, resumed: bool) -> None: ...
    def job_finished(self, *, job: ExportJob, report: JobReport) -> None: ...
    def validate_job(self, *, job: ExportJob, manifest: ConnectorManifest) -> Sequence[Problem]: ...
    def validate_item(self, *, item: ExportItem, job: ExportJob) -> Sequence[Problem]: ...
    def map_item(self, *, plan: PostingPlan) -> object:
        """The first plugin's replacement plan, or ``None``; the engine checks the type."""
        ...

    def classify_error(
        self, *, error: BaseException, manifest: ConnectorManifest, during: str
    ) -> ConnectorError | None: ...
    def item_outcome(
        self, *, job: ExportJob, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None: ...
    def item_prepared(self, *, job: ExportJob, prepared: PreparedEntry) -> None: ...
    def wants_reconciliation(self) -> bool:
        """Whether any plugin implements ``pleo_export_job_reconciled``."""
        ...

    def job_reconciled(
        self,
        *,
        job: ExportJob,
        report: JobReport,
        references: Sequence[str],
        booked: Sequence[BookedEntry] | None,
        problem: str | None,
    ) -> None: ...


class Progress(Protocol):
    def job_started(self, job: ExportJob, items: int) -> None: ...
    def item_done(self, job: ExportJob, succeeded: bool) -> None: ...
    def job_finished(self, job: ExportJob, report: JobReport) -> None: ...


class NoProgress:
    """The display when nobody is watching."""

    def job_started(self, job: ExportJob, items: int) -> None:
        pass

    def item_done(self, job: ExportJob, succeeded: bool) -> None:
        pass

    def job_finished(self, job: ExportJob, report: JobReport) -> None:
        pass


@dataclass
class EngineOptions:
    company_id: str | None = None
    """The Pleo company this installation exports; jobs of other companies fail validation."""
    dry_run: bool = False
    report_batch_size: int = MAX_REPORT_BATCH
    report_interval: float = 30.0
    """Report outcomes at least this often (seconds) so a slow job never expires in Pleo."""
    post_attempts: int = 4
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    plan: PlanOptions = field(default_factory=PlanOptions)
    on_preview: Callable[[PreparedEntry], None] | None = None
    """Dry run: called with each entry that would be posted."""
    receipt_prefetch: int = 8
    """Receipts downloaded ahead of the items being posted (connectors with ``attachments``),
    besides one per post slot; 0 downloads each receipt only when the connector asks for it."""
    receipt_prefetch_bytes: int = 64 * 1024 * 1024
    """Bytes of prefetched receipts held (or in flight) at most, by Pleo's declared sizes."""
    max_concurrent_posts: int | None = None
    """Cap on the connector's :meth:`~pleo_export.connector.Connector.post_concurrency`
    (``None``: the connector's value)."""
    read_ahead: bool = True
    """Fetch the next page of job items and export items while the current one is processed."""
