"""Configuration mistakes end in exit 2 with one line naming the setting, through the real CLI.

Exit 3 means "Pleo is unavailable, try again later" to a supervisor, so a mistake that only a
person can fix must never end there, nor in a traceback. Each case runs ``pleo-export`` as a
subprocess with a configuration file (or environment variable) carrying one mistake.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
CONNECTOR = """
[pleo]
base_url = "sandbox"
[connector]
name = "beancount"
[connector.settings]
ledger = "books.beancount"
[sandbox]
jobs = 1
items_per_job = 5
"""


def pleo_export(
    tmp_path: Path, config: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pleo-export.toml").write_text(config)
    (tmp_path / "books.beancount").touch()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_config_error(result: subprocess.CompletedProcess[str], setting: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: "), lines[0]
    assert setting in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mysql://user:hunter2-secret@db/pleo",
        "sqlite://host/x.db",
        "postgresql://user@db/pleo?schema=Bad-Name",
        "postgresql://user:hunter2-secret@[::1/pleo",
        "postgresql://user:hunter2-secret@[zz::1]:5432/pleo",
    ],
    ids=["empty", "mysql", "sqlite-host", "bad-schema", "ipv6-unclosed", "ipv6-bad"],
)
def test_unsupported_state_urls(tmp_path: Path, url: str) -> None:
    result = pleo_export(tmp_path, f'[state]\nurl = "{url}"\n', "jobs")
    line = assert_config_error(result, "state.url")
    assert "hunter2-secret" not in line


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        (f'listen = "8088"\nsecret = "{SECRET}"', "webhooks.listen"),
        (f'listen = "127.0.0.1:99999"\nsecret = "{SECRET}"', "webhooks.listen"),
        (f'listen = "[::1:8088"\nsecret = "{SECRET}"', "webhooks.listen"),
        ('listen = "127.0.0.1:8088"\nsecret = "whsec_not*base64!"', "webhooks.secret"),
        (f'listen = "127.0.0.1:8088"\nsecret = "{SECRET}"\npath = "pleo/hooks"', "webhooks.path"),
        (f'secret = "{SECRET}"\nmax_body_bytes = 10', "webhooks.max_body_bytes"),
    ],
    ids=["no-port", "port-range", "ipv6-unclosed", "secret", "path", "body-cap"],
)
def test_webhook_settings(tmp_path: Path, table: str, setting: str) -> None:
    result = pleo_export(tmp_path, f"[webhooks]\n{table}\n", "run", "--watch")
    line = assert_config_error(result, setting)
    assert "not*base64" not in line  # a secret, even a malformed one, is not echoed


def test_a_listen_address_that_cannot_be_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = f'{CONNECTOR}\n[webhooks]\nlisten = "127.0.0.1:{port}"\nsecret = "{SECRET}"\n'
        result = pleo_export(tmp_path, config, "run", "--watch", "--quiet")
    line = assert_config_error(result, "webhooks.listen")
    assert str(port) in line


def test_an_empty_log_file(tmp_path: Path) -> None:
    result = pleo_export(tmp_path, '[log]\nfile = ""\n', "jobs")
    assert_config_error(result, "log.file")


def test_a_log_file_in_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file")
    result = pleo_export(tmp_path, '[log]\nfile = "not-a-folder/logs/pleo.log"\n', "jobs")
    assert_config_error(result, "log.file")


def test_a_log_file_that_cannot_be_written_is_reported_once(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full")
    config = f'{CONNECTOR}\n[log]\nfile = "/dev/full"\nlevel = "debug"\n'
    result = pleo_export(tmp_path, config, "run", "--quiet")
    assert "Logging error" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("cannot write to the log file /dev/full") == 1, result.stderr[-3000:]
    assert result.returncode in (0, 1), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PLEO_EXPORT_PLEO__COMPANY_IDS", "[not json"), ("PLEO_EXPORT_PLUGINS__DISABLED", "[1,")],
)
def test_json_errors_in_environment_variables_name_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = pleo_export(tmp_path, "", "jobs", env={variable: value})
    line = assert_config_error(result, variable)
    assert "configuration file None" not in line
