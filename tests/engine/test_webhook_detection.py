"""A ``v1.export-job.created`` delivery starts a round at once; polling stays the safety net."""

from __future__ import annotations

import base64

import anyio
import pytest
from pydantic import SecretStr

from pleo_export.pleo.models import ExportJobStatus
from pleo_export.webhooks import receiver
from tests.engine.conftest import Harness

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"webhook-test-secret-32-bytes....").decode()


async def test_a_webhook_wakes_a_watching_worker_long_before_its_next_poll(
    harness: Harness,
) -> None:
    rounds: list[int] = []
    async with (
        receiver("127.0.0.1:0", SecretStr(SECRET)) as wakeups,
        harness.engine() as engine,
    ):
        url = wakeups.url
        harness.sandbox.webhooks.subscribe(url, secret=SECRET)

        async def watch() -> None:
            while True:
                report = await engine.run_pending()
                rounds.append(len(report.jobs))
                await wakeups.wait(3600)  # a poll interval no test would wait for

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch)
                while not rounds:  # noqa: ASYNC110 - the worker loop has no event to await
                    await anyio.sleep(0.01)
                job = harness.sandbox.queue_export(harness.company_id, count=5, seed=61)
                assert await harness.sandbox.webhooks.deliver() == 1
                done = ExportJobStatus.COMPLETED
                while harness.sandbox.get_job(job.id).status is not done:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                tasks.cancel_scope.cancel()

    assert rounds[0] == 0 and sum(rounds) == 1
    assert len(harness.target.entries) == 5
