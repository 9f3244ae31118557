"""Amounts of the wrong JSON type fail the item; nothing is coerced into a number.

The spec types ``MoneyModel.value`` as a number of minor units. A string that looks like one
(``"47003"``, ``"1_000"``), a boolean or a numeric string in a line used to be booked as if
Pleo had sent the number. Each must fail its item with ``validation_failure`` naming the field,
through the real engine and client against the sandbox; the other items are exported.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pleo_export.engine import EngineOptions
from pleo_export.pleo.models import ExportJobItemStatus
from pleo_export_sandbox import DEMO_CHART, UNKNOWN_ACCOUNT_CODE
from pleo_export_sandbox.schema_faults import BreakRule, break_responses
from tests.faults.conftest import Harness, assert_outcomes, events, predicted
from tests.support.memory import MemorySettings

pytestmark = pytest.mark.anyio

ITEMS = 20
KNOWN = MemorySettings(
    known_accounts=[a.code for a in DEMO_CHART.ledger_accounts() if a.code != UNKNOWN_ACCOUNT_CODE]
)
WRONG = [
    ("data.1.amount.inWalletCurrency.value", "47003"),
    ("data.3.amount.inWalletCurrency.value", "1_000"),
    ("data.5.amount.inSupplierCurrency.value", " 12 "),
    ("data.7.amount.inWalletCurrency.value", True),
    ("data.9.accountingEntryLines.0.lineAmount.inWalletCurrency.value", "100"),
    ("data.11.accountingEntryLines.0.netAmount.inSupplierCurrency.value", "1e3"),
    ("data.13.accountingEntryLines.0.lineAmount.inWalletCurrency.value", False),
]


async def test_amounts_that_are_not_json_numbers_fail_validation(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    harness: Harness = make_harness()
    breaker = break_responses(harness.sandbox)
    for field, value in WRONG:
        breaker.add(BreakRule(kind="set", path="/v3/export-items$", field=field, value=value))
    job = harness.sandbox.queue_export(harness.company_id, count=ITEMS, seed=8)
    expected = predicted(harness, job.id)

    async with harness.engine(settings=KNOWN, options=EngineOptions()) as engine:
        report = await engine.run_pending()

    assert len(breaker.broken) == len(WRONG)
    page = json.loads(breaker.broken[0].original)["data"]
    items = {i.accounting_entry_id: i for i in harness.sandbox.job_items(job.id)}
    for field, value in WRONG:
        entry_id = page[int(field.split(".")[1])]["accountingEntryId"]
        item = items[entry_id]
        assert item.status is ExportJobItemStatus.FAILED, (field, value, item)
        assert item.failure_reason_type == "validation_failure", (field, item)
        reason = item.failure_reason or ""
        assert field.split(".", 2)[2] in reason and "number" in reason, (field, reason)
        assert entry_id not in harness.target.entries
        assert events(debug_logs.records, "item.outcome", accounting_entry_id=entry_id)
        expected[entry_id] = "validation_failure"
    assert_outcomes(harness, job.id, expected)
    assert report.jobs[0].final_event == "completed_with_errors"
