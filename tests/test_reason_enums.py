"""Reason types stay Pleo's enums end to end: in a plugin's Problem and in stored outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export import ExportJobFailureReasonType, ExportJobItemFailureReasonType, Problem
from pleo_export.state.base import ItemOutcome
from pleo_export.state.sqlite import SQLiteStateStore

pytestmark = pytest.mark.anyio


def test_problem_turns_a_reason_string_into_the_enum() -> None:
    item = Problem("vendor_unknown", "no such vendor")
    job = Problem("canceled_by_user", "stopped")
    assert item.reason_type is ExportJobItemFailureReasonType.VENDOR_UNKNOWN
    assert job.reason_type is ExportJobFailureReasonType.CANCELED_BY_USER
    assert repr(item) == "Problem('vendor_unknown', 'no such vendor')"


def test_problem_keeps_an_enum_it_is_given() -> None:
    reason = ExportJobFailureReasonType.MISSING_CONFIGURATION
    assert Problem(reason, "set it").reason_type is reason


def test_problem_with_a_misspelt_reason_names_it_and_the_choices() -> None:
    with pytest.raises(ValueError, match="'vendor_unkown' is not one of Pleo's failure reasons"):
        Problem("vendor_unkown", "typo")


async def test_stored_outcome_reads_back_as_the_enum(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")
    await store.open()
    try:
        await store.upsert_job("job-1", "company-1")
        await store.add_items("job-1", [("entry-1", "pending")])
        await store.record_intent("job-1", "entry-1")
        outcome = ItemOutcome(
            succeeded=False,
            failure_reason_type=ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN,
            failure_reason="account 4900 missing",
        )
        await store.record_outcome("job-1", "entry-1", outcome)
        record = await store.get_item("job-1", "entry-1")
    finally:
        await store.close()
    assert record is not None and record.outcome is not None
    assert record.outcome.failure_reason_type is ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN
