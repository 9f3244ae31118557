"""Four connectors, each with one deliberate defect the conformance kit must catch.

Every class is :class:`~pleo_export_broken.ledger.LedgerFileConnector` with one behaviour
changed; the docstring says which, and which scenario exposes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pleo_export import (
    ConnectorManifest,
    ExternalRecord,
    ItemRejected,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_broken.ledger import LedgerFileConnector


def _manifest(connector_id: str, display_name: str) -> ConnectorManifest:
    return LedgerFileConnector.manifest.model_copy(
        update={"id": connector_id, "display_name": display_name}
    )


class DoublePostConnector(LedgerFileConnector):
    """Double-posts on retry: ``find_existing`` only remembers what this process posted.

    After a crash, the next run's fresh instance finds nothing and posts the interrupted item
    again. Exposed by ``crash_retry_no_duplicates``.
    """

    manifest: ClassVar[ConnectorManifest] = _manifest(
        "broken-double-post", "Broken example: double-posts on retry"
    )

    async def open(self) -> None:
        await super().open()
        self._posted: dict[str, ExternalRecord] = {}

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        record = await super().post(prepared)
        self._posted[prepared.plan.reference] = record
        return record

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        return self._posted.get(reference)  # DEFECT: the ledger itself is never read


class FalseSuccessConnector(LedgerFileConnector):
    """Reports success for a failed post: when the ledger refuses an entry (unknown account,
    vendor or tax code, closed period), ``post`` logs it and returns a record anyway.

    Exposed by ``partial_failure``, ``unknown_account``, ``unknown_vendor``,
    ``unknown_tax_code`` and ``closed_period``.
    """

    manifest: ClassVar[ConnectorManifest] = _manifest(
        "broken-false-success", "Broken example: reports success for a failed post"
    )

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        try:
            return await super().prepare(plan)
        except ItemRejected as refused:
            # The ledger validates on write, so the refusal is carried to post().
            return PreparedEntry(plan=plan, entries=(), payload=refused)

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        if isinstance(prepared.payload, ItemRejected):
            self.context.logger.warning("the ledger refused the entry: %s", prepared.payload)
            # DEFECT: nothing was written, yet the item is reported as exported.
            return ExternalRecord(
                external_id=f"{self.settings.path.name}:refused", exported_at=datetime.now(UTC)
            )
        return await super().post(prepared)


class LostFailureConnector(LedgerFileConnector):
    """Loses failures: an account, vendor or tax code the books do not know is booked to a
    suspense account instead of failing the item, so nobody in Pleo ever hears of it.

    Exposed by ``partial_failure``, ``unknown_account``, ``unknown_vendor`` and
    ``unknown_tax_code``.
    """

    manifest: ClassVar[ConnectorManifest] = _manifest(
        "broken-lost-failure", "Broken example: loses failures"
    )

    def unknown(self, reason: Reason, message: str) -> str:
        self.context.logger.info("booked to suspense: %s", message)
        return "suspense:unmapped"  # DEFECT: the failure never reaches Pleo


class UnbalancedConnector(LedgerFileConnector):
    """Posts unbalanced entries: the rounding posting (a currency-conversion residual of a
    minor unit between the lines and the total) is left out.

    Exposed by ``rounding_residual`` (and by any other scenario with such an item).
    """

    manifest: ClassVar[ConnectorManifest] = _manifest(
        "broken-unbalanced", "Broken example: posts unbalanced entries"
    )

    def postings(self, entry: ResolvedEntry) -> tuple[ResolvedPosting, ...]:
        # DEFECT: "a one-cent difference is noise" - and the entry no longer sums to zero.
        return tuple(p for p in entry.postings if p.role is not Role.ROUNDING)
