"""The metrics endpoints of a real ``pleo-export run --watch``, scraped over loopback.

The sandbox is served over HTTP on loopback; it answers the first two job listings with 429
and serves the export items slowly, so the job takes a few seconds. ``run --watch`` runs as a
subprocess with ``[plugins.metrics] listen = "127.0.0.1:0"``; the test reads the address from
its log and scrapes ``/metrics``, ``/healthz`` and ``/readyz`` with real HTTP GETs while the
job runs and after it finished, and compares the numbers with what the sandbox saw.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from pleo_export import ExportJobItemStatus, ExportJobStatus
from pleo_export_sandbox import Sandbox
from pleo_export_sandbox.faults import FaultRule
from pleo_export_sandbox.server import running_server
from plugins.metrics.tests.helpers import (
    API_KEY,
    COMPANY_ID,
    log_of,
    running,
    scrape,
    total,
    url_from_log,
    value,
    write_config,
)

pytestmark = pytest.mark.anyio

FINISHED = {ExportJobStatus.COMPLETED, ExportJobStatus.COMPLETED_WITH_ERRORS}


async def test_run_watch_serves_metrics_health_and_readiness(tmp_path: Path) -> None:
    sandbox = Sandbox()
    sandbox.add_company("Metrics Ltd", "GBP", company_id=COMPANY_ID, api_key=API_KEY)
    async with running_server(sandbox) as base_url, httpx.AsyncClient(timeout=10) as http:
        write_config(tmp_path, base_url)
        sandbox.add_fault(
            FaultRule(kind="rate_limit", method="GET", path=r"^/v3/export-jobs$", count=2)
        )
        sandbox.add_fault(
            FaultRule(kind="slow", method="GET", path=r"^/v3/export-items$", delay=3.0)
        )
        job = sandbox.queue_export(COMPANY_ID, count=6, seed=21, unknown_account_rate=0.4)
        started = datetime.now(UTC).timestamp()
        with running(tmp_path, "run", "--watch", "--quiet") as process:
            base = await url_from_log(tmp_path, process)
            health = await http.get(f"{base}/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}

            # While the job runs (the export items are slow): the lease is held, a round
            # runs, no round has finished yet, so the service is not ready yet.
            deadline = time.monotonic() + 60
            while True:
                during = await scrape(http, base)
                if value(
                    during, "pleo_export_lease_held", company=COMPANY_ID, worker=_worker(during)
                ):
                    break
                assert time.monotonic() < deadline, log_of(tmp_path)[-3000:]
                await anyio.sleep(0.1)
            assert value(during, "pleo_export_round_running") == 1
            assert ("pleo_export_last_successful_round_timestamp_seconds", ()) not in during
            not_ready = await http.get(f"{base}/readyz")
            assert not_ready.status_code == 503, not_ready.text
            assert not_ready.json()["ready"] is False
            assert "starting" in not_ready.json()["reason"]

            while sandbox.store.job(job.id).status not in FINISHED:
                assert time.monotonic() < deadline, log_of(tmp_path)[-3000:]
                assert process.poll() is None, log_of(tmp_path)[-3000:]
                await anyio.sleep(0.2)
            # The round that finished the job ends; the next one finds nothing to do.
            while True:
                after = await scrape(http, base)
                if value(after, "pleo_export_rounds_total", result="succeeded") >= 2:
                    break
                assert time.monotonic() < deadline, log_of(tmp_path)[-3000:]
                await anyio.sleep(0.2)
            ready = await http.get(f"{base}/readyz")
            assert process.poll() is None, log_of(tmp_path)[-3000:]

    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True

    # Items by outcome and reason: exactly what Pleo was told.
    statuses = Counter(item.status for item in sandbox.job_items(job.id))
    reasons = Counter(
        item.failure_reason_type
        for item in sandbox.job_items(job.id)
        if item.status == ExportJobItemStatus.FAILED
    )
    assert reasons, "the job should have failed items, to count them by reason"
    posted = total(after, "pleo_export_items_total", outcome="posted")
    assert (
        posted + total(after, "pleo_export_items_total", outcome="recovered")
        == statuses[ExportJobItemStatus.SUCCESSFUL]
    )
    assert posted == 6 - sum(reasons.values()) and posted > 0
    for reason, count in reasons.items():
        assert (
            value(after, "pleo_export_items_total", outcome="failed", reason=str(reason)) == count
        )
    final = sandbox.store.job(job.id).status.value
    assert value(after, "pleo_export_jobs_total", final_event=final) == 1
    assert total(after, "pleo_export_jobs_total") == 1

    # Pleo calls, as the sandbox answered them: two 429s, each honoured before the retry.
    assert value(after, "pleo_export_pleo_rate_limited_total") == 2
    assert value(after, "pleo_export_pleo_responses_total", status="429") == 2
    assert value(after, "pleo_export_pleo_retries_total") >= 2
    assert value(after, "pleo_export_pleo_retry_wait_seconds_total") >= 2.0
    assert value(after, "pleo_export_pleo_requests_total", endpoint="GET /v3/export-items") >= 1
    listings = value(after, "pleo_export_pleo_requests_total", endpoint="GET /v3/export-jobs")
    assert listings >= 4  # two refused, then at least one per round
    assert ("pleo_export_pleo_budget_wait_seconds_total", ()) in after
    assert total(after, "pleo_export_pleo_requests_total") == total(
        after, "pleo_export_pleo_responses_total"
    )

    # The lease is released between jobs; the last successful round is recent.
    assert value(after, "pleo_export_lease_held", company=COMPANY_ID, worker=_worker(after)) == 0
    assert value(after, "pleo_export_lease_elsewhere", company=COMPANY_ID) == 0
    last_success = value(after, "pleo_export_last_successful_round_timestamp_seconds")
    assert started < last_success <= datetime.now(UTC).timestamp()
    assert value(after, "pleo_export_last_round_succeeded") == 1
    assert value(after, "pleo_export_rounds_total", result="failed") == 0

    assert process.returncode == 143, log_of(tmp_path)[-3000:]
    assert "Traceback" not in log_of(tmp_path)


def _worker(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> str:
    for name, labels in samples:
        if name == "pleo_export_lease_held":
            return dict(labels)["worker"]
    return ""
