"""Fault injection: make chosen requests fail the way real networks and servers do.

A :class:`FaultRule` matches requests by method and path (a regular expression searched in
the path) and hits ``count`` of them (every ``every``-th match). Kinds:

``rate_limit``
    answer 429 ``RATE_LIMITED`` with ``Retry-After: retry_after``; the request is not applied.
``server_error``
    answer ``status`` (503 by default) with an ``ExceptionInfo`` body; not applied.
``slow``
    wait ``delay`` seconds (on the sandbox's event loop, so a mock clock makes it virtual),
    then handle the request normally.
``drop_before``
    drop the connection without applying the request.
``drop_after``
    apply the request, then drop the connection so the client never sees the response.

The sandbox's own admin endpoints (``/_sandbox/...`` other than files) are never faulted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["rate_limit", "server_error", "slow", "drop_before", "drop_after"]
FAULT_KINDS: tuple[str, ...] = ("rate_limit", "server_error", "slow", "drop_before", "drop_after")

DROP_HEADER = "x-sandbox-drop"
"""Response header by which the app tells the transport to drop the connection (its value is
``before`` or ``after``). Over real HTTP the app also stops mid-response, so the client sees a
broken connection whatever it does with headers."""


@dataclass(frozen=True, kw_only=True)
class RequestMatch:
    """Which requests a rule applies to, and how many of them: shared by every fault rule."""

    method: str | None = None
    path: str | None = None
    """Regular expression searched in the request path, e.g. ``r"/items$"``."""
    count: int | None = 1
    """How many matching requests to hit; ``None`` for every one, forever."""
    every: int = 1
    """Hit every n-th matching request (1 = each one)."""

    def _check_match(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0 or None")
        if self.path is not None:
            re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass(frozen=True)
class FaultRule(RequestMatch):
    kind: FaultKind
    status: int = 503
    retry_after: int = 1
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {FAULT_KINDS}")
        self._check_match()


@dataclass
class ArmedFault:
    """A rule in force, with how many requests it has seen and hit."""

    rule: FaultRule
    seen: int = 0
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.rule.count is not None and self.hits >= self.rule.count

    def offer(self, method: str, path: str) -> bool:
        """Whether this request is hit (counts it either way)."""
        if self.exhausted or not self.rule.matches(method, path):
            return False
        self.seen += 1
        if (self.seen - 1) % self.rule.every:
            return False
        self.hits += 1
        return True


@dataclass
class FaultInjector:
    faults: list[ArmedFault] = field(default_factory=list)

    def add(self, rule: FaultRule) -> ArmedFault:
        armed = ArmedFault(rule)
        self.faults.append(armed)
        return armed

    def clear(self) -> None:
        self.faults.clear()

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first rule (in the order added) that hits this request."""
        for armed in self.faults:
            if armed.offer(method, path):
                return armed.rule
        return None
