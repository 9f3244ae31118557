"""``pleo-export serve`` as a real subprocess: webhook, metrics, SIGTERM mid-job, resume.

The sandbox is served over HTTP on loopback and serves receipts slowly, so a job of a few
dozen items takes several seconds. ``serve`` runs against it with a PostgreSQL state store, its
webhook receiver and the metrics endpoints; its poll interval is long, so only the webhook
delivery can start the job quickly. Once a few items are booked, SIGTERM stops it: it must exit
143, release the company lease, and leave the job for the next ``pleo-export run``, which must
finish it with every item booked exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest

from pleo_export.engine.leases import lease_name
from pleo_export.pleo.models import ExportJobItemStatus, ExportJobStatus
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server
from plugins.metrics.tests.helpers import (
    API_KEY,
    COMPANY_ID,
    SECRET,
    WEBHOOK_URL_IN_LOG,
    environment,
    log_of,
    running,
    scrape,
    total,
    url_from_log,
    value,
    write_config,
)
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.anyio

ITEMS = 60
FINISHED = {ExportJobStatus.COMPLETED, ExportJobStatus.COMPLETED_WITH_ERRORS}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _bookings(ledger: Path) -> Counter[str]:
    """How many transactions the ledger holds per Pleo entry id."""
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(ledger))
    assert not errors, errors
    found: Counter[str] = Counter()
    for entry in entries:
        reference = (entry.meta or {}).get("pleo-entry-id")
        if isinstance(entry, data.Transaction) and isinstance(reference, str):
            found[reference] += 1
    return found


def _lease_released(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT expires_at <= now() FROM leases WHERE name = %s", (lease_name(COMPANY_ID),)
        ).fetchone()
    assert row is not None, "the worker never took the company lease"
    return bool(row[0])


async def test_serve_webhook_metrics_sigterm_mid_job_then_resume(tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxConfig(file_latency=0.4, large_file_rate=0.0))
    sandbox.add_company("Serve Ltd", "GBP", company_id=COMPANY_ID, api_key=API_KEY)
    with fresh_database("serve") as state_url:
        async with running_server(sandbox) as base_url, httpx.AsyncClient(timeout=10) as http:
            write_config(tmp_path, base_url, webhooks=True, state_url=state_url, poll_interval=3600)
            with running(tmp_path, "serve") as process:
                metrics = await url_from_log(tmp_path, process)
                hooks = await url_from_log(tmp_path, process, WEBHOOK_URL_IN_LOG)
                # The first round finds nothing; then only a webhook can start the job soon.
                deadline = time.monotonic() + 60
                rounds = {"name": "pleo_export_rounds_total", "result": "succeeded"}
                while value(await scrape(http, metrics), **rounds) < 1:
                    assert time.monotonic() < deadline, log_of(tmp_path)[-3000:]
                    await anyio.sleep(0.1)
                assert (await http.get(f"{metrics}/readyz")).status_code == 200

                sandbox.webhooks.subscribe(hooks, secret=SECRET)
                job = sandbox.queue_export(COMPANY_ID, count=ITEMS, seed=5)
                assert await sandbox.webhooks.deliver() == 1

                # Mid-job: a few items booked, the lease held. Then SIGTERM.
                while True:
                    during = await scrape(http, metrics)
                    if total(during, "pleo_export_items_total") >= 3:
                        break
                    assert time.monotonic() < deadline, log_of(tmp_path)[-3000:]
                    assert process.poll() is None, log_of(tmp_path)[-3000:]
                    await anyio.sleep(0.05)
                assert total(during, "pleo_export_lease_held", company=COMPANY_ID) == 1
                assert total(during, "pleo_export_items_total") < ITEMS
                process.terminate()
                code = await anyio.to_thread.run_sync(lambda: process.wait(60))
            stderr = log_of(tmp_path)
            assert code == 143, stderr[-3000:]
            assert "stopped by SIGTERM" in stderr
            assert "Traceback" not in stderr
            assert "pleo-export serve: polling every 3600 s; webhooks: http://" in stderr
            assert "export job announced by webhook" in stderr
            assert _lease_released(state_url)
            assert sandbox.store.job(job.id).status == ExportJobStatus.IN_PROGRESS
            ledger = tmp_path / "ledger" / "main.beancount"
            before = _bookings(ledger)
            assert before and max(before.values()) == 1

            # The next run finishes the job: no item lost, none booked twice.
            done = await anyio.to_thread.run_sync(
                lambda: subprocess.run(
                    [sys.executable, "-m", "pleo_export.cli", "run", "--json"],
                    cwd=tmp_path,
                    env=environment(),
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
            )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert sandbox.store.job(job.id).status in FINISHED
    report = json.loads(done.stdout)
    items = sandbox.job_items(job.id)
    assert all(item.status.is_final for item in items)
    succeeded = {
        item.accounting_entry_id for item in items if item.status == ExportJobItemStatus.SUCCESSFUL
    }
    after = _bookings(ledger)
    assert set(after) == succeeded, "every successful item is in the ledger, nothing else"
    assert set(after.values()) == {1}, "no item was booked twice"
    assert set(before) <= set(after)
    assert report["jobs"][0]["job_id"] == job.id
