"""``open_session`` wiring: engines come from one factory and the caller's options stay theirs.

Nothing here calls Pleo: opening a session only builds the client (pointed at a closed
loopback port), opens the state store and the beancount connector.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pleo_export.app import open_session
from pleo_export.config import Settings
from pleo_export.engine import EngineOptions
from pleo_export.host import PluginHost
from pleo_export_sandbox import DEMO_CHART

pytestmark = pytest.mark.anyio

COMPANIES = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]


def _settings(tmp_path: Path) -> Settings:
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    values = connector.scaffold(tmp_path, DEMO_CHART, "GBP")
    return Settings(
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        config_dir=tmp_path,
        pleo={
            "base_url": "http://127.0.0.1:9",
            "api_key": SecretStr("key"),
            "company_ids": COMPANIES,
        },
        connector={"name": "beancount", "settings": values},
    )


async def test_open_session_leaves_the_callers_options_alone(tmp_path: Path) -> None:
    options = EngineOptions(report_batch_size=50)
    async with open_session(_settings(tmp_path), dry_run=True, options=options) as session:
        assert session.engine.options.dry_run is True
        assert session.engine.options.company_id == COMPANIES[0]
        assert session.engine.options.report_batch_size == 50
    assert options == EngineOptions(report_batch_size=50)


async def test_every_company_gets_an_engine_bound_to_it(tmp_path: Path) -> None:
    async with open_session(_settings(tmp_path), dry_run=True) as session:
        engines = session.worker.engines()
        assert list(engines) == COMPANIES
        assert [e.options.company_id for e in engines.values()] == COMPANIES
        assert all(e.connector is session.connector for e in engines.values())
        assert all(e.unavailable is None for e in engines.values())
