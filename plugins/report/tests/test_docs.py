"""docs/plugins.md and the plugin's README: the Python example runs as written, the settings
table matches the settings model, the settings examples are accepted, the install commands
work from a clone and the commands run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pleo_export_report import ReportSettings
from tests.support.doc_examples import (
    blocks,
    check_toml,
    commands,
    install_problems,
    pip_problems,
    pleo_export_problems,
    program,
)

PAGE = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def test_the_python_example_runs() -> None:
    examples = blocks(PAGE, "python")
    assert examples, "docs/plugins.md has no Python example"
    for block in examples:
        exec(compile(block, str(PAGE), "exec"), {})  # noqa: S102 - our own documentation


def test_every_setting_is_documented() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in ReportSettings.model_fields:
        assert f"| `{name}` |" in text, name


README = PAGE.parents[1] / "plugins" / "report" / "README.md"
PAGES = [PAGE, README]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_settings_examples_are_accepted_as_written(page: Path, tmp_path: Path) -> None:
    examples = check_toml(page, tmp_path)
    tables = [e["plugins"]["report"] for e in examples if "report" in e.get("plugins", {})]
    assert tables, f"{page}: no [plugins.report] example"
    for table in tables:
        settings = ReportSettings.model_validate(table)
        assert settings.directory == Path("reports") and set(settings.formats) == {"html", "csv"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_install_commands_take_nothing_first_party_from_pypi(page: Path) -> None:
    assert install_problems(page, "./plugins/report") == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_pleo_export_command_exists(page: Path) -> None:
    found = [c for c in commands(page) if program(c)[0] == "pleo-export"]
    assert found, page
    for command in found:
        assert pleo_export_problems(command) == [], command


def test_try_it_runs_as_written_and_lists_the_reports(tmp_path: Path) -> None:
    """docs/plugins.md "Try it", after its pip line (this environment has the packages)."""
    lines = [c for c in commands(PAGE) if program(c)[0] != "pip"]
    assert lines[0].startswith("pleo-export demo") and lines[1].startswith("ls ")
    script = "set -e\n" + "\n".join(lines) + "\n"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    listed = [line for line in done.stdout.splitlines() if line.endswith(".html")]
    assert listed and all(re.fullmatch(r"pleo-export-demo/job-[0-9a-f-]+\.html", x) for x in listed)
    assert len(listed) == len(list((tmp_path / "pleo-export-demo").glob("job-*.csv")))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pip install './core[sandbox]' ./plugins/report", "add ./sandbox to the command"),
        ("pip install pleo-export-report", "not on PyPI yet"),
        ("pip install ./plugins/nowhere", "no distribution in"),
        ("pleo-export demo --dri x", "No such option"),
        ("pleo-export plugins lst", "No such command"),
    ],
)
def test_the_example_checks_catch_what_would_fail(command: str, expected: str) -> None:
    problems = (
        pip_problems(command) if program(command)[0] == "pip" else pleo_export_problems(command)
    )
    assert any(expected in problem for problem in problems), problems
