"""``pleo-export init <connector>`` then ``check``, as a new user runs them: real processes,
real files, the built-in sandbox (and hledger for the SFTP rules file)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pleo_export_beancount.resolve import ROLE_SETTINGS
from pleo_export_beancount.settings import BeancountSettings
from pleo_export_sftp import SftpSettings, hledger_rules
from tests.test_cli import _json


def pleo_export(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*")}


def test_beancount_starter_ledger_opens_every_role_account_and_check_passes(
    tmp_path: Path,
) -> None:
    done = pleo_export("init", "beancount", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path) == {
        "pleo-export.toml",
        "books",
        "books/main.beancount",
        "books/pleo-export.beancount",
    }
    config = tomllib.loads((tmp_path / "pleo-export.toml").read_text(encoding="utf-8"))
    assert config["pleo"]["base_url"] == "sandbox"
    assert config["connector"] == {
        "name": "beancount",
        "settings": {"ledger": "books/main.beancount"},
    }

    from beancount import loader

    entries, errors, options = loader.load_file(str(tmp_path / "books" / "main.beancount"))
    assert errors == []
    assert options["operating_currency"] == ["GBP"]  # the sandbox company's wallet currency
    opened = {e.account for e in entries if type(e).__name__ == "Open"}
    defaults = [BeancountSettings.model_fields[s].default for s in ROLE_SETTINGS.values()]
    roles = {str(default) for default in defaults if default is not None}
    assert len(roles) >= 7 and roles <= opened  # optional roles (exchange gain/loss) have none

    checked = pleo_export("check", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    summary = _json(checked)
    assert summary["ok"] is True and summary["connector_ok"] is True
    assert summary["pending_jobs"] and all(j["ok"] for j in summary["pending_jobs"])

    text = pleo_export("check", cwd=tmp_path)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0] == "connector beancount: ok"


def test_check_does_not_say_ok_above_a_job_that_would_fail(tmp_path: Path) -> None:
    assert pleo_export("init", "beancount", cwd=tmp_path).returncode == 0
    ledger = tmp_path / "books" / "main.beancount"
    lines = ledger.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("open Assets:Bank:Contra"))
    del lines[at : at + 2]  # the open directive and its pleo-role metadata
    ledger.write_text("\n".join(lines) + "\n", encoding="utf-8")

    checked = pleo_export("check", cwd=tmp_path)
    assert checked.returncode == 1
    first, *rest = checked.stdout.splitlines()
    jobs = [line for line in rest if line.startswith("job ")]
    assert jobs and all("would fail: missing_configuration" in line for line in jobs)
    assert first.startswith("connector beancount: NOT READY:"), first
    assert f"{len(jobs)} of {len(jobs)} pending job" in first
    summary = _json(pleo_export("check", "--json", cwd=tmp_path))
    assert summary["ok"] is False
    assert summary["connector_ok"] is True  # the target is reachable; the jobs are not ready


def test_sftp_folder_layout_and_rules_file_then_check_and_hledger_read_the_export(
    tmp_path: Path,
) -> None:
    done = pleo_export("init", "sftp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path) == {"pleo-export.toml", "outbox", "keys", "pleo-export.rules"}
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    config = tomllib.loads((tmp_path / "pleo-export.toml").read_text(encoding="utf-8"))
    assert config["connector"] == {"name": "sftp", "settings": {"local_dir": "outbox"}}
    rules = (tmp_path / "pleo-export.rules").read_text(encoding="utf-8")
    assert rules == hledger_rules(SftpSettings(local_dir=tmp_path / "outbox"))

    checked = pleo_export("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[0] == "connector sftp: ok"

    hledger = shutil.which("hledger")
    if hledger is None:
        if os.environ.get("CI"):
            pytest.fail("hledger is not installed (needed under CI)")
        pytest.skip("hledger is not installed: the rules file was not read by hledger")
    ran = pleo_export("run", "--quiet", cwd=tmp_path)
    assert ran.returncode in (0, 1), ran.stderr  # 1: the sandbox's deliberate failures
    csvs = sorted((tmp_path / "outbox").glob("pleo-*.csv"))
    assert csvs
    for csv in csvs:
        read = subprocess.run(
            [hledger, "-f", str(csv), "--rules-file", str(tmp_path / "pleo-export.rules"), "check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert read.returncode == 0, read.stderr


def test_tryton_gets_the_configuration_with_every_setting_commented(tmp_path: Path) -> None:
    done = pleo_export("init", "tryton", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no starter files" in done.stdout
    assert _files(tmp_path) == {"pleo-export.toml"}
    text = (tmp_path / "pleo-export.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["connector"] == {"name": "tryton", "settings": {}}
    from pleo_export_tryton import TrytonSettings

    for name in TrytonSettings.model_fields:
        assert f"# {name} " in text or f"# {name}:" in text, name
    assert "# url = ...   (required)" in text
    assert "PLEO_EXPORT_TRYTON_PASSWORD" in text

    checked = pleo_export("check", cwd=tmp_path)
    assert checked.returncode == 2
    assert "url: Field required" in checked.stderr


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "pleo-export.toml").write_text("# mine\n", encoding="utf-8")
    refused = pleo_export("init", "beancount", cwd=tmp_path)
    assert refused.returncode == 2
    assert "pleo-export.toml exists" in refused.stderr
    assert _files(tmp_path) == {"pleo-export.toml"}
    assert (tmp_path / "pleo-export.toml").read_text(encoding="utf-8") == "# mine\n"

    other = tmp_path / "other"
    (other / "books").mkdir(parents=True)
    (other / "books" / "main.beancount").write_text("; my books\n", encoding="utf-8")
    refused = pleo_export("init", "beancount", "--dir", other, cwd=tmp_path)
    assert refused.returncode == 2
    assert "main.beancount exists" in refused.stderr
    assert _files(other) == {"books", "books/main.beancount"}
    assert (other / "books" / "main.beancount").read_text(encoding="utf-8") == "; my books\n"


def test_init_for_a_real_company_needs_its_currency(tmp_path: Path) -> None:
    refused = pleo_export("init", "beancount", "--base-url", "production", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--currency is required" in refused.stderr
    assert _files(tmp_path) == set()

    done = pleo_export(
        "init", "beancount", "--base-url", "production", "--currency", "dkk", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config = tomllib.loads((tmp_path / "pleo-export.toml").read_text(encoding="utf-8"))
    assert config["pleo"] == {"base_url": "production"}
    ledger = (tmp_path / "books" / "main.beancount").read_text(encoding="utf-8")
    assert 'option "operating_currency" "DKK"' in ledger


def test_init_names_what_is_wrong(tmp_path: Path) -> None:
    unknown = pleo_export("init", "nosuchbooks", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "'nosuchbooks' is not installed" in unknown.stderr
    bad_url = pleo_export("init", "beancount", "--base-url", "prod", cwd=tmp_path)
    assert bad_url.returncode == 2
    assert "--base-url 'prod'" in bad_url.stderr
    assert _files(tmp_path) == set()


def test_help_does_not_promise_runs_without_configuration(tmp_path: Path) -> None:
    helped = pleo_export("--help", cwd=tmp_path)
    assert "Without any configuration" not in helped.stdout
    assert "Only `demo` works without any" in helped.stdout
    for command in ("run", "check", "jobs"):
        bare = pleo_export(command, cwd=tmp_path)
        assert bare.returncode == 2, command
        assert "pleo-export init" in bare.stderr, command
    assert pleo_export("demo", "--dir", tmp_path / "demo", cwd=tmp_path).returncode == 0
    assert list(tmp_path.iterdir()) == [tmp_path / "demo"]  # nothing else written
