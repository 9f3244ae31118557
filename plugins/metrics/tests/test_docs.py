"""docs/metrics.md, the plugin's README and the metrics parts of docs/deploy.md: the settings
examples are accepted, the Python example runs, the install commands work from a clone and the
`pleo-export` commands exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export_metrics import MetricsSettings
from tests.support.doc_examples import (
    ROOT,
    blocks,
    check_toml,
    commands,
    install_problems,
    pleo_export_problems,
    program,
)

PAGES = [ROOT / "docs" / "metrics.md", ROOT / "plugins" / "metrics" / "README.md"]
DEPLOY = ROOT / "docs" / "deploy.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_settings_examples_are_accepted_as_written(page: Path, tmp_path: Path) -> None:
    examples = check_toml(page, tmp_path)
    (table,) = [e["plugins"]["metrics"] for e in examples if "metrics" in e.get("plugins", {})]
    assert MetricsSettings.model_validate(table).listen == "127.0.0.1:9464"  # loopback


@pytest.mark.parametrize("page", [*PAGES, DEPLOY], ids=lambda p: p.name)
def test_the_install_commands_take_nothing_first_party_from_pypi(page: Path) -> None:
    assert install_problems(page, "./plugins/metrics") == []


@pytest.mark.parametrize("page", [*PAGES, DEPLOY], ids=lambda p: p.name)
def test_every_pleo_export_command_exists(page: Path) -> None:
    for command in commands(page):
        if program(command)[0] == "pleo-export":
            assert pleo_export_problems(command) == [], command


def test_the_python_example_runs() -> None:
    (block,) = blocks(PAGES[0], "python")
    exec(compile(block, str(PAGES[0]), "exec"), {})  # noqa: S102 - our own documentation


def test_every_setting_is_documented() -> None:
    text = PAGES[0].read_text(encoding="utf-8")
    for name in MetricsSettings.model_fields:
        assert f"| `{name}` |" in text, name
