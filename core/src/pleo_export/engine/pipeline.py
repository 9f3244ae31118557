"""The item pipeline of one job: what the engine does at the same time while it delivers items.

Steps 5 and 6 of the lifecycle, arranged so that round trips overlap:

* the next page of export items is fetched while the current one is worked on
  (:func:`~pleo_export.engine.prefetch.read_ahead`, ``engine.read_ahead``);
* items are parsed and planned in the order Pleo lists them, and up to the connector's
  :meth:`~pleo_export.connector.Connector.post_concurrency` of them are settled (look-up,
  prepare, post) at once, each under a slot of a ``CapacityLimiter`` that hands slots out in
  that same order;
* the receipts of planned items are downloaded ahead of their posts
  (:class:`~pleo_export.engine.prefetch.ReceiptPrefetch`, ``engine.receipt_prefetch``);
* outcomes are reported to Pleo by a background task (:meth:`~pleo_export.engine.reporting.
  Reporter.report_in_background`) as soon as a PUT of 100 is full.

What does not change: each item's intent is durable before its post and its outcome before it
is reported, an uncertain post is looked up before anything else happens to that item, one job
runs at a time, and Pleo sees ``started``, then the outcomes, then the final event (the runner
sends that only after this pipeline and its reporter have finished). With a connector that
posts one item at a time and takes no receipts, the pipeline runs each item to its outcome
before the next, as the engine always did (no task per item).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from pleo_export.connector import Capability, ConnectorContext, ConnectorError
from pleo_export.engine.prefetch import ReceiptPrefetch, read_ahead, single_error
from pleo_export.ledger import PostingPlan
from pleo_export.state.base import ItemPhase

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from pleo_export.engine.delivery import Delivery
    from pleo_export.engine.job import JobRun

log = logging.getLogger("pleo_export.engine")


class ItemPipeline:
    """Delivers the items of one job through a :class:`~pleo_export.engine.delivery.Delivery`."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        options = delivery.options
        self.options = options
        declared = max(1, delivery.connector.post_concurrency())
        cap = options.max_concurrent_posts
        self.posts = 1 if options.dry_run or delivery.batching else declared
        if cap is not None:
            self.posts = max(1, min(self.posts, cap))
        context = getattr(delivery.connector, "context", None)
        self.context = context if isinstance(context, ConnectorContext) else None
        self.prefetching = (
            not options.dry_run
            and options.receipt_prefetch > 0
            and self.context is not None
            and Capability.ATTACHMENTS in delivery.manifest.capabilities
        )
        self.concurrent = not delivery.batching and (self.posts > 1 or self.prefetching)
        ahead = options.receipt_prefetch if self.prefetching else 0
        self.window = 2 * (self.posts + ahead)
        """Items planned and not finished at most: those being posted, and enough planned
        ahead of them that their receipts are there when their turn comes (a receipt takes
        about as long as a post, so twice the slots and the downloads)."""
        self.fatal: BaseException | None = None
        """A ``KeyboardInterrupt`` or ``SystemExit`` raised in an item's task: raised again
        from the pipeline itself (an event loop lets them escape from a task unhandled)."""

    async def run(self, run: JobRun) -> None:
        delivery = self.delivery
        run.aborted = None
        run.last_flush = anyio.current_time()
        run.batch = {}
        if delivery.batching:
            run.batch_limit = max(1, delivery.connector.batch_size())
        log.debug(
            "delivering items",
            extra=run.ctx(
                event="job.pipeline",
                post_concurrency=self.posts,
                receipt_prefetch=self.options.receipt_prefetch if self.prefetching else 0,
                read_ahead=self.options.read_ahead,
            ),
        )
        with single_error():
            async with anyio.create_task_group() as background:
                if not self.options.dry_run:
                    background.start_soon(delivery.reporter.report_in_background, run)
                try:
                    await self._deliver_all(run)
                finally:
                    delivery.reporter.stop_background(run)

    async def _deliver_all(self, run: JobRun) -> None:
        delivery = self.delivery
        prefetch: ReceiptPrefetch | None = None
        if self.prefetching and self.context is not None:
            prefetch = ReceiptPrefetch(
                self.context.download,
                # the receipts of the items in a post slot, plus receipt_prefetch ahead of them
                concurrency=self.posts + self.options.receipt_prefetch,
                max_bytes=self.options.receipt_prefetch_bytes,
            )
        previous = self.context.receipts if self.context is not None else None
        try:
            if prefetch is not None and self.context is not None:
                async with prefetch.running():
                    self.context.receipts = prefetch
                    delivery.prefetch = prefetch
                    await self._pages(run)
            else:
                await self._pages(run)
        finally:
            delivery.prefetch = None
            if self.context is not None:
                self.context.receipts = previous
        # Control-layer items for which Pleo returned no data.
        for record in await delivery.store.items(run.job.id, [ItemPhase.QUEUED, ItemPhase.POSTING]):
            if record.accounting_entry_id in run.dry_seen:
                continue
            await delivery.deliver(run, record, None)

    async def _pages(self, run: JobRun) -> None:
        delivery, job = self.delivery, run.job
        slots = anyio.CapacityLimiter(self.posts)
        window = anyio.Semaphore(self.window)
        with single_error():
            async with anyio.create_task_group() as items:
                pages = delivery.client.iter_export_items(job.id)
                async with read_ahead(pages, enabled=self.options.read_ahead) as stream:
                    async for page in stream:
                        await self._page(run, page, items, slots, window)
                        if self.fatal is not None:
                            break
        if self.fatal is not None:
            raise self.fatal
        if run.batch:
            await delivery.post_batch(run)

    async def _page(
        self,
        run: JobRun,
        page: list[dict[str, Any]],
        items: TaskGroup,
        slots: anyio.CapacityLimiter,
        window: anyio.Semaphore,
    ) -> None:
        delivery = self.delivery
        page_seen: set[str] = set()
        # Items finished from here on may still read as queued in ``known``.
        run.finished_recently.clear()
        known = await delivery.store.get_items(
            run.job.id, [e for e in map(_entry_id, page) if e is not None]
        )
        for raw in page:
            entry_id = _entry_id(raw)
            if entry_id is None:
                log.error(
                    "export item without accountingEntryId ignored",
                    extra=run.ctx(event="item.unidentifiable"),
                )
                continue
            if entry_id in page_seen or entry_id in run.batch:
                continue  # a repeat of an item already handled (the snapshot is older)
            if entry_id in run.in_flight or entry_id in run.finished_recently:
                continue  # handled from an earlier page, after this page's records were read
            page_seen.add(entry_id)
            record = known.get(entry_id)
            if record is None:
                log.warning(
                    "export item not among the job's items; ignored",
                    extra=run.ctx(event="item.not_in_job", accounting_entry_id=entry_id),
                )
                continue
            if record.phase not in (ItemPhase.QUEUED, ItemPhase.POSTING):
                continue
            if self.options.dry_run:
                if entry_id in run.dry_seen:
                    continue
                run.dry_seen.add(entry_id)
            if not self.concurrent:
                await delivery.deliver(run, record, raw)
                if len(run.batch) >= run.batch_limit:
                    await delivery.post_batch(run)
                continue
            await window.acquire()
            uncertain = record.phase is ItemPhase.POSTING
            try:
                run.check_lease()
                plan = delivery.plan(run, raw)
            except ConnectorError as error:
                window.release()
                await delivery.conclude(run, entry_id, delivery.failure(run, error))
                continue
            except BaseException:
                window.release()
                raise
            run.in_flight.add(entry_id)
            if delivery.prefetch is not None:
                delivery.prefetch.start(plan.attachments)
            items.start_soon(self._settle, run, entry_id, plan, uncertain, slots, window, items)

    async def _settle(
        self,
        run: JobRun,
        entry_id: str,
        plan: PostingPlan,
        uncertain: bool,
        slots: anyio.CapacityLimiter,
        window: anyio.Semaphore,
        items: TaskGroup,
    ) -> None:
        delivery = self.delivery
        try:
            async with slots:
                if run.stopping:
                    return  # another item failed the job: start nothing new at the target
                run.check_lease()
                outcome = await delivery.settle(run, entry_id, plan, uncertain)
            await delivery.conclude(run, entry_id, outcome)
        except (KeyboardInterrupt, SystemExit) as fatal:
            run.stopping = True
            if self.fatal is None:
                self.fatal = fatal
            items.cancel_scope.cancel()
        except BaseException:
            run.stopping = True  # before the slot goes to the next item's task
            raise
        finally:
            if delivery.prefetch is not None:
                delivery.prefetch.discard(plan.attachments)
            run.in_flight.discard(entry_id)
            run.finished_recently.add(entry_id)
            window.release()


def _entry_id(raw: Any) -> str | None:
    entry_id = raw.get("accountingEntryId") if isinstance(raw, dict) else None
    return entry_id if isinstance(entry_id, str) else None
