"""A connector that writes nothing: it isolates the engine's own cost from any target's.

``prepare`` resolves nothing, ``post`` answers at once with an :class:`ExternalRecord` and
``find_existing`` always answers "not there", so every item takes the full lifecycle path
(validate, plan, look up, record intent, post, record outcome, report) without any I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pleo_export import (
    Capability,
    Connector,
    ConnectorManifest,
    ConnectorSettings,
    ExternalRecord,
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
