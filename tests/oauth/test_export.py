"""A real export (engine, client, sandbox) on OAuth tokens that expire while it runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pleo_export.connector import ConnectorContext
from pleo_export.engine import EngineOptions, ExportEngine
from pleo_export.engine.report import RunReport
from pleo_export.host import PluginHost
from pleo_export.ledger import PreparedEntry
from pleo_export.pleo.models import ExportItemFile, ExportJobStatus
from pleo_export_sandbox.oauth import OAuthConfig
from tests.oauth.conftest import OAuthEnv, SharedClock, build_env
from tests.support.memory import MemoryConnector, MemorySettings, fresh_target

pytestmark = pytest.mark.anyio

ITEMS = 60
SECONDS_PER_POST = 30.0
TOKEN_LIFETIME = 600


@dataclass
class ExportRun:
    env: OAuthEnv
    report: RunReport
    refreshes: int
    generation: int
    job_id: str
    posted: int


@pytest.fixture(scope="module")
async def export_run(
    tmp_path_factory: pytest.TempPathFactory, openapi_contract: Any
) -> AsyncIterator[ExportRun]:
    """Export one job of 60 items while the shared clock moves 30 s per posted entry.

    Outcomes are reported every 5 items, so Pleo is called throughout. Access tokens live
    600 s, so the 1,800 s the job takes need several proactive refreshes; half-way through,
    every access token is also expired on Pleo's side, which the client only learns from a
    401.
    """
    directory = tmp_path_factory.mktemp("oauth-export")
    env = build_env(
        directory, SharedClock(), openapi_contract, OAuthConfig(access_token_ttl=TOKEN_LIFETIME)
    )
    job = env.sandbox.queue_export(env.company.id, count=ITEMS, seed=11)
    target = fresh_target()

    def on_post(prepared: PreparedEntry) -> None:
        env.clock.advance(SECONDS_PER_POST)
        if target.post_calls == ITEMS // 2:
            env.sandbox.oauth.expire_access_tokens()

    target.post_hook = on_post
    async with env.installation(refresh_margin=60) as installation:
        await env.login(installation)
        client = env.pleo_client(installation.auth())
        store = installation.store  # the outbox and the tokens share one database

        async def fetch(file: ExportItemFile) -> bytes:
            return await client.download(file.url)

        context = ConnectorContext(
            logger=logging.getLogger("test.connector"), fetch_attachment=fetch, work_dir=directory
        )
        connector = MemoryConnector(MemorySettings(), context)
        async with client:
            engine = ExportEngine(
                client=client,
                connector=connector,
                store=store,
                hooks=PluginHost(load_entry_points=False),
                options=EngineOptions(
                    company_id=env.company.id, retry_base_delay=0.01, report_batch_size=5
                ),
            )
            report = await engine.run_pending()
        stored = await installation.manager.current()
    assert stored is not None
    yield ExportRun(
        env, report, installation.manager.refreshes, stored.generation, job.id, target.post_calls
    )
    assert not env.violations, "\n".join(env.violations)


async def test_every_item_is_exported_and_the_job_completed(export_run: ExportRun) -> None:
    (job,) = export_run.report.jobs
    assert job.job_id == export_run.job_id
    assert (job.posted, job.failed, job.items_total) == (ITEMS, 0, ITEMS)
    assert job.final_event == "completed"
    assert export_run.env.sandbox.get_job(export_run.job_id).status == ExportJobStatus.COMPLETED
    assert export_run.posted == ITEMS


async def test_tokens_were_refreshed_before_they_expired(export_run: ExportRun) -> None:
    calls = export_run.env.sandbox.oauth.refresh_calls()
    assert all(call.status == 200 for call in calls)
    assert export_run.refreshes == len(calls)
    assert export_run.generation == 1 + len(calls)
    (family,) = export_run.env.sandbox.oauth.authorisations.values()
    assert family.revoked is None and family.refreshes == len(calls)
    # Which refreshes followed a 401 (the forced expiry) and which came before expiry.
    after_401 = []
    previous_status = None
    for record in export_run.env.sandbox.requests:
        if record.path == "/oauth/token":
            if record.body and "grant_type=refresh_token" in record.body:
                after_401.append(previous_status == 401)
        else:
            previous_status = record.status
    assert after_401.count(True) == 1
    # 1,800 s of posting with 600 s tokens, refreshed 60 s early: at least two on time.
    assert after_401.count(False) >= 2


async def test_only_the_forced_expiry_produced_a_401(export_run: ExportRun) -> None:
    statuses = [
        r.status for r in export_run.env.sandbox.requests if not r.path.startswith("/oauth/")
    ]
    assert statuses.count(401) == 1
    assert all(s < 400 for s in statuses if s != 401)
