"""Hiding round trips: receipts downloaded ahead of the posts, pages read ahead.

:class:`ReceiptPrefetch` downloads the receipts of the items the engine has planned but not
posted yet, at most ``engine.receipt_prefetch`` plus one per post slot at once and within
``engine.receipt_prefetch_bytes`` (by the sizes Pleo declares), in the order the items come.
While a job runs it is the connector context's :attr:`~pleo_export.connector.ConnectorContext.
receipts`, so a connector's ``fetch_attachment`` gets the prefetched bytes (or the prefetched
error) without knowing. A receipt whose prefetch has not started when the connector asks for
it is downloaded at once instead: a post never waits for the memory bound.

:func:`read_ahead` fetches the next page of an API listing while the caller works on the
current one (one page ahead, so at most two pages are held). :func:`single_error` turns the
exception group of a failed task group back into the one error the lifecycle handles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from pleo_export.pleo.models import ExportItemFile

T = TypeVar("T")

Download = Callable[[ExportItemFile], Awaitable[bytes]]


@dataclass(eq=False)
class _Receipt:
    file: ExportItemFile
    users: int = 0
    """Planned items that carry this receipt and are not finished yet."""
    started: bool = False
    skipped: bool = False
    reserved: int = 0
    done: anyio.Event = field(default_factory=anyio.Event)
    content: bytes | None = None
    error: Exception | None = None


class ReceiptPrefetch:
    """Receipts of planned items, downloaded ahead; use as an async context manager."""

    def __init__(self, download: Download, *, concurrency: int, max_bytes: int) -> None:
        self._download = download
        self._slots = anyio.CapacityLimiter(max(1, concurrency))
        self._max_bytes = max(1, max_bytes)
        self._held = 0
        self._released = anyio.Event()
        self._order = anyio.Lock()
        self._receipts: dict[str, _Receipt] = {}
        self._tasks: TaskGroup | None = None
        self.prefetched = 0
        """Downloads started ahead of the connector's request."""
        self.peak_bytes = 0
        """The most bytes reserved at once (declared sizes, or actual when larger)."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ReceiptPrefetch]:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield self
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()  # downloads nobody will ask for any more
                self._receipts.clear()
                self._held = 0

    def start(self, files: Iterable[ExportItemFile]) -> None:
        """Start downloading ``files`` (one item's receipts) in the background."""
        if self._tasks is None:
            return
        for file in files:
            receipt = self._receipts.get(file.url)
            if receipt is None:
                receipt = self._receipts[file.url] = _Receipt(file)
                self._tasks.start_soon(self._prefetch, receipt)
            receipt.users += 1

    def discard(self, files: Iterable[ExportItemFile]) -> None:
        """The item carrying ``files`` is finished: let go of what it did not take."""
        for file in files:
            receipt = self._receipts.get(file.url)
            if receipt is None:
                continue
            receipt.users -= 1
            if receipt.users <= 0:
                del self._receipts[file.url]
                receipt.skipped = True
                receipt.content = None
                self._release(receipt)
                self._wake()

    async def fetch(self, file: ExportItemFile, download: Download) -> bytes:
        """:class:`~pleo_export.connector.ReceiptSource`: the prefetched content (or error) of
        ``file``, waiting for a download in flight; anything else is downloaded now."""
        receipt = self._receipts.get(file.url)
        if receipt is None or receipt.skipped:
            return await download(file)
        if not receipt.started:
            receipt.skipped = True  # the connector's own download replaces the prefetch
            del self._receipts[file.url]
            self._wake()
            return await download(file)
        await receipt.done.wait()
        if receipt.error is not None:
            raise receipt.error
        if receipt.content is None:  # discarded meanwhile (the item finished elsewhere)
            return await download(file)
        return receipt.content

    async def _prefetch(self, receipt: _Receipt) -> None:
        async with self._slots:
            size = max(0, receipt.file.size)
            async with self._order:  # first come, first served within the memory bound
                while not receipt.skipped and self._held and self._held + size > self._max_bytes:
                    await self._released.wait()
                if receipt.skipped:
                    return
                self._reserve(receipt, size)
            receipt.started = True
            self.prefetched += 1
            try:
                content = await self._download(receipt.file)
            except Exception as error:  # handed to the connector when it asks, like its own
                receipt.error = error
            else:
                if receipt.skipped:
                    self._release(receipt)
                else:
                    receipt.content = content
                    self._reserve(receipt, max(0, len(content) - receipt.reserved))
            finally:
                receipt.done.set()

    def _reserve(self, receipt: _Receipt, size: int) -> None:
        receipt.reserved += size
        self._held += size
        self.peak_bytes = max(self.peak_bytes, self._held)

    def _release(self, receipt: _Receipt) -> None:
        if receipt.reserved:
            self._held -= receipt.reserved
            receipt.reserved = 0
            self._wake()

    def _wake(self) -> None:
        """Let the receipt waiting for the memory bound look again."""
        self._released.set()
        self._released = anyio.Event()


@asynccontextmanager
async def read_ahead(
    pages: AsyncIterator[T], *, enabled: bool = True
) -> AsyncIterator[AsyncIterator[T]]:
    """``pages``, with the next page fetched while the caller works on the current one."""
    if not enabled:
        try:
            yield pages
        finally:
            await _close(pages)
        return
    send, receive = anyio.create_memory_object_stream[T](0)

    async def pump() -> None:
        async with send:
            try:
                async for page in pages:
                    await send.send(page)
            finally:
                with anyio.CancelScope(shield=True):
                    await _close(pages)

    with single_error():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(pump)
            try:
                async with receive:
                    yield receive
            finally:
                tasks.cancel_scope.cancel()


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise the first error of a task group's exception group as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = _first(group)
        raise error from error.__cause__  # the error as it was raised, its cause kept


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        errors = [e for e in error.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        error = (errors or list(error.exceptions))[0]
    return error


async def _close(pages: AsyncIterator[object]) -> None:
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()


__all__ = ["ReceiptPrefetch", "read_ahead", "single_error"]
