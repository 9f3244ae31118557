"""``run --watch`` rides out a Pleo outage and finishes the job once Pleo is back.

A real sandbox is served on loopback and answers every ``GET /v3/export-jobs`` with 503 for
a while; ``pleo-export run --watch`` runs as a subprocess against it (with and without its
webhook receiver). The watch loop must log the outage, back off and keep polling, never exit
(a service that exits on a short outage leaves the company's exports waiting for a person),
and never show an exception group. When the faults stop, it must finish the waiting job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from pleo_export.pleo.models import ExportJobStatus
from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import DEMO_CHART, Sandbox
from pleo_export_sandbox.faults import FaultRule
from pleo_export_sandbox.server import running_server

pytestmark = pytest.mark.anyio

API_KEY = "pleo-api-key-outage-0123456789abcdef"
COMPANY_ID = "5b1f0e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
OUTAGE_SECONDS = 8.0
FINISHED = {ExportJobStatus.COMPLETED, ExportJobStatus.COMPLETED_WITH_ERRORS}


def _config(directory: Path, base_url: str, *, webhooks: bool) -> None:
    ledger = BeancountConnector.scaffold(directory, DEMO_CHART, "GBP")["ledger"]
    hooks = f'[webhooks]\nlisten = "127.0.0.1:0"\nsecret = "{SECRET}"\n' if webhooks else ""
    (directory / "pleo-export.toml").write_text(
        f"""
[pleo]
base_url = "{base_url}"
company_id = "{COMPANY_ID}"
retry_attempts = 2

[engine]
poll_interval = 0.5
outage_backoff_max = 2

[state]
url = "sqlite:///state.db"

[connector]
name = "beancount"

[connector.settings]
ledger = "{ledger}"

{hooks}
"""
    )


@pytest.mark.parametrize("webhooks", [False, True], ids=["polling", "webhooks"])
async def test_watch_keeps_polling_through_an_outage_then_finishes_the_job(
    tmp_path: Path, webhooks: bool
) -> None:
    sandbox = Sandbox()
    sandbox.add_company("Outage Ltd", "GBP", company_id=COMPANY_ID, api_key=API_KEY)
    stderr_path = tmp_path / "stderr.txt"
    async with running_server(sandbox) as base_url:
        _config(tmp_path, base_url, webhooks=webhooks)
        sandbox.add_fault(
            FaultRule(kind="server_error", method="GET", path=r"^/v3/export-jobs$", count=None)
        )
        job = sandbox.queue_export(COMPANY_ID, count=6, seed=11)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
        env["PLEO_EXPORT_PLEO__API_KEY"] = API_KEY
        with stderr_path.open("w") as stderr, (tmp_path / "stdout.txt").open("w") as stdout:
            process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; polled below
                [sys.executable, "-m", "pleo_export.cli", "run", "--watch", "--quiet"],
                cwd=tmp_path,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
            try:
                started = time.monotonic()
                while time.monotonic() - started < OUTAGE_SECONDS:
                    await anyio.sleep(0.5)
                    assert process.poll() is None, stderr_path.read_text()[-3000:]
                assert sandbox.store.job(job.id).status == ExportJobStatus.PENDING
                sandbox.clear_faults()  # Pleo is back
                deadline = time.monotonic() + 60
                while sandbox.store.job(job.id).status not in FINISHED:
                    assert time.monotonic() < deadline, stderr_path.read_text()[-3000:]
                    assert process.poll() is None, stderr_path.read_text()[-3000:]
                    await anyio.sleep(0.25)
                # The round that finished the job ends by saying Pleo is back; then the loop
                # goes on polling.
                while "Pleo is reachable again" not in stderr_path.read_text():
                    assert time.monotonic() < deadline, stderr_path.read_text()[-3000:]
                    await anyio.sleep(0.25)
                await anyio.sleep(1.5)
                assert process.poll() is None
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait(timeout=10)
    errors = stderr_path.read_text()
    assert "Traceback" not in errors and "ExceptionGroup" not in errors, errors[-3000:]
    assert errors.count("Pleo is unavailable; polling again") >= 2, errors[-3000:]
    assert "Pleo is reachable again" in errors
    assert "503" in errors
