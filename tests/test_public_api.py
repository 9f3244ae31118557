"""Connectors and plugins use the public API only: ``pleo_export`` and ``pleo_export.testing``.

An AST scan of every ``.py`` file under ``connectors/`` and ``contrib/`` and of every Python
file the connector template generates (``pleo-export new-connector``). The rule:

* connector and plugin source packages (``src/``) and everything the template generates import
  from pleo-export only ``pleo_export`` (names in ``pleo_export.__all__``),
  ``pleo_export.attachments`` (the shared receipt helpers) and ``pleo_export.testing`` (names
  in their ``__all__``); other distributions (the sandbox
  ``pleo_export_sandbox``, the connector's own package, third-party libraries) are theirs to
  choose;
* a connector's ``tests/`` folder may in addition drive the real engine end to end, as
  ``pleo-export run`` does, from the modules in :data:`END_TO_END_MODULES` (building an
  engine, a store, a Pleo client and the plugin host by hand). Everything else a test needs
  comes from the public API too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pleo_export
import pleo_export.attachments
import pleo_export.testing
from pleo_export.new_connector import ConnectorNames, template_files

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("connectors", "contrib")

PUBLIC_MODULES: dict[str, frozenset[str]] = {
    "pleo_export": frozenset(pleo_export.__all__),
    "pleo_export.attachments": frozenset(pleo_export.attachments.__all__),
    "pleo_export.testing": frozenset(pleo_export.testing.__all__),
}

END_TO_END_MODULES = frozenset(
    {
        "pleo_export.config",
        "pleo_export.engine",
        "pleo_export.host",
        "pleo_export.pleo.auth",
        "pleo_export.pleo.client",
        "pleo_export.pleo.ratelimit",
        "pleo_export.state",
    }
)
"""What a connector's own end-to-end tests may import besides the public API."""


def violations(source: str, where: str, *, tests: bool) -> list[str]:
    """Every import of pleo-export in ``source`` that the rule above does not allow."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Import):
            modules = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, [alias.name for alias in node.names])]
        else:
            continue
        for module, names in modules:
            if module.split(".")[0] != "pleo_export":
                continue
            if module in PUBLIC_MODULES:
                unknown = sorted(set(names or ()) - PUBLIC_MODULES[module])
                if unknown:
                    found.append(f"{where}:{node.lineno}: {module} has no public {unknown}")
            elif not (tests and module in END_TO_END_MODULES):
                found.append(f"{where}:{node.lineno}: imports {module}")
    return found


def _is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def _scanned_files() -> list[Path]:
    files = [
        path
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*.py"))
        if ".venv" not in path.parts
    ]
    assert len(files) > 50, files  # guards the scan itself: the trees moved?
    return files


def test_connectors_and_contrib_import_only_the_public_api() -> None:
    found = [
        problem
        for path in _scanned_files()
        for problem in violations(
            path.read_text(encoding="utf-8"),
            str(path.relative_to(ROOT)),
            tests=_is_test(path.relative_to(ROOT)),
        )
    ]
    assert not found, (
        "import these from pleo_export or pleo_export.testing (add the name to their __all__ "
        "and to docs/reference/connector.md if a connector really needs it):\n" + "\n".join(found)
    )


def test_generated_connector_imports_only_the_public_api() -> None:
    files = template_files(ConnectorNames.from_name("acme-ledger"))
    python = {path: text for path, text in files.items() if path.suffix == ".py"}
    assert any(path.parts[0] == "tests" for path in python), sorted(python)
    found = [
        problem
        for path, text in python.items()
        for problem in violations(text, f"template {path}", tests=False)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "tests", "expected"),
    [
        ("from pleo_export.pleo.models import ExportJob", False, "imports pleo_export.pleo.models"),
        ("import pleo_export.money", False, "imports pleo_export.money"),
        ("from pleo_export import bookkeeping", False, "has no public ['bookkeeping']"),
        ("from pleo_export.engine import ExportEngine", False, "imports pleo_export.engine"),
        ("from pleo_export.settlement import settle_payment", True, "imports pleo_export."),
    ],
)
def test_the_scan_catches_private_imports(source: str, tests: bool, expected: str) -> None:
    assert any(expected in found for found in violations(source, "x.py", tests=tests))


@pytest.mark.parametrize(
    "source",
    [
        "from pleo_export import ExportJob, hookimpl, Problem, RunReport, ItemOutcome",
        "from pleo_export.testing import ConformanceSuite, plan_item",
        "import pleo_export",
        "from pleo_export_sandbox import Chart",
        "from pleo_export_beancount.chart import Chart",
    ],
)
def test_the_scan_allows_the_public_api(source: str) -> None:
    assert violations(source, "x.py", tests=False) == []


def test_every_public_name_resolves() -> None:
    for module, names in PUBLIC_MODULES.items():
        imported = __import__(module, fromlist=["_"])
        missing = [name for name in names if not hasattr(imported, name)]
        assert not missing, f"{module}.__all__ names what it does not define: {missing}"
