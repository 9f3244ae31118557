"""``pleo-export run --company`` and ``pleo.company_ids`` as a user runs them: a real
subprocess against a sandbox served on loopback with an organisation-level key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig
from pleo_export_sandbox.audit import JobAudit
from tests.workers.harness import World, served


def _world() -> World:
    sandbox = Sandbox(SandboxConfig(large_file_rate=0.0))
    companies = []
    for n in range(3):
        company = sandbox.add_company(name=f"Co {n}", wallet_currency="GBP")
        companies.append(company.id)
        sandbox.schedule_export(company.id, count=3, seed=70 + n, attachments=False)
    key = sandbox.add_organisation_key(companies)
    audit = JobAudit.attach(sandbox)
    return World(sandbox, audit, companies, {"a": key.secret}, {"a": key.id})


def _config(world: World, directory: Path) -> Path:
    from pleo_export_beancount import BeancountConnector

    lines = [
        "[pleo]",
        f'base_url = "{world.base_url}"',
        f'company_id = "{world.companies[0]}"',
        f'company_ids = ["{world.companies[1]}", "{world.companies[2]}"]',
        "",
        "[state]",
        f'url = "sqlite:///{directory / "state.db"}"',
        "",
        "[connector]",
        'name = "beancount"',
        "",
    ]
    for n, company in enumerate(world.companies):
        books = directory / f"books-{n}"
        values = BeancountConnector.scaffold(books, DEMO_CHART, "GBP")
        lines.append(f'[connector.companies."{company}"]')
        lines += [f"{k} = {json.dumps(str(books / v))}" for k, v in values.items()]
    config = directory / "pleo-export.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _run(world: World, config: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PLEO_EXPORT_PLEO__API_KEY": world.keys["a"]}
    env.pop("PLEO_EXPORT_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "pleo_export", "--config", str(config), "run", "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.slow
def test_company_option_and_setting_choose_the_companies(tmp_path: Path) -> None:
    world = _world()
    first, second, third = world.companies
    with served(world):
        config = _config(world, tmp_path)
        only_third = _run(world, config, "--company", third)
        configured = _run(world, config)

    assert [job["company_id"] for job in only_third["jobs"]] == [third]
    assert only_third["companies_leased_elsewhere"] == []
    # company_id first, then company_ids; the third company was done already
    assert [job["company_id"] for job in configured["jobs"]] == [first, second]
    jobs = world.sandbox.store.jobs.values()
    assert {job.status.value for job in jobs} == {"completed"}
    assert world.audit.companies_with_parallel_jobs() == {}
