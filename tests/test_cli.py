"""The ``pleo-export`` command as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.dists import make_distribution

ROOT = Path(__file__).resolve().parents[1]
BROKEN_PLUGIN = 'raise RuntimeError("fixture plugin: cannot reach its license server")\n'


def pleo_export(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PLEO_EXPORT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


def test_demo_exports_every_type_across_three_jobs_and_posts_nothing_twice(demo_dir: Path) -> None:
    first = pleo_export("demo", "--json", cwd=demo_dir)
    assert first.returncode == 0, first.stderr
    report = _json(first)
    jobs = report["report"]["jobs"]
    assert len(jobs) >= 3
    items = sum(j["items_total"] for j in jobs)
    assert items >= 200
    assert len(report["item_types"]) == 17
    for job in jobs:
        # every item ended successful or failed, each failure with a typed reason
        assert job["posted"] + job["recovered"] + job["failed"] == job["items_total"]
        assert job["final_event"] in ("completed", "completed_with_errors")
        for failure in job["failures"]:
            assert failure["reason_type"] == "account_unknown"
            assert "6999" in failure["message"]
    assert report["target_problems"] == []
    ledger = demo_dir / "pleo-export-demo" / "ledger"
    posted_text = (ledger / "pleo-export.beancount").read_text(encoding="utf-8")

    from beancount import loader

    entries, errors, _ = loader.load_file(str(ledger / "main.beancount"))
    assert errors == []
    transactions = [e for e in entries if type(e).__name__ == "Transaction"]
    assert len(transactions) >= report["report"]["totals"]["posted"]

    second = pleo_export("demo", "--json", cwd=demo_dir)
    assert second.returncode == 0, second.stderr
    totals = _json(second)["report"]["totals"]
    assert totals["posted"] == 0
    assert totals["recovered"] == report["report"]["totals"]["posted"]
    assert (ledger / "pleo-export.beancount").read_text(encoding="utf-8") == posted_text


def test_dry_run_prints_balanced_entries_and_writes_nothing(demo_dir: Path) -> None:
    config = demo_dir / "pleo-export-demo" / "pleo-export.toml"
    if not config.exists():
        assert pleo_export("demo", cwd=demo_dir).returncode == 0
    output = demo_dir / "pleo-export-demo" / "ledger" / "pleo-export.beancount"
    before = output.read_text(encoding="utf-8")
    fresh = demo_dir / "fresh-ledger"
    shutil.copytree(demo_dir / "pleo-export-demo", fresh)
    (fresh / "ledger" / "pleo-export.beancount").write_text("", encoding="utf-8")
    (fresh / "state.db").unlink(missing_ok=True)

    result = pleo_export(
        "--config", str(fresh / "pleo-export.toml"), "run", "--dry-run", cwd=demo_dir
    )
    assert "would post card_purchase" in result.stdout
    assert "pleo-entry-id" in result.stdout  # the exact beancount text that would be appended
    assert "GBP" in result.stdout
    assert (fresh / "ledger" / "pleo-export.beancount").read_text(encoding="utf-8") == ""
    assert output.read_text(encoding="utf-8") == before
    assert result.returncode == 1  # some sandbox items would fail (unknown account)
    assert "account_unknown" in result.stdout


def test_connectors_list_shows_beancount_from_its_own_distribution(tmp_path: Path) -> None:
    result = pleo_export("connectors", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in _json(result)}
    assert rows["beancount"]["distribution"] == "pleo-export-beancount"
    assert "lookup_by_reference" in rows["beancount"]["capabilities"]
    assert rows["beancount"]["error"] is None


def test_a_broken_plugin_is_reported_and_the_run_goes_on(tmp_path: Path, demo_dir: Path) -> None:
    site = make_distribution(
        tmp_path / "site",
        "pleo-export-broken-fixture",
        "0.0.1",
        {"pleo_export.plugins": {"broken-fixture": "broken_fixture_plugin"}},
        {"broken_fixture_plugin": BROKEN_PLUGIN},
    )
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = pleo_export("plugins", "list", "--json", cwd=tmp_path, env=env)
    [failure] = _json(listed)["failed"]
    assert failure["distribution"] == "pleo-export-broken-fixture"
    assert failure["version"] == "0.0.1"
    assert "license server" in failure["reason"]

    run = pleo_export("demo", "--dir", str(tmp_path / "d"), "--json", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "pleo-export-broken-fixture" in run.stderr
    assert _json(run)["report"]["totals"]["posted"] > 0


def test_invalid_configuration_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "pleo-export.toml").write_text(
        '[pleo]\nrequests_per_minute = 900\nbase_url = "ftp://x"\n'
        '[connector]\nname = "beancount"\n',
        encoding="utf-8",
    )
    result = pleo_export("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "pleo.requests_per_minute" in result.stderr
    assert "pleo.base_url" in result.stderr
    assert "Traceback" not in result.stderr


def test_connector_settings_error_names_the_field_without_the_secret(tmp_path: Path) -> None:
    (tmp_path / "pleo-export.toml").write_text(
        '[pleo]\nbase_url = "production"\n'
        '[connector]\nname = "beancount"\n[connector.settings]\nledgr = "x.beancount"\n',
        encoding="utf-8",
    )
    result = pleo_export("run", cwd=tmp_path, env={"PLEO_EXPORT_PLEO__API_KEY": "sk-very-secret"})
    assert result.returncode == 2
    assert "ledgr" in result.stderr
    assert "ledger" in result.stderr
    assert "sk-very-secret" not in result.stderr + result.stdout


def test_help_teaches_where_to_start(tmp_path: Path) -> None:
    result = pleo_export("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "pleo-export demo" in result.stdout
    assert "--dry-run" in result.stdout
    run_help = pleo_export("run", "--help", cwd=tmp_path)
    assert "--watch" in run_help.stdout and "Examples" in run_help.stdout


def test_jobs_lists_what_the_demo_did(demo_dir: Path) -> None:
    config = demo_dir / "pleo-export-demo" / "pleo-export.toml"
    if not config.exists():
        assert pleo_export("demo", cwd=demo_dir).returncode == 0
    result = pleo_export("--config", str(config), "jobs", "--json", cwd=demo_dir)
    assert result.returncode == 0, result.stderr
    rows = _json(result)
    assert len(rows) >= 3
    assert all(row["unreported"] == 0 for row in rows)
    assert {row["final_event"] for row in rows} <= {"completed", "completed_with_errors"}


@pytest.mark.slow
def test_with_only_core_installed_run_says_how_to_install_a_connector(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if uv is None:
        try:
            import uv as uv_module  # the uv package exposes its binary

            uv = uv_module.find_uv_bin()
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail("uv is needed to build a core-only environment and is missing")
            pytest.skip("uv is not installed: cannot build a core-only environment")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", str(python), str(ROOT / "core")]
    offline = subprocess.run([*install, "--offline"], capture_output=True, text=True, check=False)
    if offline.returncode != 0:  # nothing cached yet: fetch from the package index
        subprocess.run(install, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PLEO_EXPORT_PLEO__BASE_URL"] = "production"  # the connector is checked before Pleo
    listed = subprocess.run(
        [str(venv / "bin" / "pleo-export"), "connectors", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0
    assert "No connectors installed" in listed.stdout
    result = subprocess.run(
        [str(venv / "bin" / "pleo-export"), "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "no connector" in result.stderr
    assert "pip install pleo-export-beancount" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_validates_without_starting_anything(demo_dir: Path, tmp_path: Path) -> None:
    config = demo_dir / "pleo-export-demo" / "pleo-export.toml"
    if not config.exists():
        assert pleo_export("demo", cwd=demo_dir).returncode == 0
    ok = pleo_export("--config", str(config), "check", "--json", cwd=demo_dir)
    assert ok.returncode == 0, ok.stderr
    summary = _json(ok)
    assert summary["connector_ok"] is True
    assert summary["pending_jobs"] and all(j["ok"] for j in summary["pending_jobs"])
    assert all(j["status"] == "pending" for j in summary["pending_jobs"])  # nothing started

    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[pleo]\nbase_url = "sandbox"\n'
        '[connector]\nname = "beancount"\n[connector.settings]\nledger = "missing.beancount"\n',
        encoding="utf-8",
    )
    bad = pleo_export("--config", str(broken), "check", cwd=tmp_path)
    assert bad.returncode == 1
    assert "NOT USABLE" in bad.stdout
    assert "missing.beancount" in bad.stdout
    assert "would fail: missing_configuration" in bad.stdout


def test_sandbox_serve_answers_over_loopback_http(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe, socket.socket() as files_probe:
        probe.bind(("127.0.0.1", 0))
        files_probe.bind(("127.0.0.1", 0))
        port, files_port = probe.getsockname()[1], files_probe.getsockname()[1]
    env = {**os.environ}
    env.pop("PLEO_EXPORT_CONFIG", None)
    serve = ["sandbox", "serve", "--port", str(port), "--files-port", str(files_port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "pleo_export.cli", *serve],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        key = ""
        while not key:
            line = server.stdout.readline()
            assert line, server.stderr.read() if server.stderr else "server exited"
            if line.startswith("api_key"):
                key = line.split("=", 1)[1].strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v3/export-jobs",
                    params={"statuses": "pending"},
                    auth=(key, ""),
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "sandbox did not start listening"
                time.sleep(0.2)
        assert response.status_code == 200
        job = response.json()["data"][0]
        assert job["status"] == "pending"
        assert httpx.get(f"http://127.0.0.1:{port}/v3/export-jobs").status_code == 401
        # Receipts come from a listener of their own, not from the API's address.
        items = httpx.get(
            f"http://127.0.0.1:{port}/v3/export-items",
            params={"job_id": job["id"], "limit": "100"},
            auth=(key, ""),
        ).json()["data"]
        file = next(f for item in items for f in item.get("files") or [])
        assert file["url"].startswith(f"http://127.0.0.1:{files_port}/_sandbox/files/")
        receipt = httpx.get(file["url"])
        assert receipt.status_code == 200
        assert len(receipt.content) == file["size"]
    finally:
        server.terminate()
        server.wait(timeout=10)


CRASHING_CONNECTOR = """
from typing import ClassVar

