"""An in-memory connector for engine tests: a target whose contents tests can inspect.

It enforces a chart of accounts (unknown codes fail with ``account_unknown``), records every
posted entry by reference, counts calls, and can be told to fail in specific ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pleo_export import (
    Capability,
    Connector,
    ConnectorContext,
    ConnectorManifest,
    ConnectorSettings,
    ExternalRecord,
    ItemRejected,
    JobRejected,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
)
from pleo_export.pleo.models import ExportJob, ExportJobItemFailureReasonType


class MemorySettings(ConnectorSettings):
    known_accounts: list[str] | None = None
    """Pleo account codes the target knows; ``None`` accepts every code."""


@dataclass
class MemoryTarget:
    """What the target holds, shared across connector instances (survives 'restarts')."""

    entries: dict[str, list[ResolvedEntry]] = field(default_factory=dict)
    post_calls: int = 0
    prepare_calls: int = 0
    lookup_calls: int = 0
    check_error: Exception | None = None
    post_hook: Callable[[PreparedEntry], None] | None = None
    """Called inside ``post`` before the entry is stored (raise to simulate failures)."""
    after_store_hook: Callable[[PreparedEntry], None] | None = None
    """Called after the entry is stored (raise to simulate a crash after the write)."""
    posted_twice: list[str] = field(default_factory=list)


class MemoryConnector(Connector[MemorySettings]):
    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="memory",
        display_name="In-memory test target",
        capabilities=frozenset(
            {
                Capability.JOURNAL,
                Capability.ACCOUNTS_PAYABLE,
                Capability.LOOKUP_BY_REFERENCE,
                Capability.ATTACHMENTS,
            }
        ),
        settings_model=MemorySettings,
    )
    target: ClassVar[MemoryTarget] = MemoryTarget()

    def __init__(self, settings: MemorySettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)

    async def check(self, job: ExportJob) -> None:
        if self.target.check_error is not None:
            raise self.target.check_error

    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        self.target.prepare_calls += 1
        known = self.settings.known_accounts
        resolved: list[ResolvedEntry] = []
        for entry in plan.entries:
            postings = []
            for posting in entry.postings:
                ref = posting.account
                if ref.role is Role.EXPENSE:
                    if known is not None and ref.code not in known:
                        raise ItemRejected(
                            ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN,
                            f"account {ref.code} on {posting.field} does not exist in the "
                            "target: create it or change the category in Pleo",
                        )
                    account = f"expense:{ref.code}"
                elif ref.role is Role.ACCOUNTS_PAYABLE and ref.vendor is not None:
                    account = f"payable:{ref.vendor.code or ref.vendor.name}"
                else:
                    account = ref.role.value
                postings.append(ResolvedPosting.from_posting(posting, account))
            resolved.append(
                ResolvedEntry(
                    kind=entry.kind,
                    date=entry.date,
                    narration=entry.narration,
                    postings=tuple(postings),
                )
            )
        return PreparedEntry(plan=plan, entries=tuple(resolved))

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        self.target.lookup_calls += 1
        if reference in self.target.entries:
            return _record(reference)
        return None

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        self.target.post_calls += 1
        if self.target.post_hook is not None:
            self.target.post_hook(prepared)
        reference = prepared.plan.reference
        if reference in self.target.entries:
            self.target.posted_twice.append(reference)
        self.target.entries[reference] = list(prepared.entries)
        if self.target.after_store_hook is not None:
            self.target.after_store_hook(prepared)
        return _record(reference)


def _record(reference: str) -> ExternalRecord:
    return ExternalRecord(
        external_id=f"MEM-{reference[:8]}",
        external_url=f"memory://entries/{reference}",
        exported_at=datetime.now(UTC),
    )


def fresh_target(**kwargs: Any) -> MemoryTarget:
    MemoryConnector.target = MemoryTarget(**kwargs)
    return MemoryConnector.target


__all__ = ["JobRejected", "MemoryConnector", "MemorySettings", "MemoryTarget", "fresh_target"]
