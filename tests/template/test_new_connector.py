"""``pleo-export new-connector``: names, refusals and what the generated package contains.

The generated package is installed and run through the conformance kit by the (slow)
acceptance test in ``test_generated_connector.py``; these checks are fast and in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pleo_export.cli import EXIT_CONFIG, main
from pleo_export.new_connector import (
    ConnectorNames,
    NewConnectorError,
    core_requirement,
    template_files,
)

NAME = "northwind-traders-erp"
"""A long-ish id with a dash: exercises every derived name and the line lengths."""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("generated") / "pkg"
    result = CliRunner().invoke(main, ["new-connector", NAME, "--directory", str(directory)])
    assert result.exit_code == 0, result.output
    assert "pytest" in result.output and f"cd {directory}" in result.output
    return directory


def test_names_derive_from_the_connector_id() -> None:
    names = ConnectorNames.from_name("acme-ledger_eu")
    assert names.distribution == "pleo-export-acme-ledger_eu"
    assert names.package == "pleo_export_acme_ledger_eu"
    assert names.class_prefix == "AcmeLedgerEu"
    assert names.env_name == "ACME_LEDGER_EU"
    assert names.display_name == "Acme Ledger Eu"
    assert ConnectorNames.from_name("acme", "ACME Books").display_name == "ACME Books"


@pytest.mark.parametrize("bad", ["Acme", "1acme", "acme ledger", "", "acme.ledger", "-acme"])
def test_an_invalid_connector_id_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(NewConnectorError, match="lower-case letters, digits"):
        ConnectorNames.from_name(bad)


def test_a_display_name_with_quotes_is_refused() -> None:
    with pytest.raises(NewConnectorError, match="--display-name"):
        ConnectorNames.from_name("acme", 'Acme "Books"')


def test_the_core_requirement_pins_the_minor_version() -> None:
    assert core_requirement("0.1.0") == "pleo-export>=0.1,<0.2"
    assert core_requirement("1.12.3") == "pleo-export>=1.12,<1.13"


def test_the_package_has_its_own_project_entry_point_and_test_dependency(generated: Path) -> None:
    project = tomllib.loads((generated / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == f"pleo-export-{NAME}"
    assert project["project"]["dependencies"] == [core_requirement()]
    entry_points = project["project"]["entry-points"]["pleo_export.connectors"]
    assert entry_points == {NAME: "pleo_export_northwind_traders_erp:NorthwindTradersErpConnector"}
    # The kit's extra brings pytest, anyio and the sandbox distribution the kit runs on.
    testing = core_requirement().replace("pleo-export", "pleo-export[testing]", 1)
    assert project["project"]["optional-dependencies"]["test"] == [testing]
    package = generated / "src" / "pleo_export_northwind_traders_erp"
    assert {p.name for p in package.iterdir()} >= {
        "__init__.py",
        "books.py",
        "connector.py",
        "settings.py",
        "py.typed",
    }
    assert (generated / "tests" / "test_conformance.py").is_file()
    assert (generated / "README.md").is_file() and (generated / ".gitignore").is_file()


def test_the_package_has_project_urls_and_the_manifest_links_its_docs(generated: Path) -> None:
    project = tomllib.loads((generated / "pyproject.toml").read_text(encoding="utf-8"))
    urls = project["project"]["urls"]
    assert set(urls) >= {"Homepage", "Documentation", "Repository", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())
    connector = (
        generated / "src" / "pleo_export_northwind_traders_erp" / "connector.py"
    ).read_text(encoding="utf-8")
    assert f'docs_url="{urls["Documentation"]}"' in connector


def test_every_placeholder_is_filled(generated: Path) -> None:
    leftovers = [
        str(path.relative_to(generated))
        for path in generated.rglob("*")
        if path.is_file() and ("{{" in path.read_text(encoding="utf-8") or path.suffix == ".tmpl")
    ]
    assert leftovers == []
    assert not (generated / "src" / "__package__").exists()


def test_the_conformance_test_is_wired_to_the_kit(generated: Path) -> None:
    text = (generated / "tests" / "test_conformance.py").read_text(encoding="utf-8")
    assert "from pleo_export.testing import" in text
    assert 'pytest_plugins = ["pleo_export.testing.plugin"]' in text
    assert f'connector_id = "{NAME}"' in text


def test_the_generated_code_is_lint_clean_and_formatted(generated: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        if os.environ.get("CI"):
            pytest.fail("ruff is part of the dev dependencies and is missing")
        pytest.skip("ruff is not installed")
    # The generated pyproject.toml carries its own ruff configuration.
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [ruff, *args], cwd=generated, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_configuration_is_what_scaffold_returns(generated: Path) -> None:
    # The example is rendered by core, scaffold() by the generated code: they must agree.
    example = tomllib.loads((generated / "example" / "pleo-export.toml").read_text("utf-8"))
    assert example["connector"]["name"] == NAME
    script = (
        "import json, sys, tempfile, pathlib\n"
        "from pleo_export_sandbox import DEMO_CHART\n"
        "from pleo_export_northwind_traders_erp import NorthwindTradersErpConnector as C\n"
        "print(json.dumps(C.scaffold(pathlib.Path(tempfile.mkdtemp()), DEMO_CHART, 'GBP')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(generated / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert example["connector"]["settings"] == json.loads(result.stdout)


def test_a_non_empty_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(main, ["new-connector", "acme", "--directory", str(tmp_path)])
    assert result.exit_code == EXIT_CONFIG
    assert "is not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_invalid_name_exits_with_a_configuration_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new-connector", "Acme", "--directory", str(tmp_path / "x")])
    assert result.exit_code == EXIT_CONFIG
    assert "NAME 'Acme' is not a valid connector id" in result.output
    assert not (tmp_path / "x").exists()


def test_the_template_renders_for_every_name_shape() -> None:
    for name in ("a", "acme_books", "x9-y8"):
        files = template_files(ConnectorNames.from_name(name))
        assert all("{{" not in content for content in files.values()), name
