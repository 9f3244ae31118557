"""Durable engine state: the per-item outbox.

Backends implement :class:`~pleo_export.state.base.StateStore`; :func:`open_store` picks one
from a URL: SQLite (one worker, one file) or PostgreSQL (``postgresql://``, several workers
sharing one database, kept apart per company by leases).
"""

from __future__ import annotations

from pleo_export.state.base import (
    FINAL_PLEO_STATUSES,
    ItemOutcome,
    ItemPhase,
    ItemRecord,
    JobCounts,
    JobRecord,
    Lease,
    StateStore,
    StateStoreError,
    StoredToken,
)
from pleo_export.state.factory import SUPPORTED_URLS, open_store, redact_url

__all__ = [
    "FINAL_PLEO_STATUSES",
    "SUPPORTED_URLS",
    "ItemOutcome",
    "ItemPhase",
    "ItemRecord",
    "JobCounts",
    "JobRecord",
    "Lease",
    "StateStore",
    "StateStoreError",
    "StoredToken",
    "open_store",
    "redact_url",
]
