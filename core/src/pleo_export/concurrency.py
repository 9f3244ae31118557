"""The ``[engine]`` settings that decide what the engine does at the same time (issue 13).

Part of :class:`pleo_export.config.EngineSettings`; :func:`pleo_export.app.engine_options`
copies them into :class:`~pleo_export.engine.options.EngineOptions`. The reference is
``docs/configuration.md``; what they change is described in ``docs/performance.md``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MIB = 1024 * 1024


class ConcurrencySettings(BaseModel):
    receipt_prefetch: int = Field(8, ge=0, le=64)
    """Receipts downloaded ahead of the items being posted (connectors that store receipts),
    besides one per post slot; 0 downloads each one only when the connector asks for it."""
    receipt_prefetch_bytes: int = Field(64 * MIB, ge=MIB, le=4096 * MIB)
    """Bytes of prefetched receipts held at most (by the sizes Pleo declares)."""
    max_concurrent_posts: int | None = Field(None, ge=1, le=64)
    """Cap on the posts the connector allows at once (its ``post_concurrency()``); unset: the
    connector's own value. ``1`` posts one item at a time."""
    read_ahead: bool = True
    """Fetch the next page of job items and export items while the current one is
    processed."""
