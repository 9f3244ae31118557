"""The ``pleo-export`` command with a PostgreSQL state URL: real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.postgres import postgres_url  # noqa: F401  (fixture)


def _cli(tmp_path: Path, state_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PLEO_EXPORT_STATE__URL": state_url,
        "PLEO_EXPORT_PLEO__BASE_URL": "production",
    }
    env.pop("PLEO_EXPORT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "pleo_export", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_jobs_reads_an_empty_postgres_store(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    with_password = postgres_url.replace("://postgres@", "://postgres:pw-not-shown@", 1)
    result = _cli(tmp_path, f"{with_password}?schema=cli", "jobs")
    assert result.returncode == 0, result.stderr
    assert "no jobs in postgresql://postgres:***@" in result.stdout
    assert "pw-not-shown" not in result.stdout + result.stderr


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    url = "postgresql://pleo:pw-not-shown@127.0.0.1:1/pleo?connect_timeout=2"
    result = _cli(tmp_path, url, "jobs")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: state store: cannot connect to the state database" in result.stderr
    assert "postgresql://pleo:***@127.0.0.1:1/pleo" in result.stderr
    assert "running and reachable" in result.stderr
    assert "pw-not-shown" not in result.stdout + result.stderr
