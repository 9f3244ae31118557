"""A connector that writes nothing: it isolates the engine's own cost from any target's.

``prepare`` resolves nothing, ``post`` answers at once with an :class:`ExternalRecord` and
``find_existing`` always answers "not there", so every item takes the full lifecycle path
(validate, plan, look up, record intent, post, record outcome, report) without any I/O.

:class:`NetworkConnector` is the same target across a network: each post downloads the item's
receipts (through the engine's ``fetch_attachment``) and then takes ``post_seconds``; it allows
8 posts at once (``limits.max_concurrent_posts``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import anyio

from pleo_export import (
    Capability,
    Connector,
    ConnectorManifest,
    ConnectorSettings,
    ExternalRecord,
    Limits,
    PostingPlan,
    PreparedEntry,
)
from pleo_export.pleo.models import ExportJob


class NoopSettings(ConnectorSettings):
    """No settings."""


class NoopConnector(Connector[NoopSettings]):
    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="bench-noop",
        display_name="No-op benchmark target",
        capabilities=frozenset(
            {Capability.JOURNAL, Capability.ACCOUNTS_PAYABLE, Capability.LOOKUP_BY_REFERENCE}
        ),
        settings_model=NoopSettings,
    )

    _EXPORTED_AT: ClassVar[datetime] = datetime(2024, 1, 1, tzinfo=UTC)

    async def check(self, job: ExportJob) -> None:
        return None

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        return PreparedEntry(plan=plan, entries=())

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        return None

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        return ExternalRecord(external_id=prepared.plan.reference, exported_at=self._EXPORTED_AT)


class NetworkSettings(ConnectorSettings):
    post_seconds: float = 0.03
    """Time each post takes (the target's round trip), spent in ``anyio.sleep``."""


class NetworkConnector(Connector[NetworkSettings]):
    """A no-op target behind a network: downloads every receipt, then waits ``post_seconds``."""

    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="bench-network",
        display_name="No-op benchmark target across a network",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.ATTACHMENTS,
            }
        ),
        settings_model=NetworkSettings,
        limits=Limits(max_concurrent_posts=8),
    )

    async def check(self, job: ExportJob) -> None:
        return None

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        return PreparedEntry(plan=plan, entries=())

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        return None

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        for index, file in enumerate(prepared.plan.attachments):
            await self.context.fetch_attachment(file, label=f"files[{index}]")
        await anyio.sleep(self.settings.post_seconds)
        return ExternalRecord(
            external_id=prepared.plan.reference, exported_at=NoopConnector._EXPORTED_AT
        )
