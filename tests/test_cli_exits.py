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
PLEO_EXPORT = (sys.executable, "-m", "pleo_export")
WATCH = ("run", "--watch", "--quiet")


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
    pleo = {"PLEO_EXPORT_PLEO__BASE_URL": "production"}  # without it, jobs stops (exit 2)
    result = pleo_export("jobs", cwd=tmp_path, env=pleo)
    assert result.returncode == 0, result.stderr
    assert "does not exist yet" in result.stdout
    assert list(tmp_path.iterdir()) == []
    assert json.loads(pleo_export("jobs", "--json", cwd=tmp_path, env=pleo).stdout) == []
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


# ----------------------------------------------------------------------------- running long


def test_watch_prints_no_line_per_idle_poll(demo_config: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PLEO_EXPORT_ENGINE__POLL_INTERVAL": "0.1"}
    env.pop("PLEO_EXPORT_CONFIG", None)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*PLEO_EXPORT, "--log-level", "debug", "--config", str(demo_config), *WATCH],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 180
        while err.read_text(encoding="utf-8").count("event=poll.idle") < 5:
            assert process.poll() is None, err.read_text(encoding="utf-8")[-2000:]
            assert time.monotonic() < deadline, "no idle polls within 180 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    printed = out.read_text(encoding="utf-8")
    # At most once, when the backlog is done; never once per poll.
    assert printed.count("No pending export jobs.") <= 1, printed
    assert process.returncode == ExitCode.TERMINATED


def test_text_logs_carry_the_date() -> None:
    import io
    import logging
    import re

    from pleo_export import logs

    stream = io.StringIO()
    logs.configure(level="info", fmt="text", stream=stream)
    logging.getLogger("pleo_export.test").info("hello", extra={"event": "t.hello"})
    line = stream.getvalue().splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info hello event=t\.hello$", line), line


def test_log_file_rotates_by_size_or_follows_logrotate(tmp_path: Path) -> None:
    import logging

    from pleo_export import logs

    logger = logging.getLogger("pleo_export.test")
    file = tmp_path / "logs" / "pleo-export.log"
    logs.configure(level="info", file=file, rotate_bytes=500, backups=2)
    for n in range(100):
        logger.info("line %d with some padding to fill the file", n)
    assert file.exists() and file.with_name("pleo-export.log.1").exists()
    assert file.with_name("pleo-export.log.2").exists()
    assert not file.with_name("pleo-export.log.3").exists()
    assert file.stat().st_size <= 500

    other = tmp_path / "plain.log"
    logs.configure(level="info", file=other, rotate_bytes=0)
    logger.info("before logrotate")
    other.rename(tmp_path / "plain.log.1")  # what logrotate does
    logger.info("after logrotate")
    assert "after logrotate" in other.read_text(encoding="utf-8")
    assert "before logrotate" in (tmp_path / "plain.log.1").read_text(encoding="utf-8")
    logs.configure(level="warning")


# ----------------------------------------------------------------------------- readable failures


def test_failures_are_grouped_by_reason() -> None:
    from pleo_export.engine.report import ItemFailure, group_failures

    ledger = "/srv/books/ledger/main.beancount"
    failures = [
        ItemFailure(f"e-{n}", "account_unknown", f"account 4900 on lines[{n % 2}] not in {ledger}")
        for n in range(12)
    ] + [ItemFailure(f"v-{n}", "vendor_unknown", "vendor V-1001 unknown: add it") for n in range(9)]
    groups = group_failures(failures)
    assert [(g.reason_type, g.count) for g in groups] == [
        ("account_unknown", 12),
        ("vendor_unknown", 9),
    ]
    assert groups[0].message == "account 4900 on lines[*] not in main.beancount"
    assert groups[0].paths == {"main.beancount": ledger}
    assert groups[0].accounting_entry_ids[:2] == ["e-0", "e-1"]


def test_the_summary_groups_failures_and_names_the_ledger_once(
    demo_config: Path, tmp_path: Path
) -> None:
    config = _fresh_copy(demo_config, tmp_path / "g")
    result = pleo_export("--config", str(config), "run", "--quiet", cwd=tmp_path)
    assert result.returncode == ExitCode.ITEMS_FAILED, result.stderr
    ledger = str(config.parent / "ledger" / "main.beancount")
    assert result.stdout.count(ledger) == 1, result.stdout
    lines = result.stdout.splitlines()
    grouped = [line for line in lines if line.startswith("  ") and " account_unknown: " in line]
    assert grouped and all(
        line.split(":")[0].strip().endswith(("item", "items")) for line in grouped
    )
    assert not any(line.startswith("  - ") for line in lines)  # no line per item

    verbose = pleo_export("--config", str(config), "run", "--quiet", "--verbose", cwd=tmp_path)
    as_json = pleo_export("--config", str(config), "run", "--json", cwd=tmp_path)
    report = json.loads(as_json.stdout)
    failed = [f["accounting_entry_id"] for job in report["jobs"] for f in job["failures"]]
    assert failed, report
    assert all(f"      {entry_id}" in verbose.stdout for entry_id in failed)
    groups = [g for job in report["jobs"] for g in job["failure_groups"]]
    assert sum(g["items"] for g in groups) == len(failed)


