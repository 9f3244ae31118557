"""Thousands of items against the sandbox's 600/min limiter, on trio's virtual clock.

The sandbox and the client's request budget both read ``anyio.current_time()``; with trio's
``MockClock(autojump_threshold=0)`` every sleep returns at once while time advances as it would
in production, so a run that takes minutes of Pleo time takes seconds here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from pleo_export.pleo.models import ExportJobItemStatus
from pleo_export_sandbox import FaultRule, SandboxConfig

pytestmark = pytest.mark.anyio

ITEMS = 2000
PAGE = 5  # small pages so that the run needs well over a minute's worth of requests


@pytest.fixture
def anyio_backend() -> Any:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "with-429-and-5xx-bursts"])
async def test_two_thousand_items_at_the_rate_limit(make_harness: Any, faults: bool) -> None:
    harness = make_harness(
        SandboxConfig(rate_limit_per_minute=600, rate_limit_window=60.0),
        clock=anyio.current_time,
    )
    if faults:
        harness.sandbox.add_fault(FaultRule(kind="rate_limit", count=6, every=50, retry_after=2))
        harness.sandbox.add_fault(FaultRule(kind="server_error", count=6, every=70, status=502))
        harness.sandbox.add_fault(FaultRule(kind="drop_before", count=3, every=90))
        harness.sandbox.add_fault(FaultRule(kind="drop_after", method="PUT", count=2, every=3))
    job = harness.sandbox.queue_export(harness.company_id, count=ITEMS, seed=21)
    started = anyio.current_time()
    async with harness.engine(requests_per_minute=500, page_size=PAGE) as engine:
        report = await engine.run_pending()
        stats = engine.client.stats
    elapsed = anyio.current_time() - started

    items = harness.sandbox.job_items(job.id)
    statuses = Counter(i.status for i in items)
    assert statuses == {ExportJobItemStatus.SUCCESSFUL: ITEMS}
    assert report.jobs[0].final_event == "completed"
    assert harness.target.posted_twice == []
    assert len(harness.target.entries) == ITEMS

    sent = [r for r in harness.sandbox.requests if r.path.startswith("/v3/")]
    limited = [r for r in sent if r.status == 429]
    if faults:
        # Only the injected 429s: the client's own pace never tripped the limiter.
        assert len(limited) == 6
        assert stats.rate_limited == 6
    else:
        assert limited == []
        assert stats.rate_limited == 0
    # The run really was paced by the budget: 500 per minute is the floor on its duration.
    assert len(sent) > 800
    assert elapsed >= (len(sent) - 500) / 500 * 60
    print(f"\n{len(sent)} Pleo requests for {ITEMS} items in {elapsed:.0f} s of Pleo time")
