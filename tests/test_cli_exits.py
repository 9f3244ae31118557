"""Exit codes and how commands end: real ``pleo-export`` subprocesses and real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pleo_export.exit_codes import ExitCode
from tests.test_cli import pleo_export

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo folder (sandbox + beancount) after one demo run: its configuration file."""
    directory = tmp_path_factory.mktemp("exits")
    result = pleo_export("demo", "--dir", "demo", cwd=directory)
    assert result.returncode == 0, result.stderr
    return directory / "demo" / "pleo-export.toml"


def _fresh_copy(config: Path, target: Path) -> Path:
    """The demo folder copied with an empty state and output ledger: everything is to do."""
    shutil.copytree(config.parent, target)
    for state in target.glob("state.db*"):
        state.unlink()
    (target / "ledger" / "pleo-export.beancount").write_text("", encoding="utf-8")
    return target / "pleo-export.toml"


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PLEO_EXPORT_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pleo_export", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_help_lists_every_exit_code(tmp_path: Path) -> None:
    result = pleo_export("--help", cwd=tmp_path)
    assert result.returncode == 0
    text = result.stdout.split("Exit status:", 1)[1]
    for code in ExitCode:
        assert f"  {int(code)}  " in text, code


@pytest.mark.parametrize("page", ["docs/lifecycle.md", "docs/configuration.md"])
def test_docs_list_every_exit_code(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    table = text.split("<!-- exit-codes -->", 1)[1].split("<!-- /exit-codes -->", 1)[0]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    assert rows - {"code", "---"} == {str(int(code)) for code in ExitCode}


def test_dry_run_into_head_ends_quietly(demo_config: Path, tmp_path: Path) -> None:
    config = _fresh_copy(demo_config, tmp_path / "f")
    process = _start("--config", str(config), "run", "--dry-run", cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does after its line
    stderr = process.stderr.read()
    code = process.wait(120)
    assert first.startswith("; would post ")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == ExitCode.BROKEN_PIPE


@pytest.mark.parametrize(
    ("sent", "expected", "says"),
    [
        (signal.SIGTERM, ExitCode.TERMINATED, "stopped by SIGTERM"),
        (signal.SIGINT, ExitCode.INTERRUPTED, "interrupted (Ctrl-C)"),
    ],
)
def test_a_signal_ends_a_watching_run_cleanly(
    demo_config: Path, tmp_path: Path, sent: signal.Signals, expected: int, says: str
) -> None:
    config = _fresh_copy(demo_config, tmp_path / "w")
    process = _start("--config", str(config), "run", "--watch", "--quiet", cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    try:
        first = process.stdout.readline()  # the first report: the run is now polling
        assert first.startswith("job "), first + process.stderr.read()
        time.sleep(0.5)
        process.send_signal(sent)
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    stderr = process.stderr.read()
    assert code == expected, stderr
    assert says in stderr
    assert "Traceback" not in stderr
    # The next run finds nothing left to do twice: the state store kept what was done.
    again = pleo_export("--config", str(config), "run", "--json", cwd=tmp_path)
    assert again.returncode in (ExitCode.OK, ExitCode.ITEMS_FAILED), again.stderr
    assert json.loads(again.stdout)["totals"]["posted"] == 0


def test_errors_in_json_mode_are_json(tmp_path: Path) -> None:
    (tmp_path / "pleo-export.toml").write_text(
        '[engine]\npoll_interval = "soon"\n', encoding="utf-8"
    )
    for args in (("run", "--json"), ("check", "--json"), ("jobs", "--json")):
        result = pleo_export(*args, cwd=tmp_path)
        assert result.returncode == ExitCode.CONFIG, result
        body = json.loads(result.stdout)
        assert body["exit_code"] == ExitCode.CONFIG
        assert body["error"]["kind"] == "configuration"
        assert "poll_interval" in body["error"]["message"]
        assert "error:" not in result.stderr


def test_jobs_in_an_empty_folder_creates_no_database(tmp_path: Path) -> None:
    result = pleo_export("jobs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "does not exist yet" in result.stdout
    assert list(tmp_path.iterdir()) == []
    assert json.loads(pleo_export("jobs", "--json", cwd=tmp_path).stdout) == []
    assert list(tmp_path.iterdir()) == []


def test_jobs_with_an_unknown_job_says_so(demo_config: Path, tmp_path: Path) -> None:
    result = pleo_export("--config", str(demo_config), "jobs", "--job", "no-such-job", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "job no-such-job is not in the state store" in result.stderr
    known = pleo_export("--config", str(demo_config), "jobs", "--json", cwd=tmp_path)
    job_id = json.loads(known.stdout)[0]["job_id"]
    listed = pleo_export("--config", str(demo_config), "jobs", "--job", job_id, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip()
