"""Variants of the correct ledger connector for the kit's own tests.

``ledger-file-nolookup`` lacks ``lookup_by_reference``: after a crash the engine must fail the
interrupted items (asking for a manual check) instead of posting them again.
``ledger-file-batch`` posts with ``post_batch`` (four entries at a time), so the kit's crash
comes after a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import anyio.to_thread
from pleo_export_broken.ledger import LedgerFileConnector, append_row

from pleo_export import (
    Capability,
    ConnectorManifest,
    ExternalRecord,
    ItemRejected,
    Limits,
    PreparedEntry,
)


class NoLookupConnector(LedgerFileConnector):
    manifest: ClassVar[ConnectorManifest] = LedgerFileConnector.manifest.model_copy(
        update={
            "id": "ledger-file-nolookup",
            "capabilities": LedgerFileConnector.manifest.capabilities
            - {Capability.LOOKUP_BY_REFERENCE},
        }
    )

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        raise AssertionError("the engine must not look up without lookup_by_reference")


class BatchConnector(LedgerFileConnector):
    manifest: ClassVar[ConnectorManifest] = LedgerFileConnector.manifest.model_copy(
        update={
            "id": "ledger-file-batch",
            "capabilities": LedgerFileConnector.manifest.capabilities | {Capability.BATCH_POSTING},
            "limits": Limits(max_attachment_bytes=3_145_728, max_batch_size=4),
        }
    )

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        raise AssertionError("a batch connector is posted to with post_batch")

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        records: list[ExternalRecord | ItemRejected] = []
        for prepared in entries:
            for file in prepared.plan.attachments:
                await self.context.fetch_attachment(file)
            row = self.row(prepared)
            number = await anyio.to_thread.run_sync(append_row, self.settings.path, row)
            records.append(self._record(row, number))
        return records
