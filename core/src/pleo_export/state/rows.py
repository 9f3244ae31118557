"""What both SQL backends share: mapping rows to records, chunking bulk calls, messages.

The ``jobs`` and ``items`` tables have the same columns in SQLite and PostgreSQL; only the
column types (text or ``timestamptz`` times, integer or boolean flags) differ, so each backend
passes its own time parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Final, Protocol

from pleo_export.pleo.models import ExportJobItemFailureReasonType
from pleo_export.state.base import ItemOutcome, ItemPhase, ItemRecord, JobRecord, StoredToken

__all__ = [
    "CHUNK",
    "Row",
    "chunks",
    "item_record",
    "job_record",
    "token_record",
    "unknown_item",
    "utc",
]

CHUNK: Final = 2_000
"""Rows per statement in bulk calls; between chunks the event loop gets a turn."""


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def item_record(row: Row, parse_time: Callable[[Any], datetime]) -> ItemRecord:
    """An :class:`ItemRecord` from a row of the ``items`` table (the same columns everywhere)."""
    outcome: ItemOutcome | None = None
    if row["outcome_seq"] is not None:
        exported_at = row["exported_at"]
        outcome = ItemOutcome(
            succeeded=bool(row["succeeded"]),
            external_id=row["external_id"],
            external_url=row["external_url"],
            exported_at=parse_time(exported_at) if exported_at is not None else None,
            failure_reason_type=(
                ExportJobItemFailureReasonType(row["failure_reason_type"])
                if row["failure_reason_type"] is not None
                else None
            ),
            failure_reason=row["failure_reason"],
            recovered=bool(row["recovered"]),
        )
    return ItemRecord(
        job_id=row["job_id"],
        accounting_entry_id=row["accounting_entry_id"],
        phase=ItemPhase(row["phase"]),
        pleo_status=row["pleo_status"],
        attempts=int(row["attempts"]),
        outcome=outcome,
        reported=bool(row["reported"]),
        updated_at=parse_time(row["updated_at"]),
    )


def job_record(row: Row, parse_time: Callable[[Any], datetime]) -> JobRecord:
    """A :class:`JobRecord` from a row of the ``jobs`` table (the same columns everywhere)."""
    return JobRecord(
        job_id=row["job_id"],
        company_id=row["company_id"],
        started_by_us=bool(row["started_by_us"]),
        final_event=row["final_event"],
        final_reason=row["final_reason"],
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
    )


def token_record(row: Row, parse_time: Callable[[Any], datetime]) -> StoredToken:
    """A :class:`StoredToken` from a row of the ``tokens`` table (the same columns everywhere)."""
    return StoredToken(
        key=row["key"],
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
        expires_at=parse_time(row["expires_at"]),
        generation=int(row["generation"]),
        scope=row["scope"],
    )


def chunks(items: Iterable[tuple[str, str]], size: int = CHUNK) -> Iterator[list[tuple[str, str]]]:
    """``items`` in lists of at most ``size``, consumed lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def unknown_item(job_id: str, accounting_entry_id: str) -> str:
    """The ``KeyError`` message for a write to an item that was never added."""
    return f"unknown item {accounting_entry_id!r} of job {job_id!r}; add it with add_items first"
