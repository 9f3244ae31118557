"""Cursor pagination (Pleo's ``before``, ``after``, ``offset``, ``limit``) and the rate limit."""

from __future__ import annotations

import base64
import binascii
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pleo_export_sandbox.records import (
    Clock,
    bad_request,
)

# --- pagination -------------------------------------------------------------------------------

E = TypeVar("E")


def encode_cursor(seq: int) -> str:
    """An opaque cursor matching the spec's ``^[A-Z2-7=~]+$``: base32 of a sequence number."""
    return base64.b32encode(f"seq:{seq}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.b32decode(cursor.encode(), casefold=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request(f"cursor {cursor!r} is not one this server issued") from None
    prefix, _, number = text.partition(":")
    if prefix != "seq" or not number.isdigit():
        raise bad_request(f"cursor {cursor!r} is not one this server issued")
    return int(number)


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int | None = None
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page(Generic[E]):
    elements: list[E]
    total: int
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def paginate(rows: Sequence[E], seq_of: Callable[[E], int], request: PageRequest) -> Page[E]:
    """Keyset pagination over ``rows`` (already filtered and in their stable order).

    Cursors name an element's sequence number, not its position, so a page boundary survives
    rows being added or changing status between requests. ``after`` returns the rows after
    the cursor, ``before`` the last ``limit`` rows before it, ``offset`` skips rows.
    """
    seqs = [seq_of(row) for row in rows]
    if request.after is not None:
        after = decode_cursor(request.after)
        start = next((n for n, s in enumerate(seqs) if s > after), len(rows))
        end = min(len(rows), start + request.limit)
    elif request.before is not None:
        before = decode_cursor(request.before)
        end = next((n for n, s in enumerate(seqs) if s >= before), len(rows))
        start = max(0, end - request.limit)
    else:
        start = min(request.offset or 0, len(rows))
        end = min(len(rows), start + request.limit)
    page = list(rows[start:end])
    return Page(
        elements=page,
        total=len(rows),
        has_next_page=end < len(rows),
        has_previous_page=start > 0,
        start_cursor=encode_cursor(seqs[start]) if page else None,
        end_cursor=encode_cursor(seqs[end - 1]) if page else None,
    )


# --- rate limiting ----------------------------------------------------------------------------


class RateLimiter:
    """A sliding-window log per credential: at most ``limit`` accepted requests in any
    ``window`` seconds. Refused requests do not count, so a client that waits ``Retry-After``
    seconds gets through."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._log: dict[str, deque[float]] = {}

    def check(self, key: str) -> int | None:
        """Record a request; ``None`` if allowed, else the whole seconds to wait."""
        now = self.clock()
        log = self._log.setdefault(key, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            # A nanosecond of slack keeps float noise from adding a whole second.
            return max(1, math.ceil(log[0] + self.window - now - 1e-9))
        log.append(now)
        return None
