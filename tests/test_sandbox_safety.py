"""Generated sandbox expenses never reach a real ledger by default or by contradiction.

Every test runs the real ``pleo-export`` command in a subprocess against a real beancount
ledger (the starter ledger the beancount connector writes for the sandbox's chart, so that a
sandbox run would book into it) and checks the ledger files byte for byte afterwards:

- ``run``, ``check`` and ``jobs`` stop with exit 2 and one line naming ``pleo.base_url`` when
  it is not set, the configuration issue 11 reported (a company id, an API key in the
  environment, a real ledger, no base URL) included;
- ``pleo.base_url = "sandbox"`` with a credential or a real company id is a configuration
  error naming both settings;
- the sandbox still runs when asked for by name, and ``pleo-export demo`` never leaves it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import DEMO_CHART

COMPANY_ID = "12abc3d4-e567-890e-1234-abc56e78fabc"
API_KEY = "pleo-api-key-not-to-be-printed"


def pleo_export(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def books(directory: Path, pleo_table: str) -> Path:
    """A real beancount ledger for the sandbox chart and a configuration whose [pleo] table is
    ``pleo_table``; returns the configuration file."""
    values = BeancountConnector.scaffold(directory, DEMO_CHART, "GBP")
    config = directory / "pleo-export.toml"
    config.write_text(
        f"[pleo]\n{pleo_table}\n"
        '[state]\nurl = "sqlite:///state.db"\n'
        '[connector]\nname = "beancount"\n'
        f"[connector.settings]\nledger = {str(values['ledger'])!r}\n",
        encoding="utf-8",
    )
    return config


def ledger_files(directory: Path) -> dict[str, bytes]:
    """Every file under ``ledger/`` (entries, receipts), by path."""
    root = directory / "ledger"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command's error: exactly one line on stderr, starting with ``error:``."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["run", "check", "jobs"])
def test_issue_configuration_without_base_url_stops_and_books_nothing(
    command: str, tmp_path: Path
) -> None:
    # The report: company id, API key in the environment, a real ledger, no pleo.base_url.
    config = books(tmp_path, f'company_id = "{COMPANY_ID}"')
    before = ledger_files(tmp_path)

    result = pleo_export(command, cwd=tmp_path, env={"PLEO_EXPORT_PLEO__API_KEY": API_KEY})

    assert result.returncode == 2, result.stdout + result.stderr
    message = one_line_error(result)
    assert "pleo.base_url is not set" in message
    for choice in ('"production"', '"staging"', '"sandbox"', "PLEO_EXPORT_PLEO__BASE_URL"):
        assert choice in message
    assert API_KEY not in result.stdout + result.stderr
    assert result.stdout == ""
    assert ledger_files(tmp_path) == before
    assert not (tmp_path / "state.db").exists()
    assert config.is_file()


@pytest.mark.parametrize("command", ["run", "check", "jobs"])
def test_no_configuration_at_all_does_not_fall_back_to_the_sandbox(
    command: str, tmp_path: Path
) -> None:
    result = pleo_export(command, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pleo.base_url is not set" in one_line_error(result)
    assert list(tmp_path.iterdir()) == []  # not even a state database


CONFLICTS = {
    "api_key": ({"PLEO_EXPORT_PLEO__API_KEY": API_KEY}, "", [], "pleo.api_key"),
    "access_token": (
        {"PLEO_EXPORT_PLEO__ACCESS_TOKEN": "token-not-to-be-printed"},
        "",
        [],
        "pleo.access_token",
    ),
    "company_id": ({}, f'company_id = "{COMPANY_ID}"\n', [], "pleo.company_id"),
    "company_ids": ({}, f'company_ids = ["{COMPANY_ID}"]\n', [], "pleo.company_ids"),
    "run_company": ({}, "", ["--company", COMPANY_ID], "--company"),
    "oauth_client": ({"PLEO_EXPORT_OAUTH__CLIENT_ID": "partner-app"}, "", [], "oauth.client_id"),
}


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_sandbox_with_real_credentials_or_company_is_a_conflict(case: str, tmp_path: Path) -> None:
    env, extra_pleo, options, setting = CONFLICTS[case]
    books(tmp_path, f'base_url = "sandbox"\n{extra_pleo}')
    before = ledger_files(tmp_path)

    result = pleo_export("run", *options, cwd=tmp_path, env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    message = one_line_error(result)
    assert 'pleo.base_url is "sandbox"' in message
    assert setting in message
    assert "not-to-be-printed" not in result.stdout + result.stderr
    assert ledger_files(tmp_path) == before


@pytest.mark.parametrize("command", ["check", "jobs"])
def test_check_and_jobs_refuse_the_same_conflict(command: str, tmp_path: Path) -> None:
    books(tmp_path, f'base_url = "sandbox"\ncompany_id = "{COMPANY_ID}"\n')
    before = ledger_files(tmp_path)
    result = pleo_export(command, cwd=tmp_path, env={"PLEO_EXPORT_PLEO__API_KEY": API_KEY})
    assert result.returncode == 2, result.stdout + result.stderr
    message = one_line_error(result)
    assert "pleo.api_key" in message and "pleo.company_id" in message
    assert ledger_files(tmp_path) == before


def test_the_sandbox_named_explicitly_still_exports(tmp_path: Path) -> None:
    books(tmp_path, 'base_url = "sandbox"')
    before = ledger_files(tmp_path)
    result = pleo_export("run", "--quiet", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr  # 1: a few items fail on purpose
    assert ledger_files(tmp_path) != before


def test_demo_never_leaves_the_sandbox(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = pleo_export(
        "demo",
        cwd=tmp_path,
        env={"PLEO_EXPORT_PLEO__BASE_URL": f"http://127.0.0.1:{closed}"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    message = one_line_error(result)
    assert "pleo-export demo exports only the built-in sandbox" in message
    assert "pleo.base_url" in message
    ledger = tmp_path / "pleo-export-demo" / "ledger"
    assert not (ledger / "pleo-export.beancount").exists() or "txn" not in (
        ledger / "pleo-export.beancount"
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "variable", ["PLEO_EXPORT_CONNECTOR__SETTINGS__LEDGER", "PLEO_EXPORT_BEANCOUNT_LEDGER"]
)
def test_demo_never_follows_connector_variables_into_real_books(
    variable: str, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    books(real, 'base_url = "production"')
    before = ledger_files(real)
    ledger = next((real / "ledger").glob("*.beancount"))
    result = pleo_export("demo", cwd=tmp_path, env={variable: str(ledger)})
    assert result.returncode == 2, result.stdout + result.stderr
    message = one_line_error(result)
    assert variable in message
    assert "demo books only into its own folder" in message
    assert ledger_files(real) == before


def test_demo_still_runs_on_the_sandbox(tmp_path: Path) -> None:
    result = pleo_export("demo", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "pleo-export-demo" / "pleo-export.toml").read_text(encoding="utf-8")
    assert 'base_url = "sandbox"' in config
