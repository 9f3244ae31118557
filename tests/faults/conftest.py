"""Fixtures and helpers of the fault suites.

The suites reuse the engine tests' :class:`~tests.engine.conftest.Harness`: the real engine and
client against the in-process sandbox, every exchange checked against Pleo's OpenAPI spec.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from pleo_export.pleo.models import ExportJobItemFailureReasonType, ExportJobItemStatus
from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE
from tests.engine.conftest import Harness, harness, make_harness

# harness and make_harness are fixtures: importing them makes them available in this folder.
__all__ = ["Harness", "harness", "make_harness"]

ITEM_REASONS = frozenset(r.value for r in ExportJobItemFailureReasonType)


def events(records: Iterable[logging.LogRecord], event: str, **fields: Any) -> list[Any]:
    """Log records carrying ``event=`` (an ``extra`` field) and every one of ``fields``."""
    return [
        r
        for r in records
        if getattr(r, "event", None) == event
        and all(getattr(r, key, None) == value for key, value in fields.items())
    ]


def predicted(harness: Harness, job_id: str) -> dict[str, str | None]:
    """Each entry of the job and the failure reason type it must end with (``None``: success).

    An entry with a line on the account the target does not know must fail with
    ``account_unknown``; every other entry must succeed.
    """
    outcome: dict[str, str | None] = {}
    for item in harness.sandbox.job_items(job_id):
        raw = harness.sandbox.export_item(item.accounting_entry_id)
        codes = {(line.get("account") or {}).get("code") for line in raw["accountingEntryLines"]}
        unknown = UNKNOWN_ACCOUNT_CODE in codes
        outcome[item.accounting_entry_id] = "account_unknown" if unknown else None
    return outcome


def final_event(expected: Mapping[str, str | None]) -> str:
    """The final event a job whose items end as ``expected`` must get."""
    failed = sum(reason is not None for reason in expected.values())
    if failed == 0:
        return "completed"
    return "failed" if failed == len(expected) else "completed_with_errors"


def assert_outcomes(harness: Harness, job_id: str, expected: Mapping[str, str | None]) -> None:
    """Every item of the job is final in Pleo as ``expected``, and in the target exactly once.

    Successful items carry the id the target gave them and are in the target (posted once);
    failed items carry the expected reason type and a message, and are not in the target.
    """
    items = {i.accounting_entry_id: i for i in harness.sandbox.job_items(job_id)}
    assert set(items) == set(expected)
    statuses = Counter(i.status for i in items.values())
    assert set(statuses) <= {ExportJobItemStatus.SUCCESSFUL, ExportJobItemStatus.FAILED}, statuses
    for entry_id, item in items.items():
        reason = expected[entry_id]
        if reason is not None:
            assert item.status is ExportJobItemStatus.FAILED, (entry_id, item)
            assert item.failure_reason_type == reason, (entry_id, item)
            assert item.failure_reason, entry_id
            assert entry_id not in harness.target.entries
        else:
            assert item.status is ExportJobItemStatus.SUCCESSFUL, (entry_id, item)
            assert item.external_id == f"MEM-{entry_id[:8]}"
            assert item.exported_at is not None
            assert entry_id in harness.target.entries
    assert harness.target.posted_twice == []
    assert set(harness.target.entries) == {e for e, r in expected.items() if r is None}


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` with pleo-export's loggers at DEBUG (read ``.records`` in the test body)."""
    caplog.set_level(logging.DEBUG, logger="pleo_export")
    return caplog