from pydantic import SecretStr

from pleo_export import Capability, Connector, ConnectorManifest, ConnectorSettings


class CrashySettings(ConnectorSettings):
    password: SecretStr


class CrashyConnector(Connector[CrashySettings]):
    manifest: ClassVar[ConnectorManifest] = ConnectorManifest(
        id="crashy",
        display_name="Crashes in open",
        capabilities=frozenset({Capability.JOURNAL}),
        settings_model=CrashySettings,
    )

    async def open(self):
        secret = self.settings.password.get_secret_value()
        raise RuntimeError(f"driver bug while logging in with password {secret}")

    async def check(self, job): ...

    async def prepare(self, plan): ...

    async def post(self, prepared): ...
"""


def test_an_unexpected_crash_is_reported_without_the_secret_or_a_raw_traceback(
    tmp_path: Path,
) -> None:
    site = make_distribution(
        tmp_path / "site",
        "pleo-export-crashy",
        "0.0.1",
        {"pleo_export.connectors": {"crashy": "crashy_connector:CrashyConnector"}},
        {"crashy_connector": CRASHING_CONNECTOR},
    )
    (tmp_path / "pleo-export.toml").write_text(
        '[pleo]\nbase_url = "sandbox"\n[connector]\nname = "crashy"\n', encoding="utf-8"
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "PLEO_EXPORT_CRASHY_PASSWORD": "hunter2-do-not-print",
    }
    result = pleo_export("run", "--quiet", cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output  # internal error, not "Pleo unreachable"
    assert "hunter2-do-not-print" not in output
    assert "unexpected error: RuntimeError: driver bug" in output
    assert "password ***" in output  # masked in the message and in the logged traceback
