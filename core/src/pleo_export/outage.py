"""Riding out a Pleo outage in ``run --watch``.

A one-off ``run`` that cannot reach Pleo exits 3 (the supervisor retries later). A service
(``run --watch``) must not: when Pleo answers 5xx or 429 past the client's own retries, or
cannot be reached at all, the watch loop logs it, waits (exponential backoff with jitter,
capped at ``engine.outage_backoff_max``) and polls again; the job it was working on resumes
from the state store. Errors that a person must fix (a refused API key, a missing scope, a
revoked OAuth installation) still end the command.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pleo_export.pleo.errors import PleoApiError, PleoUnavailable, RateLimited, ServerError

__all__ = ["OutageBackoff", "pleo_outage", "sole_error"]


def sole_error(error: BaseException) -> BaseException:
    """The one real error inside an exception group (cancellations aside), else ``error``.

    Task groups (the webhook receiver's server, a lease's renewal) wrap what their body
    raised in an :class:`ExceptionGroup`; callers want the error itself.
    """
    if not isinstance(error, BaseExceptionGroup):
        return error
    leaves: list[BaseException] = []

    def walk(inner: BaseException) -> None:
        if isinstance(inner, BaseExceptionGroup):
            for nested in inner.exceptions:
                walk(nested)
        else:
            leaves.append(inner)

    walk(error)
    import anyio

    cancelled = anyio.get_cancelled_exc_class()
    real = [leaf for leaf in leaves if not isinstance(leaf, cancelled)] or leaves
    return real[0] if len(real) == 1 else error


def pleo_outage(error: BaseException) -> PleoApiError | None:
    """The Pleo outage ``error`` stands for (groups unwrapped), or ``None`` if it is another
    kind of error: Pleo unreachable, 5xx or 429 past the retries, or an OAuth token endpoint
    that cannot be reached."""
    from pleo_export.pleo.oauth import RefreshLockTimeout, TokenEndpointUnavailable

    cause = sole_error(error)
    transient = (
        PleoUnavailable,
        ServerError,
        RateLimited,
        TokenEndpointUnavailable,
        RefreshLockTimeout,
    )
    if isinstance(cause, transient):
        return cause
    return None


@dataclass
class OutageBackoff:
    """Waits between polls while Pleo is down: ``first`` seconds, doubling up to ``cap``, each
    drawn between half and all of that (jitter, so workers do not return in step)."""

    first: float
    cap: float
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.first * 2.0 ** min(self.failures - 1, 32))
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
