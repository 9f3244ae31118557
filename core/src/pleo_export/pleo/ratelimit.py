"""Client-side rate limiting and retry policy for the Pleo API.

Pleo allows 600 requests per minute and asks integrations to stay at or below 500
(reference §1.4). :class:`RequestBudget` enforces such a budget across every concurrent
request of one client; :class:`RetryPolicy` decides how long to back off between attempts.

Both work on a :class:`Clock`. The default, :class:`AnyioClock`, reads ``anyio.current_time()``
and sleeps with ``anyio.sleep``, so tests running under trio's ``MockClock`` take no real time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

__all__ = ["AnyioClock", "Clock", "RequestBudget", "RetryPolicy"]


class Clock(Protocol):
    """A monotonic time source and a matching way to wait on it."""

    def now(self) -> float:
        """Current time in seconds (monotonic; the epoch is arbitrary)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class AnyioClock:
    """The event loop's clock: ``anyio.current_time()`` and ``anyio.sleep()``."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "AnyioClock()"


class RequestBudget:
    """At most ``requests_per_minute`` request starts in any sliding window of ``window_seconds``.

    The budget keeps a log of the start times inside the current window (a sliding log), so
    the guarantee holds for *every* window, not only for aligned minutes: for any time ``t``
    no more than ``requests_per_minute`` starts fall in ``[t, t + window_seconds)``.

    One budget is shared by all concurrent requests of a client. Waiters are served in
    arrival order (an anyio lock is fair), and the task at the head of the queue sleeps until
    the oldest logged start leaves the window.

    :meth:`pause_until` stops every request from starting before a given time, for example
    when Pleo answers 429 with ``Retry-After``.
    """

    def __init__(
        self,
        requests_per_minute: int,
        window_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        if not window_seconds > 0:
            raise ValueError("window_seconds must be positive")
        self.requests_per_minute = requests_per_minute
        self.window_seconds = float(window_seconds)
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._starts: deque[float] = deque()
        self._paused_until = -math.inf
        self._lock = anyio.Lock()
        self.granted = 0
        """Slots claimed so far: every request that counted against this budget."""
        self.on_wait: Callable[[float, str], None] | None = None
        """Called before a wait of a second or more with its length and why: ``"budget"``
        (the requests per minute are used up) or ``"retry-after"`` (Pleo asked to pause)."""

    def __repr__(self) -> str:
        return (
            f"RequestBudget(requests_per_minute={self.requests_per_minute}, "
            f"window_seconds={self.window_seconds})"
        )

    def pause_until(self, until: float) -> None:
        """Let no request start before clock time ``until``.

        A pause only ever extends: a shorter pause than the current one is ignored.
        """
        self._paused_until = max(self._paused_until, until)

    async def acquire(self) -> float:
        """Wait for a free slot and claim it; return the seconds spent waiting."""
        started = self._clock.now()
        async with self._lock:
            while True:
                now = self._clock.now()
                if now < self._paused_until:
                    self._waiting(self._paused_until - now, "retry-after")
                    await self._clock.sleep(self._paused_until - now)
                    continue
                # A start at t occupies the window [t, t + window); it frees its slot at its end.
                while self._starts and self._starts[0] + self.window_seconds <= now:
                    self._starts.popleft()
                if len(self._starts) < self.requests_per_minute:
                    self._starts.append(now)
                    self.granted += 1
                    return now - started
                self._waiting(self._starts[0] + self.window_seconds - now, "budget")
                await self._clock.sleep(self._starts[0] + self.window_seconds - now)

    def _waiting(self, seconds: float, why: str) -> None:
        if self.on_wait is not None and seconds >= 1.0:
            self.on_wait(seconds, why)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    Attempt ``n`` (1-based) that failed is followed by a wait drawn uniformly from
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` (or exactly that cap without
    jitter). A server's ``Retry-After`` is a floor: the wait is never shorter than it.
    ``max_attempts`` counts every attempt, the first included.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based), ignoring ``Retry-After``."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(max(attempt - 1, 0), 64))
        return random.uniform(0.0, cap) if self.jitter else cap

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait after failed attempt ``attempt``, honouring ``retry_after`` as a floor."""
        wait = self.backoff(attempt)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait
