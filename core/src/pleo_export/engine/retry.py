"""Retrying connector calls: one loop, with exponential backoff between attempts.

Every retried connector call (``check``, ``prepare``, ``find_existing``, ``post`` and
``post_batch``) runs through :meth:`Retries.run`: a *step* makes one attempt and either
returns its result or :class:`Again` to back off and try once more. The step decides what
the last attempt does (raise, or fail the items), so the loop itself is the same for all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from pleo_export.connector import ConnectorError, TargetTemporarilyUnavailable
from pleo_export.engine.options import EngineOptions

log = logging.getLogger("pleo_export.engine")

T = TypeVar("T")


@dataclass(frozen=True)
class Again:
    """A step's answer: back off, then make the next attempt."""

    error: Exception
    retry_after: float | None = None
    """Seconds the target asked to wait (at least); ``None`` for the plain backoff."""
    entry_id: str | None = None
    """The accounting entry the attempt was about, for the log."""


class Retries:
    """The retry budget (``post_attempts``) and backoff of one engine."""

    def __init__(self, options: EngineOptions, classify: Callable[..., ConnectorError]) -> None:
        self.options = options
        self.classify = classify
        """``classify(error, during=...)``: the connector error an exception counts as."""

    @property
    def attempts(self) -> int:
        return self.options.post_attempts

    async def run(self, step: Callable[[int], Awaitable[T | Again]]) -> T:
        """Call ``step(attempt)`` for attempt 1, 2, ... until it returns something other than
        :class:`Again` (a step never answers ``Again`` on the last attempt)."""
        for attempt in range(1, self.attempts + 1):
            answer = await step(attempt)
            if not isinstance(answer, Again):
                return answer
            await self.backoff(attempt, answer.retry_after, answer.entry_id, answer.error)
        raise AssertionError("unreachable")  # pragma: no cover

    async def call(self, call: Callable[[], Awaitable[T]], *, during: str) -> T:
        """``call()``, retried while the target is temporarily unavailable; any other error
        is raised classified (see :mod:`pleo_export.engine.classify`)."""

        async def step(attempt: int) -> T | Again:
            try:
                return await call()
            except Exception as error:
                classified = self.classify(error, during=during)
                if isinstance(classified, TargetTemporarilyUnavailable) and attempt < self.attempts:
                    return Again(classified, classified.retry_after)
                if classified is error:
                    raise
                raise classified from error

        return await self.run(step)

    async def backoff(
        self, attempt: int, retry_after: float | None, entry_id: str | None, error: Exception
    ) -> None:
        delay = min(
            self.options.retry_max_delay, self.options.retry_base_delay * 2 ** (attempt - 1)
        )
        if retry_after is not None:
            delay = max(delay, retry_after)
        log.info(
            "target not available, retrying",
            extra={
                "event": "target.retry",
                "attempt": attempt,
                "delay_s": delay,
                "accounting_entry_id": entry_id,
                "reason": str(error),
            },
        )
        await anyio.sleep(delay)
