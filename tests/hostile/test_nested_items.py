"""Export items nested deeper than any export item is: the item fails, never the run.

Pleo's ``ExportItemV3`` is at most seven levels deep (item, lines, a line, tax, amount, money,
value). An item far deeper than that, in a field the spec types or in one it does not know,
used to raise ``RecursionError`` while its page was decoded: the run crashed (exit 3), the job
stayed ``in_progress`` and every later run crashed on the same item. Now the page is decoded
whatever its depth, the offending item fails ``validation_failure`` naming where it is too
deep, and the rest of the job is exported.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pleo_export.engine import EngineOptions
from pleo_export.pleo.errors import ResponseSchemaError
from pleo_export.pleo.models import ExportJobItemStatus, ExportJobStatus
from pleo_export_sandbox import DEMO_CHART, UNKNOWN_ACCOUNT_CODE
from pleo_export_sandbox.schema_faults import BreakRule, break_responses
from tests.faults.conftest import Harness, assert_outcomes, events, predicted
from tests.support.memory import MemorySettings

pytestmark = pytest.mark.anyio

ITEMS = 30
PAGE = 10
KNOWN = MemorySettings(
    known_accounts=[a.code for a in DEMO_CHART.ledger_accounts() if a.code != UNKNOWN_ACCOUNT_CODE]
)
ITEMS_PATH = "/v3/export-items$"


async def test_deeply_nested_items_fail_alone_and_the_job_completes(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    harness: Harness = make_harness()
    breaker = break_responses(harness.sandbox)
    # A typed field 200 levels deep (it decodes, but is absurd), then a typed field and an
    # unknown field 100,000 levels deep (no JSON decoder recurses that far). The breaker
    # cannot decode a page it has already nested 100,000 levels deep, so the last rule hits
    # the second page.
    breaker.add(BreakRule(kind="nest", path=ITEMS_PATH, field="data.7.note", depth=200))
    breaker.add(BreakRule(kind="nest", path=ITEMS_PATH, field="data.2.note"))
    breaker.add(BreakRule(kind="nest", path=ITEMS_PATH, field="data.5.comment"))
    job = harness.sandbox.queue_export(harness.company_id, count=ITEMS, seed=5)
    expected = predicted(harness, job.id)

    async with harness.engine(
        settings=KNOWN, options=EngineOptions(report_batch_size=PAGE), page_size=PAGE
    ) as engine:
        report = await engine.run_pending()

    assert [(b.field, b.original == breaker.broken[0].original) for b in breaker.broken] == [
        ("data.7.note", True),
        ("data.2.note", False),
        ("data.5.comment", False),
    ]
    nested: dict[str, str] = {}
    for broken in breaker.broken:
        assert broken.field is not None
        _, index, name = broken.field.split(".")
        page = json.loads(broken.original)["data"]
        nested[page[int(index)]["accountingEntryId"]] = name
    assert len(nested) == 3
    items = {i.accounting_entry_id: i for i in harness.sandbox.job_items(job.id)}
    for entry_id, where in nested.items():
        item = items[entry_id]
        assert item.status is ExportJobItemStatus.FAILED, item
        assert item.failure_reason_type == "validation_failure", item
        reason = item.failure_reason or ""
        assert "nested more than" in reason and where in reason, reason
        assert events(
            debug_logs.records,
            "item.outcome",
            accounting_entry_id=entry_id,
            reason_type="validation_failure",
        )
        expected[entry_id] = "validation_failure"
    assert_outcomes(harness, job.id, expected)
    [job_report] = report.jobs
    assert job_report.final_event == "completed_with_errors"
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.COMPLETED_WITH_ERRORS


async def test_a_page_nested_too_deep_outside_any_item_interrupts_the_job_cleanly(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Depth outside the items (in the page envelope) cannot be pinned on one item: the run
    stops with a typed Pleo API error and ``job.interrupted``, never a ``RecursionError``."""
    harness: Harness = make_harness()
    breaker = break_responses(harness.sandbox)
    breaker.add(BreakRule(kind="nest", path=ITEMS_PATH, field="pagination", count=None))
    harness.sandbox.queue_export(harness.company_id, count=ITEMS, seed=5)
    with pytest.raises(ResponseSchemaError):
        async with harness.engine(settings=KNOWN, page_size=PAGE) as engine:
            await engine.run_pending()
    assert events(debug_logs.records, "job.interrupted", error_type="ResponseSchemaError")


def test_an_oauth_token_response_nested_too_deep_is_not_a_token() -> None:
    """The token endpoint's answer is decoded at any depth: no ``RecursionError``, just no
    token in it (the caller then reports which fields are missing)."""
    import httpx

    from pleo_export.pleo.oauth.endpoint import _json_object

    deep = b'{"access_token": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    data = _json_object(httpx.Response(200, content=deep))
    assert set(data) == {"access_token"} and not isinstance(data["access_token"], str)


def _nested(levels: int, leaf: Any = 1) -> Any:
    """``levels`` arrays and objects in turn, the outermost an object (level 1)."""
    value = leaf
    for level in range(levels, 0, -1):
        value = {"k": value} if level % 2 else [0, value]
    return value


@pytest.mark.parametrize("limit", [1, 2, 7, 32])
def test_too_deep_draws_the_line_exactly_at_the_limit(limit: int) -> None:
    from pleo_export.pleo.depth import too_deep

    assert too_deep(_nested(limit), limit) is None
    path = too_deep({"a": 1, "b": [_nested(limit)], "c": "x"}, limit)
    assert path is not None and path[0] == "b"
    assert len(path) == limit  # the container at level limit + 1, named from the top
    assert too_deep(_nested(100_000), limit) is not None  # no recursion past the limit
    assert too_deep("scalar", limit) is None
    assert too_deep({}, 0) == ()


def test_too_deep_agrees_with_a_full_walk_on_random_shapes() -> None:
    import random

    from pleo_export.pleo.depth import _path_too_deep, too_deep

    rng = random.Random(13)

    def shape(levels: int) -> Any:
        if levels == 0 or rng.random() < 0.2:
            return rng.choice([1, "s", None, [], {}])
        children = [shape(levels - 1) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.5:
            return children
        return {f"k{i}": child for i, child in enumerate(children)}

    for _ in range(2_000):
        value, limit = shape(rng.randint(0, 9)), rng.randint(0, 8)
        assert too_deep(value, limit) == _path_too_deep(value, limit), (value, limit)