# ----------------------------------------------------------------------------- naming mistakes


def test_an_unknown_connector_name_suggests_the_installed_one(tmp_path: Path) -> None:
    (tmp_path / "pleo-export.toml").write_text(
        '[pleo]\nbase_url = "sandbox"\n\n[connector]\nname = "beancont"\n', encoding="utf-8"
    )
    result = pleo_export("check", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "did you mean 'beancount'?" in result.stderr, result.stderr
    assert "pip install" not in result.stderr


def test_an_environment_variable_typo_names_the_variable(demo_config: Path, tmp_path: Path) -> None:
    bad_value = pleo_export(
        "--config",
        str(demo_config),
        "check",
        cwd=tmp_path,
        env={"PLEO_EXPORT_ENGINE__POLL_INTERVAL": "soon"},
    )
    assert bad_value.returncode == ExitCode.CONFIG
    assert "invalid environment variable:" in bad_value.stderr
    assert "PLEO_EXPORT_ENGINE__POLL_INTERVAL (engine.poll_interval)" in bad_value.stderr
    assert str(demo_config) not in bad_value.stderr

    bad_key = pleo_export(
        "--config",
        str(demo_config),
        "check",
        cwd=tmp_path,
        env={"PLEO_EXPORT_ENGINE__POLL_INTERVL": "5"},
    )
    assert bad_key.returncode == ExitCode.CONFIG
    assert "PLEO_EXPORT_ENGINE__POLL_INTERVL (engine.poll_intervl): unknown setting" in (
        bad_key.stderr
    )

    bad_section = pleo_export(
        "--config",
        str(demo_config),
        "check",
        cwd=tmp_path,
        env={"PLEO_EXPORT_PLOE__API_KEY": "k"},
    )
    assert bad_section.returncode == ExitCode.CONFIG
    assert "environment variable PLEO_EXPORT_PLOE__API_KEY" in bad_section.stderr
    assert "did you mean PLEO_EXPORT_PLEO__API_KEY?" in bad_section.stderr


def test_an_unknown_connector_variable_is_reported(demo_config: Path, tmp_path: Path) -> None:
    result = pleo_export(
        "--config",
        str(demo_config),
        "check",
        cwd=tmp_path,
        env={"PLEO_EXPORT_BEANCOUNT_LEDGR": "elsewhere.beancount"},
    )
    assert "PLEO_EXPORT_BEANCOUNT_LEDGR is not a setting of connector 'beancount'" in (
        result.stderr
    )
    assert "did you mean PLEO_EXPORT_BEANCOUNT_LEDGER?" in result.stderr


# ----------------------------------------------------------------------------- unreachable Pleo


def test_an_unreachable_pleo_says_connection_refused_and_shows_each_retry(
    demo_config: Path, tmp_path: Path
) -> None:
    from tests.client.test_unreachable import closed_port

    env = {
        "PLEO_EXPORT_PLEO__BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "PLEO_EXPORT_PLEO__API_KEY": "test-key-not-a-secret",
        "PLEO_EXPORT_PLEO__COMPANY_ID": "c-1",
        "PLEO_EXPORT_PLEO__RETRY_ATTEMPTS": "3",
    }
    for as_json in (False, True):
        args = ("run", "--json") if as_json else ("run",)
        result = pleo_export("--config", str(demo_config), *args, cwd=tmp_path, env=env)
        assert result.returncode == ExitCode.UNAVAILABLE, result.stderr
        retries = [line for line in result.stderr.splitlines() if "event=pleo.retry" in line]
        assert len(retries) == 2, result.stderr  # attempts 1 and 2 of 3, each shown
        assert all("connection refused; attempt" in line for line in retries)
        if as_json:
            body = json.loads(result.stdout)
            assert body["exit_code"] == ExitCode.UNAVAILABLE
            assert "connection refused" in body["error"]["message"]
        else:
            assert "connection refused (ConnectError)" in result.stderr
