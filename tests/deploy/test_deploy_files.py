"""contrib/deploy/: what can be checked on this machine, checked.

- the systemd unit passes ``systemd-analyze verify`` without a warning (with ``ExecStart``
  pointed at this environment's ``pleo-export``; the unit names /opt/pleo-export);
- the unit's command line, with the shipped configuration, runs ``serve`` for real against the
  sandbox on loopback with PostgreSQL as the state store (secrets and the Pleo address from the
  environment, as the unit and compose pass them): /healthz and /readyz answer, SIGTERM exits
  143, which the unit declares a success;
- the Dockerfile and the compose file agree with the package layout, the configuration and
  each other (paths copied, ports, the health check, the command). Neither is built or run
  here: this machine has no Docker daemon and no registry for base images (docs/deploy.md
  says so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import anyio
import httpx
import pytest
import yaml

from pleo_export.config import Settings
from pleo_export_metrics import MetricsSettings
from pleo_export_sandbox import Sandbox
from pleo_export_sandbox.server import running_server
from tests.support.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "contrib" / "deploy"
UNIT = DEPLOY / "pleo-export.service"
CONFIG = DEPLOY / "pleo-export.toml"
COMPANY_ID = "3a7d2c1b-5e4f-4a3b-9c8d-7e6f5a4b3c2d"
API_KEY = "pleo-api-key-deploy-0123456789abcdef"
CLI = (sys.executable, "-m", "pleo_export.cli")
INIT_OPTIONS = ("--base-url", "production", "--currency", "GBP")
"""As docs/deploy.md runs ``pleo-export init beancount``."""
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def _unit_values(key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"{key}=")
    ]


def _exec_start() -> list[str]:
    (command,) = _unit_values("ExecStart")
    return command.split()


def test_the_systemd_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (Debian package systemd)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/prepare installs it")
        pytest.skip(reason)
    here = Path(sys.executable).with_name("pleo-export")
    assert here.is_file(), here
    unit = tmp_path / UNIT.name
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/pleo-export/bin/pleo-export " in text
    unit.write_text(text.replace("/opt/pleo-export/bin/pleo-export", str(here)), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings (exit 0): none may be printed.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_the_unit_stops_with_sigterm_counts_143_as_success_and_does_not_retry_exit_2() -> None:
    assert _unit_values("KillSignal") == ["SIGTERM"]
    assert _unit_values("SuccessExitStatus") == ["143"]
    assert _unit_values("RestartPreventExitStatus") == ["2"]
    assert _unit_values("Restart") == ["on-failure"]
    argv = _exec_start()
    assert argv[-1] == "serve" and argv[argv.index("--config") + 1].endswith(CONFIG.name)
    (state_dir,) = _unit_values("StateDirectory")
    assert argv[argv.index("--config") + 1] == f"/var/lib/{state_dir}/{CONFIG.name}"


def test_the_shipped_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PLEO_EXPORT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", API_KEY)
    monkeypatch.setenv("PLEO_EXPORT_WEBHOOKS__SECRET", SECRET)
    from pleo_export.config import load_settings

    settings: Settings = load_settings(CONFIG)
    assert settings.webhooks.listen == "0.0.0.0:8088"
    assert settings.connector.name == "beancount"
    table = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["plugins"]["metrics"]
    assert MetricsSettings(**table).listen == "0.0.0.0:9464"


def test_the_dockerfile_and_compose_agree_with_the_repository() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    copied = re.findall(r"^COPY (\S+) /src/\1$", dockerfile, re.MULTILINE)
    assert copied == ["core", "connectors/beancount", "plugins/metrics"]
    for folder in copied:
        assert (ROOT / folder / "pyproject.toml").is_file(), folder
    assert '"/src/core[postgresql,webhooks]"' in dockerfile  # psycopg and uvicorn
    core = tomllib.loads((ROOT / "core/pyproject.toml").read_text(encoding="utf-8"))
    assert {"postgresql", "webhooks"} <= set(core["project"]["optional-dependencies"])
    assert re.search(r"^EXPOSE 8088 9464$", dockerfile, re.MULTILINE)
    assert "http://127.0.0.1:9464/healthz" in dockerfile
    assert re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.MULTILINE)
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)[1])
    assert entrypoint[:3] == ["pleo-export", "--config", "/var/lib/pleo-export/pleo-export.toml"]
    assert json.loads(re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE)[1]) == ["serve"]

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["pleo-export"]
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in compose["services"]["postgres"]
    assert service["stop_signal"] == "SIGTERM"
    assert service["ports"] == ["127.0.0.1:8088:8088", "127.0.0.1:9464:9464"]
    assert [v.split(":")[1] for v in service["volumes"]] == ["/var/lib/pleo-export"]
    environment = service["environment"]
    assert environment["PLEO_EXPORT_STATE__URL"].startswith("postgresql://")
    assert environment["PLEO_EXPORT_STATE__URL"].endswith("@postgres:5432/pleo_export")
    # Every variable compose passes is a setting pleo-export reads, spelled as it reads them.
    for variable in environment:
        section, _, key = variable.removeprefix("PLEO_EXPORT_").lower().partition("__")
        model = Settings.model_fields[section].annotation
        assert isinstance(model, type) and key in model.model_fields, variable
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for needed in re.findall(r"\$\{(\w+):\?", yaml.safe_dump(compose)):
        assert f"\n{needed}=" in f"\n{example}", needed


@pytest.mark.anyio
async def test_the_units_command_line_serves_with_the_shipped_configuration(
    tmp_path: Path,
) -> None:
    """The unit's ExecStart, on the shipped configuration (its listen addresses moved to free
    loopback ports, its ledger created by `init`), against the sandbox and PostgreSQL."""
    sandbox = Sandbox()
    sandbox.add_company("Deploy Ltd", "GBP", company_id=COMPANY_ID, api_key=API_KEY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    init = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [*CLI, "init", "beancount", "--dir", str(tmp_path), *INIT_OPTIONS],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    )
    assert init.returncode == 0, init.stderr
    # As docs/deploy.md says: init writes the ledger, the shipped file replaces its config.
    config = tmp_path / CONFIG.name
    config.write_text(
        CONFIG.read_text(encoding="utf-8")
        .replace('"0.0.0.0:8088"', '"127.0.0.1:0"')
        .replace('"0.0.0.0:9464"', '"127.0.0.1:0"'),
        encoding="utf-8",
    )
    assert (tmp_path / "books/main.beancount").is_file()
    argv = _exec_start()
    arguments = argv[1:]
    arguments[arguments.index("--config") + 1] = str(config)
    with fresh_database("deploy") as state_url:
        async with running_server(sandbox) as base_url, httpx.AsyncClient(timeout=10) as http:
            env.update(
                PLEO_EXPORT_PLEO__API_KEY=API_KEY,
                PLEO_EXPORT_WEBHOOKS__SECRET=SECRET,
                PLEO_EXPORT_STATE__URL=state_url,
                PLEO_EXPORT_PLEO__BASE_URL=base_url,
                PLEO_EXPORT_PLEO__COMPANY_ID=COMPANY_ID,
            )
            log = tmp_path / "stderr.jsonl"
            with log.open("w") as stderr:
                process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; polled below
                    [sys.executable, "-m", "pleo_export.cli", *arguments],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
                try:
                    metrics = await _announced(log, process, r"plugin endpoints: (\S+/metrics)")
                    deadline = time.monotonic() + 60
                    while (
                        await http.get(f"{metrics.removesuffix('/metrics')}/readyz")
                    ).status_code != 200:
                        assert time.monotonic() < deadline, log.read_text()[-3000:]
                        await anyio.sleep(0.2)
                    health = await http.get(metrics.replace("/metrics", "/healthz"))
                    assert health.status_code == 200
                    hooks = await _announced(log, process, r"webhooks: (\S+);")
                    refused = await http.post(hooks, content=b"{}")
                    assert refused.status_code == 401  # the receiver runs and checks signatures
                finally:
                    process.terminate()
                    code = await anyio.to_thread.run_sync(lambda: process.wait(60))
    assert code == 143, _tail(log)
    assert "Traceback" not in _tail(log, None)


async def _announced(log: Path, process: subprocess.Popen[bytes], pattern: str) -> str:
    """An address from serve's first line (the only line at the unit's default log level)."""
    deadline = time.monotonic() + 60
    while True:
        match = re.search(pattern, _tail(log, None))
        if match:
            return match.group(1)
        assert process.poll() is None, _tail(log)
        assert time.monotonic() < deadline, _tail(log)
        await anyio.sleep(0.1)


def _tail(log: Path, size: int | None = 3000) -> str:
    text = log.read_text(encoding="utf-8")
    return text if size is None else text[-size:]
